// The scalar reference of select_within (see simd.h).
#include "nearly/simd.h"

namespace nearly {

size_t select_within_scalar(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                            float* out) {
    size_t m = 0;
    for (size_t c = 0; c < n; c++) {
        const float partial = (base + yn[c]) - 2 * ip[c];
        idx[m] = int32_t(c);
        out[m] = partial;
        m += partial <= limit;  // branch-free: early iterations keep half the pairs
    }
    return m;
}

}  // namespace nearly
