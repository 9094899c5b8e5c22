// HNSW graph build on the GPU, by the method of nearly/graph_build.h (k-NN
// lists pruned with HNSW's heuristic, reverse links merged in, the upper
// levels the same way among their own nodes), every step a kernel:
//   - level 0's k-NN by an inverted file: each node looks into its n_probe
//     nearest lists, all nodes probing one list are scored against it in one
//     GEMM (knn_exact), a node's own list first so that its k-th best there
//     bounds the selections in the others; then each node's candidates from
//     its lists are merged (select_k). Its far candidates (nearest nodes of
//     level 1) come from the same lists. Smaller levels get exact k-NN;
//   - the heuristic: one warp per node, the kept links in shared memory;
//   - reverse links: counted and scattered with atomics, then each node's
//     forward and reverse links sorted by (score, row) in shared memory, so
//     the result does not depend on the atomics' order.
// Only the levels' node lists, the orphan fix-up (a handful of rows) and the
// final tables pass through the host.
#pragma once
#include <cstdint>

#include "gpu_resources.h"
#include "nearly/graph_build.h"

namespace nearly::gpu {

struct GpuGraphBuildParams {
    GraphBuildParams graph;         // M, knn_factor, merge_factor, seed: as the CPU build
    int n_lists = 0;                // level 0's inverted lists (0: about 1,000 nodes per list)
    int n_probe = 16;               // lists each node looks into
    int64_t exact_below = 131072;   // a level with fewer nodes gets exact k-NN
    bool verbose = false;
};

// The graph of x (n x d, on the device). level0 (optional): level 0's links
// on the device as well (n x 2M, -1 padded), for search.
HNSWLayers gpu_build_hnsw(GpuResources& res, const float* x_dev, int64_t n, int d, MetricType metric,
                          const GpuGraphBuildParams& p, DeviceVector<int32_t>* level0 = nullptr);

// The steps on their own, host tables in and out (tests compare them with
// the CPU reference). max_merge <= 256, cap <= 256.
NeighborTable gpu_prune_links(GpuResources& res, const float* x_host, int64_t n, int d, MetricType metric,
                              const NeighborTable& cands, int cap);
NeighborTable gpu_merge_reverse_links(GpuResources& res, const float* x_host, int64_t n, int d, MetricType metric,
                                      const NeighborTable& links, int cap, int max_merge);
// k-NN of the rows among themselves (self excluded): exact when n_lists == 0.
NeighborTable gpu_level_knn(GpuResources& res, const float* x_host, int64_t n, int d, MetricType metric, int k,
                            int n_lists, int n_probe);

}  // namespace nearly::gpu
