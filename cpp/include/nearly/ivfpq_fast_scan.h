// faiss's IndexIVFPQFastScan: IVF-PQ with 4-bit codes kept in blocks of 32
// per list and scanned with in-register tables (pq_fast_scan.h). The same
// product quantizer, training and table decomposition as IndexIVFPQ; only
// the code width, the list layout and the scan differ. By default codes
// hold the vector itself, not its residual (faiss's default for fast-scan:
// one table per query serves every list); by_residual can be set before
// training ("...,PQ{M}x4fsr" in the factory).
#pragma once
#include <memory>

#include "nearly/ivfpq.h"

namespace nearly {

struct IndexIVFPQFastScan : IndexIVFPQ {
    static constexpr size_t bbs = 32;  // faiss's block size; the only one
    int implem = 0;  // faiss's knob (pq_fast_scan.h): 1 scores exactly
    int qbs = 0;     // faiss's query batching; kept, nearly batches its own way

    IndexIVFPQFastScan(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits = 4,
                       MetricType metric = METRIC_L2);
    // faiss's conversion: an IndexIVFPQ with 4-bit codes (trained, filled or
    // not) as a fast-scan index: the same quantizer (shared), PQ, by_residual,
    // nprobe and entries, the codes re-laid in blocks of 32. Searches then
    // score with quantized tables (approximate distances, like faiss).
    explicit IndexIVFPQFastScan(const IndexIVFPQ& orig);

    std::string type_name() const override { return "IVFPQFastScan"; }
    bool has_polysemous_search() const override { return false; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFPQFastScan> read_body(Reader& r);

   protected:
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    // Batches whose tables do not depend on the list: queries are taken in
    // slices whose tables stay in the L2 cache, each slice's (query, list)
    // pairs are grouped by list, and each list is scanned once for all its
    // queries (pq4_scan_queries), as faiss's implementation 12 does.
    bool search_assigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const float* coarse_dis,
                         const IDSelector* sel, float* D, idx_t* I, bool sorted) const override;
};

}  // namespace nearly
