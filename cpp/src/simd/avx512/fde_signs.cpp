// fde_signs with AVX-512 (see fde_signs.h for why a fused sum may decide a
// sign). Four points at a time share each row of w; their sums run in
// 16-lane vectors across up to 64 columns.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "nearly/fde_signs.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

constexpr int kPoints = 4;

// Columns j0 .. j0 + 16 * NV of kPoints points; the last vector masked.
// The sums stay in registers until the end (written through a reference
// every step, GCC keeps them in memory).
template <int NV>
void tile(const float* const* x, size_t d, const float* w, size_t n, size_t j0, __mmask16 last,
          __m512 (&result)[kPoints][4]) {
    __m512 acc[kPoints][NV];
    for (int g = 0; g < kPoints; g++)
        for (int v = 0; v < NV; v++) acc[g][v] = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i++) {
        const float* row = w + i * n + j0;
        __m512 wv[NV];
        for (int v = 0; v + 1 < NV; v++) wv[v] = _mm512_loadu_ps(row + 16 * v);
        wv[NV - 1] = _mm512_maskz_loadu_ps(last, row + 16 * (NV - 1));
        for (int g = 0; g < kPoints; g++) {
            const __m512 xb = _mm512_set1_ps(x[g][i]);
            for (int v = 0; v < NV; v++) acc[g][v] = _mm512_fmadd_ps(wv[v], xb, acc[g][v]);
        }
    }
    for (int g = 0; g < kPoints; g++)
        for (int v = 0; v < NV; v++) result[g][v] = acc[g][v];
}

// Euclidean norm of x in double: squares of floats are exact in double and
// a sum of d of them is within d * 2^-53 of exact, in any order.
double norm(const float* x, size_t d) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    double sq = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; i < d; i++) sq += double(x[i]) * double(x[i]);
    return std::sqrt(sq);
}

}  // namespace

void fde_signs_avx512(const float* points, size_t m, size_t d, const float* w, size_t n, const float* w_norm,
                      uint8_t* positive) {
    if (d >= (size_t(1) << 22)) return fde_signs_scalar(points, m, d, w, n, w_norm, positive);
    const double u = std::ldexp(1.0, -24), gamma = double(d) * u / (1.0 - double(d) * u);
    // Twice the error bound, with room for the float products that form it.
    const float coef = float(2.0 * gamma * (1.0 + 1e-4));
    // Products below the normal range may lose up to 2^-126 each (flushed
    // to zero or rounded as subnormals).
    const float floor = float(double(d) * std::ldexp(1.0, -125));
    const float w_max = *std::max_element(w_norm, w_norm + n);
    for (size_t p0 = 0; p0 < m; p0 += kPoints) {
        const size_t live = std::min<size_t>(kPoints, m - p0);
        const float* x[kPoints];
        __m512 scale[kPoints];  // coef * ||x_p||, rounded up
        bool fast[kPoints];
        for (int g = 0; g < kPoints; g++) {
            x[g] = points + (p0 + std::min<size_t>(g, live - 1)) * d;
            const double nx = norm(x[g], d) * (1.0 + 1e-9);
            // Sums that could overflow are left to the reference.
            fast[g] = nx * double(w_max) < 1e36;
            scale[g] = _mm512_set1_ps(fast[g] ? coef * float(nx) : INFINITY);
        }
        for (size_t j0 = 0; j0 < n; j0 += 64) {
            const size_t cols = std::min<size_t>(64, n - j0);
            const int nv = int((cols + 15) / 16);
            const size_t left = cols - 16 * size_t(nv - 1);
            const __mmask16 last = __mmask16(left == 16 ? 0xffffu : (1u << left) - 1u);
            __m512 acc[kPoints][4];
            with_vector_count<4>(size_t(nv), [&](auto nvec) { tile<nvec>(x, d, w, n, j0, last, acc); });
            for (size_t g = 0; g < live; g++) {
                uint8_t* out = positive + (p0 + g) * n + j0;
                for (int v = 0; v < nv; v++) {
                    const __mmask16 k = v + 1 < nv ? __mmask16(0xffff) : last;
                    const __m512 thr = _mm512_fmadd_ps(scale[g], _mm512_maskz_loadu_ps(k, w_norm + j0 + 16 * v),
                                                       _mm512_set1_ps(floor));
                    const __m512 s = acc[g][v];
                    const __mmask16 pos = _mm512_cmp_ps_mask(s, thr, _CMP_GT_OQ);
                    const __mmask16 neg = _mm512_cmp_ps_mask(s, _mm512_sub_ps(_mm512_setzero_ps(), thr), _CMP_LT_OQ);
                    _mm_mask_storeu_epi8(out + 16 * v, k, _mm_maskz_mov_epi8(pos, _mm_set1_epi8(1)));
                    uint32_t unsure = uint32_t(k) & ~uint32_t(pos | neg);
                    while (unsure) {
                        const int lane = __builtin_ctz(unsure);
                        unsure &= unsure - 1;
                        const size_t j = j0 + 16 * size_t(v) + size_t(lane);
                        out[16 * v + lane] = fde_sign_sum_reference(x[g], d, w, n, j) > 0.f;
                    }
                }
            }
        }
    }
}

}  // namespace nearly
