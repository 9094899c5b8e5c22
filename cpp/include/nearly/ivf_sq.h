// faiss's IndexIVFScalarQuantizer: the IVF family whose code is the
// ScalarQuantizer code of the residual x - centroid (by_residual, faiss's
// default) or of x itself. The scan scores the codes without decoding them
// (sq_scan.h):
//   L2: ||q - c - r||^2 = ||(q - c) - r||^2: the query's residual per list;
//   IP: <q, c + r> = <q, c> + <q, r>: the coarse score plus one inner product.
#pragma once
#include <memory>

#include "nearly/ivf.h"
#include "nearly/scalar_quantizer.h"

namespace nearly {

// faiss's IVFSQTurboQSearchParameters: qb and int_qjl choose faiss's integer
// popcount approximations of the TurboQuant estimate (the query quantized
// to qb bits). nearly's kernels score the float query, exactly, at SIMD
// speed, so it keeps them for code that sets them and scores the same.
struct IVFSQTurboQSearchParameters : SearchParametersIVF {
    uint8_t qb = 0;
    bool int_qjl = false;
    std::unique_ptr<SearchParameters> clone() const override {
        return std::make_unique<IVFSQTurboQSearchParameters>(*this);
    }
};

struct IndexIVFScalarQuantizer : IndexIVF {
    ScalarQuantizer sq;

    IndexIVFScalarQuantizer(IndexPtr quantizer, int d, size_t nlist, ScalarQuantizer::QuantizerType qtype,
                            MetricType metric = METRIC_L2, bool by_residual = true);

    std::string type_name() const override { return "IVFScalarQuantizer"; }
    // faiss's `index.sq = other.sq`: the same d and qtype, only while the
    // index holds no codes.
    void set_sq(const ScalarQuantizer& other);
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFScalarQuantizer> read_body(Reader& r);

   protected:
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    void write_encoder_state(Writer& w) const override;
    // faiss trains the codec on all the training vectors (no subsampling).
    idx_t train_encoder_num_vectors() const override { return sq.needs_training() ? idx_t(1) << 35 : 0; }
    bool encoder_trained() const override { return sq.is_trained(); }
    bool metric_settable() const override { return true; }
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    // Batches of many queries per list: the queries probing a list score its
    // codes in groups that widen each code once (SQScorer::scores_group).
    size_t min_queries_per_list() const override { return sq.zero_bit() ? 0 : 4; }
    void scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq, const float* xq,
                         const float* coarse_dis, size_t k, const IDSelector* sel, float* dis,
                         idx_t* pos) const override;
};

}  // namespace nearly
