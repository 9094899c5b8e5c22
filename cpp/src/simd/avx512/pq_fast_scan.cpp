// 4-bit fast-scan at the AVX-512 level: one 64-byte load holds two pairs of
// subquantizers (p, p+1) for the 32 codes of a block, so the tables are laid
// out per two pairs: [table 2p x2 | table 2p+2 x2] for the low nibbles and
// [table 2p+1 x2 | table 2p+3 x2] for the high ones (a lone last pair keeps
// the AVX2 layout). Sums as at the AVX2 level; the two 256-bit halves hold
// different subquantizers of the same 32 entries and are added at the end,
// then finished like the AVX2 level (pq4_avx2_step.h). The pairs after the
// grouped ones (a lone last main pair, the PQ4Tail's pairs) keep the AVX2
// layout and step. Up to four queries share each load of the codes.
#include <immintrin.h>

#include "../pq4_avx2_step.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
// Table t's 16 bytes twice, 32 bytes at o.
inline void put_twice(const uint8_t* lut, size_t t, uint8_t* o) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + t * 16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_broadcastsi128_si256(v));
}
}  // namespace

void pq4_pack_lut_avx512(const uint8_t* lut, size_t npairs, size_t ntail, uint8_t* packed) {
    size_t p = 0;
    for (; p + 2 <= npairs - ntail; p += 2) {
        uint8_t* o = packed + p * 64;
        put_twice(lut, 2 * p, o);
        put_twice(lut, 2 * p + 2, o + 32);
        put_twice(lut, 2 * p + 1, o + 64);
        put_twice(lut, 2 * p + 3, o + 96);
    }
    for (; p < npairs; p++) {
        put_twice(lut, 2 * p, packed + p * 64);
        put_twice(lut, 2 * p + 1, packed + p * 64 + 32);
    }
}

namespace {
template <size_t NQ>
void scan_queries(const uint8_t* block, size_t npairs, const uint8_t* const* packed, const uint16_t* thr,
                  uint16_t* sums, uint32_t* masks, const PQ4Tail& tail) {
    const __m512i nib = _mm512_set1_epi8(0x0f);
    __m512i all[NQ], odd[NQ];
    for (size_t q = 0; q < NQ; q++) all[q] = odd[q] = _mm512_setzero_si512();
    const size_t nmain = npairs - tail.npairs;
    size_t p = 0;
    for (; p + 2 <= nmain; p += 2) {
        const __m512i c = _mm512_loadu_si512(block + p * 32);
        const __m512i lo = _mm512_and_si512(c, nib), hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), nib);
        for (size_t q = 0; q < NQ; q++) {
            const __m512i r0 = _mm512_shuffle_epi8(_mm512_load_si512(packed[q] + p * 64), lo);
            const __m512i r1 = _mm512_shuffle_epi8(_mm512_load_si512(packed[q] + p * 64 + 64), hi);
            all[q] = _mm512_add_epi16(all[q], _mm512_add_epi16(r0, r1));
            odd[q] = _mm512_add_epi16(odd[q], _mm512_add_epi16(_mm512_srli_epi16(r0, 8), _mm512_srli_epi16(r1, 8)));
        }
    }
    __m256i all2[NQ], odd2[NQ];
    for (size_t q = 0; q < NQ; q++) {
        all2[q] = _mm256_add_epi16(_mm512_castsi512_si256(all[q]), _mm512_extracti64x4_epi64(all[q], 1));
        odd2[q] = _mm256_add_epi16(_mm512_castsi512_si256(odd[q]), _mm512_extracti64x4_epi64(odd[q], 1));
    }
    if (p < nmain) {
        const PQ4Nibbles256 c(block + p * 32);
        for (size_t q = 0; q < NQ; q++) c.add(packed[q] + p * 64, all2[q], odd2[q]);
    }
    pq4_add_tail_256<NQ>(block, nmain, packed, tail, all2, odd2);
    for (size_t q = 0; q < NQ; q++) masks[q] = pq4_finish_256(all2[q], odd2[q], thr[q], sums + q * 32);
}
}  // namespace

void pq4_scan_block_avx512(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                           const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail) {
    pq4_query_groups(nq, [&](auto group, size_t q) {
        scan_queries<decltype(group)::value>(block, npairs, packed + q, thr + q, sums + q * 32, masks + q, tail);
    });
}

}  // namespace nearly
