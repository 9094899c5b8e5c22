// PQ ADC scan at the AVX-512 level. Two ways to do the same additions:
// - plain loads: the AVX2 level's kernel, 8 scalar chains side by side;
// - gathers: 16 codes per register, lane l adding code l's lookups. One
//   32-bit gather takes 4 code bytes of each of the 16 codes (stride M), four
//   table gathers follow; two groups of 16 in flight hide the gathers'
//   latency.
// Which is faster depends on the CPU: on an Intel Xeon (Sapphire Rapids)
// gathers took 9.9 ns per 48-byte code against 11.9 ns for loads; on an AMD
// EPYC 40 ns against 12 ns. Each code adds its lookups in order m = 0, 1, ...
// either way (the same bits as the scalar reference), so the first call
// times both on a synthetic list and keeps the faster.
#include <immintrin.h>

#include <chrono>
#include <vector>

#include "nearly/simd.h"

namespace nearly {

namespace {

// 16 codes starting at c (row stride M, byte offsets of the rows in `rows`)
// in lanes where `lanes` is set: s += tab[m][code[m]] for m = 0 .. M-1.
// Needs M >= 4.
template <int G>
inline void gather_rows(const float* tab, const uint8_t* c, size_t M, __m512i rows, __mmask16 lanes, __m512* s) {
    const __m512i ff = _mm512_set1_epi32(0xff);
    auto add_bytes = [&](const __m512i* w, const float* t, int first) {
        for (int b = first; b < 4; b++, t += 256)
            for (int g = 0; g < G; g++) {
                const __m512i idx = _mm512_and_si512(_mm512_srli_epi32(w[g], 8 * b), ff);
                s[g] = _mm512_add_ps(s[g], _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, idx, t, 4));
            }
    };
    size_t m = 0;
    __m512i w[G];
    for (; m + 4 <= M; m += 4) {
        for (int g = 0; g < G; g++)
            w[g] = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, c + 16 * g * M + m, 1);
        add_bytes(w, tab + m * 256, 0);
    }
    if (m < M) {
        // The last M - m bytes: the row's last 4 bytes, its first 4 - (M - m) already added.
        const int first = int(4 - (M - m));
        for (int g = 0; g < G; g++)
            w[g] = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, c + 16 * g * M + M - 4, 1);
        add_bytes(w, tab + (M - 4 + first) * 256, first);
    }
}

void adc_gathers(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    if (M < 4) return pq_adc8_avx2(tab, codes, M, n, out);
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(int(M)));
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 s[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        gather_rows<2>(tab, codes + j * M, M, rows, 0xffff, s);
        _mm512_storeu_ps(out + j, s[0]);
        _mm512_storeu_ps(out + j + 16, s[1]);
    }
    for (; j < n; j += 16) {
        const size_t left = n - j < 16 ? n - j : 16;
        const __mmask16 lanes = __mmask16((1u << left) - 1u);
        __m512 s[1] = {_mm512_setzero_ps()};
        gather_rows<1>(tab, codes + j * M, M, rows, lanes, s);
        _mm512_mask_storeu_ps(out + j, lanes, s[0]);
    }
}

using AdcKernel = void (*)(const float*, const uint8_t*, size_t, size_t, float*);

// Times both kernels on a list of 256 PQ48 codes (a few hundred microseconds
// once per process) and returns the faster.
AdcKernel faster_kernel() {
    constexpr size_t M = 48, n = 256;
    std::vector<float> tab(M * 256);
    std::vector<uint8_t> codes(n * M);
    uint32_t r = 12345;
    for (auto& v : tab) v = float((r = r * 1664525u + 1013904223u) >> 8) * 1e-7f;
    for (auto& c : codes) c = uint8_t((r = r * 1664525u + 1013904223u) >> 24);
    std::vector<float> out(n);
    const AdcKernel kernels[2] = {pq_adc8_avx2, adc_gathers};
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < 15; rep++)
        for (int k = 0; k < 2; k++) {
            const auto t0 = std::chrono::steady_clock::now();
            kernels[k](tab.data(), codes.data(), M, n, out.data());
            const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (t < best[k]) best[k] = t;
        }
    return best[1] < best[0] ? adc_gathers : pq_adc8_avx2;
}

}  // namespace

void pq_adc8_avx512(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    static const AdcKernel kernel = faster_kernel();
    kernel(tab, codes, M, n, out);
}

void pq_adc8_avx512_gathers(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out) {
    adc_gathers(tab, codes, M, n, out);
}

}  // namespace nearly
