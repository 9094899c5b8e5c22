// GpuIndexHNSW: an IndexHNSWFlat's base layer searched on the GPU (faiss
// cannot put an HNSW index on the GPU; its users ask for it). Either a
// read-only twin of a CPU index (the graph and the vectors are copied; adds
// go to the CPU index and a new copy is made), or an empty index whose one
// add builds the whole graph on the GPU (graph_build.h), which to_cpu turns
// into an IndexHNSWFlat.
#pragma once
#include <cstdint>

#include "gpu_resources.h"
#include "graph_build.h"
#include "graph_search.h"
#include "nearly/hnsw.h"
#include "nearly/index.h"

namespace nearly::gpu {

struct GpuIndexHNSW : Index {
    ResourcesPtr res;
    int efSearch = 64;   // candidates kept per query (the CAGRA "itopk")
    GraphSearchParams params;

    GpuGraphBuildParams build;  // how add builds the graph

    GpuIndexHNSW(ResourcesPtr res, const IndexHNSWFlat& cpu);
    GpuIndexHNSW(ResourcesPtr res, int d, int M, MetricType metric);
    std::string type_name() const override { return "GpuHNSW"; }
    // Builds the graph of x on the GPU (host or device array); only into an
    // empty index made with (d, M, metric).
    void add(idx_t n, const float* x) override;
    // params: SearchParametersHNSW (efSearch) or plain SearchParameters.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reset() override;
    void write_body(Writer& w) const override;
    bool has_native_ids() const override { return true; }
    int degree() const { return degree_; }
    // The CPU index with the graph built here, every level of it.
    std::unique_ptr<IndexHNSWFlat> to_cpu() const;

   private:
    DeviceVector<float> vectors_;
    mutable DeviceVector<uint16_t> vectors16_;  // float16 rows for params.fp16, made on first use
    DeviceVector<int32_t> graph_;
    DeviceVector<int64_t> labels_;
    int degree_ = 0;
    int32_t entry_ = -1;
    int build_M_ = 0;  // > 0: made to build its own graph
    std::shared_ptr<const HNSWLayers> layers_;
};

}  // namespace nearly::gpu
