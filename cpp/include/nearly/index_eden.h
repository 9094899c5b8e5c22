// faiss's IndexEDEN: every vector stored as its EDEN code (eden.h) around
// the training vectors' mean; searches score the codes without decoding
// them, by EDEN's distance estimate (k-NN and range search alike).
#pragma once
#include <memory>
#include <vector>

#include "nearly/eden.h"
#include "nearly/index_flat_codes.h"

namespace nearly {

class Reader;

struct IndexEDEN : IndexFlatCodes {
    EdenCodec codec;
    std::vector<float> center;  // the training vectors' mean (empty until trained)

    IndexEDEN(int d, MetricType metric = METRIC_L2, size_t nb_bits = 1, bool biased = false);

    std::string type_name() const override { return "EDEN"; }
    // The center: the mean of the n vectors (n = 0: the origin, as faiss).
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexEDEN> read_body(Reader& r);
    size_t code_size() const override { return codec.code_size(); }

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
