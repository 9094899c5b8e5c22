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
#pragma once
#include <memory>

#include "nearly/index_residual_quantizer.h"

namespace nearly {

struct IndexResidualQuantizerFastScan : IndexResidualQuantizer {
    static constexpr size_t bbs = 32;  // faiss's block size; the only one
    int implem = 0;                    // faiss's knob (pq_fast_scan.h): 2 scores exactly
    int qbs = 0;                       // faiss's query batching; kept, nearly batches its own way

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
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    static std::unique_ptr<IndexResidualQuantizerFastScan> read_body(Reader& r);
};

}  // namespace nearly
