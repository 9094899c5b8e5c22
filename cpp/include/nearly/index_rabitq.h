// faiss's IndexRaBitQ: every vector stored as its RaBitQ code (rabitq.h)
// against the mean of the training vectors; a search scores codes by the
// RaBitQ estimate (D is the estimate, as in faiss: there is no re-ranking;
// put IndexRefine on top for exact distances).
#pragma once
#include <memory>
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/rabitq.h"

namespace nearly {

class Reader;

// faiss's RaBitQSearchParameters: the query's bits and quantizer for one search.
struct RaBitQSearchParameters : SearchParameters {
    int qb = 4;
    bool centered = false;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<RaBitQSearchParameters>(*this); }
};

struct IndexRaBitQ : IndexFlatCodes {
    RaBitQuantizer rabitq;
    std::vector<float> center;  // the training vectors' mean
    int qb = 4;                 // bits per query component (0: the query stays in float)
    bool centered = false;      // quantize the query symmetrically around 0

    IndexRaBitQ(int d, MetricType metric = METRIC_L2, int nb_bits = 1);

    std::string type_name() const override { return "RaBitQ"; }
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    // Every code whose estimate is within radius (L2: <, IP: >).
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    size_t code_size() const override { return rabitq.code_size; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexRaBitQ> read_body(Reader& r) { return read_as<IndexRaBitQ>(r); }
    // Scores codes as search reports them, with the index's qb and centered.
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    // The body write_body writes, read into a T (this class or the fast-scan one).
    template <class T>
    static std::unique_ptr<T> read_as(Reader& r);

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;

   private:
    struct SearchSetup {
        int qb;
        bool centered;
        const IDSelector* sel;
    };
    // Checks a search's arguments; the query bits and selector it runs with.
    SearchSetup setup(idx_t n, const float* x, idx_t k, const SearchParameters* params) const;
};

// faiss's IndexRaBitQFastScan ("RaBitQfs[b]"): IndexRaBitQ already stores and
// scans its codes in the 4-bit fast-scan layout, with exact (not 8-bit
// rounded) lookup tables; this is that index under faiss's class name, with
// its default of 8-bit queries. bbs 32 only.
struct IndexRaBitQFastScan : IndexRaBitQ {
    IndexRaBitQFastScan(int d, MetricType metric = METRIC_L2, int nb_bits = 1) : IndexRaBitQ(d, metric, nb_bits) {
        qb = 8;
    }
    int implem = 0;  // faiss's knob (pq_fast_scan.h); every value scans the same way here
    std::string type_name() const override { return "RaBitQFastScan"; }
    static std::unique_ptr<IndexRaBitQFastScan> read_body(Reader& r) { return read_as<IndexRaBitQFastScan>(r); }
};

}  // namespace nearly
