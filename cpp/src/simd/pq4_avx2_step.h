// The 256-bit steps of the 4-bit fast-scan kernel, shared by the AVX2 level
// and the AVX-512 level's lone last pair. Included only by files compiled
// with AVX2 enabled; static inline, so each such file keeps its own copy
// built with its own flags.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "nearly/simd.h"

namespace nearly {

// One pair of subquantizers for the 32 codes of a block, nibbles split once
// and looked up in any number of queries' tables: pshufb lookups of both
// nibbles. `all` adds each 16-bit lane whole (even entry + 256 x odd entry),
// `odd` the high bytes alone; even = all - 256 x odd at the end (exact
// modulo 2^16, as in faiss).
struct PQ4Nibbles256 {
    __m256i lo, hi;
    explicit PQ4Nibbles256(const uint8_t* codes) {
        const __m256i nib = _mm256_set1_epi8(0x0f);
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
        lo = _mm256_and_si256(c, nib);
        hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), nib);
    }
    void add(const uint8_t* tables, __m256i& all, __m256i& odd) const {
        const __m256i r0 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(tables)), lo);
        const __m256i r1 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(tables + 32)), hi);
        all = _mm256_add_epi16(all, _mm256_add_epi16(r0, r1));
        odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_srli_epi16(r0, 8), _mm256_srli_epi16(r1, 8)));
    }
    // add with the lookups multiplied (a PQ4Tail pair): mlo / mhi hold the
    // low / high nibble's multiplier in every 16-bit lane. A lane (even + 256
    // x odd) times m is even x m + 256 x odd x m modulo 2^16, so the split
    // at the end still holds.
    void add_scaled(const uint8_t* tables, __m256i mlo, __m256i mhi, __m256i& all, __m256i& odd) const {
        const __m256i r0 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(tables)), lo);
        const __m256i r1 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(tables + 32)), hi);
        all = _mm256_add_epi16(all, _mm256_add_epi16(_mm256_mullo_epi16(r0, mlo), _mm256_mullo_epi16(r1, mhi)));
        odd = _mm256_add_epi16(odd, _mm256_add_epi16(_mm256_mullo_epi16(_mm256_srli_epi16(r0, 8), mlo),
                                                     _mm256_mullo_epi16(_mm256_srli_epi16(r1, 8), mhi)));
    }
};

// The tail's pairs (after the main ones) of a block for a group of queries.
template <size_t NQ>
static inline void pq4_add_tail_256(const uint8_t* block, size_t nmain, const uint8_t* const* packed,
                                    const PQ4Tail& tail, __m256i* all, __m256i* odd) {
    for (size_t t = 0; t < tail.npairs; t++) {
        const size_t p = nmain + t;
        const PQ4Nibbles256 c(block + p * 32);
        const __m256i mlo = _mm256_set1_epi16(short(tail.mult[t][0])), mhi = _mm256_set1_epi16(short(tail.mult[t][1]));
        for (size_t q = 0; q < NQ; q++) c.add_scaled(packed[q] + p * 64, mlo, mhi, all[q], odd[q]);
    }
}

// The 32 sums stored in entry order; returns the mask of sums <= thr.
static inline uint32_t pq4_finish_256(__m256i all, __m256i odd, uint16_t thr, uint16_t* sums) {
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
    return uint32_t(_mm256_movemask_epi8(_mm256_permute4x64_epi64(_mm256_packs_epi16(m0, m1), 0xD8)));
}

// Calls f(std::integral_constant<int, G>, q) for consecutive groups of
// G <= 4 queries starting at q: the kernels keep 2 accumulators per query
// of a group in registers.
template <class F>
static inline void pq4_query_groups(size_t nq, F&& f) {
    for (size_t q = 0; q < nq; q += 4) with_vector_count<4>(nq - q, [&](auto group) { f(group, q); });
}

}  // namespace nearly
