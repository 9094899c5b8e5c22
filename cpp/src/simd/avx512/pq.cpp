// PQ ADC scan at the AVX-512 level: the AVX2 level's kernel. 16-lane gathers
// (two 32-bit gathers of code bytes and table entries) ran at 40 ns per
// 48-byte code against 12 ns for 8 scalar chains side by side, and 16 or 4
// chains were no faster than 8 (AMD EPYC, see ../avx2/pq.cpp).
#include "nearly/simd.h"

namespace nearly {

void pq_adc8_avx512(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    pq_adc8_avx2(tab, codes, M, n, out);
}

}  // namespace nearly
