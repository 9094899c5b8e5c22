// AVX2 nibble-LUT SDC scan (pshufb), blocks of 32 codes; see binary_sdc.h.
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

}  // namespace

void sdc_scan_lut_avx2(const uint8_t* lutb, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out) {
    switch (nb) {
        case 1: return scan<1>(lutb, blocks, nblocks, m, out);
        case 2: return scan<2>(lutb, blocks, nblocks, m, out);
        case 3: return scan<3>(lutb, blocks, nblocks, m, out);
        default: return scan<4>(lutb, blocks, nblocks, m, out);
    }
}

}  // namespace nearly
