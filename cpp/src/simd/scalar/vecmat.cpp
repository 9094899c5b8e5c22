// Scalar references of vecmat_unfused and vecmat_fused (see simd.h). This
// file is compiled with -ffp-contract=off: the unfused product is rounded
// before its add, and std::fma is the only fused step.
#include <cmath>

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

void vecmat_fused_scalar(const float* x, size_t d, const float* w, size_t n, float* out) {
    for (size_t j = 0; j < n; j++) out[j] = 0.f;
    for (size_t i = 0; i < d; i++) {
        const float xi = x[i];
        const float* row = w + i * n;
        for (size_t j = 0; j < n; j++) out[j] = std::fma(xi, row[j], out[j]);
    }
}

}  // namespace nearly
