// AVX-512BW nibble-LUT SDC scan and the AVX-512 BITALG bit-plane popcount
// scan over blocked codes; see binary_sdc.h. One 64-byte load covers byte
// positions p and p + 1 of a plane for the 32 codes of a block.
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "nearly/binary_sdc.h"

namespace nearly {
namespace {

inline __m512i load_pair(const uint8_t* src, bool tail) {
    return tail ? _mm512_maskz_loadu_epi8(__mmask64(0xffffffffull), src) : _mm512_loadu_si512(src);
}

// Adds the folded even / odd 16-bit sums of a plane into the 32-bit totals.
inline void flush(__m512i ae, __m512i ao, int w, int32_t* tot) {
    alignas(32) uint16_t e[16], o[16];
    __m256i fe = _mm256_add_epi16(_mm512_castsi512_si256(ae), _mm512_extracti64x4_epi64(ae, 1));
    __m256i fo = _mm256_add_epi16(_mm512_castsi512_si256(ao), _mm512_extracti64x4_epi64(ao, 1));
    _mm256_store_si256((__m256i*)e, fe);
    _mm256_store_si256((__m256i*)o, fo);
    for (int i = 0; i < 16; i++) {
        tot[2 * i] += int32_t(e[i]) << w;
        tot[2 * i + 1] += int32_t(o[i]) << w;
    }
}

// Byte sums widened the cheap way (as faiss's fast-scan does): a16 adds the
// bytes as 16-bit lanes (low byte + 256 x high byte, mod 2^16), hi adds the
// high bytes alone; low-byte sum = a16 - 256 hi, exact while it stays below
// 2^16. Positions p (lanes 0-15) and p + 1 (lanes 16-31) fold at the end.
inline void flush_wide(__m512i a16, __m512i hi, int w, __m512i* t) {
    __m256i f16 = _mm256_add_epi16(_mm512_castsi512_si256(a16), _mm512_extracti64x4_epi64(a16, 1));
    __m256i fh = _mm256_add_epi16(_mm512_castsi512_si256(hi), _mm512_extracti64x4_epi64(hi, 1));
    __m256i fl = _mm256_sub_epi16(f16, _mm256_slli_epi16(fh, 8));  // even codes; fh: odd codes
    // Interleaved back to code order within 128-bit lanes: t0 holds codes
    // 0-7 and 16-23, t1 codes 8-15 and 24-31.
    __m512i c0 = _mm512_cvtepu16_epi32(_mm256_unpacklo_epi16(fl, fh));
    __m512i c1 = _mm512_cvtepu16_epi32(_mm256_unpackhi_epi16(fl, fh));
    const __m128i sh = _mm_cvtsi32_si128(w);
    _mm512_store_si512(t, _mm512_add_epi32(_mm512_load_si512(t), _mm512_sll_epi32(c0, sh)));
    _mm512_store_si512(t + 1, _mm512_add_epi32(_mm512_load_si512(t + 1), _mm512_sll_epi32(c1, sh)));
}

inline void store_totals(__m512i t0, __m512i t1, int32_t bias, int32_t* out) {
    const __m512i b = _mm512_set1_epi32(bias);
    t0 = _mm512_sub_epi32(t0, b);
    t1 = _mm512_sub_epi32(t1, b);
    _mm256_storeu_si256((__m256i*)out, _mm512_castsi512_si256(t0));
    _mm256_storeu_si256((__m256i*)(out + 8), _mm512_castsi512_si256(t1));
    _mm256_storeu_si256((__m256i*)(out + 16), _mm512_extracti64x4_epi64(t0, 1));
    _mm256_storeu_si256((__m256i*)(out + 24), _mm512_extracti64x4_epi64(t1, 1));
}

// One plane's byte position pair: both nibbles looked up, biased values
// (<= 8 M each) added in a byte.
inline __m512i lookup(const uint8_t* src, bool tail, __m512i tl, __m512i th, __m512i low) {
    __m512i v = load_pair(src, tail);
    __m512i lo = _mm512_and_si512(v, low);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    return _mm512_add_epi8(_mm512_shuffle_epi8(tl, lo), _mm512_shuffle_epi8(th, hi));
}

// NQ queries per pass: each data register (and its nibble split) is loaded
// once and looked up in every query's tables.
template <int NB, int NQ>
void scan_lut(const uint8_t* const* luts, const uint8_t* blocks, size_t nblocks, int m, int32_t* const* outs) {
    constexpr int M = (1 << NB) - 1;
    // nb <= 2: the planes' bytes fold into one, weighted, in a byte (<= 16 M^2
    // per position pair), and nb = 1 sums R pairs in bytes before widening.
    constexpr bool kFold = 16 * M * M <= 255;
    constexpr int R = kFold ? 255 / (16 * M * M) : 1;
    constexpr int kPerPair = kFold ? 16 * M * M : 16 * M;  // per 16-bit lane per pair, before folding halves
    const size_t P = size_t(m) / 8, cs = NB * P, PP = (P + 1) / 2;
    const size_t chunk = std::max<size_t>(1, 65535 / (2 * size_t(kPerPair) * R)) * R;
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * cs * kSdcBlock;
        alignas(64) __m512i tot[NQ][2];  // 32-bit totals, touched once per chunk
        for (int k = 0; k < NQ; k++) tot[k][0] = tot[k][1] = _mm512_setzero_si512();
        for (size_t q0 = 0; q0 < PP; q0 += chunk) {
            const size_t q1 = std::min(PP, q0 + chunk);
            if (kFold) {
                __m512i a16[NQ], hi[NQ];
                for (int k = 0; k < NQ; k++) a16[k] = hi[k] = _mm512_setzero_si512();
                for (size_t r0 = q0; r0 < q1; r0 += R) {
                    const size_t r1 = std::min(q1, r0 + R);
                    __m512i a8[NQ];
                    for (int k = 0; k < NQ; k++) a8[k] = _mm512_setzero_si512();
                    for (size_t pp = r0; pp < r1; pp++) {
                        const bool tail = 2 * pp + 1 >= P;
                        __m512i c[NQ];
                        for (int j = 0; j < NB; j++) {
                            __m512i v = load_pair(blk + (j * P + 2 * pp) * kSdcBlock, tail);
                            __m512i lo = _mm512_and_si512(v, low);
                            __m512i hn = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                            for (int k = 0; k < NQ; k++) {
                                const __m512i tl = _mm512_loadu_si512(luts[k] + pp * 128);
                                const __m512i th = _mm512_loadu_si512(luts[k] + pp * 128 + 64);
                                __m512i s = _mm512_add_epi8(_mm512_shuffle_epi8(tl, lo), _mm512_shuffle_epi8(th, hn));
                                c[k] = j == 0 ? s : _mm512_add_epi8(_mm512_add_epi8(c[k], c[k]), s);
                            }
                        }
                        if (R == 1) {
                            for (int k = 0; k < NQ; k++) {
                                a16[k] = _mm512_add_epi16(a16[k], c[k]);
                                hi[k] = _mm512_add_epi16(hi[k], _mm512_srli_epi16(c[k], 8));
                            }
                        } else {
                            for (int k = 0; k < NQ; k++) a8[k] = _mm512_add_epi8(a8[k], c[k]);
                        }
                    }
                    if (R > 1)
                        for (int k = 0; k < NQ; k++) {
                            a16[k] = _mm512_add_epi16(a16[k], a8[k]);
                            hi[k] = _mm512_add_epi16(hi[k], _mm512_srli_epi16(a8[k], 8));
                        }
                }
                for (int k = 0; k < NQ; k++) flush_wide(a16[k], hi[k], 0, tot[k]);
            } else {
                for (int j = 0; j < NB; j++) {  // plane by plane: NQ x 2 accumulators live
                    __m512i a16[NQ], hi[NQ];
                    for (int k = 0; k < NQ; k++) a16[k] = hi[k] = _mm512_setzero_si512();
                    for (size_t pp = q0; pp < q1; pp++) {
                        const bool tail = 2 * pp + 1 >= P;
                        __m512i v = load_pair(blk + (j * P + 2 * pp) * kSdcBlock, tail);
                        __m512i lo = _mm512_and_si512(v, low);
                        __m512i hn = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                        for (int k = 0; k < NQ; k++) {
                            const __m512i tl = _mm512_loadu_si512(luts[k] + pp * 128);
                            const __m512i th = _mm512_loadu_si512(luts[k] + pp * 128 + 64);
                            __m512i s = _mm512_add_epi8(_mm512_shuffle_epi8(tl, lo), _mm512_shuffle_epi8(th, hn));
                            a16[k] = _mm512_add_epi16(a16[k], s);
                            hi[k] = _mm512_add_epi16(hi[k], _mm512_srli_epi16(s, 8));
                        }
                    }
                    for (int k = 0; k < NQ; k++) flush_wide(a16[k], hi[k], NB - 1 - j, tot[k]);
                }
            }
        }
        for (int k = 0; k < NQ; k++) store_totals(tot[k][0], tot[k][1], int32_t(m) * M * M, outs[k] + b * kSdcBlock);
    }
}

template <int NQ>
void scan_lut_nb(const uint8_t* const* luts, const uint8_t* blocks, size_t nblocks, int m, int nb,
                 int32_t* const* outs) {
    switch (nb) {
        case 1: return scan_lut<1, NQ>(luts, blocks, nblocks, m, outs);
        case 2: return scan_lut<2, NQ>(luts, blocks, nblocks, m, outs);
        case 3: return scan_lut<3, NQ>(luts, blocks, nblocks, m, outs);
        default: return scan_lut<4, NQ>(luts, blocks, nblocks, m, outs);
    }
}

// Bit-plane form: H'_j = sum_i 2^(u-i) popcount(q_i XOR x_j) per code, and
// S = sum_j 2^(u-j) (m M - 2 H'_j). Per byte the weighted popcounts stay
// <= 8 M (a 16-bit shift of counts <= 8 by <= 3 never carries across bytes).
template <int NB>
__attribute__((target("avx512bitalg,avx512bw,avx512f"))) void scan_popcount(const uint8_t* popq,
                                                                             const uint8_t* blocks, size_t nblocks,
                                                                             int m, int32_t* out) {
    constexpr int M = (1 << NB) - 1;
    const size_t P = size_t(m) / 8, cs = NB * P, PP = (P + 1) / 2;
    const size_t chunk = 65535 / (16 * M);
    const __m512i even = _mm512_set1_epi16(0x00ff);
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * cs * kSdcBlock;
        int32_t tot[32] = {0};
        for (size_t q0 = 0; q0 < PP; q0 += chunk) {
            const size_t q1 = std::min(PP, q0 + chunk);
            __m512i ae[NB], ao[NB];
            for (int j = 0; j < NB; j++) ae[j] = ao[j] = _mm512_setzero_si512();
            for (size_t pp = q0; pp < q1; pp++) {
                const bool tail = 2 * pp + 1 >= P;
                for (int j = 0; j < NB; j++) {
                    __m512i v = load_pair(blk + (j * P + 2 * pp) * kSdcBlock, tail);
                    __m512i s = _mm512_popcnt_epi8(_mm512_xor_si512(v, _mm512_loadu_si512(popq + pp * 64)));
                    if (NB > 1) s = _mm512_slli_epi16(s, NB - 1);
                    for (int i = 1; i < NB; i++) {
                        __m512i c = _mm512_popcnt_epi8(_mm512_xor_si512(v, _mm512_loadu_si512(popq + (i * PP + pp) * 64)));
                        if (NB - 1 - i > 0) c = _mm512_slli_epi16(c, NB - 1 - i);
                        s = _mm512_add_epi8(s, c);
                    }
                    ae[j] = _mm512_add_epi16(ae[j], _mm512_and_si512(s, even));
                    ao[j] = _mm512_add_epi16(ao[j], _mm512_srli_epi16(s, 8));
                }
            }
            for (int j = 0; j < NB; j++) flush(ae[j], ao[j], NB - 1 - j, tot);
        }
        const int32_t base = int32_t(m) * M * M;
        for (int c = 0; c < 32; c++) out[b * kSdcBlock + c] = base - 2 * tot[c];
    }
}

}  // namespace

void sdc_scan_lut_avx512(const uint8_t* lut512, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    scan_lut_nb<1>(&lut512, blocks, nblocks, m, nb, &out);
}

void sdc_scan_lut_avx512_multi(const uint8_t* const* luts, size_t nq, const uint8_t* blocks, size_t nblocks, int m,
                               int nb, int32_t* const* outs) {
    size_t i = 0;
    for (; i + 4 <= nq; i += 4) scan_lut_nb<4>(luts + i, blocks, nblocks, m, nb, outs + i);
    for (; i + 2 <= nq; i += 2) scan_lut_nb<2>(luts + i, blocks, nblocks, m, nb, outs + i);
    for (; i < nq; i++) scan_lut_nb<1>(luts + i, blocks, nblocks, m, nb, outs + i);
}

void sdc_scan_popcount_avx512(const uint8_t* popq, const uint8_t* blocks, size_t nblocks, int m, int nb,
                              int32_t* out) {
    switch (nb) {
        case 1: return scan_popcount<1>(popq, blocks, nblocks, m, out);
        case 2: return scan_popcount<2>(popq, blocks, nblocks, m, out);
        case 3: return scan_popcount<3>(popq, blocks, nblocks, m, out);
        default: return scan_popcount<4>(popq, blocks, nblocks, m, out);
    }
}

size_t sdc_next_at_least_avx512(const int32_t* s, size_t j, size_t n, int32_t smin) {
    const __m512i t = _mm512_set1_epi32(smin);
    for (; j + 16 <= n; j += 16) {
        __mmask16 k = _mm512_cmpge_epi32_mask(_mm512_loadu_si512(s + j), t);
        if (k) return j + size_t(__builtin_ctz(unsigned(k)));
    }
    for (; j < n; j++)
        if (s[j] >= smin) return j;
    return n;
}

size_t sdc_next_at_least_off_avx512(const int32_t* s, const int32_t* off, size_t j, size_t n, int32_t smin) {
    const __m512i t = _mm512_set1_epi32(smin);
    for (; j + 16 <= n; j += 16) {
        __m512i v = _mm512_add_epi32(_mm512_loadu_si512(s + j), _mm512_loadu_si512(off + j));
        __mmask16 k = _mm512_cmpge_epi32_mask(v, t);
        if (k) return j + size_t(__builtin_ctz(unsigned(k)));
    }
    for (; j < n; j++)
        if (s[j] + off[j] >= smin) return j;
    return n;
}

bool cpu_has_avx512_bitalg() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (c & (1u << 12)) != 0;  // AVX512_BITALG
}

}  // namespace nearly
