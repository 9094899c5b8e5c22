// vecmat_unfused and vecmat_fused with AVX2. The unfused kernel keeps a
// separate multiply and add (this file is compiled with -ffp-contract=off,
// so only the explicit fmadd fuses). Up to 64 outputs per pass over x in 8
// independent accumulators: with fewer, each step waits for the previous add.
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

namespace {

template <bool Fused>
inline __m256 madd(__m256 acc, __m256 x, __m256 w) {
    return Fused ? _mm256_fmadd_ps(x, w, acc) : _mm256_add_ps(acc, _mm256_mul_ps(x, w));
}

// NV vectors of 8 outputs starting at column j; the last one masked.
template <bool Fused, int NV>
void block(const float* x, size_t d, const float* w, size_t n, size_t j, __m256i last, float* out) {
    __m256 a[NV];
    for (int v = 0; v < NV; v++) a[v] = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]);
        const float* row = w + i * n + j;
        for (int v = 0; v + 1 < NV; v++) a[v] = madd<Fused>(a[v], xi, _mm256_loadu_ps(row + 8 * v));
        a[NV - 1] = madd<Fused>(a[NV - 1], xi, _mm256_maskload_ps(row + 8 * (NV - 1), last));
    }
    for (int v = 0; v + 1 < NV; v++) _mm256_storeu_ps(out + j + 8 * v, a[v]);
    _mm256_maskstore_ps(out + j + 8 * (NV - 1), last, a[NV - 1]);
}

template <bool Fused>
void vecmat(const float* x, size_t d, const float* w, size_t n, float* out) {
    for (size_t j = 0; j < n; j += 64) {
        const size_t cols = n - j < 64 ? n - j : 64;
        const size_t nv = (cols + 7) / 8;
        const int left = int(cols - 8 * (nv - 1));  // 1..8 in the last vector
        const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        with_vector_count<8>(nv, [&](auto nvec) { block<Fused, nvec>(x, d, w, n, j, last, out); });
    }
}

}  // namespace

void vecmat_unfused_avx2(const float* x, size_t d, const float* w, size_t n, float* out) {
    vecmat<false>(x, d, w, n, out);
}

void vecmat_fused_avx2(const float* x, size_t d, const float* w, size_t n, float* out) {
    vecmat<true>(x, d, w, n, out);
}

}  // namespace nearly
