// The 256-bit steps of the 4-bit fast-scan kernel, shared by the AVX2 level
// and the AVX-512 level's lone last pair. Included only by files compiled
// with AVX2 enabled; static inline, so each such file keeps its own copy
// built with its own flags.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace nearly {

// One pair of subquantizers for the 32 codes of a block: pshufb lookups of
// both nibbles. `all` adds each 16-bit lane whole (even entry + 256 x odd
// entry), `odd` the high bytes alone; even = all - 256 x odd at the end
// (exact modulo 2^16, as in faiss).
static inline void pq4_pair_step_256(const uint8_t* codes, const uint8_t* tables, __m256i& all, __m256i& odd) {
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
    const __m256i t0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tables));
    const __m256i t1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tables + 32));
    const __m256i r0 = _mm256_shuffle_epi8(t0, _mm256_and_si256(c, nib));
    const __m256i r1 = _mm256_shuffle_epi8(t1, _mm256_and_si256(_mm256_srli_epi16(c, 4), nib));
    all = _mm256_add_epi16(all, _mm256_add_epi16(r0, r1));
    odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_srli_epi16(r0, 8), _mm256_srli_epi16(r1, 8)));
}

// The 32 sums in entry order: s0 = entries 0-15, s1 = 16-31, both stored.
static inline void pq4_finish_256(__m256i all, __m256i odd, uint16_t* sums, __m256i& s0, __m256i& s1) {
    const __m256i even = _mm256_sub_epi16(all, _mm256_slli_epi16(odd, 8));
    // Lane j of even / odd is entry 2j / 2j+1: interleave into entry order.
    const __m256i lo = _mm256_unpacklo_epi16(even, odd);  // entries 0-7 | 16-23
    const __m256i hi = _mm256_unpackhi_epi16(even, odd);  // entries 8-15 | 24-31
    s0 = _mm256_permute2x128_si256(lo, hi, 0x20);
    s1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), s0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + 16), s1);
}

}  // namespace nearly
