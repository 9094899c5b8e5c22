// vecmat_unfused with AVX2, separate multiply and add (this file is compiled
// with -ffp-contract=off, so nothing is fused). Up to 64 outputs per pass
// over x in 8 independent accumulators: with fewer, each step waits for the
// previous add.
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

namespace {

// NV vectors of 8 outputs starting at column j; the last one masked.
template <int NV>
void block(const float* x, size_t d, const float* w, size_t n, size_t j, __m256i last, float* out) {
    __m256 a[NV];
    for (int v = 0; v < NV; v++) a[v] = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]);
        const float* row = w + i * n + j;
        for (int v = 0; v + 1 < NV; v++) a[v] = _mm256_add_ps(a[v], _mm256_mul_ps(xi, _mm256_loadu_ps(row + 8 * v)));
        a[NV - 1] = _mm256_add_ps(a[NV - 1], _mm256_mul_ps(xi, _mm256_maskload_ps(row + 8 * (NV - 1), last)));
    }
    for (int v = 0; v + 1 < NV; v++) _mm256_storeu_ps(out + j + 8 * v, a[v]);
    _mm256_maskstore_ps(out + j + 8 * (NV - 1), last, a[NV - 1]);
}

}  // namespace

void vecmat_unfused_avx2(const float* x, size_t d, const float* w, size_t n, float* out) {
    for (size_t j = 0; j < n; j += 64) {
        const size_t cols = n - j < 64 ? n - j : 64;
        const size_t nv = (cols + 7) / 8;
        const int left = int(cols - 8 * (nv - 1));  // 1..8 in the last vector
        const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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
