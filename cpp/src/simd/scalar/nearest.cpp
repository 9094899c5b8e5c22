// The scalar reference of nearest_transposed (see simd.h): products rounded
// before each add (this file is compiled with -ffp-contract=off), the first
// minimum kept.
#include <vector>

#include "nearly/simd.h"

namespace nearly {

size_t nearest_transposed_scalar(const float* x, size_t d, const float* ct, const float* norms, size_t k,
                                 float* score) {
    size_t best = 0;
    float best_s = 0.f;
    for (size_t c = 0; c < k; c++) {
        float ip = 0.f;
        for (size_t i = 0; i < d; i++) ip += x[i] * ct[i * k + c];
        const float s = norms[c] - 2.f * ip;
        if (c == 0 || s < best_s) {
            best_s = s;
            best = c;
        }
    }
    *score = best_s;
    return best;
}

}  // namespace nearly
