// faiss's IndexIVFIndependentQuantizer: an IVF index whose lists are chosen
// by a quantizer that sees the input vectors, while the IVF index stores and
// scans them after a transform vt (a PCA to fewer dimensions, a selection of
// coordinates; none: the same vectors). The IVF index's own quantizer holds
// the transformed centroids, so its residuals and the scan's centroid terms
// are those of its own space (faiss hands the scan the input space's
// centroid distances and turns precomputed tables off for that reason).
#pragma once
#include <memory>

#include "nearly/ivf.h"
#include "nearly/kmeans.h"
#include "nearly/transform.h"

namespace nearly {

struct IndexIVFIndependentQuantizer : Index {
    IndexPtr quantizer;
    std::shared_ptr<IndexIVF> index_ivf;
    TransformPtr vt;  // null: the IVF index takes the vectors as they are
    // The quantizer's k-means when train() has to run it (faiss's
    // Level1Quantizer: 10 iterations).
    ClusteringParameters cp;

    IndexIVFIndependentQuantizer(IndexPtr quantizer, std::shared_ptr<IndexIVF> index_ivf, TransformPtr vt);
    std::string type_name() const override { return "IVFIndependentQuantizer"; }
    // The quantizer (k-means of nlist centroids unless it holds them), vt,
    // the IVF index's quantizer (the transformed centroids) and its encoder,
    // trained on the transformed vectors with the quantizer's assignment.
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // params: SearchParametersIVF (nprobe, selector, quantizer_params, ...).
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFIndependentQuantizer> read_body(Reader& r);
    // ntotal and is_trained read again from the parts (changed through them).
    void sync_from_parts();

   private:
    std::vector<float> transformed(idx_t n, const float* x) const;
    // The nprobe lists of each query, chosen by the quantizer (n x np).
    std::vector<idx_t> probed_lists(idx_t n, const float* x, const SearchParameters* params, size_t* np) const;
    void add_core(idx_t n, const float* x, const idx_t* ids);
};

}  // namespace nearly
