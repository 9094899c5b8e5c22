// GpuIndexFlat: exact search with the vectors in GPU memory (faiss's
// GpuIndexFlatL2 / GpuIndexFlatIP). Inputs and outputs may be host or device
// pointers: each is checked with the CUDA runtime, so numpy, cupy and torch
// arrays all work without extra copies on the device side.
#pragma once
#include <cstdint>

#include "gpu_resources.h"
#include "nearly/flat.h"
#include "nearly/index.h"

namespace nearly::gpu {

struct GpuIndexFlat : Index {
    ResourcesPtr res;
    const bool use_float16;  // vectors stored as float16 (half the memory), tensor-core products
    bool allow_tf32 = false;  // float32 storage: let cuBLAS round products to TF32

    GpuIndexFlat(ResourcesPtr res, int d, MetricType metric, bool use_float16 = false);

    std::string type_name() const override { return "GpuFlat"; }
    void add(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    void reset() override;
    void write_body(Writer& w) const override;

    void copy_from(const IndexFlat& cpu);
    void copy_to(IndexFlat& cpu) const;
    int device() const { return res->device(); }

   private:
    void add_locked(idx_t n, const float* x);
    DeviceVector<float> xb_;
    DeviceVector<uint16_t> xb16_;
    DeviceVector<float> norms_;
};

}  // namespace nearly::gpu

namespace nearly::gpu {

// faiss's knn_gpu / bfKnn: exact k-NN of xq against xb without an index;
// each array may live on the host or the device.
void brute_force_knn(GpuResources& res, MetricType metric, const float* xq, idx_t nq, const float* xb, idx_t nb, int d,
                     int k, float* D, idx_t* I, bool use_float16 = false);

}  // namespace nearly::gpu
