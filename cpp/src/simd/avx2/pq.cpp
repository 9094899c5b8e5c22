// PQ ADC scan at the AVX2 level. Gathers are slow on the CPUs we measured
// (an 8-lane gather per 4 bytes of codes lost to plain loads), so this one is
// scalar code working on 8 codes side by side: 8 independent addition chains
// keep the load ports busy, where the reference waits on one chain. Each code
// still adds its lookups in order m = 0, 1, ..., so the bits equal the
// reference's.
#include "nearly/simd.h"

namespace nearly {

void pq_adc8_avx2(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    constexpr size_t W = 8;
    size_t j = 0;
    for (; j + W <= n; j += W) {
        const uint8_t* c = codes + j * M;
        float s[W] = {};
        const float* t = tab;
        for (size_t m = 0; m < M; m++, t += 256)
            for (size_t l = 0; l < W; l++) s[l] += t[c[l * M + m]];
        for (size_t l = 0; l < W; l++) out[j + l] = s[l];
    }
    if (j < n) pq_adc8_scalar(tab, codes + j * M, M, n - j, out + j);
}

}  // namespace nearly
