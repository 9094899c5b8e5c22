// Scalar reference of the RaBitQ bit dot products: bit by bit, no popcount
// instruction.
#include "nearly/rabitq.h"

namespace nearly {

void rabitq_dots_scalar(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                        size_t n, uint32_t* dot, uint32_t* pop) {
    for (size_t j = 0; j < n; j++) {
        const uint8_t* c = codes + j * stride;
        uint32_t s = 0, p = 0;
        for (size_t i = 0; i < nbytes * 8; i++) {
            if (!((c[i / 8] >> (i % 8)) & 1)) continue;
            p++;
            for (size_t b = 0; b < qb; b++) s += uint32_t((planes[b * nbytes + i / 8] >> (i % 8)) & 1) << b;
        }
        dot[j] = s;
        pop[j] = p;
    }
}

}  // namespace nearly
