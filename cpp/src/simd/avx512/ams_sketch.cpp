// ams_sketch_block with AVX-512 (see ams_sketch.h). Each output's sum runs
// across points in vector lanes, in the reference's order; G outputs are
// summed side by side so that enough independent adds are in flight. A
// multiply-add by +-1 rounds like the plain add of the negated value, so
// the fused form gives the scalar reference's bits.
#include <immintrin.h>

#include <algorithm>

#include "nearly/ams_sketch.h"

namespace nearly {

namespace {

// 16 rows of 16 floats transposed in registers: r[c] becomes column c.
inline void transpose16(__m512 (&r)[16]) {
    __m512 t[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        r[4 * k + 0] = _mm512_shuffle_ps(t[4 * k + 0], t[4 * k + 2], 0x44);
        r[4 * k + 1] = _mm512_shuffle_ps(t[4 * k + 0], t[4 * k + 2], 0xEE);
        r[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
        r[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
    }
}

// The block transposed, d rows of np values, zero past m: tiles of 16
// points by 16 coordinates.
void transpose(const float* points, size_t m, size_t d, size_t np, float* t) {
    for (size_t p0 = 0; p0 < np; p0 += 16) {
        const size_t rows = m > p0 ? std::min<size_t>(16, m - p0) : 0;
        const bool half = np - p0 < 16;  // 8 columns of t left
        for (size_t i0 = 0; i0 < d; i0 += 16) {
            const size_t cols = std::min<size_t>(16, d - i0);
            const __mmask16 k = __mmask16(cols == 16 ? 0xffffu : (1u << cols) - 1u);
            __m512 r[16];
            for (size_t p = 0; p < 16; p++)
                r[p] = p < rows ? _mm512_maskz_loadu_ps(k, points + (p0 + p) * d + i0) : _mm512_setzero_ps();
            transpose16(r);
            float* dst = t + i0 * np + p0;
            for (size_t c = 0; c < cols; c++) {
                if (half) {
                    _mm256_storeu_ps(dst + c * np, _mm512_castps512_ps256(r[c]));
                } else {
                    _mm512_storeu_ps(dst + c * np, r[c]);
                }
            }
        }
    }
}

// np = 16 * NZ + 8 * NY points, G outputs at a time.
template <int NZ, int NY, int G>
void sketch(const float* t, const uint32_t* start, const uint32_t* input, const float* sign, size_t n_out,
            float* out) {
    constexpr size_t np = 16 * NZ + 8 * NY;
    size_t o = 0;
    for (; o + G <= n_out; o += G) {
        __m512 z[G][NZ > 0 ? NZ : 1];
        __m256 y[G];
        uint32_t s[G], len[G];
        uint32_t common = ~0u;
        for (int g = 0; g < G; g++) {
            for (int v = 0; v < NZ; v++) z[g][v] = _mm512_setzero_ps();
            y[g] = _mm256_setzero_ps();
            s[g] = start[o + g];
            len[g] = start[o + g + 1] - s[g];
            common = std::min(common, len[g]);
        }
        for (uint32_t j = 0; j < common; j++) {
            for (int g = 0; g < G; g++) {
                const float* row = t + size_t(input[s[g] + j]) * np;
                const float sg = sign[s[g] + j];
                for (int v = 0; v < NZ; v++)
                    z[g][v] = _mm512_fmadd_ps(_mm512_loadu_ps(row + 16 * v), _mm512_set1_ps(sg), z[g][v]);
                if (NY) y[g] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 16 * NZ), _mm256_set1_ps(sg), y[g]);
            }
        }
        for (int g = 0; g < G; g++) {
            for (uint32_t j = common; j < len[g]; j++) {
                const float* row = t + size_t(input[s[g] + j]) * np;
                const float sg = sign[s[g] + j];
                for (int v = 0; v < NZ; v++)
                    z[g][v] = _mm512_fmadd_ps(_mm512_loadu_ps(row + 16 * v), _mm512_set1_ps(sg), z[g][v]);
                if (NY) y[g] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 16 * NZ), _mm256_set1_ps(sg), y[g]);
            }
            float* dst = out + (o + g) * np;
            for (int v = 0; v < NZ; v++) _mm512_storeu_ps(dst + 16 * v, z[g][v]);
            if (NY) _mm256_storeu_ps(dst + 16 * NZ, y[g]);
        }
    }
    if (o < n_out) sketch<NZ, NY, 1>(t, start + o, input, sign, n_out - o, out + o * np);
}

}  // namespace

void ams_sketch_block_avx512(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                             const uint32_t* input, const float* sign, size_t n_out, float* out) {
    const size_t np = (m + 7) / 8 * 8;
    transpose(points, m, d, np, t);
    switch (np / 8) {
        case 1: return sketch<0, 1, 8>(t, start, input, sign, n_out, out);
        case 2: return sketch<1, 0, 8>(t, start, input, sign, n_out, out);
        case 3: return sketch<1, 1, 4>(t, start, input, sign, n_out, out);
        default: return sketch<2, 0, 4>(t, start, input, sign, n_out, out);
    }
}

}  // namespace nearly
