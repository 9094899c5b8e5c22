// faiss's IndexResidualQuantizer: every vector stored as its residual
// quantizer code (residual_quantizer.h); a search scores all codes through
// one table of <q, codeword> per query, or on the decoded vectors
// (ST_decompress, faiss's default).
#pragma once
#include <memory>

#include "nearly/index_flat_codes.h"
#include "nearly/residual_quantizer.h"

namespace nearly {

class Reader;

struct IndexResidualQuantizer : IndexFlatCodes {
    ResidualQuantizer rq;

    IndexResidualQuantizer(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2,
                           ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_decompress);

    std::string type_name() const override { return "ResidualQuantizer"; }
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    // Scores codes with the tables / kernels search uses (distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    static std::unique_ptr<IndexResidualQuantizer> read_body(Reader& r);

    size_t code_size() const override { return rq.code_size; }

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
