// AVX-512 kernels (F + BW + DQ + VL), compiled with -mavx512f ... only here.
#include <cpuid.h>
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {
namespace {

inline __mmask16 tail_mask(size_t r) { return (__mmask16)((1u << r) - 1); }

float inner_product(const float* x, const float* y, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail_mask(d - i);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

float l2sqr(const float* x, const float* y, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16));
        a0 = _mm512_fmadd_ps(t0, t0, a0);
        a1 = _mm512_fmadd_ps(t1, t1, a1);
    }
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail_mask(d - i);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        a0 = _mm512_fmadd_ps(t, t, a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// One row after another: the rows of a scan are one sequential stream, which
// the hardware prefetcher follows. Four rows side by side (q loaded once for
// four, four dependency chains) ran at the same speed in cache but at half
// of it from memory: one query over 100k x 384 floats took 12.0 ms against
// 5.1 ms on an AMD EPYC (Zen 4), four short streams being what the
// prefetcher picks up late.
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
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
               a3 = _mm512_setzero_ps();
        for (size_t j = 0; j < d; j += 16) {
            const __mmask16 m = d - j >= 16 ? (__mmask16)0xffff : tail_mask(d - j);
            const __m512 qq = _mm512_maskz_loadu_ps(m, q + j);
            a0 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(m, r0 + j), a0);
            a1 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(m, r1 + j), a1);
            a2 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(m, r2 + j), a2);
            a3 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(m, r3 + j), a3);
        }
        out[i] = _mm512_reduce_add_ps(a0);
        out[i + 1] = _mm512_reduce_add_ps(a1);
        out[i + 2] = _mm512_reduce_add_ps(a2);
        out[i + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; i < n; i++) out[i] = inner_product(q, rows[i], d);
}

// Sign-extends 32 int8 to int16 and multiply-adds pairs into int32 lanes:
// no overflow for any d (each pair sum is at most 2 * 128 * 128).
int32_t dot_i8(const int8_t* a, const int8_t* b, size_t d) {
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512i va = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(a + i)));
        __m512i vb = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(b + i)));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(va, vb));
    }
    if (i < d) {
        __mmask32 m = (__mmask32)((uint64_t(1) << (d - i)) - 1);
        __m512i va = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i vb = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(va, vb));
    }
    return _mm512_reduce_add_epi32(acc);
}

// With AVX512-VNNI (Ice Lake, Zen 4 and later): vpdpbusd multiplies u8 by s8,
// so a is biased to a + 128 and 128 * sum(b) taken back out. Compiled for
// VNNI in this function only; chosen at run time.
__attribute__((target("avx512vnni"))) int32_t dot_i8_vnni(const int8_t* a, const int8_t* b, size_t d) {
    const __m512i bias = _mm512_set1_epi8(char(0x80)), ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512(), sum = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512i va = _mm512_xor_si512(_mm512_loadu_si512(a + i), bias);
        __m512i vb = _mm512_loadu_si512(b + i);
        acc = _mm512_dpbusd_epi32(acc, va, vb);
        sum = _mm512_dpbusd_epi32(sum, ones, vb);
    }
    if (i < d) {  // masked lanes load 0 into b, so they add nothing
        __mmask64 m = (__mmask64)((d - i) >= 64 ? ~0ull : ((1ull << (d - i)) - 1));
        __m512i va = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), bias);
        __m512i vb = _mm512_maskz_loadu_epi8(m, b + i);
        acc = _mm512_dpbusd_epi32(acc, va, vb);
        sum = _mm512_dpbusd_epi32(sum, ones, vb);
    }
    return _mm512_reduce_add_epi32(acc) - 128 * _mm512_reduce_add_epi32(sum);
}

bool cpu_has_vnni() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return c & (1u << 11);
}

// 14 x 32 tile: 28 accumulators, 2 panel registers, broadcasts folded into
// the FMAs' memory operand: 31 of 32 zmm registers. The depth loop unrolled
// by 4 (12 x 32 rolled ran at 0.89 of this in a standalone test, 1,000 x
// 1,024 x 384; every output is still summed in order k = 0, 1, ...).
constexpr int MR = 14, NR = 32;

void gemm_micro(const float* q, const float* panel, size_t d, float* out, size_t ldo) {
    __m512 c[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (size_t k = 0; k < d; k++) {
        __m512 b0 = _mm512_loadu_ps(panel + k * NR);
        __m512 b1 = _mm512_loadu_ps(panel + k * NR + 16);
        const float* qk = q + k * MR;
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(qk[i]);
            c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(out + i * ldo, c[i][0]);
        _mm512_storeu_ps(out + i * ldo + 16, c[i][1]);
    }
}


// Four sums of four vectors each, in one xmm: [sum a, sum b, sum c, sum d].
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// 4 queries x 4 database rows per pass: 8 loads feed 16 FMAs, so the kernel
// is bound by FMAs, not loads, and each database row is read once. L2: the
// squared differences (16 subtractions more), as the single-query kernel sums.
template <bool L2>
void four_queries(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    const size_t d16 = d & ~size_t(15);
    const __mmask16 m = tail_mask(d - d16);
    const float* q0 = q;
    const float* q1 = q + d;
    const float* q2 = q + 2 * d;
    const float* q3 = q + 3 * d;
    size_t j = 0;
    for (; j + 4 <= ny; j += 4) {
        const float* x0 = x + j * d;
        __m512 acc[4][4];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
        auto step = [&](__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 w0, __m512 w1, __m512 w2, __m512 w3) {
            __m512 qs[4] = {w0, w1, w2, w3};
            for (int a = 0; a < 4; a++) {
                if (L2) {
                    const __m512 t0 = _mm512_sub_ps(qs[a], v0), t1 = _mm512_sub_ps(qs[a], v1);
                    const __m512 t2 = _mm512_sub_ps(qs[a], v2), t3 = _mm512_sub_ps(qs[a], v3);
                    acc[a][0] = _mm512_fmadd_ps(t0, t0, acc[a][0]);
                    acc[a][1] = _mm512_fmadd_ps(t1, t1, acc[a][1]);
                    acc[a][2] = _mm512_fmadd_ps(t2, t2, acc[a][2]);
                    acc[a][3] = _mm512_fmadd_ps(t3, t3, acc[a][3]);
                } else {
                    acc[a][0] = _mm512_fmadd_ps(qs[a], v0, acc[a][0]);
                    acc[a][1] = _mm512_fmadd_ps(qs[a], v1, acc[a][1]);
                    acc[a][2] = _mm512_fmadd_ps(qs[a], v2, acc[a][2]);
                    acc[a][3] = _mm512_fmadd_ps(qs[a], v3, acc[a][3]);
                }
            }
        };
        // The four rows are four short streams the hardware prefetcher
        // follows late (see distances_ny): each step fetches the next four
        // rows' next four lines in memory order, the whole next pass by the
        // end of this one. One pass over 100k x 384 rows for four queries:
        // 15.8 ms without, on an AMD EPYC.
        const char* next = reinterpret_cast<const char*>(x0 + 4 * d);  // past the end: prefetches do not fault
        for (size_t i = 0; i < d16; i += 16) {
            for (int l = 0; l < 4; l++) _mm_prefetch(next + 4 * 4 * i + 64 * l, _MM_HINT_T0);
            step(_mm512_loadu_ps(x0 + i), _mm512_loadu_ps(x0 + d + i), _mm512_loadu_ps(x0 + 2 * d + i),
                 _mm512_loadu_ps(x0 + 3 * d + i), _mm512_loadu_ps(q0 + i), _mm512_loadu_ps(q1 + i),
                 _mm512_loadu_ps(q2 + i), _mm512_loadu_ps(q3 + i));
        }
        if (d16 < d)
            step(_mm512_maskz_loadu_ps(m, x0 + d16), _mm512_maskz_loadu_ps(m, x0 + d + d16),
                 _mm512_maskz_loadu_ps(m, x0 + 2 * d + d16), _mm512_maskz_loadu_ps(m, x0 + 3 * d + d16),
                 _mm512_maskz_loadu_ps(m, q0 + d16), _mm512_maskz_loadu_ps(m, q1 + d16),
                 _mm512_maskz_loadu_ps(m, q2 + d16), _mm512_maskz_loadu_ps(m, q3 + d16));
        for (int a = 0; a < 4; a++)
            _mm_storeu_ps(out + a * ldo + j, reduce4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
    }
    for (; j < ny; j++)
        for (int a = 0; a < 4; a++) out[a * ldo + j] = L2 ? l2sqr(q + a * d, x + j * d, d) : inner_product(q + a * d, x + j * d, d);
}

void ip_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    four_queries<false>(q, x, d, ny, out, ldo);
}

void l2sqr_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    four_queries<true>(q, x, d, ny, out, ldo);
}

// |q - x| summed (Max false) or maxed; masked tails load zeros, which add nothing.
template <bool Max>
float abs_diff_reduce(const float* q, const float* x, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    auto step = [&](__m512& a, __m512 u, __m512 v) {
        const __m512 t = _mm512_abs_ps(_mm512_sub_ps(u, v));
        a = Max ? _mm512_max_ps(a, t) : _mm512_add_ps(a, t);
    };
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        step(a0, _mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i));
        step(a1, _mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(x + i + 16));
    }
    for (; i < d; i += 16) {
        const __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail_mask(d - i);
        step(a0, _mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, x + i));
    }
    return Max ? _mm512_reduce_max_ps(_mm512_max_ps(a0, a1)) : _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

void l1_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = abs_diff_reduce<false>(q, x + j * d, d);
}

void linf_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = abs_diff_reduce<true>(q, x + j * d, d);
}

}  // namespace

const SimdKernels& kernels_avx512() {
    static const SimdKernels k{SimdLevel::avx512, inner_product, l2sqr, inner_products_ny, l2sqr_ny, inner_products_rows,
                               cpu_has_vnni() ? dot_i8_vnni : dot_i8, {MR, NR}, gemm_micro,
                               vecmat_unfused_avx512, vecmat_fused_avx512, ip_4q, l2sqr_4q, pq_adc8_avx512, nearest_transposed_avx512,
                               pq4_pack_lut_avx512, pq4_scan_block_avx512, l1_ny, linf_ny, pq_sdc8_avx2, select_within_avx512};
    return k;
}

}  // namespace nearly
