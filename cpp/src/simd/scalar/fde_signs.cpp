// Scalar reference of fde_signs (see fde_signs.h); compiled with
// -ffp-contract=off, so every product is rounded before its add.
#include "nearly/fde_signs.h"

namespace nearly {

float fde_sign_sum_reference(const float* x, size_t d, const float* w, size_t n, size_t j) {
    float sum = 0.f;
    for (size_t i = 0; i < d; i++) sum += x[i] * w[i * n + j];
    return sum;
}

void fde_signs_scalar(const float* points, size_t m, size_t d, const float* w, size_t n, const float* w_norm,
                      uint8_t* positive) {
    std::vector<float> sums(n);
    for (size_t p = 0; p < m; p++) {
        const float* x = points + p * d;
        for (size_t j = 0; j < n; j++) sums[j] = 0.f;
        for (size_t i = 0; i < d; i++) {
            const float xi = x[i];
            const float* row = w + i * n;
            for (size_t j = 0; j < n; j++) sums[j] += xi * row[j];
        }
        for (size_t j = 0; j < n; j++) positive[p * n + j] = sums[j] > 0.f;
    }
}

}  // namespace nearly
