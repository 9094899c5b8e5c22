// 4-bit fast-scan at the AVX2 level: one 32-byte load holds one pair of
// subquantizers for the 32 codes of a block; a pshufb per nibble looks up
// 32 table entries at once (pq4_avx2_step.h). Up to four queries share each
// load of the codes; the tail's pairs, multiplied, come last.
#include <immintrin.h>

#include "../pq4_avx2_step.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
template <size_t NQ>
void scan_queries(const uint8_t* block, size_t npairs, const uint8_t* const* packed, const uint16_t* thr,
                  uint16_t* sums, uint32_t* masks, const PQ4Tail& tail) {
    __m256i all[NQ], odd[NQ];
    for (size_t q = 0; q < NQ; q++) all[q] = odd[q] = _mm256_setzero_si256();
    const size_t nmain = npairs - tail.npairs;
    for (size_t p = 0; p < nmain; p++) {
        const PQ4Nibbles256 c(block + p * 32);
        for (size_t q = 0; q < NQ; q++) c.add(packed[q] + p * 64, all[q], odd[q]);
    }
    pq4_add_tail_256<NQ>(block, nmain, packed, tail, all, odd);
    for (size_t q = 0; q < NQ; q++) masks[q] = pq4_finish_256(all[q], odd[q], thr[q], sums + q * 32);
}
}  // namespace

void pq4_scan_block_avx2(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                         const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail) {
    pq4_query_groups(nq, [&](auto group, size_t q) {
        scan_queries<decltype(group)::value>(block, npairs, packed + q, thr + q, sums + q * 32, masks + q, tail);
    });
}

}  // namespace nearly
