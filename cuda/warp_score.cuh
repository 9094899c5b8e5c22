// The score of one vector against another by one warp: lane l adds
// coordinates l, l + 32, ... with fused multiply-adds, then a xor butterfly
// combines the lanes. Floating-point addition commutes, so every lane ends
// with the same value. Smaller is better: squared L2, or minus the inner product.
#pragma once
#include <cuda_runtime.h>

namespace nearly::gpu {

__device__ inline float warp_score(const float* q, const float* x, int d, bool l2, int lane) {
    float acc = 0.f;
    if (l2) {
        for (int j = lane; j < d; j += 32) {
            float t = q[j] - x[j];
            acc = fmaf(t, t, acc);
        }
    } else {
        for (int j = lane; j < d; j += 32) acc = fmaf(q[j], x[j], acc);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return l2 ? acc : -acc;
}

}  // namespace nearly::gpu
