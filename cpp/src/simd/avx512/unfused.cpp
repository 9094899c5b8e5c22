// vecmat_unfused with AVX-512, separate multiply and add (this file is
// compiled with -ffp-contract=off, so nothing is fused). Up to 128 outputs
// per pass over x in 8 independent accumulators: with fewer, each step waits
// for the previous add (the FDE sign projections have about 100 outputs).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

namespace {

// NV vectors of 16 outputs starting at column j; the last one masked.
template <int NV>
void block(const float* x, size_t d, const float* w, size_t n, size_t j, __mmask16 last, float* out) {
    __m512 a[NV];
    for (int v = 0; v < NV; v++) a[v] = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i++) {
        const __m512 xi = _mm512_set1_ps(x[i]);
        const float* row = w + i * n + j;
        for (int v = 0; v + 1 < NV; v++) a[v] = _mm512_add_ps(a[v], _mm512_mul_ps(xi, _mm512_loadu_ps(row + 16 * v)));
        a[NV - 1] = _mm512_add_ps(a[NV - 1], _mm512_mul_ps(xi, _mm512_maskz_loadu_ps(last, row + 16 * (NV - 1))));
    }
    for (int v = 0; v + 1 < NV; v++) _mm512_storeu_ps(out + j + 16 * v, a[v]);
    _mm512_mask_storeu_ps(out + j + 16 * (NV - 1), last, a[NV - 1]);
}

}  // namespace

void vecmat_unfused_avx512(const float* x, size_t d, const float* w, size_t n, float* out) {
    for (size_t j = 0; j < n; j += 128) {
        const size_t cols = n - j < 128 ? n - j : 128;
        const size_t nv = (cols + 15) / 16;
        const size_t left = cols - 16 * (nv - 1);  // 1..16 in the last vector
        const __mmask16 last = __mmask16(left == 16 ? 0xffffu : (1u << left) - 1u);
        switch (nv) {
            case 1: block<1>(x, d, w, n, j, last, out); break;
            case 2: block<2>(x, d, w, n, j, last, out); break;
            case 3: block<3>(x, d, w, n, j, last, out); break;
            case 4: block<4>(x, d, w, n, j, last, out); break;
            case 5: block<5>(x, d, w, n, j, last, out); break;
            case 6: block<6>(x, d, w, n, j, last, out); break;
            case 7: block<7>(x, d, w, n, j, last, out); break;
            default: block<8>(x, d, w, n, j, last, out); break;
        }
    }
}

}  // namespace nearly
