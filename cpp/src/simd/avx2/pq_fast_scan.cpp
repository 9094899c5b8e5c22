// 4-bit fast-scan at the AVX2 level: one 32-byte load holds one pair of
// subquantizers for the 32 codes of a block; a pshufb per nibble looks up
// 32 table entries at once. Bytes are summed in 16-bit lanes without
// unpacking: `all` adds each 16-bit lane whole (even entry + 256 x odd
// entry), `odd` adds the high bytes alone, and even = all - 256 x odd at the
// end (exact modulo 2^16, as in faiss).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

uint32_t pq4_scan_block_avx2(const uint8_t* block, size_t npairs, const uint8_t* packed, uint16_t thr,
                             uint16_t* sums) {
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i all = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    for (size_t p = 0; p < npairs; p++) {
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32));
        const __m256i t0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(packed + p * 64));
        const __m256i t1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(packed + p * 64 + 32));
        const __m256i r0 = _mm256_shuffle_epi8(t0, _mm256_and_si256(c, nib));
        const __m256i r1 = _mm256_shuffle_epi8(t1, _mm256_and_si256(_mm256_srli_epi16(c, 4), nib));
        all = _mm256_add_epi16(all, _mm256_add_epi16(r0, r1));
        odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_srli_epi16(r0, 8), _mm256_srli_epi16(r1, 8)));
    }
    const __m256i even = _mm256_sub_epi16(all, _mm256_slli_epi16(odd, 8));
    // Lane j of even / odd is entry 2j / 2j+1: interleave into entry order.
    const __m256i lo = _mm256_unpacklo_epi16(even, odd);  // entries 0-7 | 16-23
    const __m256i hi = _mm256_unpackhi_epi16(even, odd);  // entries 8-15 | 24-31
    const __m256i s0 = _mm256_permute2x128_si256(lo, hi, 0x20);
    const __m256i s1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), s0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + 16), s1);
    // Unsigned s <= thr  <=>  min(s, thr) == s.
    const __m256i t = _mm256_set1_epi16(short(thr));
    const __m256i m0 = _mm256_cmpeq_epi16(_mm256_min_epu16(s0, t), s0);
    const __m256i m1 = _mm256_cmpeq_epi16(_mm256_min_epu16(s1, t), s1);
    const __m256i m = _mm256_permute4x64_epi64(_mm256_packs_epi16(m0, m1), 0xD8);
    return uint32_t(_mm256_movemask_epi8(m));
}

}  // namespace nearly
