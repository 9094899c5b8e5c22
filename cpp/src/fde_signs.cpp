#include "nearly/fde_signs.h"

#include <cmath>

#include "nearly/simd.h"

namespace nearly {

std::vector<float> fde_column_norms(const float* w, size_t d, size_t n) {
    std::vector<double> sq(n, 0.0);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < n; j++) sq[j] += double(w[i * n + j]) * double(w[i * n + j]);
    std::vector<float> out(n);
    // Double sums of d squares are within d * 2^-53 of exact; the float is
    // rounded up past that.
    for (size_t j = 0; j < n; j++) {
        float v = float(std::sqrt(sq[j]) * (1.0 + 1e-9));
        if (double(v) < std::sqrt(sq[j])) v = std::nextafter(v, INFINITY);
        out[j] = v;
    }
    return out;
}

void fde_signs(const float* points, size_t m, size_t d, const float* w, size_t n, const float* w_norm,
               uint8_t* positive) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return fde_signs_avx512(points, m, d, w, n, w_norm, positive);
#endif
        case SimdLevel::scalar: return fde_signs_scalar(points, m, d, w, n, w_norm, positive);
        default: {
            // Other levels: the level's vecmat_unfused, one point at a time.
            const SimdKernels& K = simd();
            std::vector<float> sums(n);
            for (size_t p = 0; p < m; p++) {
                K.vecmat_unfused(points + p * d, d, w, n, sums.data());
                for (size_t j = 0; j < n; j++) positive[p * n + j] = sums[j] > 0.f;
            }
        }
    }
}

}  // namespace nearly
