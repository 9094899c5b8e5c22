// faiss's IndexScalarQuantizer: every vector stored as its ScalarQuantizer
// code (code_size bytes: d for QT_8bit, 2d for QT_fp16); a search decodes
// blocks of codes to floats and scores them with the SIMD row kernels.
#pragma once
#include <memory>
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/scalar_quantizer.h"

namespace nearly {

class Reader;

struct IndexScalarQuantizer : IndexFlatCodes {
    ScalarQuantizer sq;

    IndexScalarQuantizer(int d, ScalarQuantizer::QuantizerType qtype, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "ScalarQuantizer"; }
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexScalarQuantizer> read_body(Reader& r);

    size_t code_size() const override { return sq.code_size; }

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
