// 4-bit fast-scan at the AVX2 level: one 32-byte load holds one pair of
// subquantizers for the 32 codes of a block; a pshufb per nibble looks up
// 32 table entries at once (pq4_avx2_step.h).
#include <immintrin.h>

#include "../pq4_avx2_step.h"
#include "nearly/simd.h"

namespace nearly {

uint32_t pq4_scan_block_avx2(const uint8_t* block, size_t npairs, const uint8_t* packed, uint16_t thr,
                             uint16_t* sums) {
    __m256i all = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    for (size_t p = 0; p < npairs; p++) pq4_pair_step_256(block + p * 32, packed + p * 64, all, odd);
    __m256i s0, s1;
    pq4_finish_256(all, odd, sums, s0, s1);
    // Unsigned s <= thr  <=>  min(s, thr) == s.
    const __m256i t = _mm256_set1_epi16(short(thr));
    const __m256i m0 = _mm256_cmpeq_epi16(_mm256_min_epu16(s0, t), s0);
    const __m256i m1 = _mm256_cmpeq_epi16(_mm256_min_epu16(s1, t), s1);
    const __m256i m = _mm256_permute4x64_epi64(_mm256_packs_epi16(m0, m1), 0xD8);
    return uint32_t(_mm256_movemask_epi8(m));
}

}  // namespace nearly
