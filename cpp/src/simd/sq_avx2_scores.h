// The AVX2 scoring of ScalarQuantizer codes (see sq_scan.h), shared by the
// AVX2 and AVX-512 levels. Included only by files compiled with AVX2
// enabled; static inline, so each such file keeps its own copy built with its
// own flags. Eight dimensions per step: the packed codes are widened to eight
// 32-bit lanes (a byte shuffle, then per-lane shifts for 4 and 6 bits) and
// converted to float, bf16 shifted into place, fp16 converted by F16C; four
// codes at a time share the query's loads.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "sq_codes.h"

namespace nearly {
namespace sq_avx2 {

template <int Kind>
static inline __m256 load8(const uint8_t* c, size_t j, size_t cs) {
    if constexpr (Kind == kSQfp16) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 2 * j)));
    } else if constexpr (Kind == kSQbf16) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 2 * j)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    } else if constexpr (Kind == kSQ8) {
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + j))));
    } else if constexpr (Kind == kSQ4) {
        uint32_t v;
        std::memcpy(&v, c + j / 2, 4);
        const __m128i dup = _mm_shuffle_epi8(_mm_cvtsi32_si128(int(v)),
                                             _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1));
        __m256i x = _mm256_cvtepu8_epi32(dup);
        x = _mm256_and_si256(_mm256_srlv_epi32(x, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4)), _mm256_set1_epi32(15));
        return _mm256_cvtepi32_ps(x);
    } else {
        // Six bytes; read as eight where the code has them (a 6-byte copy
        // into a register would stall on store forwarding at every step).
        const uint8_t* p = c + j / 8 * 6;
        __m128i b;
        if (j / 8 * 6 + 8 <= cs) {
            b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        } else {
            uint64_t v = 0;
            std::memcpy(&v, p, 6);
            b = _mm_cvtsi64_si128(int64_t(v));
        }
        __m256i x = _mm256_broadcastsi128_si256(b);
        x = _mm256_shuffle_epi8(x, _mm256_setr_epi8(0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1,  //
                                                    3, 4, 5, -1, 3, 4, 5, -1, 3, 4, 5, -1, 3, 4, 5, -1));
        x = _mm256_and_si256(_mm256_srlv_epi32(x, _mm256_setr_epi32(0, 6, 12, 18, 0, 6, 12, 18)),
                             _mm256_set1_epi32(63));
        return _mm256_cvtepi32_ps(x);
    }
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <int Kind, bool IP>
static inline float tail(const uint8_t* c, size_t j0, size_t d, const float* w, const float* r) {
    float s = 0.f;
    for (size_t j = j0; j < d; j++) {
        const float v = sq_value<Kind>(c, j);
        if constexpr (IP) {
            s += w[j] * v;
        } else {
            const float t = r[j] - w[j] * v;
            s += t * t;
        }
    }
    return s;
}

template <bool IP>
static inline __m256 step(__m256 acc, __m256 wj, __m256 rj, __m256 v) {
    if constexpr (IP) {
        return _mm256_fmadd_ps(wj, v, acc);
    } else {
        const __m256 t = _mm256_fnmadd_ps(wj, v, rj);
        return _mm256_fmadd_ps(t, t, acc);
    }
}

// code(i): the i-th code's address (codes in a row, or gathered).
template <int Kind, bool IP, class Code>
static void scores(const Code& code, size_t cs, size_t n, size_t d, const float* w, const float* r, float* out) {
    const size_t d8 = d & ~size_t(7);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t* c0 = code(i);
        const uint8_t* c1 = code(i + 1);
        const uint8_t* c2 = code(i + 2);
        const uint8_t* c3 = code(i + 3);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d8; j += 8) {
            const __m256 wj = _mm256_loadu_ps(w + j);
            const __m256 rj = IP ? wj : _mm256_loadu_ps(r + j);
            a0 = step<IP>(a0, wj, rj, load8<Kind>(c0, j, cs));
            a1 = step<IP>(a1, wj, rj, load8<Kind>(c1, j, cs));
            a2 = step<IP>(a2, wj, rj, load8<Kind>(c2, j, cs));
            a3 = step<IP>(a3, wj, rj, load8<Kind>(c3, j, cs));
        }
        out[i] = hsum(a0) + tail<Kind, IP>(c0, d8, d, w, r);
        out[i + 1] = hsum(a1) + tail<Kind, IP>(c1, d8, d, w, r);
        out[i + 2] = hsum(a2) + tail<Kind, IP>(c2, d8, d, w, r);
        out[i + 3] = hsum(a3) + tail<Kind, IP>(c3, d8, d, w, r);
    }
    for (; i < n; i++) {
        const uint8_t* c = code(i);
        __m256 a = _mm256_setzero_ps();
        for (size_t j = 0; j < d8; j += 8) {
            const __m256 wj = _mm256_loadu_ps(w + j);
            a = step<IP>(a, wj, IP ? wj : _mm256_loadu_ps(r + j), load8<Kind>(c, j, cs));
        }
        out[i] = hsum(a) + tail<Kind, IP>(c, d8, d, w, r);
    }
}

// NQ queries (the same index: kind, metric, d) against n codes: each code's
// dimensions are widened once and serve every query (the widening, not the
// FMAs, bounds one query at a time). Per query the sums are those of
// scores(): the same steps in the same order, so the same bits.
template <int Kind, bool IP, int NQ>
static void scores_group(const uint8_t* codes, size_t cs, size_t n, size_t d, const float* const* w,
                         const float* const* r, float* out) {
    const size_t d8 = d & ~size_t(7);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m256 a[NQ];
        for (int q = 0; q < NQ; q++) a[q] = _mm256_setzero_ps();
        for (size_t j = 0; j < d8; j += 8) {
            const __m256 v = load8<Kind>(c, j, cs);
            for (int q = 0; q < NQ; q++) {
                const __m256 wj = _mm256_loadu_ps(w[q] + j);
                a[q] = step<IP>(a[q], wj, IP ? wj : _mm256_loadu_ps(r[q] + j), v);
            }
        }
        for (int q = 0; q < NQ; q++) out[q * n + i] = hsum(a[q]) + tail<Kind, IP>(c, d8, d, w[q], r[q]);
    }
}

// Integer query against 8-bit codes: sixteen dimensions per step, codes
// widened to 16 bits, (q - c)^2 or q c summed pairwise into 32-bit lanes
// (madd), four codes sharing each load of the query (one code at a time
// measured 0.6x: the loads of the query and the adds' chains are shared).
template <bool IP>
static inline __m256i int_step(__m256i acc, __m256i q, const uint8_t* c) {
    const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
    if constexpr (IP) return _mm256_add_epi32(acc, _mm256_madd_epi16(q, v));
    const __m256i t = _mm256_sub_epi16(q, v);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(t, t));
}

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

template <bool IP>
static inline int32_t int_tail(const uint8_t* c, size_t j0, size_t d, const int16_t* q) {
    int32_t s = 0;
    for (size_t j = j0; j < d; j++) {
        const int32_t t = IP ? int32_t(q[j]) * c[j] : int32_t(q[j]) - c[j];
        s += IP ? t : t * t;
    }
    return s;
}

template <bool IP>
static void int_scores(const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q, float* out) {
    const size_t d16 = d & ~size_t(15);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t* c0 = codes + i * cs;
        const uint8_t* c1 = c0 + cs;
        const uint8_t* c2 = c1 + cs;
        const uint8_t* c3 = c2 + cs;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d16; j += 16) {
            const __m256i qj = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j));
            a0 = int_step<IP>(a0, qj, c0 + j);
            a1 = int_step<IP>(a1, qj, c1 + j);
            a2 = int_step<IP>(a2, qj, c2 + j);
            a3 = int_step<IP>(a3, qj, c3 + j);
        }
        out[i] = float(hsum_epi32(a0) + int_tail<IP>(c0, d16, d, q));
        out[i + 1] = float(hsum_epi32(a1) + int_tail<IP>(c1, d16, d, q));
        out[i + 2] = float(hsum_epi32(a2) + int_tail<IP>(c2, d16, d, q));
        out[i + 3] = float(hsum_epi32(a3) + int_tail<IP>(c3, d16, d, q));
    }
    for (; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m256i a = _mm256_setzero_si256();
        for (size_t j = 0; j < d16; j += 16)
            a = int_step<IP>(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j)), c + j);
        out[i] = float(hsum_epi32(a) + int_tail<IP>(c, d16, d, q));
    }
}

}  // namespace sq_avx2

// Groups of up to four queries (the rest of nq in further groups): out holds
// nq rows of n scores.
static inline void sq_scores_group_avx2_impl(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                             size_t nq, const float* const* w, const float* const* r, float* out) {
    using namespace sq_avx2;
    for_query_groups(kind, nq, [&](auto k, auto g, size_t q0) {
        constexpr int K = decltype(k)::value, G = decltype(g)::value;
        ip ? scores_group<K, true, G>(codes, cs, n, d, w + q0, r + q0, out + q0 * n)
           : scores_group<K, false, G>(codes, cs, n, d, w + q0, r + q0, out + q0 * n);
    });
}

// Dispatch on (kind, metric) for one level's entry point.
static inline void sq_scores_avx2_impl(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                       const float* w, const float* r, float* out) {
    using namespace sq_avx2;
    const auto code = [codes, cs](size_t i) { return codes + i * cs; };
    with_sq_kind(kind, [&](auto k) {
        constexpr int K = decltype(k)::value;
        ip ? scores<K, true>(code, cs, n, d, w, r, out) : scores<K, false>(code, cs, n, d, w, r, out);
    });
}

// The same over codes at scattered addresses (graph walks).
static inline void sq_scores_gather_avx2_impl(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n,
                                              size_t d, const float* w, const float* r, float* out) {
    using namespace sq_avx2;
    const auto code = [codes](size_t i) { return codes[i]; };
    with_sq_kind(kind, [&](auto k) {
        constexpr int K = decltype(k)::value;
        ip ? scores<K, true>(code, cs, n, d, w, r, out) : scores<K, false>(code, cs, n, d, w, r, out);
    });
}

}  // namespace nearly
