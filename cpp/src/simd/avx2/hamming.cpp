// Hamming distances with the hardware popcnt instruction on 64-bit words
// (built with -mpopcnt).
#include "../hamming_popcount.h"

namespace nearly {

void hamming_ny_popcnt(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    hamming_popcount::hamming_ny(q, x, cs, ny, out);
}

}  // namespace nearly
