// NEON kernels for AArch64 (baseline there, no extra flags).
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "nearly/simd.h"

namespace nearly {
namespace {

float inner_product(const float* x, const float* y, size_t d) {
    float32x4_t a0 = vdupq_n_f32(0.f), a1 = vdupq_n_f32(0.f);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
        a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < d; i++) s += x[i] * y[i];
    return s;
}

float l2sqr(const float* x, const float* y, size_t d) {
    float32x4_t a0 = vdupq_n_f32(0.f), a1 = vdupq_n_f32(0.f);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        float32x4_t t0 = vsubq_f32(vld1q_f32(x + i), vld1q_f32(y + i));
        float32x4_t t1 = vsubq_f32(vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        a0 = vfmaq_f32(a0, t0, t0);
        a1 = vfmaq_f32(a1, t1, t1);
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < d; i++) {
        float t = x[i] - y[i];
        s += t * t;
    }
    return s;
}

void inner_products_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = inner_product(q, x + j * d, d);
}
void l2sqr_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = l2sqr(q, x + j * d, d);
}

void inner_products_rows(const float* q, const float* const* rows, size_t d, size_t n, float* out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r0 = rows[i], *r1 = rows[i + 1], *r2 = rows[i + 2], *r3 = rows[i + 3];
        float32x4_t a0 = vdupq_n_f32(0.f), a1 = vdupq_n_f32(0.f), a2 = vdupq_n_f32(0.f), a3 = vdupq_n_f32(0.f);
        size_t j = 0;
        for (; j + 4 <= d; j += 4) {
            const float32x4_t qq = vld1q_f32(q + j);
            a0 = vfmaq_f32(a0, qq, vld1q_f32(r0 + j));
            a1 = vfmaq_f32(a1, qq, vld1q_f32(r1 + j));
            a2 = vfmaq_f32(a2, qq, vld1q_f32(r2 + j));
            a3 = vfmaq_f32(a3, qq, vld1q_f32(r3 + j));
        }
        float s0 = vaddvq_f32(a0), s1 = vaddvq_f32(a1), s2 = vaddvq_f32(a2), s3 = vaddvq_f32(a3);
        for (; j < d; j++) {
            s0 += q[j] * r0[j];
            s1 += q[j] * r1[j];
            s2 += q[j] * r2[j];
            s3 += q[j] * r3[j];
        }
        out[i] = s0;
        out[i + 1] = s1;
        out[i + 2] = s2;
        out[i + 3] = s3;
    }
    for (; i < n; i++) out[i] = inner_product(q, rows[i], d);
}

int32_t dot_i8(const int8_t* a, const int8_t* b, size_t d) {
    int32x4_t acc = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        int8x16_t va = vld1q_s8(a + i), vb = vld1q_s8(b + i);
        acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(va), vget_low_s8(vb)));
        acc = vpadalq_s16(acc, vmull_high_s8(va, vb));
    }
    int32_t r = vaddvq_s32(acc);
    for (; i < d; i++) r += int32_t(a[i]) * int32_t(b[i]);
    return r;
}

// 8 x 8 tile: 16 accumulators of 4 lanes out of 32 q registers.
constexpr int MR = 8, NR = 8;

void gemm_micro(const float* q, const float* panel, size_t d, float* out, size_t ldo) {
    float32x4_t c[MR][2];
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = vdupq_n_f32(0.f);
    for (size_t k = 0; k < d; k++) {
        float32x4_t b0 = vld1q_f32(panel + k * NR), b1 = vld1q_f32(panel + k * NR + 4);
        float32x4_t a03 = vld1q_f32(q + k * MR), a47 = vld1q_f32(q + k * MR + 4);
        c[0][0] = vfmaq_laneq_f32(c[0][0], b0, a03, 0); c[0][1] = vfmaq_laneq_f32(c[0][1], b1, a03, 0);
        c[1][0] = vfmaq_laneq_f32(c[1][0], b0, a03, 1); c[1][1] = vfmaq_laneq_f32(c[1][1], b1, a03, 1);
        c[2][0] = vfmaq_laneq_f32(c[2][0], b0, a03, 2); c[2][1] = vfmaq_laneq_f32(c[2][1], b1, a03, 2);
        c[3][0] = vfmaq_laneq_f32(c[3][0], b0, a03, 3); c[3][1] = vfmaq_laneq_f32(c[3][1], b1, a03, 3);
        c[4][0] = vfmaq_laneq_f32(c[4][0], b0, a47, 0); c[4][1] = vfmaq_laneq_f32(c[4][1], b1, a47, 0);
        c[5][0] = vfmaq_laneq_f32(c[5][0], b0, a47, 1); c[5][1] = vfmaq_laneq_f32(c[5][1], b1, a47, 1);
        c[6][0] = vfmaq_laneq_f32(c[6][0], b0, a47, 2); c[6][1] = vfmaq_laneq_f32(c[6][1], b1, a47, 2);
        c[7][0] = vfmaq_laneq_f32(c[7][0], b0, a47, 3); c[7][1] = vfmaq_laneq_f32(c[7][1], b1, a47, 3);
    }
    for (int i = 0; i < MR; i++) {
        vst1q_f32(out + i * ldo, c[i][0]);
        vst1q_f32(out + i * ldo + 4, c[i][1]);
    }
}


// Four queries, one after the other (no faster form at this level).
void ip_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    for (int i = 0; i < 4; i++) inner_products_ny(q + i * d, x, d, ny, out + i * ldo);
}

void l2sqr_4q(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo) {
    for (int i = 0; i < 4; i++) l2sqr_ny(q + i * d, x, d, ny, out + i * ldo);
}

template <bool Max>
float abs_diff_reduce(const float* q, const float* x, size_t d) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        const float32x4_t t0 = vabdq_f32(vld1q_f32(q + i), vld1q_f32(x + i));
        const float32x4_t t1 = vabdq_f32(vld1q_f32(q + i + 4), vld1q_f32(x + i + 4));
        a0 = Max ? vmaxq_f32(a0, t0) : vaddq_f32(a0, t0);
        a1 = Max ? vmaxq_f32(a1, t1) : vaddq_f32(a1, t1);
    }
    float s = Max ? vmaxvq_f32(vmaxq_f32(a0, a1)) : vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < d; i++) {
        const float t = std::fabs(q[i] - x[i]);
        s = Max ? std::max(s, t) : s + t;
    }
    return s;
}

void l1_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = abs_diff_reduce<false>(q, x + j * d, d);
}

void linf_ny(const float* q, const float* x, size_t d, size_t ny, float* out) {
    for (size_t j = 0; j < ny; j++) out[j] = abs_diff_reduce<true>(q, x + j * d, d);
}

}  // namespace

const SimdKernels& kernels_neon() {
    static const SimdKernels k{SimdLevel::neon, inner_product, l2sqr, inner_products_ny, l2sqr_ny, inner_products_rows,
                               dot_i8, {MR, NR}, gemm_micro, vecmat_unfused_neon, vecmat_fused_neon, ip_4q, l2sqr_4q, pq_adc8_scalar, nearest_transposed_scalar,
                               pq4_pack_lut_scalar, pq4_scan_block_scalar, l1_ny, linf_ny, pq_sdc8_scalar, select_within_scalar};
    return k;
}

}  // namespace nearly
