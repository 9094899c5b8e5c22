// Batched beam search over a fixed-degree graph (the base layer of an HNSW
// index), CAGRA-style: one thread block per query keeps its best `itopk`
// candidates sorted in shared memory, expands `width` of them per step,
// scores their unvisited neighbours with one warp per neighbour, and marks
// nodes in a hashed visited set so that none is scored twice.
#pragma once
#include <cstdint>

#include "gpu_resources.h"
#include "nearly/common.h"

namespace nearly::gpu {

struct GraphSearchParams {
    int itopk = 64;        // candidates kept (rounded up to 32 ... 512; >= k; <= 256 without merge)
    int width = 1;         // nodes expanded per step
    int max_iterations = 0;  // 0: enough for the candidate list to converge
    int seed_rounds = 1;   // rounds of random starting points (each width * degree nodes)
    uint64_t seed = 0x5eed;
    // Keep the list sorted and merge each step's new candidates in, rather
    // than re-sorting everything (graph_search.cu): on an H200, 1M x 384,
    // the same recall at 1.1 to 2.9 times the queries per second.
    bool merge = true;
    // The walk scores float16 copies of the rows (half the bytes per step;
    // the merging kernel only), the final best again in float32.
    bool fp16 = false;
};

// vectors: n x d (device, float32); vectors16: the same rows in float16
// (device; needed when p.fp16); graph: n x degree rows (-1 padded); labels:
// the id of each row. xq: nq x d (device). D, I: nq x k (device).
void graph_search(GpuResources& res, const float* vectors, const uint16_t* vectors16, int64_t n, int d,
                  const int32_t* graph, int degree, int32_t entry, const int64_t* labels, MetricType metric,
                  const float* xq, int64_t nq, int k, const GraphSearchParams& p, float* D, int64_t* I);

}  // namespace nearly::gpu
