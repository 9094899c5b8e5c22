// faiss's IndexHNSWSQ for every ScalarQuantizer type: an HNSW graph whose
// nodes hold nothing but the vector's ScalarQuantizer code (d / 2 bytes at 4
// bits, 3d / 4 at 6 bits, d at 8 bits), for graphs that must fit in little
// memory. A search walks on the float query against the codes (scored
// without decoding them, sq_scan.h) and returns those distances, as faiss
// does; wrap it in an IndexRefineFlat for exact ones.
//
// Building walks with the float vector being added and prunes on code to
// code distances (both decoded), as faiss does. Deletion, filtered search
// and concurrent adds are those of the float HNSW index (hnsw.h).
//
// nearly's own IndexHNSWSQ (hnsw.h) serves QT_8bit, QT_fp16 and QT_bf16 with
// a per-vector int8 walk copy; this class serves the other types (the
// factory's HNSW32,SQ4 / SQ6 / SQ8_direct ...), and QT_8bit too when asked
// for by name.
#pragma once
#include <memory>

#include "nearly/distance_computer.h"
#include "nearly/hnsw.h"
#include "nearly/scalar_quantizer.h"

namespace nearly {

struct IndexHNSWSQCodes : Index, HNSWGraph {
    // Trained by train() (the ranges of the types that have them); a
    // reference is safe to read, and to change the range statistic before
    // training.
    ScalarQuantizer sq;

    IndexHNSWSQCodes(int d, ScalarQuantizer::QuantizerType qtype, int M = 32, MetricType metric = METRIC_L2);
    ~IndexHNSWSQCodes() override;

    std::string type_name() const override { return "HNSWSQCodes"; }
    // Learns the ranges on an empty index (on a filled one the stored codes
    // would belong to the old ranges: raises).
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // D: the scores of the decoded vectors (squared L2 ascending, inner
    // product descending).
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
    static std::unique_ptr<IndexHNSWSQCodes> read_body(Reader& r);
    size_t memory_bytes() const;  // codes, links, id map and ranges

   private:
    void add_impl(idx_t n, const float* x, const idx_t* ids);
};

}  // namespace nearly
