// AVX2 SDC scans over blocks of 32 codes (see binary_sdc.h): the nibble-LUT
// scan (pshufb) and the bit-plane popcount scan, whose per-byte popcount is
// the nibble-table pshufb count (Mula's method; AVX2 has no vector popcount).
#include <immintrin.h>

#include <algorithm>

#include "nearly/binary_sdc.h"

namespace nearly {
namespace {

// One byte position p of one plane = 32 bytes (one per code of the block):
// the low nibble scores group 2p, the high nibble group 2p + 1, with the two
// query tables held in registers for all nb planes. Biased table values are
// <= 8 (2^nb - 1), so the two shuffles add without overflow in a byte; the
// bytes are widened into even / odd 16-bit lanes, flushed to 32 bits before
// 16 bits could overflow.
template <int NB>
void scan(const uint8_t* lutb, const uint8_t* blocks, size_t nblocks, int m, int32_t* out) {
    constexpr int M = (1 << NB) - 1;
    const size_t P = size_t(m) / 8, cs = NB * P;
    const size_t chunk = 65535 / (16 * M);
    const __m256i low = _mm256_set1_epi8(0x0f), even = _mm256_set1_epi16(0x00ff);
    alignas(32) uint16_t e[16], o[16];
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * cs * kSdcBlock;
        int32_t tot[32] = {0};
        for (size_t p0 = 0; p0 < P; p0 += chunk) {
            const size_t p1 = std::min(P, p0 + chunk);
            __m256i ae[NB], ao[NB];
            for (int j = 0; j < NB; j++) ae[j] = ao[j] = _mm256_setzero_si256();
            for (size_t p = p0; p < p1; p++) {
                const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(lutb + 32 * p)));
                const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(lutb + 32 * p + 16)));
                for (int j = 0; j < NB; j++) {
                    __m256i v = _mm256_loadu_si256((const __m256i*)(blk + (j * P + p) * kSdcBlock));
                    __m256i lo = _mm256_and_si256(v, low);
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                    __m256i s = _mm256_add_epi8(_mm256_shuffle_epi8(tlo, lo), _mm256_shuffle_epi8(thi, hi));
                    ae[j] = _mm256_add_epi16(ae[j], _mm256_and_si256(s, even));
                    ao[j] = _mm256_add_epi16(ao[j], _mm256_srli_epi16(s, 8));
                }
            }
            for (int j = 0; j < NB; j++) {
                _mm256_store_si256((__m256i*)e, ae[j]);
                _mm256_store_si256((__m256i*)o, ao[j]);
                const int w = NB - 1 - j;
                for (int i = 0; i < 16; i++) {
                    tot[2 * i] += int32_t(e[i]) << w;
                    tot[2 * i + 1] += int32_t(o[i]) << w;
                }
            }
        }
        // Each plane carries m/4 group biases of 4M; plane weights sum to M.
        const int32_t bias = int32_t(m) * M * M;
        for (int c = 0; c < 32; c++) out[b * kSdcBlock + c] = tot[c] - bias;
    }
}

// Bit-plane form, as the AVX-512 BITALG kernel: per code and data plane j,
// H'_j = sum_i 2^(u-i) popcount(q_i XOR x_j), S = sum_j 2^(u-j) (m M - 2 H'_j).
// One 32-byte load is byte p of plane j for the 32 codes of the block; its
// per-byte popcount comes from two shuffles of a 16-entry table. Byte sums:
// per position a plane adds <= 8 M, and with nb <= 2 the planes fold into one
// weighted byte (<= 8 M^2); R positions are summed in bytes (<= 255) before
// they are widened to 16-bit even / odd lanes, flushed to 32 bits per chunk.
template <int NB>
void scan_popcount(const uint8_t* popq, const uint8_t* blocks, size_t nblocks, int m, int32_t* out) {
    constexpr int M = (1 << NB) - 1;
    constexpr bool kFold = 8 * M * M <= 255;
    constexpr int kPerPos = kFold ? 8 * M * M : 8 * M;  // byte sum added per position
    constexpr int R = 255 / kPerPos;
    constexpr int G = kFold ? 1 : NB;  // accumulator groups (planes, or one folded)
    const size_t P = size_t(m) / 8, cs = NB * P, PP = (P + 1) / 2;
    const size_t chunk = std::max<size_t>(1, 65535 / (size_t(kPerPos) * R)) * R;
    const __m256i low = _mm256_set1_epi8(0x0f), even = _mm256_set1_epi16(0x00ff);
    const __m256i ptab = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                          0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    auto popcnt8 = [&](__m256i v) {
        return _mm256_add_epi8(_mm256_shuffle_epi8(ptab, _mm256_and_si256(v, low)),
                               _mm256_shuffle_epi8(ptab, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
    };
    auto qbyte = [&](int i, size_t p) {
        return _mm256_loadu_si256((const __m256i*)(popq + (i * PP + p / 2) * 64 + (p % 2) * 32));
    };
    alignas(32) uint16_t e[16], o[16];
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * cs * kSdcBlock;
        int32_t tot[32] = {0};
        for (size_t p0 = 0; p0 < P; p0 += chunk) {
            const size_t p1 = std::min(P, p0 + chunk);
            __m256i ae[G], ao[G];
            for (int g = 0; g < G; g++) ae[g] = ao[g] = _mm256_setzero_si256();
            for (size_t r0 = p0; r0 < p1; r0 += R) {
                const size_t r1 = std::min(p1, r0 + R);
                __m256i a8[G];
                for (int g = 0; g < G; g++) a8[g] = _mm256_setzero_si256();
                for (size_t p = r0; p < r1; p++) {
                    __m256i q[NB];
                    for (int i = 0; i < NB; i++) q[i] = qbyte(i, p);
                    __m256i fold = _mm256_setzero_si256();
                    for (int j = 0; j < NB; j++) {
                        const __m256i v = _mm256_loadu_si256((const __m256i*)(blk + (j * P + p) * kSdcBlock));
                        // Horner over query planes: s = sum_i 2^(u-i) popcount(q_i ^ v), bytewise.
                        __m256i s = popcnt8(_mm256_xor_si256(v, q[0]));
                        for (int i = 1; i < NB; i++)
                            s = _mm256_add_epi8(_mm256_add_epi8(s, s), popcnt8(_mm256_xor_si256(v, q[i])));
                        if (kFold)
                            fold = j == 0 ? s : _mm256_add_epi8(_mm256_add_epi8(fold, fold), s);
                        else
                            a8[j] = _mm256_add_epi8(a8[j], s);
                    }
                    if (kFold) a8[0] = _mm256_add_epi8(a8[0], fold);
                }
                for (int g = 0; g < G; g++) {
                    ae[g] = _mm256_add_epi16(ae[g], _mm256_and_si256(a8[g], even));
                    ao[g] = _mm256_add_epi16(ao[g], _mm256_srli_epi16(a8[g], 8));
                }
            }
            for (int g = 0; g < G; g++) {
                _mm256_store_si256((__m256i*)e, ae[g]);
                _mm256_store_si256((__m256i*)o, ao[g]);
                const int w = kFold ? 0 : NB - 1 - g;
                for (int i = 0; i < 16; i++) {
                    tot[2 * i] += int32_t(e[i]) << w;
                    tot[2 * i + 1] += int32_t(o[i]) << w;
                }
            }
        }
        const int32_t base = int32_t(m) * M * M;
        for (int c = 0; c < 32; c++) out[b * kSdcBlock + c] = base - 2 * tot[c];
    }
}

}  // namespace

void sdc_scan_lut_avx2(const uint8_t* lutb, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    switch (nb) {
        case 1: return scan<1>(lutb, blocks, nblocks, m, out);
        case 2: return scan<2>(lutb, blocks, nblocks, m, out);
        case 3: return scan<3>(lutb, blocks, nblocks, m, out);
        default: return scan<4>(lutb, blocks, nblocks, m, out);
    }
}

void sdc_scan_popcount_avx2(const uint8_t* popq, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    switch (nb) {
        case 1: return scan_popcount<1>(popq, blocks, nblocks, m, out);
        case 2: return scan_popcount<2>(popq, blocks, nblocks, m, out);
        case 3: return scan_popcount<3>(popq, blocks, nblocks, m, out);
        default: return scan_popcount<4>(popq, blocks, nblocks, m, out);
    }
}

}  // namespace nearly
