// Scalar reference of vecmat_unfused (see simd.h).
#include "nearly/simd.h"

namespace nearly {

void vecmat_unfused_scalar(const float* x, size_t d, const float* w, size_t n, float* out) {
    for (size_t j = 0; j < n; j++) out[j] = 0.f;
    for (size_t i = 0; i < d; i++) {
        const float xi = x[i];
        const float* row = w + i * n;
        for (size_t j = 0; j < n; j++) out[j] += xi * row[j];
    }
}

}  // namespace nearly
