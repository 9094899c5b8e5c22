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

template <int NB>
void scan_lut(const uint8_t* lutb, const uint8_t* blocks, size_t nblocks, int m, int32_t* out) {
    constexpr int M = (1 << NB) - 1;
    const size_t P = size_t(m) / 8, cs = NB * P, PP = (P + 1) / 2;
    // Per position pair: lanes 0-1 hold group 2p's table, lanes 2-3 group
    // 2p + 2's (low nibbles); likewise 2p + 1, 2p + 3 for high nibbles. A
    // missing last position gets a zero table (its zero bytes then add 0).
    std::vector<__m512i> tlo(PP), thi(PP);
    for (size_t pp = 0; pp < PP; pp++) {
        size_t p = 2 * pp;
        __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(lutb + 32 * p)));
        __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(lutb + 32 * p + 16)));
        __m256i c = _mm256_setzero_si256(), d = _mm256_setzero_si256();
        if (p + 1 < P) {
            c = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(lutb + 32 * (p + 1))));
            d = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(lutb + 32 * (p + 1) + 16)));
        }
        tlo[pp] = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
        thi[pp] = _mm512_inserti64x4(_mm512_castsi256_si512(b), d, 1);
    }
    const size_t chunk = 65535 / (32 * M);
    const __m512i low = _mm512_set1_epi8(0x0f), even = _mm512_set1_epi16(0x00ff);
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * cs * kSdcBlock;
        int32_t tot[32] = {0};
        for (size_t q0 = 0; q0 < PP; q0 += chunk) {
            const size_t q1 = std::min(PP, q0 + chunk);
            __m512i ae[NB], ao[NB];
            for (int j = 0; j < NB; j++) ae[j] = ao[j] = _mm512_setzero_si512();
            for (size_t pp = q0; pp < q1; pp++) {
                const __m512i tl = tlo[pp], th = thi[pp];
                const bool tail = 2 * pp + 1 >= P;
                for (int j = 0; j < NB; j++) {
                    __m512i v = load_pair(blk + (j * P + 2 * pp) * kSdcBlock, tail);
                    __m512i lo = _mm512_and_si512(v, low);
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                    __m512i s = _mm512_add_epi8(_mm512_shuffle_epi8(tl, lo), _mm512_shuffle_epi8(th, hi));
                    ae[j] = _mm512_add_epi16(ae[j], _mm512_and_si512(s, even));
                    ao[j] = _mm512_add_epi16(ao[j], _mm512_srli_epi16(s, 8));
                }
            }
            for (int j = 0; j < NB; j++) flush(ae[j], ao[j], NB - 1 - j, tot);
        }
        const int32_t bias = int32_t(m) * M * M;
        for (int c = 0; c < 32; c++) out[b * kSdcBlock + c] = tot[c] - bias;
    }
}

// Bit-plane form: H'_j = sum_i 2^(u-i) popcount(q_i XOR x_j) per code, and
// S = sum_j 2^(u-j) (m M - 2 H'_j). Per byte the weighted popcounts stay
// <= 8 M (a 16-bit shift of counts <= 8 by <= 3 never carries across bytes).
template <int NB>
__attribute__((target("avx512bitalg,avx512bw,avx512f"))) void scan_popcount(const uint8_t* qcode,
                                                                             const uint8_t* blocks, size_t nblocks,
                                                                             int m, int32_t* out) {
    constexpr int M = (1 << NB) - 1;
    const size_t P = size_t(m) / 8, cs = NB * P, PP = (P + 1) / 2;
    std::vector<__m512i> qv(NB * PP);
    for (int i = 0; i < NB; i++)
        for (size_t pp = 0; pp < PP; pp++) {
            size_t p = 2 * pp;
            __m256i a = _mm256_set1_epi8(char(qcode[i * P + p]));
            __m256i c = p + 1 < P ? _mm256_set1_epi8(char(qcode[i * P + p + 1])) : _mm256_setzero_si256();
            qv[i * PP + pp] = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
        }
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
                    __m512i s = _mm512_popcnt_epi8(_mm512_xor_si512(v, qv[pp]));
                    if (NB > 1) s = _mm512_slli_epi16(s, NB - 1);
                    for (int i = 1; i < NB; i++) {
                        __m512i c = _mm512_popcnt_epi8(_mm512_xor_si512(v, qv[i * PP + pp]));
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

void sdc_scan_lut_avx512(const uint8_t* lutb, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    switch (nb) {
        case 1: return scan_lut<1>(lutb, blocks, nblocks, m, out);
        case 2: return scan_lut<2>(lutb, blocks, nblocks, m, out);
        case 3: return scan_lut<3>(lutb, blocks, nblocks, m, out);
        default: return scan_lut<4>(lutb, blocks, nblocks, m, out);
    }
}

void sdc_scan_popcount_avx512(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb,
                              int32_t* out) {
    switch (nb) {
        case 1: return scan_popcount<1>(qcode, blocks, nblocks, m, out);
        case 2: return scan_popcount<2>(qcode, blocks, nblocks, m, out);
        case 3: return scan_popcount<3>(qcode, blocks, nblocks, m, out);
        default: return scan_popcount<4>(qcode, blocks, nblocks, m, out);
    }
}

bool cpu_has_avx512_bitalg() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (c & (1u << 12)) != 0;  // AVX512_BITALG
}

}  // namespace nearly
