// GPU inverted-file indexes (faiss's GpuIndexIVFFlat / GpuIndexIVFPQ): the
// coarse centroids, and every list's codes and ids concatenated list after
// list, live on the device. A search finds the nprobe nearest lists with the
// exact-k-NN engine, scores each (query, list) pair in one thread block that
// keeps its k best, and merges those per query. Training runs the k-means
// iterations on the device (faiss's sampling and split rules), adding
// assigns and encodes on the device.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "gpu_resources.h"
#include "nearly/index.h"
#include "nearly/ivf.h"
#include "nearly/kmeans.h"

namespace nearly::gpu {

struct GpuIndexIVF : Index {
    ResourcesPtr res;
    const size_t nlist;
    size_t nprobe = 1;
    const size_t code_size;
    ClusteringParameters cp;  // coarse k-means: faiss's IVF defaults (10 iterations, spherical for IP)

    GpuIndexIVF(ResourcesPtr res, int d, size_t nlist, size_t code_size, MetricType metric);

    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reset() override;
    void write_body(Writer& w) const override;
    bool has_native_ids() const override { return true; }

    int device() const { return res->device(); }
    size_t list_size(size_t l) const { return size_t(offsets_[l + 1] - offsets_[l]); }
    // Host copies of the coarse centroids and of one list (codes, ids).
    std::vector<float> centroids() const;
    void list_contents(size_t l, std::vector<uint8_t>& codes, std::vector<idx_t>& ids) const;

   protected:
    // ---- what a family provides (device pointers, the call lock held) ----
    virtual void train_encoder(idx_t n, const float* x_dev, const int64_t* assign_dev) = 0;
    virtual void encode(idx_t n, const float* x_dev, const int64_t* assign_dev, uint8_t* codes_dev) const = 0;
    // Scores the probed lists of nq queries: per query at most np * k
    // candidates, as keys where smaller is better, rows of `returned` columns
    // (the value returned).
    virtual int scan(const float* xq_dev, idx_t nq, const float* coarse_d, const int64_t* coarse_i, int np, int k,
                     float* cand, int64_t* cand_ids) const = 0;

    // Copies from a CPU index of the same family (centroids from its quantizer).
    void copy_lists_from(const IndexIVF& cpu);
    // Appends entries (device arrays) to the lists, the call lock held.
    void insert(idx_t n, const int64_t* assign_dev, const uint8_t* codes_dev, const idx_t* ids_dev);
    void set_centroids(const float* c_host);
    void check_trained(const char* what) const;

    DeviceVector<float> centroids_, centroid_norms_;
    DeviceVector<uint8_t> codes_;
    DeviceVector<idx_t> ids_;
    DeviceVector<int64_t> offsets_dev_;
    std::vector<int64_t> offsets_;  // nlist + 1, host mirror
    bool centroids_ready_ = false;

   private:
    void add_core(idx_t n, const float* x, const idx_t* ids);
};

struct GpuIndexIVFFlat : GpuIndexIVF {
    GpuIndexIVFFlat(ResourcesPtr res, int d, size_t nlist, MetricType metric);
    std::string type_name() const override { return "GpuIVFFlat"; }
    void copy_from(const IndexIVF& cpu);  // an IndexIVFFlat
    std::shared_ptr<IndexIVF> to_cpu() const;

   protected:
    void train_encoder(idx_t, const float*, const int64_t*) override {}
    void encode(idx_t n, const float* x_dev, const int64_t* assign_dev, uint8_t* codes_dev) const override;
    int scan(const float* xq_dev, idx_t nq, const float* coarse_d, const int64_t* coarse_i, int np, int k,
             float* cand, int64_t* cand_ids) const override;
};

// By residual (x - centroid), 8-bit codes, M sub-quantizers, like faiss's
// default IVFPQ. Distances from per-(query, list) tables in shared memory,
// built from two precomputed parts: <q_m, C_m[j]> for every query (one GEMM
// against the block-diagonal codebook) and, for L2, ||C_m[j]||^2 +
// 2 <c_m, C_m[j]> for every list (faiss's precomputed table).
struct GpuIndexIVFPQ : GpuIndexIVF {
    const size_t M, nbits, dsub;
    ClusteringParameters pq_cp;  // sub-quantizer k-means: faiss's PQ defaults (25 iterations)
    bool use_float16_tables = false;  // faiss's useFloat16LookupTables

    GpuIndexIVFPQ(ResourcesPtr res, int d, size_t nlist, size_t M, size_t nbits, MetricType metric);
    std::string type_name() const override { return "GpuIVFPQ"; }
    // The codebook, M x 256 x dsub (faiss's layout), on the host.
    std::vector<float> pq_centroids() const;
    // From a CPU IndexIVFPQ: its centroids, codebook and lists.
    void copy_from(const IndexIVF& cpu, const float* pq_centroids);

   protected:
    void train_encoder(idx_t n, const float* x_dev, const int64_t* assign_dev) override;
    void encode(idx_t n, const float* x_dev, const int64_t* assign_dev, uint8_t* codes_dev) const override;
    int scan(const float* xq_dev, idx_t nq, const float* coarse_d, const int64_t* coarse_i, int np, int k,
             float* cand, int64_t* cand_ids) const override;

   private:
    void set_codebook(const float* pq_host);  // fills the block matrix and the list tables
    std::vector<float> pq_host_;
    DeviceVector<float> pq_;      // M x 256 x dsub
    DeviceVector<float> block_;   // (M * 256) x d, block-diagonal
    DeviceVector<float> list_tab_;  // nlist x M x 256 (L2 only)
};

}  // namespace nearly::gpu
