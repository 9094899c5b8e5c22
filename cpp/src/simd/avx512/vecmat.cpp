// vecmat_unfused and vecmat_fused with AVX-512. The unfused kernel keeps a
// separate multiply and add (this file is compiled with -ffp-contract=off,
// so only the explicit fmadd fuses). Up to 128 outputs per pass over x in 8
// independent accumulators: with fewer, each step waits for the previous add
// (the FDE sign projections have about 100 outputs).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

namespace {

template <bool Fused>
inline __m512 madd(__m512 acc, __m512 x, __m512 w) {
    return Fused ? _mm512_fmadd_ps(x, w, acc) : _mm512_add_ps(acc, _mm512_mul_ps(x, w));
}

// NV vectors of 16 outputs starting at column j; the last one masked. The
// accumulators are named variables: as an array of eight (512 bytes) GCC
// kept them in memory, storing each one back on every step.
template <bool Fused, int NV>
void block(const float* x, size_t d, const float* w, size_t n, size_t j, __mmask16 last, float* out) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
    auto mask = [last](int v) { return v == NV - 1 ? last : __mmask16(0xffff); };
    for (size_t i = 0; i < d; i++) {
        const __m512 xi = _mm512_set1_ps(x[i]);
        const float* row = w + i * n + j;
        a0 = madd<Fused>(a0, xi, _mm512_maskz_loadu_ps(mask(0), row));
        if (NV > 1) a1 = madd<Fused>(a1, xi, _mm512_maskz_loadu_ps(mask(1), row + 16));
        if (NV > 2) a2 = madd<Fused>(a2, xi, _mm512_maskz_loadu_ps(mask(2), row + 32));
        if (NV > 3) a3 = madd<Fused>(a3, xi, _mm512_maskz_loadu_ps(mask(3), row + 48));
        if (NV > 4) a4 = madd<Fused>(a4, xi, _mm512_maskz_loadu_ps(mask(4), row + 64));
        if (NV > 5) a5 = madd<Fused>(a5, xi, _mm512_maskz_loadu_ps(mask(5), row + 80));
        if (NV > 6) a6 = madd<Fused>(a6, xi, _mm512_maskz_loadu_ps(mask(6), row + 96));
        if (NV > 7) a7 = madd<Fused>(a7, xi, _mm512_maskz_loadu_ps(mask(7), row + 112));
    }
    float* o = out + j;
    _mm512_mask_storeu_ps(o, mask(0), a0);
    if (NV > 1) _mm512_mask_storeu_ps(o + 16, mask(1), a1);
    if (NV > 2) _mm512_mask_storeu_ps(o + 32, mask(2), a2);
    if (NV > 3) _mm512_mask_storeu_ps(o + 48, mask(3), a3);
    if (NV > 4) _mm512_mask_storeu_ps(o + 64, mask(4), a4);
    if (NV > 5) _mm512_mask_storeu_ps(o + 80, mask(5), a5);
    if (NV > 6) _mm512_mask_storeu_ps(o + 96, mask(6), a6);
    if (NV > 7) _mm512_mask_storeu_ps(o + 112, mask(7), a7);
}

template <bool Fused>
void vecmat(const float* x, size_t d, const float* w, size_t n, float* out) {
    for (size_t j = 0; j < n; j += 128) {
        const size_t cols = n - j < 128 ? n - j : 128;
        const size_t nv = (cols + 15) / 16;
        const size_t left = cols - 16 * (nv - 1);  // 1..16 in the last vector
        const __mmask16 last = __mmask16(left == 16 ? 0xffffu : (1u << left) - 1u);
        with_vector_count<8>(nv, [&](auto nvec) { block<Fused, nvec>(x, d, w, n, j, last, out); });
    }
}

}  // namespace

void vecmat_unfused_avx512(const float* x, size_t d, const float* w, size_t n, float* out) {
    vecmat<false>(x, d, w, n, out);
}

void vecmat_fused_avx512(const float* x, size_t d, const float* w, size_t n, float* out) {
    vecmat<true>(x, d, w, n, out);
}

}  // namespace nearly
