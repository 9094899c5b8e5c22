// faiss's Index2Layer: every vector stored flat as its list number (in
// code_size_1 bytes) followed by the PQ code of its residual from that
// list's centroid. These are exactly the standalone codes of an IndexIVFPQ
// over the same quantizer, so such an index (never holding vectors) is the
// codec: training, encoding and decoding are IVFPQ's, and transfer_to_IVFPQ
// hands the codes to an IVFPQ index's lists as they are. faiss's search
// raises "not implemented"; nearly's scans every code, decoded a block at a
// time, so the index answers like any other.
#pragma once
#include <memory>

#include "nearly/index_flat_codes.h"
#include "nearly/ivfpq.h"

namespace nearly {

class Reader;

struct Index2Layer : IndexFlatCodes {
    // L2 or inner product; nbits per PQ index (8 in faiss's default).
    Index2Layer(IndexPtr quantizer, size_t nlist, size_t M, size_t nbits = 8, MetricType metric = METRIC_L2);

    // An IndexIVFPQ over the quantizer, by residual: it holds the quantizer,
    // nlist and the PQ, and no vectors.
    std::shared_ptr<IndexIVFPQ> codec;
    size_t code_size_1;  // bytes of the list number
    size_t code_size_2;  // bytes of the PQ code

    size_t code_size() const override { return code_size_1 + code_size_2; }
    // The quantizer's k-means (unless it already holds nlist centroids), then
    // the PQ on residuals, as IndexIVFPQ::train.
    void train(idx_t n, const float* x) override;
    // faiss's `index.is_trained = True` after its pq and q1.quantizer were
    // set by hand: the codec must then hold the nlist centroids.
    void set_trained(bool trained) override;
    // Exact distances to every decoded vector; selectors on positions.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    // Appends the codes to other's lists (ids 0 .. ntotal - 1); other: an
    // empty IndexIVFPQ with the same nlist and PQ code size (faiss's rule).
    void transfer_to_IVFPQ(IndexIVFPQ& other) const;
    // Scores decoded codes, a batch decoded at once (IndexHNSW2Level walks on it).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;

    std::string type_name() const override { return "2Layer"; }
    void decode_block(const uint8_t* codes, size_t n, float* out) const override;  // one batch of the codec
    void write_body(Writer& w) const override;
    static std::unique_ptr<Index2Layer> read_body(Reader& r);

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
