// Exact k-NN on the GPU: distances a tile at a time on the tensor cores
// (cuBLAS), each tile reduced to k candidates per query straight away, so the
// full nq x nb matrix never exists; only a tile that fits the L2 cache does.
#pragma once
#include <cstdint>
#include <functional>

#include "gpu_resources.h"
#include "nearly/common.h"

namespace nearly::gpu {

struct KnnArgs {
    MetricType metric = METRIC_L2;
    const float* xq = nullptr;  // nq x d, device
    int64_t nq = 0;
    const void* xb = nullptr;  // nb x d, device: float32, or float16 when xb_fp16
    bool xb_fp16 = false;
    const float* xb_norms = nullptr;  // squared norms of xb (L2 only), device
    int64_t nb = 0;
    int d = 0;
    int k = 1;            // 1..kMaxSelectK
    bool tf32 = false;    // float32 data: let the tensor cores round to TF32
    int64_t id_offset = 0;  // added to every returned id
    // Per query row (nq, device) or null: only keys below it are kept (in the
    // selection's terms: L2 ||x||^2 - 2 <q, x>, inner product -<q, x>). A
    // bound known in advance (the k-th best of a query's nearest list, when
    // its other lists are scanned) skips most of the selection's work; a row
    // with fewer than k keys below its bound gets missing results (id -1).
    const float* bound_keys = nullptr;
    float* D = nullptr;   // nq x k, device
    int64_t* I = nullptr;  // nq x k, device
    // Another distance (binary codes): fills tile (rows x cols, row-major)
    // with keys where smaller is better for queries q0.. and database rows
    // j0..; D then holds those keys. xq / xb / metric are not used.
    std::function<void(int64_t q0, int64_t rows, int64_t j0, int64_t cols, float* tile)> tile_fn;
};

// A float32 request: nq rows xq against nb rows xb (xb_norms for L2).
KnnArgs float_knn(MetricType metric, const float* xq, int64_t nq, const float* xb, const float* xb_norms, int64_t nb,
                  int d, int k, bool tf32, float* D, int64_t* I);

void knn_exact(GpuResources& res, const KnnArgs& a);

}  // namespace nearly::gpu
