// RaBitQ bit dot products on AArch64: the compiler's popcount is NEON's cnt
// (the x86 popcnt kernel's code, compiled for ARM).
#include "../rabitq_popcount.h"

namespace nearly {

void rabitq_dots_neon(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                      size_t n, uint32_t* dot, uint32_t* pop) {
    rabitq_popcount::dots(planes, qb, codes, nbytes, stride, n, dot, pop);
}

}  // namespace nearly
