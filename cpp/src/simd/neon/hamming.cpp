// Hamming distances on AArch64: the compiler's popcount is NEON's cnt (the
// x86 popcnt kernel's code, compiled for ARM).
#include "../hamming_popcount.h"

namespace nearly {

void hamming_ny_neon(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    hamming_popcount::hamming_ny(q, x, cs, ny, out);
}

}  // namespace nearly
