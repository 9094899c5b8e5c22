// GpuIndexHNSW: an IndexHNSWFlat's base layer searched on the GPU (faiss
// cannot put an HNSW index on the GPU; its users ask for it). A read-only
// twin: the graph and the vectors are copied from the CPU index, adds go to
// the CPU index and a new copy is made.
#pragma once
#include <cstdint>

#include "gpu_resources.h"
#include "graph_search.h"
#include "nearly/hnsw.h"
#include "nearly/index.h"

namespace nearly::gpu {

struct GpuIndexHNSW : Index {
    ResourcesPtr res;
    int efSearch = 64;   // candidates kept per query (the CAGRA "itopk")
    GraphSearchParams params;

    GpuIndexHNSW(ResourcesPtr res, const IndexHNSWFlat& cpu);
    std::string type_name() const override { return "GpuHNSW"; }
    void add(idx_t n, const float* x) override;
    // params: SearchParametersHNSW (efSearch) or plain SearchParameters.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reset() override;
    void write_body(Writer& w) const override;
    bool has_native_ids() const override { return true; }
    int degree() const { return degree_; }

   private:
    DeviceVector<float> vectors_;
    DeviceVector<int32_t> graph_;
    DeviceVector<int64_t> labels_;
    int degree_ = 0;
    int32_t entry_ = -1;
};

}  // namespace nearly::gpu
