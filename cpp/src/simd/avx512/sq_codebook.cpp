// The codebook (TurboQuant) scoring kernels at AVX-512 (sq_scan.h): sixteen
// dimensions a step. At 1 bit the code's 16 bits are the mask of a blend of
// the two centroids; at 2 and 3 bits the cells come out of 2 * bits bytes
// broadcast to eight 64-bit lanes and shifted per lane (two shifts, each narrowed to
// eight 32-bit lanes; 4 bits: each byte twice, shifted per lane), the
// centroids out of one permute of the (at most 16) centroids held in a
// register; 8 bits widen bytes and gather from the 256 centroids (1 KB, in
// L1). Four codes at a time share the query's loads; the group kernel looks
// a code's centroids up once for up to four queries.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../sq_codes.h"
#include "nearly/sq_scan.h"

namespace nearly {

namespace {

template <int B>
inline __m512 centroids16(const uint8_t* c, size_t j, __m512 tab, const float* t) {
    if constexpr (B == 8) {
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j)));
        return _mm512_i32gather_ps(idx, t, 4);
    } else if constexpr (B == 4) {  // each byte twice, then its low or high nibble
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + j / 2));
        const __m128i dup = _mm_shuffle_epi8(b, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
        const __m512i idx = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(dup),
                                              _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4));
        return _mm512_permutexvar_ps(idx, tab);  // the permute reads the low 4 bits
    } else if constexpr (B == 1) {  // the sixteen bits are the blend's mask
        uint16_t m;
        std::memcpy(&m, c + j / 8, 2);
        return _mm512_mask_blend_ps(__mmask16(m), _mm512_set1_ps(t[0]), _mm512_set1_ps(t[1]));
    } else {
        // 2 * B bytes: 2 bits one 32-bit load, 3 bits a masked load (a 6-byte
        // copy through memory would stall the 8-byte read that follows it).
        __m512i v;
        if constexpr (B == 2) {
            uint32_t word;
            std::memcpy(&word, c + j / 4, 4);
            v = _mm512_set1_epi64(static_cast<long long>(word));
        } else {
            v = _mm512_broadcastq_epi64(_mm_maskz_loadu_epi8(__mmask16(0x3f), c + j / 16 * 6));
        }
        const __m512i lo = _mm512_srlv_epi64(v, _mm512_setr_epi64(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B));
        const __m512i hi =
            _mm512_srlv_epi64(v, _mm512_setr_epi64(8 * B, 9 * B, 10 * B, 11 * B, 12 * B, 13 * B, 14 * B, 15 * B));
        __m512i idx =
            _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
        idx = _mm512_and_si512(idx, _mm512_set1_epi32((1 << B) - 1));
        return _mm512_permutexvar_ps(idx, tab);
    }
}

template <bool IP>
inline __m512 step(__m512 acc, __m512 q, __m512 v) {
    if constexpr (IP) {
        return _mm512_fmadd_ps(q, v, acc);
    } else {
        const __m512 e = _mm512_sub_ps(q, v);
        return _mm512_fmadd_ps(e, e, acc);
    }
}

template <int B, bool IP, class Code>
void scores(const Code& code, size_t n, size_t d, const float* q, const float* t, float* out) {
    const size_t d16 = d & ~size_t(15);
    const __m512 tab = _mm512_loadu_ps(t);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t* c0 = code(i);
        const uint8_t* c1 = code(i + 1);
        const uint8_t* c2 = code(i + 2);
        const uint8_t* c3 = code(i + 3);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < d16; j += 16) {
            const __m512 qj = _mm512_loadu_ps(q + j);
            a0 = step<IP>(a0, qj, centroids16<B>(c0, j, tab, t));
            a1 = step<IP>(a1, qj, centroids16<B>(c1, j, tab, t));
            a2 = step<IP>(a2, qj, centroids16<B>(c2, j, tab, t));
            a3 = step<IP>(a3, qj, centroids16<B>(c3, j, tab, t));
        }
        out[i] = _mm512_reduce_add_ps(a0) + sq_codebook_tail<IP>(c0, d16, d, q, t, B);
        out[i + 1] = _mm512_reduce_add_ps(a1) + sq_codebook_tail<IP>(c1, d16, d, q, t, B);
        out[i + 2] = _mm512_reduce_add_ps(a2) + sq_codebook_tail<IP>(c2, d16, d, q, t, B);
        out[i + 3] = _mm512_reduce_add_ps(a3) + sq_codebook_tail<IP>(c3, d16, d, q, t, B);
    }
    for (; i < n; i++) {
        const uint8_t* c = code(i);
        __m512 a = _mm512_setzero_ps();
        for (size_t j = 0; j < d16; j += 16) a = step<IP>(a, _mm512_loadu_ps(q + j), centroids16<B>(c, j, tab, t));
        out[i] = _mm512_reduce_add_ps(a) + sq_codebook_tail<IP>(c, d16, d, q, t, B);
    }
}

// NQ queries against each code, the code's centroids looked up once.
template <int B, bool IP, int NQ>
void scores_group(const uint8_t* codes, size_t cs, size_t n, size_t d, const float* const* q, const float* t,
                  float* out) {
    const size_t d16 = d & ~size_t(15);
    const __m512 tab = _mm512_loadu_ps(t);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        __m512 a[NQ];
        for (int k = 0; k < NQ; k++) a[k] = _mm512_setzero_ps();
        for (size_t j = 0; j < d16; j += 16) {
            const __m512 v = centroids16<B>(c, j, tab, t);
            for (int k = 0; k < NQ; k++) a[k] = step<IP>(a[k], _mm512_loadu_ps(q[k] + j), v);
        }
        for (int k = 0; k < NQ; k++) out[k * n + i] = _mm512_reduce_add_ps(a[k]) + sq_codebook_tail<IP>(c, d16, d, q[k], t, B);
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

void sq_codebook_scores_avx512(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                               const float* q, const float* t, float* out) {
    dispatch(bits, ip, [codes, cs](size_t i) { return codes + i * cs; }, n, d, q, t, out);
}

void sq_codebook_scores_gather_avx512(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d,
                                      const float* q, const float* t, float* out) {
    dispatch(bits, ip, [codes](size_t i) { return codes[i]; }, n, d, q, t, out);
}

void sq_codebook_scores_group_avx512(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
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
