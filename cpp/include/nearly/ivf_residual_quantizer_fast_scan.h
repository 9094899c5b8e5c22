// faiss's IndexIVFResidualQuantizerFastScan: IndexIVFResidualQuantizer with
// 4-bit codebooks, lists laid out in blocks of 32 and scanned with quantized
// in-register tables as IndexResidualQuantizerFastScan scans its codes
// (index_residual_quantizer_fast_scan.h: under L2 the code's norm byte adds
// two tables). By default codes hold the vector itself, so one table per
// query serves every list (faiss's default for fast-scan); by_residual
// ("...,RQ{M}x4fsr") codes the residual r to the centroid c. Under L2 a
// residual code then stores the norm of the whole reconstruction,
// ||c + r||^2 (as faiss's), so that ||q - c - r||^2 = ||q||^2 - 2 <q, c>
// - 2 <q, r> + ||c + r||^2 is one table per query plus a term per list.
// Distances are approximate (L2 ones squared distances; faiss's omit
// ||q||^2); implem 1 scores with float tables, exactly as
// IndexIVFResidualQuantizer does. norm_scale as in
// IndexResidualQuantizerFastScan.
#pragma once
#include <memory>

#include "nearly/index_residual_quantizer_fast_scan.h"
#include "nearly/ivf_residual_quantizer.h"

namespace nearly {

struct IndexIVFResidualQuantizerFastScan : IndexIVFResidualQuantizer {
    static constexpr size_t bbs = 32;  // faiss's block size; the only one
    int implem = 0;                    // faiss's knob (pq_fast_scan.h): 1 scores exactly
    int qbs = 0;                       // faiss's query batching; kept, nearly batches its own way
    bool rescale_norm = true;          // faiss's switch for norm_scale
    int norm_scale = 1;                // set by training under L2 (faiss's estimate)

    // nbits must be 4; L2 needs ST_norm_rq2x4, inner product ST_LUT_nonorm.
    IndexIVFResidualQuantizerFastScan(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits = 4,
                                      MetricType metric = METRIC_L2,
                                      ResidualQuantizer::SearchType search_type = ResidualQuantizer::ST_norm_rq2x4);

    // faiss's IndexIVFAdditiveQuantizerFastScan(orig): the same quantizer,
    // codebooks and entries (the lists re-laid in blocks), 4-bit codebooks.
    // Under L2 only an index that codes the vectors themselves converts
    // (faiss's rule): a residual code's norm is the residual's, where
    // fast-scan's is the whole reconstruction's.
    explicit IndexIVFResidualQuantizerFastScan(const IndexIVFResidualQuantizer& orig);

    std::string type_name() const override { return "IVFResidualQuantizerFastScan"; }
    size_t fast_scan_M() const { return rq.M + (metric_type == METRIC_L2 ? 2 : 0); }
    int table_scale() const { return norm_table_scale(metric_type, rescale_norm, norm_scale); }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFResidualQuantizerFastScan> read_body(Reader& r);

   protected:
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    bool norm_includes_centroid() const override { return by_residual && metric_type == METRIC_L2; }
    // One table per query serves every list (by residual too: the list's
    // term is an offset), so batches are scanned list by list for all their
    // queries (IndexIVF::search_grouped).
    bool search_assigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const float* coarse_dis,
                         const IDSelector* sel, float* D, idx_t* I, bool sorted) const override;
};

}  // namespace nearly
