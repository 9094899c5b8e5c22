// faiss's IndexFlatPanorama (IndexFlatL2Panorama, IndexFlatIPPanorama):
// exact search over float vectors that prunes with Panorama's level bounds
// (panorama.h). Its results are IndexFlat's; it reads less where the first
// dimensions carry most of the energy (after a PCA).
//
// The vectors are stored level-major within batches of batch_size rows, as
// faiss does: a batch holds every row's level 0, then every row's level 1,
// ...; the tail norms likewise. The first level, read for every row, is one
// sequential stream of exactly the bytes needed, and a level's survivors lie
// in one block. A first version kept IndexFlat's rows (a level a stretch of
// each row), one dot-product call per row and level: 0.76x faiss's speed at
// 8 levels, 0.2x at 32. Every level is padded to the same width with zeros.
#pragma once
#include <vector>

#include "nearly/huge_pages.h"
#include "nearly/index.h"
#include "nearly/panorama.h"

namespace nearly {

class Reader;

struct IndexFlatPanorama : Index {
    // L2 or inner product; n_levels in [1, d]; batch_size: rows stored
    // together, and scored between updates of the pruning threshold.
    IndexFlatPanorama(int d, MetricType metric, size_t n_levels, size_t batch_size = kDefaultBatchSize);
    static constexpr size_t kDefaultBatchSize = 1024;

    std::string type_name() const override { return "FlatPanorama"; }
    void add(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    // k-NN among given candidates: labels (n, k_base), -1 skipped, scored
    // with pruning (faiss's search_subset; IndexRefinePanorama's second stage).
    void search_subset(idx_t n, const float* x, idx_t k_base, const idx_t* labels, idx_t k, float* D, idx_t* I) const;
    void reconstruct(idx_t key, float* out) const override { reconstruct_n(key, 1, out); }
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    // Compacts the storage: later ids shift down, like faiss.
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    // Appends the rows of another IndexFlatPanorama or IndexFlat (same d and
    // metric; any levels and batch size), which is left empty.
    void merge_from(Index& other, idx_t add_id = 0) override;
    // Row i becomes old row perm[i].
    void permute_entries(const idx_t* perm);
    size_t sa_code_size() const override { return size_t(d) * sizeof(float); }
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexFlatPanorama> read_body(Reader& r);

    size_t n_levels() const { return pano_.n_levels; }
    size_t batch_size() const { return batch_; }
    std::vector<float> tail_norms() const;  // a copy: ntotal x (n_levels + 1)

   protected:
    void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const override;

   private:
    // Row r's level-l dimensions, and its tail norm from level l (l <= n_levels).
    const float* slice(idx_t r, size_t l) const {
        const size_t b = size_t(r) / batch_, i = size_t(r) % batch_, w = pano_.width;
        return data_.data() + (b * pano_.n_levels + l) * batch_ * w + i * w;
    }
    float tail(idx_t r, size_t l) const {
        const size_t b = size_t(r) / batch_, i = size_t(r) % batch_;
        return tails_[(b * (pano_.n_levels + 1) + l) * batch_ + i];
    }
    void copy_row(idx_t r, float* out) const;  // row r's d floats, in dimension order
    // The rows one after the other (row perm[i] i-th when perm is given).
    std::vector<float> rows_in_order(const idx_t* perm = nullptr) const;
    void store_rows(const float* x, size_t n);  // appends n rows (the lock held)
    void clear_rows();
    // From this many queries a search scores whole batches by matrix
    // products: faster than pruning one query at a time (bench/panorama.py).
    static constexpr size_t kProductQueries = 32;
    // Scores rows[0..m) (modified) for q and hands the survivors to sink.
    // batch: the batch every row lies in, or -1 (rows anywhere).
    template <class Sink>
    void score(const Panorama::Query& q, idx_t* rows, size_t m, long batch, float threshold, float* scores,
               uint64_t* scanned, Sink&& sink) const;

    Panorama pano_;
    size_t batch_;
    // batches x n_levels x batch_ x width, level-major per batch; in huge
    // pages (the later levels read scattered rows).
    std::vector<float, HugePageAllocator<float>> data_;
    std::vector<float> tails_;  // batches x (n_levels + 1) x batch_, level-major per batch like data_
    std::vector<float> norms_;  // squared norms (L2)
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
