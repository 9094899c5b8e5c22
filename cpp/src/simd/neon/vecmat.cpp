// vecmat_unfused and vecmat_fused with NEON: 16 outputs per pass over x. The
// unfused kernel keeps vmulq then vaddq (this file is compiled with
// -ffp-contract=off, so only vfmaq and std::fma fuse).
#include <arm_neon.h>

#include <cmath>

#include "nearly/simd.h"

namespace nearly {

namespace {

template <bool Fused>
inline float32x4_t madd(float32x4_t acc, float32x4_t x, float32x4_t w) {
    return Fused ? vfmaq_f32(acc, x, w) : vaddq_f32(acc, vmulq_f32(x, w));
}

template <bool Fused>
void vecmat(const float* x, size_t d, const float* w, size_t n, float* out) {
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < d; i++) {
            const float32x4_t xi = vdupq_n_f32(x[i]);
            const float* row = w + i * n + j;
            a0 = madd<Fused>(a0, xi, vld1q_f32(row));
            a1 = madd<Fused>(a1, xi, vld1q_f32(row + 4));
            a2 = madd<Fused>(a2, xi, vld1q_f32(row + 8));
            a3 = madd<Fused>(a3, xi, vld1q_f32(row + 12));
        }
        vst1q_f32(out + j, a0);
        vst1q_f32(out + j + 4, a1);
        vst1q_f32(out + j + 8, a2);
        vst1q_f32(out + j + 12, a3);
    }
    for (; j + 4 <= n; j += 4) {
        float32x4_t a = vdupq_n_f32(0.f);
        for (size_t i = 0; i < d; i++) a = madd<Fused>(a, vdupq_n_f32(x[i]), vld1q_f32(w + i * n + j));
        vst1q_f32(out + j, a);
    }
    for (; j < n; j++) {
        float a = 0.f;
        for (size_t i = 0; i < d; i++) a = Fused ? std::fma(x[i], w[i * n + j], a) : a + x[i] * w[i * n + j];
        out[j] = a;
    }
}

}  // namespace

void vecmat_unfused_neon(const float* x, size_t d, const float* w, size_t n, float* out) {
    vecmat<false>(x, d, w, n, out);
}

void vecmat_fused_neon(const float* x, size_t d, const float* w, size_t n, float* out) {
    vecmat<true>(x, d, w, n, out);
}

}  // namespace nearly
