// ams_sketch_block with AVX2 (see ams_sketch.h and the AVX-512 version): each
// output's sum across points in 8-lane vectors, G outputs side by side, the
// multiply-add by +-1 rounding like the scalar reference's add.
#include <immintrin.h>

#include <algorithm>

#include "nearly/ams_sketch.h"

namespace nearly {

namespace {

template <int NV, int G>
void sketch(const float* t, const uint32_t* start, const uint32_t* input, const float* sign, size_t n_out,
            float* out) {
    constexpr size_t np = 8 * NV;
    size_t o = 0;
    for (; o + G <= n_out; o += G) {
        __m256 a[G][NV];
        uint32_t s[G], len[G];
        uint32_t common = ~0u;
        for (int g = 0; g < G; g++) {
            for (int v = 0; v < NV; v++) a[g][v] = _mm256_setzero_ps();
            s[g] = start[o + g];
            len[g] = start[o + g + 1] - s[g];
            common = std::min(common, len[g]);
        }
        for (uint32_t j = 0; j < common; j++) {
            for (int g = 0; g < G; g++) {
                const float* row = t + size_t(input[s[g] + j]) * np;
                const __m256 sg = _mm256_broadcast_ss(sign + s[g] + j);
                for (int v = 0; v < NV; v++) a[g][v] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * v), sg, a[g][v]);
            }
        }
        for (int g = 0; g < G; g++) {
            for (uint32_t j = common; j < len[g]; j++) {
                const float* row = t + size_t(input[s[g] + j]) * np;
                const __m256 sg = _mm256_broadcast_ss(sign + s[g] + j);
                for (int v = 0; v < NV; v++) a[g][v] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * v), sg, a[g][v]);
            }
            for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + (o + g) * np + 8 * v, a[g][v]);
        }
    }
    if (o < n_out) sketch<NV, 1>(t, start + o, input, sign, n_out - o, out + o * np);
}

}  // namespace

void ams_sketch_block_avx2(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                           const uint32_t* input, const float* sign, size_t n_out, float* out) {
    const size_t np = (m + 7) / 8 * 8;
    // The block transposed, zero past m.
    for (size_t i = 0; i < d; i++)
        for (size_t p = 0; p < np; p++) t[i * np + p] = p < m ? points[p * d + i] : 0.f;
    switch (np / 8) {
        case 1: return sketch<1, 8>(t, start, input, sign, n_out, out);
        case 2: return sketch<2, 4>(t, start, input, sign, n_out, out);
        case 3: return sketch<3, 2>(t, start, input, sign, n_out, out);
        default: return sketch<4, 2>(t, start, input, sign, n_out, out);
    }
}

}  // namespace nearly
