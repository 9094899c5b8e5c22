// AVX2 + FMA kernels, compiled with -mavx2 -mfma only here.
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {
namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Loads the last d % 8 floats without reading past the end of the array.
inline __m256 load_tail(const float* p, size_t r) {
    alignas(32) float buf[8] = {};
    for (size_t i = 0; i < r; i++) buf[i] = p[i];
    return _mm256_load_ps(buf);
}

float inner_product(const float* x, const float* y, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= d; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    if (i < d) a1 = _mm256_fmadd_ps(load_tail(x + i, d - i), load_tail(y + i, d - i), a1);
    return hsum(_mm256_add_ps(a0, a1));
}

float l2sqr(const float* x, const float* y, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
        a0 = _mm256_fmadd_ps(t0, t0, a0);
        a1 = _mm256_fmadd_ps(t1, t1, a1);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        a0 = _mm256_fmadd_ps(t, t, a0);
    }
    if (i < d) {
        __m256 t = _mm256_sub_ps(load_tail(x + i, d - i), load_tail(y + i, d - i));
        a1 = _mm256_fmadd_ps(t, t, a1);
    }
    return hsum(_mm256_add_ps(a0, a1));
}

// One row after another: one sequential stream for the hardware
// prefetcher (four rows side by side ran at half the speed from memory; see
// the AVX-512 kernels).
template <bool L2>
void distances_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = L2 ? l2sqr(q, x + j * d, d) : inner_product(q, x + j * d, d);
}

void inner_products_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    distances_ny<false>(q, x, d, ny, out);
}
void l2sqr_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    distances_ny<true>(q, x, d, ny, out);
}

void inner_products_rows(const float* q, const float* const* rows, size_t d, size_t n, float* out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r0 = rows[i], *r1 = rows[i + 1], *r2 = rows[i + 2], *r3 = rows[i + 3];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
               a3 = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 8 <= d; j += 8) {
            const __m256 qq = _mm256_loadu_ps(q + j);
            a0 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(r0 + j), a0);
            a1 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(r1 + j), a1);
            a2 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(r2 + j), a2);
            a3 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(r3 + j), a3);
        }
        if (j < d) {
            const __m256 qq = load_tail(q + j, d - j);
            a0 = _mm256_fmadd_ps(qq, load_tail(r0 + j, d - j), a0);
            a1 = _mm256_fmadd_ps(qq, load_tail(r1 + j, d - j), a1);
            a2 = _mm256_fmadd_ps(qq, load_tail(r2 + j, d - j), a2);
            a3 = _mm256_fmadd_ps(qq, load_tail(r3 + j, d - j), a3);
        }
        out[i] = hsum(a0);
        out[i + 1] = hsum(a1);
        out[i + 2] = hsum(a2);
        out[i + 3] = hsum(a3);
    }
    for (; i < n; i++) out[i] = inner_product(q, rows[i], d);
}

int32_t dot_i8(const int8_t* a, const int8_t* b, size_t d) {
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256i va = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(a + i)));
        __m256i vb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(b + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vb));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    int32_t r = _mm_cvtsi128_si32(s);
    for (; i < d; i++) r += int32_t(a[i]) * int32_t(b[i]);
    return r;
}

// 6 x 16 tile: 12 accumulators, 2 panel registers, 1 broadcast of 16 ymm.
constexpr int MR = 6, NR = 16;

void gemm_micro(const float* q, const float* panel, size_t d, float* out, size_t ldo) {
    __m256 c[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (size_t k = 0; k < d; k++) {
        __m256 b0 = _mm256_loadu_ps(panel + k * NR);
        __m256 b1 = _mm256_loadu_ps(panel + k * NR + 8);
        const float* qk = q + k * MR;
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(qk + i);
            c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(out + i * ldo, c[i][0]);
        _mm256_storeu_ps(out + i * ldo + 8, c[i][1]);
    }
}


// Four queries, one after the other (no faster form at this level).
void ip_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    for (int i = 0; i < 4; i++) inner_products_ny(q + i * d, x, d, ny, out + i * ldo);
}

void l2sqr_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    for (int i = 0; i < 4; i++) l2sqr_ny(q + i * d, x, d, ny, out + i * ldo);
}

// |q - x| summed (Max false) or maxed over 16 lanes; the zero tail adds nothing.
template <bool Max>
float abs_diff_reduce(const float* q, const float* x, size_t d) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    auto step = [&](__m256& a, __m256 u, __m256 v) {
        const __m256 t = _mm256_andnot_ps(sign, _mm256_sub_ps(u, v));
        a = Max ? _mm256_max_ps(a, t) : _mm256_add_ps(a, t);
    };
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        step(a0, _mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
        step(a1, _mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(x + i + 8));
    }
    for (; i + 8 <= d; i += 8) step(a0, _mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
    if (i < d) step(a1, load_tail(q + i, d - i), load_tail(x + i, d - i));
    if (!Max) return hsum(_mm256_add_ps(a0, a1));
    __m256 m = _mm256_max_ps(a0, a1);
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void l1_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = abs_diff_reduce<false>(q, x + j * d, d);
}

void linf_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = abs_diff_reduce<true>(q, x + j * d, d);
}

}  // namespace

const SimdKernels& kernels_avx2() {
    static const SimdKernels k{SimdLevel::avx2, inner_product, l2sqr, inner_products_ny, l2sqr_ny, inner_products_rows,
                               dot_i8, {MR, NR}, gemm_micro, vecmat_unfused_avx2, vecmat_fused_avx2, ip_4q, l2sqr_4q, pq_adc8_avx2, nearest_transposed_avx2,
                               pq4_pack_lut_scalar, pq4_scan_block_avx2, l1_ny, linf_ny, pq_sdc8_avx2, select_within_avx2};
    return k;
}

}  // namespace nearly
