// faiss's IndexPQFastScan: IndexPQ with 4-bit codes kept in blocks of 32 and
// scanned with in-register tables (pq_fast_scan.h). Distances are the
// quantized tables' sums (approximate); wrap it in IndexRefineFlat for
// exact ones.
#pragma once
#include <memory>

#include "nearly/index_pq.h"

namespace nearly {

struct IndexPQFastScan : IndexPQ {
    static constexpr size_t bbs = 32;  // faiss's block size; the only one
    int implem = 0;  // faiss's knob (pq_fast_scan.h): 2 scores exactly
    int qbs = 0;     // faiss's query batching; kept, nearly batches its own way

    IndexPQFastScan(int d, size_t M, size_t nbits = 4, MetricType metric = METRIC_L2);
    // faiss's conversion: an IndexPQ with 4-bit codes as a fast-scan index
    // (the same PQ and entries, codes re-laid in blocks of 32).
    explicit IndexPQFastScan(const IndexPQ& orig);

    std::string type_name() const override { return "PQFastScan"; }
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                          const SearchParameters* params = nullptr) const override;
    // Written as IndexPQ writes itself (codes in the block layout).
    static std::unique_ptr<IndexPQFastScan> read_body(Reader& r);

   private:
    void search_sorted_or_not(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params,
                              bool sorted) const;
};

}  // namespace nearly
