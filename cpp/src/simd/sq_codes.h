// One dimension's integer code value in a ScalarQuantizer code of 4, 6 or 8
// bits (faiss's packings: 4 bits two per byte, low nibble first; 6 bits four
// per three bytes, low bits first). Shared by the scoring kernels of every
// level for the dimensions after the last full SIMD block.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nearly {

template <int Bits>
static inline uint32_t sq_code_value(const uint8_t* c, size_t j) {
    if constexpr (Bits == 8) {
        return c[j];
    } else if constexpr (Bits == 4) {
        return (c[j / 2] >> ((j & 1) * 4)) & 15;
    } else {
        const uint8_t* g = c + (j >> 2) * 3;
        switch (j & 3) {
            case 0: return g[0] & 63;
            case 1: return (g[0] >> 6) | ((g[1] & 15) << 2);
            case 2: return (g[1] >> 4) | ((g[2] & 3) << 4);
            default: return g[2] >> 2;
        }
    }
}

}  // namespace nearly
