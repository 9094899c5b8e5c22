// faiss's IndexIVFFlat: the IVF family whose code is the vector itself (its
// d floats as bytes), so list scans are exact distances.
#pragma once
#include <memory>

#include "nearly/extra_distances.h"
#include "nearly/ivf.h"

namespace nearly {

struct IndexIVFFlat : IndexIVF {
    IndexIVFFlat(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "IVFFlat"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFFlat> read_body(Reader& r);

   protected:
    bool metric_settable() const override { return true; }
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    // Big batches go list by list through the GEMM engine of exact search
    // (L2 and inner product; the extra metrics scan query by query).
    size_t min_queries_per_list() const override { return is_extra_metric(metric_type) ? 0 : 4; }
    void scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq,
                         const float* xq, const float* coarse_dis, size_t k, const IDSelector* sel, float* dis,
                         idx_t* pos) const override;
};

}  // namespace nearly
