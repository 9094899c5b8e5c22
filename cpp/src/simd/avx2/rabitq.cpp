// RaBitQ bit dot products with the hardware popcnt instruction, 64 bits of
// a code at a time (built with -mpopcnt).
#include <cstring>

#include "nearly/rabitq.h"

namespace nearly {

void rabitq_dots_popcnt(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                        size_t n, uint32_t* dot, uint32_t* pop) {
    const size_t w = nbytes / 8;
    for (size_t j = 0; j < n; j++) {
        const uint8_t* c = codes + j * stride;
        uint64_t s = 0, p = 0;
        for (size_t i = 0; i < w; i++) {
            uint64_t x;
            std::memcpy(&x, c + 8 * i, 8);
            p += __builtin_popcountll(x);
            for (size_t b = 0; b < qb; b++) {
                uint64_t q;
                std::memcpy(&q, planes + b * nbytes + 8 * i, 8);
                s += uint64_t(__builtin_popcountll(q & x)) << b;
            }
        }
        for (size_t i = 8 * w; i < nbytes; i++) {
            p += __builtin_popcount(c[i]);
            for (size_t b = 0; b < qb; b++) s += uint64_t(__builtin_popcount(planes[b * nbytes + i] & c[i])) << b;
        }
        dot[j] = uint32_t(s);
        pop[j] = uint32_t(p);
    }
}

}  // namespace nearly
