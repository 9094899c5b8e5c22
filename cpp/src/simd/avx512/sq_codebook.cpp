// The codebook (TurboQuant) scoring kernels at AVX-512 (sq_scan.h): sixteen
// dimensions a step. Their cells come out of 2 * bits bytes broadcast to
// eight 64-bit lanes and shifted per lane (two shifts, each narrowed to
// eight 32-bit lanes), the centroids out of one permute of the (at most 16)
// centroids held in a register; 8 bits widen bytes and gather from the 256
// centroids (1 KB, in L1). Four codes at a time share the query's loads.
#include <immintrin.h>

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
    } else {
        uint64_t word = 0;
        std::memcpy(&word, c + j / 16 * (2 * B), 2 * B);
        const __m512i v = _mm512_set1_epi64(static_cast<long long>(word));
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

// The dimensions from j0 on, one at a time.
template <bool IP>
inline float tail(const uint8_t* c, size_t j0, size_t d, const float* q, const float* t, size_t bits) {
    float s = 0.f;
    for (size_t j = j0; j < d; j++) {
        const float v = t[sq_codebook_index(c, j, bits)];
        s += IP ? q[j] * v : (q[j] - v) * (q[j] - v);
    }
    return s;
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
        out[i] = _mm512_reduce_add_ps(a0) + tail<IP>(c0, d16, d, q, t, B);
        out[i + 1] = _mm512_reduce_add_ps(a1) + tail<IP>(c1, d16, d, q, t, B);
        out[i + 2] = _mm512_reduce_add_ps(a2) + tail<IP>(c2, d16, d, q, t, B);
        out[i + 3] = _mm512_reduce_add_ps(a3) + tail<IP>(c3, d16, d, q, t, B);
    }
    for (; i < n; i++) {
        const uint8_t* c = code(i);
        __m512 a = _mm512_setzero_ps();
        for (size_t j = 0; j < d16; j += 16) a = step<IP>(a, _mm512_loadu_ps(q + j), centroids16<B>(c, j, tab, t));
        out[i] = _mm512_reduce_add_ps(a) + tail<IP>(c, d16, d, q, t, B);
    }
}

template <class Code>
void dispatch(size_t bits, bool ip, const Code& code, size_t n, size_t d, const float* q, const float* t,
              float* out) {
    auto run = [&](auto b) {
        constexpr int B = decltype(b)::value;
        ip ? scores<B, true>(code, n, d, q, t, out) : scores<B, false>(code, n, d, q, t, out);
    };
    switch (bits) {
        case 1: return run(std::integral_constant<int, 1>{});
        case 2: return run(std::integral_constant<int, 2>{});
        case 3: return run(std::integral_constant<int, 3>{});
        case 4: return run(std::integral_constant<int, 4>{});
        default: return run(std::integral_constant<int, 8>{});
    }
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

}  // namespace nearly
