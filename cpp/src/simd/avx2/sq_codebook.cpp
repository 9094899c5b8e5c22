// The codebook (TurboQuant) scoring kernels at AVX2 (sq_scan.h): eight
// dimensions a step. At 1 bit each lane tests its bit of the code's byte and
// blends the two centroids; otherwise the cells come out of `bits` bytes broadcast and
// shifted per 32-bit lane, the centroids out of a permute of the (at most
// 8) centroids in a register, or two permutes and a blend on the cell's
// top bit for 16; 8 bits widen bytes and gather from the 256 centroids.
// Four codes at a time share the query's loads; the group kernel looks a
// code's centroids up once for up to four queries.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../sq_codes.h"
#include "nearly/sq_scan.h"

namespace nearly {

namespace {

template <int B>
inline __m256 centroids8(const uint8_t* c, size_t j, __m256 t0, __m256 t1, const float* t) {
    if constexpr (B == 8) {
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + j)));
        return _mm256_i32gather_ps(t, idx, 4);
    } else if constexpr (B == 1) {  // each lane tests its bit of the byte
        const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(c[j / 8]), bit), bit);
        return _mm256_blendv_ps(_mm256_set1_ps(t[0]), _mm256_set1_ps(t[1]), _mm256_castsi256_ps(set));
    } else {
        // B bytes, assembled in a register (a 3-byte copy through memory
        // would stall the 4-byte read that follows it).
        const uint8_t* p = c + j / 8 * B;
        uint32_t word = p[0];
        if constexpr (B >= 2) word |= uint32_t(p[1]) << 8;
        if constexpr (B >= 3) word |= uint32_t(p[2]) << 16;
        if constexpr (B >= 4) word |= uint32_t(p[3]) << 24;
        __m256i idx = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)),
                                        _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B));
        idx = _mm256_and_si256(idx, _mm256_set1_epi32((1 << B) - 1));
        const __m256 lo = _mm256_permutevar8x32_ps(t0, idx);
        if constexpr (B < 4) {
            return lo;
        } else {
            const __m256 hi = _mm256_permutevar8x32_ps(t1, idx);
            return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        }
    }
}

template <bool IP>
inline __m256 step(__m256 acc, __m256 q, __m256 v) {
    if constexpr (IP) {
        return _mm256_fmadd_ps(q, v, acc);
    } else {
        const __m256 e = _mm256_sub_ps(q, v);
        return _mm256_fmadd_ps(e, e, acc);
    }
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <int B, bool IP, class Code>
void scores(const Code& code, size_t n, size_t d, const float* q, const float* t, float* out) {
    const size_t d8 = d & ~size_t(7);
    const __m256 t0 = _mm256_loadu_ps(t), t1 = _mm256_loadu_ps(t + 8);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t* c0 = code(i);
        const uint8_t* c1 = code(i + 1);
        const uint8_t* c2 = code(i + 2);
        const uint8_t* c3 = code(i + 3);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d8; j += 8) {
            const __m256 qj = _mm256_loadu_ps(q + j);
            a0 = step<IP>(a0, qj, centroids8<B>(c0, j, t0, t1, t));
            a1 = step<IP>(a1, qj, centroids8<B>(c1, j, t0, t1, t));
            a2 = step<IP>(a2, qj, centroids8<B>(c2, j, t0, t1, t));
            a3 = step<IP>(a3, qj, centroids8<B>(c3, j, t0, t1, t));
        }
        out[i] = hsum(a0) + sq_codebook_tail<IP>(c0, d8, d, q, t, B);
        out[i + 1] = hsum(a1) + sq_codebook_tail<IP>(c1, d8, d, q, t, B);
        out[i + 2] = hsum(a2) + sq_codebook_tail<IP>(c2, d8, d, q, t, B);
        out[i + 3] = hsum(a3) + sq_codebook_tail<IP>(c3, d8, d, q, t, B);
    }
    for (; i < n; i++) {
        const uint8_t* c = code(i);
        __m256 a = _mm256_setzero_ps();
        for (size_t j = 0; j < d8; j += 8) a = step<IP>(a, _mm256_loadu_ps(q + j), centroids8<B>(c, j, t0, t1, t));
        out[i] = hsum(a) + sq_codebook_tail<IP>(c, d8, d, q, t, B);
    }
}

// NQ queries against each code, the code's centroids looked up once.
template <int B, bool IP, int NQ>
void scores_group(const uint8_t* codes, size_t cs, size_t n, size_t d, const float* const* q, const float* t,
                  float* out) {
    const size_t d8 = d & ~size_t(7);
    const __m256 t0 = _mm256_loadu_ps(t), t1 = _mm256_loadu_ps(t + 8);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m256 a[NQ];
        for (int k = 0; k < NQ; k++) a[k] = _mm256_setzero_ps();
        for (size_t j = 0; j < d8; j += 8) {
            const __m256 v = centroids8<B>(c, j, t0, t1, t);
            for (int k = 0; k < NQ; k++) a[k] = step<IP>(a[k], _mm256_loadu_ps(q[k] + j), v);
        }
        for (int k = 0; k < NQ; k++) out[k * n + i] = hsum(a[k]) + sq_codebook_tail<IP>(c, d8, d, q[k], t, B);
    }
}

template <class Code>
void dispatch(size_t bits, bool ip, const Code& code, size_t n, size_t d, const float* q, const float* t,
              float* out) {
    with_codebook_bits(bits, [&](auto b) {
        constexpr int B = decltype(b)::value;
        ip ? scores<B, true>(code, n, d, q, t, out) : scores<B, false>(code, n, d, q, t, out);
    });
}

}  // namespace

void sq_codebook_scores_avx2(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                             const float* q, const float* t, float* out) {
    dispatch(bits, ip, [codes, cs](size_t i) { return codes + i * cs; }, n, d, q, t, out);
}

void sq_codebook_scores_gather_avx2(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d,
                                    const float* q, const float* t, float* out) {
    dispatch(bits, ip, [codes](size_t i) { return codes[i]; }, n, d, q, t, out);
}

void sq_codebook_scores_group_avx2(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                   size_t nq, const float* const* q, const float* t, float* out) {
    with_codebook_bits(bits, [&](auto b) {
        constexpr int B = decltype(b)::value;
        for_groups_of_four(nq, [&](auto g, size_t q0) {
            constexpr int G = decltype(g)::value;
            ip ? scores_group<B, true, G>(codes, cs, n, d, q + q0, t, out + q0 * n)
               : scores_group<B, false, G>(codes, cs, n, d, q + q0, t, out + q0 * n);
        });
    });
}

}  // namespace nearly
