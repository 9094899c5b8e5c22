// 4-bit fast-scan, the reference: table lookups added one by one in 16-bit
// arithmetic, which the SIMD levels reproduce exactly (their additions and
// the tail's multiplications wrap modulo 2^16 too, and integer sums do not
// depend on the order).
#include "nearly/simd.h"

namespace nearly {

// Each table twice (the AVX2 layout: one copy per 128-bit lane); pair p is
// [table 2p x2][table 2p+1 x2]. The tail is laid out as the other pairs.
void pq4_pack_lut_scalar(const uint8_t* lut, size_t npairs, size_t, uint8_t* packed) {
    for (size_t m = 0; m < 2 * npairs; m++)
        for (size_t j = 0; j < 32; j++) packed[m * 32 + j] = lut[m * 16 + (j & 15)];
}

void pq4_scan_block_scalar(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                           const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail) {
    const size_t nmain = npairs - tail.npairs;
    for (size_t q = 0; q < nq; q++) {
        uint32_t mask = 0;
        for (size_t i = 0; i < 32; i++) {
            uint16_t s = 0;
            for (size_t p = 0; p < npairs; p++) {
                const uint8_t c = block[p * 32 + i];
                const uint16_t* mult = p < nmain ? nullptr : tail.mult[p - nmain];
                const uint16_t lo = packed[q][p * 64 + (c & 15)], hi = packed[q][p * 64 + 32 + (c >> 4)];
                s = uint16_t(s + (mult ? uint16_t(lo * mult[0]) : lo));
                s = uint16_t(s + (mult ? uint16_t(hi * mult[1]) : hi));
            }
            sums[q * 32 + i] = s;
            if (s <= thr[q]) mask |= uint32_t(1) << i;
        }
        masks[q] = mask;
    }
}

}  // namespace nearly
