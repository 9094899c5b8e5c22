// The RaBitQ bit dot products with the compiler's 64-bit popcount, the plane
// loop unrolled per qb: included by the per-ISA files that compile it with
// a hardware popcount (x86 -mpopcnt: popcnt; AArch64: NEON cnt).
#pragma once
#include <cstring>

#include "nearly/rabitq.h"
#include "nearly/simd.h"

namespace nearly {
namespace rabitq_popcount {

template <size_t QB>
inline void dots_qb(const uint8_t* planes, const uint8_t* codes, size_t nbytes, size_t stride, size_t n,
                    uint32_t* dot, uint32_t* pop) {
    const size_t w = nbytes / 8;
    for (size_t j = 0; j < n; j++) {
        const uint8_t* c = codes + j * stride;
        uint64_t s[QB > 0 ? QB : 1] = {}, p = 0;
        for (size_t i = 0; i < w; i++) {
            uint64_t x;
            std::memcpy(&x, c + 8 * i, 8);
            p += __builtin_popcountll(x);
            for (size_t b = 0; b < QB; b++) {
                uint64_t q;
                std::memcpy(&q, planes + b * nbytes + 8 * i, 8);
                s[b] += __builtin_popcountll(q & x);
            }
        }
        for (size_t i = 8 * w; i < nbytes; i++) {
            p += __builtin_popcount(c[i]);
            for (size_t b = 0; b < QB; b++) s[b] += __builtin_popcount(planes[b * nbytes + i] & c[i]);
        }
        uint64_t t = 0;
        for (size_t b = 0; b < QB; b++) t += s[b] << b;
        dot[j] = uint32_t(t);
        pop[j] = uint32_t(p);
    }
}

inline void dots(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride, size_t n,
                 uint32_t* dot, uint32_t* pop) {
    if (qb == 0) return dots_qb<0>(planes, codes, nbytes, stride, n, dot, pop);
    with_vector_count<8>(qb, [&](auto c) { dots_qb<decltype(c)::value>(planes, codes, nbytes, stride, n, dot, pop); });
}

}  // namespace rabitq_popcount
}  // namespace nearly
