// faiss's IndexResidualQuantizer: every vector stored as its residual
// quantizer code (residual_quantizer.h); a search scores all codes through
// one table of <q, codeword> per query, or on the decoded vectors
// (ST_decompress, faiss's default).
#pragma once
#include <functional>
#include <memory>

#include "nearly/index_flat_codes.h"
#include "nearly/residual_quantizer.h"

namespace nearly {

class Reader;

struct IndexResidualQuantizer : IndexFlatCodes {
    ResidualQuantizer rq;

    IndexResidualQuantizer(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2,
                           ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_decompress);
    // One codebook per entry of nbits (faiss's "RQ1x16_6x8").
    IndexResidualQuantizer(int d, const std::vector<size_t>& nbits, MetricType metric = METRIC_L2,
                           ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_decompress);

    std::string type_name() const override { return "ResidualQuantizer"; }
    void train(idx_t n, const float* x) override;
    // After rq's codebooks were set by hand and it was marked trained.
    void set_trained(bool trained) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    // Scores codes with the tables / kernels search uses (distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    static std::unique_ptr<IndexResidualQuantizer> read_body(Reader& r);

    size_t code_size() const override { return rq.code_size; }

   protected:
    // Everything of orig into this empty index of the same d and quantizer
    // shape (the fast-scan conversion), codes re-laid in this one's layout.
    void copy_from(const IndexResidualQuantizer& orig);
    // read_body for this class and its fast-scan twin: make() builds the
    // empty index of the file's d, metric and quantizer, the rest is read in.
    using Maker = std::function<std::unique_ptr<IndexResidualQuantizer>(int d, MetricType, const ResidualQuantizer&)>;
    static std::unique_ptr<IndexResidualQuantizer> read_with(Reader& r, const char* what, const Maker& make);
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
