// vecmat_unfused with AVX-512: 64 outputs per pass over x, separate multiply
// and add (this file is compiled with -ffp-contract=off, so nothing is fused).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

void vecmat_unfused_avx512(const float* x, size_t d, const float* w, size_t n, float* out) {
    size_t j = 0;
    for (; j + 64 <= n; j += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < d; i++) {
            const __m512 xi = _mm512_set1_ps(x[i]);
            const float* row = w + i * n + j;
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(xi, _mm512_loadu_ps(row)));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(xi, _mm512_loadu_ps(row + 16)));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(xi, _mm512_loadu_ps(row + 32)));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(xi, _mm512_loadu_ps(row + 48)));
        }
        _mm512_storeu_ps(out + j, a0);
        _mm512_storeu_ps(out + j + 16, a1);
        _mm512_storeu_ps(out + j + 32, a2);
        _mm512_storeu_ps(out + j + 48, a3);
    }
    for (; j < n; j += 16) {
        // The last 1-16 outputs: masked loads read nothing past the row.
        const size_t left = n - j < 16 ? n - j : 16;
        const __mmask16 mask = __mmask16((1u << left) - 1u);
        __m512 a = _mm512_setzero_ps();
        for (size_t i = 0; i < d; i++)
            a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(x[i]), _mm512_maskz_loadu_ps(mask, w + i * n + j)));
        _mm512_mask_storeu_ps(out + j, mask, a);
    }
}

}  // namespace nearly
