// PQ ADC scan at the AVX2 level. Gathers are slow on the CPUs we measured
// (an 8-lane gather per 4 bytes of codes lost to plain loads), so this one is
// scalar code working on 8 codes side by side: 8 independent addition chains
// keep the load ports busy, where the reference waits on one chain. Code
// bytes are read 8 at a time and taken apart by shifts, so each lookup costs
// one load, not two (14% faster on an Intel Xeon). Each code still adds its
// lookups in order m = 0, 1, ..., so the bits equal the reference's.
#include <immintrin.h>

#include <cstring>

#include "nearly/simd.h"

namespace nearly {

// W codes side by side from codes (W independent addition chains).
template <size_t W>
static void adc8_block(const float* tab, const uint8_t* c, size_t M, float* out) {
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
    for (size_t l = 0; l < W; l++) out[l] = s[l];
}

// Blocks of 8, then 4 and 2 for the tail: a graph walk scores a node's few
// new neighbours at a time, where a tail of up to 7 codes on one chain was a
// third of the scan.
void pq_adc8_avx2(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    size_t j = 0;
    for (; j + 8 <= n; j += 8) adc8_block<8>(tab, codes + j * M, M, out + j);
    if (j + 4 <= n) adc8_block<4>(tab, codes + j * M, M, out + j), j += 4;
    if (j + 2 <= n) adc8_block<2>(tab, codes + j * M, M, out + j), j += 2;
    if (j < n) pq_adc8_scalar(tab, codes + j * M, M, n - j, out + j);
}

// Code to code: one 8-float register per subquantizer at dsub 8 (two
// accumulators, so consecutive subquantizers do not wait on each other);
// other widths run their multiples of 8, then 4, then single floats.
template <bool IP>
static float sdc8(const float* C, size_t dsub, size_t M, const uint8_t* a, const uint8_t* b) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 acc4 = _mm_setzero_ps();
    float rest = 0.f;
    for (size_t m = 0; m < M; m++) {
        const float* x = C + (m * 256 + a[m]) * dsub;
        const float* y = C + (m * 256 + b[m]) * dsub;
        size_t j = 0;
        for (; j + 8 <= dsub; j += 8) {
            const __m256 vx = _mm256_loadu_ps(x + j), vy = _mm256_loadu_ps(y + j);
            const __m256 t = IP ? vx : _mm256_sub_ps(vx, vy);
            if ((m + j / 8) & 1)
                acc1 = _mm256_fmadd_ps(t, IP ? vy : t, acc1);
            else
                acc0 = _mm256_fmadd_ps(t, IP ? vy : t, acc0);
        }
        for (; j + 4 <= dsub; j += 4) {
            const __m128 vx = _mm_loadu_ps(x + j), vy = _mm_loadu_ps(y + j);
            const __m128 t = IP ? vx : _mm_sub_ps(vx, vy);
            acc4 = _mm_fmadd_ps(t, IP ? vy : t, acc4);
        }
        for (; j < dsub; j++) rest += IP ? x[j] * y[j] : (x[j] - y[j]) * (x[j] - y[j]);
    }
    const __m256 s8 = _mm256_add_ps(acc0, acc1);
    __m128 s4 = _mm_add_ps(_mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1)), acc4);
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4) + rest;
}

float pq_sdc8_avx2(const float* C, size_t dsub, size_t M, const uint8_t* a, const uint8_t* b, bool ip) {
    return ip ? sdc8<true>(C, dsub, M, a, b) : sdc8<false>(C, dsub, M, a, b);
}

}  // namespace nearly
