// GpuIndexMuvera: an IndexMuvera (python/nearly/multivector.py) searched end
// to end on the GPU. Query sets are encoded to FDEs by GpuFdeEncoder, the
// GPU copy of the inner index returns k * k_factor candidates, their labels
// become store positions (sorted, duplicates and misses dropped, as
// MultiVectorStore::rerank does), the candidates are scored by the Chamfer
// kernel on the token vectors held on the device, and select_k keeps the k
// best. A read-only copy, like GpuIndexHNSW: documents are added to the CPU
// index, which is copied again.
#pragma once
#include <cstdint>
#include <memory>

#include "chamfer_gpu.h"
#include "fde_gpu.h"
#include "gpu_resources.h"
#include "nearly/fde.h"
#include "nearly/idmap.h"
#include "nearly/index.h"
#include "nearly/multivector.h"

namespace nearly::gpu {

class GpuIndexMuvera {
   public:
    // query_encoder: the CPU index's query encoder (fill_empty_partitions
    // off). cpu_inner: the CPU index's IndexIDMap (its id_map turns the
    // sub-index's labels into document keys, unless the sub-index keeps the
    // keys itself). inner: the GPU copy of cpu_inner.index, or null when the
    // store is empty. store: the token vectors, copied to the device.
    GpuIndexMuvera(ResourcesPtr res, std::shared_ptr<const FdeEncoder> query_encoder, IndexPtr inner,
                   const IndexIDMap& cpu_inner, const MultiVectorStore& store, bool ball_carving, float tau);

    // Query sets ragged (q host or device, lengths host), D / I (nq x k) host
    // or device: Chamfer scores descending and document ids, padded with
    // -FLT_MAX / -1. n_cand: candidates asked of the inner index (k *
    // k_factor, at most 2048 on the GPU); params go to the inner search.
    void search(const float* q, size_t n_query_vectors, const int64_t* query_lengths, size_t nq, size_t k,
                size_t n_cand, const SearchParameters* params, float* D, idx_t* I) const;

    int dim() const { return d_; }
    size_t n_docs() const { return size_t(n_docs_); }
    size_t n_vectors() const { return n_vectors_; }
    bool fp16() const { return fp16_; }
    size_t fde_dim() const { return encoder_.output_dimension(); }
    int device() const { return res_->device(); }

   private:
    ResourcesPtr res_;
    GpuFdeEncoder encoder_;
    IndexPtr inner_;
    bool ball_carving_;
    float tau_;
    int d_;
    bool fp16_;
    int64_t n_docs_ = 0;
    size_t n_vectors_ = 0;
    DeviceVector<float> f32_;
    DeviceVector<uint16_t> f16_;
    DeviceVector<int64_t> offsets_, ids_, keys_;
    DeviceVector<int64_t> id_map_;  // inner label -> key, when the inner index does not return keys
    bool has_id_map_ = false;
};

}  // namespace nearly::gpu
