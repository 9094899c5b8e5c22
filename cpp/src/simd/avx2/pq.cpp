// PQ ADC scan at the AVX2 level. Gathers are slow on the CPUs we measured
// (an 8-lane gather per 4 bytes of codes lost to plain loads), so this one is
// scalar code working on 8 codes side by side: 8 independent addition chains
// keep the load ports busy, where the reference waits on one chain. Code
// bytes are read 8 at a time and taken apart by shifts, so each lookup costs
// one load, not two (14% faster on an Intel Xeon). Each code still adds its
// lookups in order m = 0, 1, ..., so the bits equal the reference's.
#include <cstring>

#include "nearly/simd.h"

namespace nearly {

void pq_adc8_avx2(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    constexpr size_t W = 8;
    size_t j = 0;
    for (; j + W <= n; j += W) {
        const uint8_t* c = codes + j * M;
        float s[W] = {};
        size_t m = 0;
        for (; m + 8 <= M; m += 8) {
            uint64_t w[W];
            for (size_t l = 0; l < W; l++) std::memcpy(&w[l], c + l * M + m, 8);
            const float* t = tab + m * 256;
#pragma GCC unroll 8
            for (size_t b = 0; b < 8; b++, t += 256)
                for (size_t l = 0; l < W; l++) s[l] += t[(w[l] >> (8 * b)) & 0xff];
        }
        for (; m < M; m++)
            for (size_t l = 0; l < W; l++) s[l] += tab[m * 256 + c[l * M + m]];
        for (size_t l = 0; l < W; l++) out[j + l] = s[l];
    }
    if (j < n) pq_adc8_scalar(tab, codes + j * M, M, n - j, out + j);
}

}  // namespace nearly
