// faiss's IndexScalarQuantizer: every vector stored as its ScalarQuantizer
// code (code_size bytes: d / 2 for 4 bits, 3d / 4 for 6 bits, d for 8 bits,
// 2d for fp16 / bf16); a search scores blocks of codes without decoding them
// (sq_scan.h).
#pragma once
#include <memory>
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/scalar_quantizer.h"

namespace nearly {

class Reader;

// A ScalarQuantizer's persisted state (type, range statistic, ranges), shared
// by the flat and IVF indexes; read_sq checks it against d.
void write_sq(Writer& w, const ScalarQuantizer& sq);
ScalarQuantizer read_sq(Reader& r, int d, const char* who);

struct IndexScalarQuantizer : IndexFlatCodes {
    ScalarQuantizer sq;

    IndexScalarQuantizer(int d, ScalarQuantizer::QuantizerType qtype, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "ScalarQuantizer"; }
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    // Scores codes with the tables / kernels search uses (distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    static std::unique_ptr<IndexScalarQuantizer> read_body(Reader& r);

    size_t code_size() const override { return sq.code_size; }
    // faiss's `index.sq = other`: the other quantizer's type and ranges (the
    // same d and type), while the index holds no codes; trained with them.
    void set_quantizer(const ScalarQuantizer& other);

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
