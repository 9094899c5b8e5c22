// vecmat_unfused with NEON: 16 outputs per pass over x, vmulq then vaddq
// (this file is compiled with -ffp-contract=off, so nothing is fused).
#include <arm_neon.h>

#include "nearly/simd.h"

namespace nearly {

void vecmat_unfused_neon(const float* x, size_t d, const float* w, size_t n, float* out) {
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < d; i++) {
            const float32x4_t xi = vdupq_n_f32(x[i]);
            const float* row = w + i * n + j;
            a0 = vaddq_f32(a0, vmulq_f32(xi, vld1q_f32(row)));
            a1 = vaddq_f32(a1, vmulq_f32(xi, vld1q_f32(row + 4)));
            a2 = vaddq_f32(a2, vmulq_f32(xi, vld1q_f32(row + 8)));
            a3 = vaddq_f32(a3, vmulq_f32(xi, vld1q_f32(row + 12)));
        }
        vst1q_f32(out + j, a0);
        vst1q_f32(out + j + 4, a1);
        vst1q_f32(out + j + 8, a2);
        vst1q_f32(out + j + 12, a3);
    }
    for (; j + 4 <= n; j += 4) {
        float32x4_t a = vdupq_n_f32(0.f);
        for (size_t i = 0; i < d; i++) a = vaddq_f32(a, vmulq_f32(vdupq_n_f32(x[i]), vld1q_f32(w + i * n + j)));
        vst1q_f32(out + j, a);
    }
    for (; j < n; j++) {
        float a = 0.f;
        for (size_t i = 0; i < d; i++) a += x[i] * w[i * n + j];
        out[j] = a;
    }
}

}  // namespace nearly
