// Hamming distances with the compiler's 64-bit popcount, like faiss's
// generic HammingComputer: included by the per-ISA files that compile it
// with a hardware popcount (x86 -mpopcnt: popcnt; AArch64: NEON cnt).
#pragma once
#include <cstring>

#include "nearly/hamming.h"

namespace nearly {
namespace hamming_popcount {

inline void hamming_ny(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    const size_t w = cs / 8;
    for (size_t j = 0; j < ny; j++) {
        const uint8_t* c = x + j * cs;
        int32_t s = 0;
        for (size_t i = 0; i < w; i++) {
            uint64_t a, b;
            std::memcpy(&a, q + 8 * i, 8);
            std::memcpy(&b, c + 8 * i, 8);
            s += __builtin_popcountll(a ^ b);
        }
        for (size_t b = 8 * w; b < cs; b++) s += __builtin_popcount(unsigned(q[b] ^ c[b]));
        out[j] = s;
    }
}

}  // namespace hamming_popcount
}  // namespace nearly
