// faiss's IndexIVFResidualQuantizer: the IVF family whose code is the
// residual quantizer code (residual_quantizer.h) of x - centroid
// (by_residual, faiss's default) or of x. A list is scanned through one
// table of <q', codeword> per (query, list), q' the query's residual for L2:
//   L2: ||q - c - r||^2 = ||q - c||^2 + ||r||^2 - 2 <q - c, r>;
//   IP: <q, c + r> = <q, c> + <q, r>;
// or on the decoded residuals (ST_decompress). For L2 through tables, the
// tables of the centroids (<c, codeword>, nlist * total_codebook_size
// floats, when at most 256 MiB) are kept, so that a list's table is the
// query's minus its centroid's instead of a product of d *
// total_codebook_size per (query, list).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "nearly/ivf.h"
#include "nearly/residual_quantizer.h"

namespace nearly {

struct IndexIVFResidualQuantizer : IndexIVF {
    ResidualQuantizer rq;

    IndexIVFResidualQuantizer(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits,
                              MetricType metric = METRIC_L2,
                              ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_decompress);
    // One codebook per entry of nbits (faiss's "IVF1024,RQ1x16_6x8").
    IndexIVFResidualQuantizer(IndexPtr quantizer, int d, size_t nlist, const std::vector<size_t>& nbits,
                              MetricType metric = METRIC_L2,
                              ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_decompress);

    std::string type_name() const override { return "IVFResidualQuantizer"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFResidualQuantizer> read_body(Reader& r);

    bool has_list_tables() const { return !list_tables_.empty(); }
    // ||c||^2 of list list_no's centroid: kept with the list tables (L2 by
    // residual), else computed.
    float centroid_norm(size_t list_no) const;

   protected:
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    void write_encoder_state(Writer& w) const override { rq.write(w); }
    // faiss trains the codebooks on at most 1024 * 2^nbits[0] vectors.
    idx_t train_encoder_num_vectors() const override { return idx_t(1024) * idx_t(rq.K(0)); }
    bool encoder_trained() const override { return rq.is_trained; }
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    // Whether a residual code stores the norm of the whole reconstruction,
    // ||c + r_hat||^2, rather than the residual's (fast-scan's L2 form).
    virtual bool norm_includes_centroid() const { return false; }
    void rebuild_centroid_state() override { build_list_tables(); }

    // Takes orig's quantizer, codebooks, by_residual and entries into this
    // new, empty index (re-laid into this one's layout: the fast-scan conversion).
    void copy_from(const IndexIVFResidualQuantizer& orig);

    std::vector<float> list_tables_;     // nlist x total_codebook_size: <c_l, codeword>
    std::vector<float> centroid_norms_;  // nlist: ||c_l||^2, or empty
    // The per-list state derived from the coarse centroids (train and read).
    void build_list_tables();
    // read_body for this class and its fast-scan twin: make() builds the
    // empty index of the file's header and quantizer, the rest is read in.
    using Maker = std::function<std::unique_ptr<IndexIVFResidualQuantizer>(const Header&, const ResidualQuantizer&)>;
    static std::unique_ptr<IndexIVFResidualQuantizer> read_with(Reader& r, const char* what, const Maker& make);
};

}  // namespace nearly
