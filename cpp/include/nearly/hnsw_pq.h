// faiss's IndexHNSWPQ: an HNSW graph whose nodes hold nothing but a product
// quantization code (pq_m bytes at 8 bits, instead of 4d for a float vector),
// for graphs that must fit in little memory. Searches walk the graph on
// asymmetric distances (the float query's table against each node's code,
// ADC) and return those distances, as faiss does; wrap it in an
// IndexRefineFlat for exact ones.
//
// Building walks with the float vector being added (ADC) and prunes on code
// to code distances (SDC), as faiss does (faiss prunes an inner-product
// graph on L2 SDC; nearly on the metric it links by, see graph_ip()).
// Deletion, filtered search and concurrent adds are those of the float HNSW
// index (hnsw.h).
#pragma once
#include <memory>
#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/hnsw.h"
#include "nearly/pq.h"

namespace nearly {

struct IndexHNSWPQ : Index, HNSWGraph {
    // Trained by train(), like IndexPQ's (nbits 8 or 4). A copy is safe to
    // read; replacing its centroids must go through set_centroids().
    ProductQuantizer pq;

    IndexHNSWPQ(int d, int pq_m, int M = 32, int pq_nbits = 8, MetricType metric = METRIC_L2);
    ~IndexHNSWPQ() override;

    std::string type_name() const override { return "HNSWPQ"; }
    // Trains the product quantizer on an empty index (on a filled one the
    // stored codes would belong to the old codebooks: raises).
    void train(idx_t n, const float* x) override;
    void set_trained(bool trained) override;  // after pq.centroids were set by hand
    // Codebooks from elsewhere (M * ksub * dsub floats), on an empty index.
    void set_centroids(const std::vector<float>& centroids);
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // D: the ADC estimates (squared L2 ascending, inner product descending).
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;  // the decoded code
    // Scores the stored vectors (their reconstructions; distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override {
        return std::make_unique<ReconstructDistanceComputer>(*this);
    }
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    bool has_native_ids() const override { return true; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexHNSWPQ> read_body(Reader& r);
    size_t memory_bytes() const;  // codes, links, id map and codebooks

    // Whether the graph is linked by inner product: only for an
    // inner-product index trained on vectors of unequal norms (true until
    // trained). On vectors of one norm L2 ranks as inner product does, and
    // its pruning is not misled by the codes' unequal norms (on the real
    // embeddings: a 3x faster build at the same recall); on unequal norms
    // (maximum inner product search) L2 links would cost recall.
    bool graph_ip() const { return graph_ip_; }

   private:
    bool graph_ip_;
    void add_impl(idx_t n, const float* x, const idx_t* ids);
};

}  // namespace nearly
