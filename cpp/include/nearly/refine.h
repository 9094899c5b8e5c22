// Re-ranking: a fast approximate index proposes k * k_factor candidates, a
// second, more precise index scores them again (faiss's IndexRefine, factory
// suffix ",Refine(SQfp16)"); IndexRefineFlat keeps the float vectors
// themselves (suffix ",RFlat") and reads their rows directly.
#pragma once
#include <memory>

#include "nearly/flat.h"
#include "nearly/index.h"

namespace nearly {

class Reader;

struct IndexRefineSearchParameters : SearchParameters {
    float k_factor = 1;
    std::shared_ptr<SearchParameters> base_index_params;
    std::unique_ptr<SearchParameters> clone() const override {
        return std::make_unique<IndexRefineSearchParameters>(*this);
    }
};

struct IndexRefine : Index {
    IndexPtr base_index;
    IndexPtr refine_index;  // scores the candidates: reconstruct() + exact distance
    float k_factor = 1;

    // Both empty, same d and metric.
    IndexRefine(IndexPtr base_index, IndexPtr refine_index);

    std::string type_name() const override { return "Refine"; }
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    // params: IndexRefineSearchParameters, or plain SearchParameters whose
    // selector is handed to the base index.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    // The base index's range (its own scores), re-scored exactly by the
    // refine index and kept where the exact score is within radius.
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    void reset() override;
    // The base index's code, then the refine index's (faiss's layout);
    // decoding reads the refine part, the more precise one.
    size_t sa_code_size() const override { return base_index->sa_code_size() + refine_index->sa_code_size(); }
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexRefine> read_body(Reader& r);

   protected:
    void sync();
    void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const override;
};

// faiss's IndexRefinePanorama (suffix ",RefinePanorama(FlatL2Panorama8_1)"):
// a refine index that is an IndexFlatPanorama scores the candidates with
// pruning. nearly's IndexRefine does so too; this is faiss's name for it.
struct IndexRefinePanorama : IndexRefine {
    IndexRefinePanorama(IndexPtr base_index, IndexPtr refine_index)
        : IndexRefine(std::move(base_index), std::move(refine_index)) {}
    std::string type_name() const override { return "RefinePanorama"; }
    static std::unique_ptr<IndexRefinePanorama> read_body(Reader& r);
};

struct IndexRefineFlat : IndexRefine {
    explicit IndexRefineFlat(IndexPtr base_index);
    std::string type_name() const override { return "RefineFlat"; }
    static std::unique_ptr<IndexRefineFlat> read_body(Reader& r);
};

}  // namespace nearly
