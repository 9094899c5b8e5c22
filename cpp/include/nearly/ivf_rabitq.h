// faiss's IndexIVFRaBitQ: the IVF family whose code is the RaBitQ code
// (rabitq.h) of a vector against its list's centroid. A list is scanned
// with the query prepared against that centroid (its residual quantized to
// qb bits), so D is the RaBitQ estimate, as in faiss.
#pragma once
#include <memory>

#include "nearly/ivf.h"
#include "nearly/rabitq.h"

namespace nearly {

// faiss's IVFRaBitQSearchParameters: nprobe and the query's bits for one search.
struct IVFRaBitQSearchParameters : SearchParametersIVF {
    int qb = 4;
    bool centered = false;
    std::unique_ptr<SearchParameters> clone() const override {
        return std::make_unique<IVFRaBitQSearchParameters>(*this);
    }
};

struct IndexIVFRaBitQ : IndexIVF {
    RaBitQuantizer rabitq;
    int qb = 4;  // bits per query component (0: the query stays in float)
    // The query's quantizer symmetric around 0: the default of searches
    // without IVFRaBitQSearchParameters (faiss's fast-scan field).
    bool centered = false;

    IndexIVFRaBitQ(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2, int nb_bits = 1);

    std::string type_name() const override { return "IVFRaBitQ"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFRaBitQ> read_body(Reader& r) { return read_as<IndexIVFRaBitQ>(r); }
    // The body write_body writes, read into a T (this class or the fast-scan one).
    template <class T>
    static std::unique_ptr<T> read_as(Reader& r);

   protected:
    // orig's quantizer (shared, as faiss), settings and entries into this
    // new index of the same shape (faiss's fast-scan conversion).
    void copy_from(const IndexIVFRaBitQ& orig);
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    void write_encoder_state(Writer& w) const override;
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    std::unique_ptr<QueryBatch> prepare_queries(idx_t n, const float* x, const SearchParameters* params) const override;
    std::unique_ptr<InvertedListScanner> get_scanner_for(const QueryBatch* batch) const override;
};

// faiss's IndexIVFRaBitQFastScan ("IVF{n},RaBitQfs[b]"): the same codes and
// estimate as IndexIVFRaBitQ, whose list scan (SIMD popcounts over bit
// planes) already runs at fast-scan speed without rounding the query's
// tables to 8 bits; faiss's class name and its default of 8-bit queries.
// bbs 32 only.
struct IndexIVFRaBitQFastScan : IndexIVFRaBitQ {
    IndexIVFRaBitQFastScan(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2, int nb_bits = 1)
        : IndexIVFRaBitQ(std::move(quantizer), d, nlist, metric, nb_bits) {
        qb = 8;
    }
    // faiss's IndexIVFRaBitQFastScan(orig, bbs): orig's quantizer, entries,
    // nprobe, qb and centered (the codes are the same).
    explicit IndexIVFRaBitQFastScan(const IndexIVFRaBitQ& orig)
        : IndexIVFRaBitQ(orig.quantizer, orig.d, orig.nlist, orig.metric_type, orig.rabitq.nb_bits) {
        copy_from(orig);
    }
    int implem = 0;  // faiss's knob (pq_fast_scan.h); every value scans the same way here
    std::string type_name() const override { return "IVFRaBitQFastScan"; }
    static std::unique_ptr<IndexIVFRaBitQFastScan> read_body(Reader& r) { return read_as<IndexIVFRaBitQFastScan>(r); }
};

}  // namespace nearly
