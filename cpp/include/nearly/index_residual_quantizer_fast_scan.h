// faiss's IndexResidualQuantizerFastScan: residual quantizer codes of 4-bit
// codebooks, scanned with in-register tables as PQ fast-scan is
// (pq_fast_scan.h). A query's table for codebook m is <q, codeword> (-2x for
// L2), and under L2 the code's norm byte (ST_norm_rq2x4: two 4-bit codes of
// a residual quantizer of the norms) adds two tables holding the norm
// codebooks. faiss's bit strings put codebook m in nibble m and the norm
// byte after them, so a code is a fast-scan code of M (+ 2) subquantizers
// as it is; it is only laid out in blocks of 32.
//
// Distances are the quantized tables' sums (approximate); L2 ones include
// ||q||^2, so they are squared distances (faiss's omit it). implem 2 scores
// with the float tables, exactly as IndexResidualQuantizer does.
//
// norm_scale (faiss's): under L2 the norm's two tables span far more than an
// inner-product table, and one byte scale serves all tables; so the norm's
// are quantized norm_scale times coarser and multiplied back by the scan
// (PQ4Tail), and the inner-product tables keep their resolution. Training
// estimates it as faiss does; 1 (or rescale_norm false) quantizes all alike.
#pragma once
#include <memory>

#include "nearly/index_residual_quantizer.h"

namespace nearly {

struct PQ4Table;

// faiss's estimate of norm_scale from n sample queries (at most 65,536 of
// them, faiss's sample): the mean over queries of the norm tables' widest
// span over the inner-product tables' widest, rounded, in [1, 255].
int estimate_norm_scale(const ResidualQuantizer& rq, size_t n, const float* x);
// A query's fast-scan table (lower is better) from its table of <q, codeword>
// (lut, M x 16): -2 x lut and the norm's two tables under L2 (the norm's
// quantized norm_scale times coarser), -lut for inner product. tab: scratch
// of (M + 2) x 16 floats.
void aq_fast_scan_table(const ResidualQuantizer& rq, const float* lut, bool l2, int norm_scale, float* tab,
                        PQ4Table& out);
// The scale a fast-scan search applies to the norm's tables (1: none).
inline int norm_table_scale(MetricType metric, bool rescale_norm, int norm_scale) {
    return rescale_norm && metric == METRIC_L2 && norm_scale > 1 ? norm_scale : 1;
}
// The fast-scan classes' norm_scale fields, written after their bodies
// (files of format 6 on; older ones keep the defaults).
void read_norm_scale(Reader& r, bool& rescale_norm, int& norm_scale, const char* what);

struct IndexResidualQuantizerFastScan : IndexResidualQuantizer {
    static constexpr size_t bbs = 32;  // faiss's block size; the only one
    int implem = 0;                    // faiss's knob (pq_fast_scan.h): 2 scores exactly
    int qbs = 0;                       // faiss's query batching; kept, nearly batches its own way
    bool rescale_norm = true;          // faiss's switch for norm_scale
    int norm_scale = 1;                // set by training under L2 (faiss's estimate)

    // nbits must be 4; L2 needs ST_norm_rq2x4, inner product ST_LUT_nonorm
    // (faiss's rules).
    IndexResidualQuantizerFastScan(int d, size_t M, size_t nbits = 4, MetricType metric = METRIC_L2,
                                   ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_norm_rq2x4);
    // faiss's IndexAdditiveQuantizerFastScan(index): the same quantizer and
    // codes, laid out in blocks.
    explicit IndexResidualQuantizerFastScan(const IndexResidualQuantizer& orig);

    std::string type_name() const override { return "ResidualQuantizerFastScan"; }
    // Subquantizers of a fast-scan code: M, and the two of the norm under L2.
    size_t fast_scan_M() const { return rq.M + (metric_type == METRIC_L2 ? 2 : 0); }
    // The scale the scan applies to the norm's tables (1: none).
    int table_scale() const { return norm_table_scale(metric_type, rescale_norm, norm_scale); }
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexResidualQuantizerFastScan> read_body(Reader& r);
};

}  // namespace nearly
