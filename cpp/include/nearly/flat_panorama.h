// faiss's IndexFlatPanorama (IndexFlatL2Panorama, IndexFlatIPPanorama):
// exact search over float vectors that prunes with Panorama's level bounds
// (panorama.h), with each row's tail norms kept beside the flat storage.
// Its results are IndexFlat's; it is faster where the first dimensions carry
// most of the energy (after PCA), for the few queries at a time that do not
// fill a matrix product.
#pragma once
#include <vector>

#include "nearly/flat.h"
#include "nearly/panorama.h"

namespace nearly {

struct IndexFlatPanorama : IndexFlat {
    // L2 or inner product; n_levels in [1, d]; batch_size: rows scored
    // between updates of the pruning threshold (faiss's batch).
    IndexFlatPanorama(int d, MetricType metric, size_t n_levels, size_t batch_size = kDefaultBatchSize);
    static constexpr size_t kDefaultBatchSize = 1024;

    std::string type_name() const override { return "FlatPanorama"; }
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    // k-NN among given candidates: labels (n, k_base), -1 skipped, scored
    // with pruning (faiss's search_subset; IndexRefinePanorama's second stage).
    void search_subset(idx_t n, const float* x, idx_t k_base, const idx_t* labels, idx_t k, float* D, idx_t* I) const;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexFlatPanorama> read_body(Reader& r);

    size_t n_levels() const { return pano_.n_levels; }
    size_t batch_size() const { return batch_; }
    std::vector<float> tail_norms() const;  // a copy: ntotal x (n_levels + 1)

   protected:
    void rows_changed(idx_t first) override;

   private:
    // Scores rows[0..m) (modified) for one query and pushes those that
    // beat the heap's root (D, I: a TopK heap of k) into it.
    void score_batch(const Panorama::Query& q, idx_t* rows, size_t m, size_t k, float* D, idx_t* I, float* scores,
                     uint64_t* scanned) const;

    Panorama pano_;
    size_t batch_;
    std::vector<float> tails_;  // n_levels + 1 per row
};

struct IndexFlatL2Panorama : IndexFlatPanorama {
    IndexFlatL2Panorama(int d, size_t n_levels, size_t batch_size = kDefaultBatchSize)
        : IndexFlatPanorama(d, METRIC_L2, n_levels, batch_size) {}
};
struct IndexFlatIPPanorama : IndexFlatPanorama {
    IndexFlatIPPanorama(int d, size_t n_levels, size_t batch_size = kDefaultBatchSize)
        : IndexFlatPanorama(d, METRIC_INNER_PRODUCT, n_levels, batch_size) {}
};

}  // namespace nearly
