// vecmat_unfused with AVX2: 32 outputs per pass over x, separate multiply and
// add (this file is compiled with -ffp-contract=off, so nothing is fused).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

void vecmat_unfused_avx2(const float* x, size_t d, const float* w, size_t n, float* out) {
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < d; i++) {
            const __m256 xi = _mm256_set1_ps(x[i]);
            const float* row = w + i * n + j;
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(xi, _mm256_loadu_ps(row)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(xi, _mm256_loadu_ps(row + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(xi, _mm256_loadu_ps(row + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(xi, _mm256_loadu_ps(row + 24)));
        }
        _mm256_storeu_ps(out + j, a0);
        _mm256_storeu_ps(out + j + 8, a1);
        _mm256_storeu_ps(out + j + 16, a2);
        _mm256_storeu_ps(out + j + 24, a3);
    }
    for (; j < n; j += 8) {
        // The last 1-8 outputs: masked loads read nothing past the row.
        const int left = int(n - j < 8 ? n - j : 8);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 a = _mm256_setzero_ps();
        for (size_t i = 0; i < d; i++)
            a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(x[i]), _mm256_maskload_ps(w + i * n + j, mask)));
        _mm256_maskstore_ps(out + j, mask, a);
    }
}

}  // namespace nearly
