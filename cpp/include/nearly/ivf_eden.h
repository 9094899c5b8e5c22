// faiss's IndexIVFEDEN: the IVF family whose code is the EDEN code (eden.h)
// of x around its list's centroid (always by residual, as faiss's). The
// scan scores the codes without decoding them: L2 through the query's
// residual per list, IP as the coarse score <q, c> plus scale <q, q_code>.
#pragma once
#include <memory>

#include "nearly/eden.h"
#include "nearly/ivf.h"

namespace nearly {

struct IndexIVFEDEN : IndexIVF {
    EdenCodec codec;

    IndexIVFEDEN(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2, size_t nb_bits = 1,
                 bool biased = false);

    std::string type_name() const override { return "IVFEDEN"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFEDEN> read_body(Reader& r);

   protected:
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    void write_encoder_state(Writer& w) const override;
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
};

}  // namespace nearly
