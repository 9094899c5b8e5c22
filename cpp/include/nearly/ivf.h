// Inverted-file index (faiss's IndexIVFFlat): a coarse quantizer (any Index,
// usually IndexFlat over nlist k-means centroids) sends each vector to its
// nearest centroid's list; a search scans only the nprobe lists nearest to
// the query, exactly.
#pragma once
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nearly/index.h"
#include "nearly/kmeans.h"

namespace nearly {

class Reader;

struct SearchParametersIVF : SearchParameters {
    size_t nprobe = 1;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersIVF>(*this); }
};

struct IndexIVFFlat : Index {
    IndexPtr quantizer;
    size_t nlist;
    size_t nprobe = 1;  // lists scanned per query; clipped to nlist like faiss
    // k-means settings for train(): faiss's IVF defaults (10 iterations,
    // spherical for inner product).
    ClusteringParameters cp;

    IndexIVFFlat(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "IVFFlat"; }
    // Trains the quantizer with k-means on x, unless it already holds nlist
    // centroids (then there is nothing to learn, as in faiss).
    void train(idx_t n, const float* x) override;
    // Ids are ntotal, ntotal + 1, ... like faiss.
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // params: SearchParametersIVF (nprobe, sel) or plain SearchParameters (sel).
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    // All vectors of the nprobe nearest lists within radius (L2: < radius,
    // IP: > radius), in list-scan order per query.
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    // Removes the stored ids the selector accepts; the others keep their ids.
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    // faiss's make_direct_map: an id -> (list, offset) table, kept up to date
    // by add, remove_ids and reset, so that reconstruct() can find a vector.
    // make_direct_map(false) drops it.
    void make_direct_map(bool enable = true);
    bool has_direct_map() const { return direct_map_; }
    void reconstruct(idx_t key, float* out) const override;
    bool has_native_ids() const override { return true; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFFlat> read_body(Reader& r);

    size_t list_size(size_t list_no) const;
    std::vector<idx_t> list_ids(size_t list_no) const;

   private:
    void add_core(idx_t n, const float* x, const idx_t* ids);  // ids null: sequential
    void refresh_trained();
    size_t effective_nprobe(const SearchParameters* params) const;
    // The two scan strategies of search(); coarse: n * np list numbers.
    void search_by_query(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const IDSelector* sel,
                         float* D, idx_t* I) const;
    void search_by_list(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const IDSelector* sel,
                        float* D, idx_t* I) const;
    // One inverted list: vectors row-major, ids beside them.
    struct List {
        std::vector<float> vectors;
        std::vector<idx_t> ids;
    };
    std::vector<List> lists_;
    void rebuild_direct_map();  // caller holds the write lock
    bool direct_map_ = false;
    std::unordered_map<idx_t, std::pair<size_t, size_t>> where_;
};

}  // namespace nearly
