// The ScalarQuantizer decoder at this level (sq_decode.h compiled with the
// level's flags: bit-identical to the scalar reference) and the code scoring
// kernels: sixteen dimensions per step (the packed codes widened to sixteen
// 32-bit lanes: a byte shuffle, then per-lane shifts for 4 and 6 bits; bf16
// shifted into place, fp16 converted), four
// codes at a time sharing the query's loads; the last dimensions short of
// sixteen go through the AVX2 steps (sq_avx2_scores.h) and the scalar tail.
#include "../../sq_decode.h"

#include <immintrin.h>

#include <algorithm>

#include "../sq_avx2_scores.h"
#include "nearly/half.h"
#include "nearly/sq_scan.h"

namespace nearly {

void sq_decode_avx512(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n) {
    sq_detail::decode(sq, codes, x, n, half_to_float_avx512);
}

namespace {

template <int Kind>
inline __m512 load16(const uint8_t* c, size_t j) {
    if constexpr (Kind == kSQfp16) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 2 * j)));
    } else if constexpr (Kind == kSQbf16) {
        const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 2 * j)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
    } else if constexpr (Kind == kSQ8) {
        return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j))));
    } else if constexpr (Kind == kSQ4) {
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + j / 2));
        const __m128i dup = _mm_shuffle_epi8(b, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
        const __m512i x = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(dup),
                                            _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4));
        return _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15)));
    } else {
        // Twelve bytes, four groups of three: one group per 128-bit lane. A
        // masked load never reads past them.
        const __m128i b = _mm_maskz_loadu_epi8(__mmask16(0x0fff), c + j / 8 * 6);
        __m512i x = _mm512_broadcast_i32x4(b);
        x = _mm512_shuffle_epi8(x, _mm512_set_epi8(-1, 11, 10, 9, -1, 11, 10, 9, -1, 11, 10, 9, -1, 11, 10, 9,  //
                                                   -1, 8, 7, 6, -1, 8, 7, 6, -1, 8, 7, 6, -1, 8, 7, 6,          //
                                                   -1, 5, 4, 3, -1, 5, 4, 3, -1, 5, 4, 3, -1, 5, 4, 3,          //
                                                   -1, 2, 1, 0, -1, 2, 1, 0, -1, 2, 1, 0, -1, 2, 1, 0));
        x = _mm512_srlv_epi32(x, _mm512_setr_epi32(0, 6, 12, 18, 0, 6, 12, 18, 0, 6, 12, 18, 0, 6, 12, 18));
        return _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(63)));
    }
}

template <bool IP>
inline __m512 step16(__m512 acc, __m512 wj, __m512 rj, __m512 v) {
    if constexpr (IP) {
        return _mm512_fmadd_ps(wj, v, acc);
    } else {
        const __m512 t = _mm512_fnmadd_ps(wj, v, rj);
        return _mm512_fmadd_ps(t, t, acc);
    }
}

// The dimensions from j16 on: one AVX2 step if eight remain, then scalar.
template <int Kind, bool IP>
inline float rest(const uint8_t* c, size_t cs, size_t j16, size_t d, const float* w, const float* r) {
    float s = 0.f;
    size_t j = j16;
    if (j + 8 <= d) {
        const __m256 wj = _mm256_loadu_ps(w + j);
        const __m256 rj = IP ? wj : _mm256_loadu_ps(r + j);
        s = sq_avx2::hsum(sq_avx2::step<IP>(_mm256_setzero_ps(), wj, rj, sq_avx2::load8<Kind>(c, j, cs)));
        j += 8;
    }
    return s + sq_avx2::tail<Kind, IP>(c, j, d, w, r);
}

// code(i): the i-th code's address (codes in a row, or gathered).
template <int Kind, bool IP, class Code>
void scores(const Code& code, size_t cs, size_t n, size_t d, const float* w, const float* r, float* out) {
    const size_t d16 = d & ~size_t(15);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t* c0 = code(i);
        const uint8_t* c1 = code(i + 1);
        const uint8_t* c2 = code(i + 2);
        const uint8_t* c3 = code(i + 3);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d16; j += 16) {
            const __m512 wj = _mm512_loadu_ps(w + j);
            const __m512 rj = IP ? wj : _mm512_loadu_ps(r + j);
            a0 = step16<IP>(a0, wj, rj, load16<Kind>(c0, j));
            a1 = step16<IP>(a1, wj, rj, load16<Kind>(c1, j));
            a2 = step16<IP>(a2, wj, rj, load16<Kind>(c2, j));
            a3 = step16<IP>(a3, wj, rj, load16<Kind>(c3, j));
        }
        out[i] = _mm512_reduce_add_ps(a0) + rest<Kind, IP>(c0, cs, d16, d, w, r);
        out[i + 1] = _mm512_reduce_add_ps(a1) + rest<Kind, IP>(c1, cs, d16, d, w, r);
        out[i + 2] = _mm512_reduce_add_ps(a2) + rest<Kind, IP>(c2, cs, d16, d, w, r);
        out[i + 3] = _mm512_reduce_add_ps(a3) + rest<Kind, IP>(c3, cs, d16, d, w, r);
    }
    for (; i < n; i++) {
        const uint8_t* c = code(i);
        __m512 a = _mm512_setzero_ps();
        for (size_t j = 0; j < d16; j += 16) {
            const __m512 wj = _mm512_loadu_ps(w + j);
            a = step16<IP>(a, wj, IP ? wj : _mm512_loadu_ps(r + j), load16<Kind>(c, j));
        }
        out[i] = _mm512_reduce_add_ps(a) + rest<Kind, IP>(c, cs, d16, d, w, r);
    }
}

// NQ queries against each code, 16 dimensions a step (see sq_scores_group).
template <int Kind, bool IP, int NQ>
void scores_group(const uint8_t* codes, size_t cs, size_t n, size_t d, const float* const* w, const float* const* r,
                  float* out) {
    const size_t d16 = d & ~size_t(15);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m512 a[NQ];
        for (int q = 0; q < NQ; q++) a[q] = _mm512_setzero_ps();
        for (size_t j = 0; j < d16; j += 16) {
            const __m512 v = load16<Kind>(c, j);
            for (int q = 0; q < NQ; q++) {
                const __m512 wj = _mm512_loadu_ps(w[q] + j);
                a[q] = step16<IP>(a[q], wj, IP ? wj : _mm512_loadu_ps(r[q] + j), v);
            }
        }
        for (int q = 0; q < NQ; q++)
            out[q * n + i] = _mm512_reduce_add_ps(a[q]) + rest<Kind, IP>(c, cs, d16, d, w[q], r[q]);
    }
}

}  // namespace

void sq_scores_group_avx512(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                            const float* const* w, const float* const* r, float* out) {
    for_query_groups(kind, nq, [&](auto k, auto g, size_t q0) {
        constexpr int K = decltype(k)::value, G = decltype(g)::value;
        ip ? scores_group<K, true, G>(codes, cs, n, d, w + q0, r + q0, out + q0 * n)
           : scores_group<K, false, G>(codes, cs, n, d, w + q0, r + q0, out + q0 * n);
    });
}

void sq_scores_avx512(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
                      const float* r, float* out) {
    const auto code = [codes, cs](size_t i) { return codes + i * cs; };
    with_sq_kind(kind, [&](auto k) {
        constexpr int K = decltype(k)::value;
        ip ? scores<K, true>(code, cs, n, d, w, r, out) : scores<K, false>(code, cs, n, d, w, r, out);
    });
}

void sq_scores_gather_avx512(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d,
                             const float* w, const float* r, float* out) {
    const auto code = [codes](size_t i) { return codes[i]; };
    with_sq_kind(kind, [&](auto k) {
        constexpr int K = decltype(k)::value;
        ip ? scores<K, true>(code, cs, n, d, w, r, out) : scores<K, false>(code, cs, n, d, w, r, out);
    });
}

}  // namespace nearly
