// faiss's IndexPQ: every vector stored as its PQ code (code_size bytes); a
// search computes one distance table per query and scans all codes (ADC).
#pragma once
#include <memory>
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/pq.h"

namespace nearly {

class Reader;

struct IndexPQ : IndexFlatCodes {
    ProductQuantizer pq;

    IndexPQ(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "PQ"; }
    void train(idx_t n, const float* x) override;
    void set_trained(bool trained) override;  // after pq.centroids were set by hand
    // faiss's `index.pq = other`: the other quantizer's codebooks (the same
    // d, M and nbits), while the index holds no codes (theirs would change meaning).
    void set_quantizer(const ProductQuantizer& other);
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    // Scores codes with the tables / kernels search uses (distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    static std::unique_ptr<IndexPQ> read_body(Reader& r);

    size_t code_size() const override { return pq.code_size; }

   protected:
    // orig's PQ, codes (re-laid into this index's layout) and training into
    // this new index of the same shape (the fast-scan conversion).
    void copy_from(const IndexPQ& orig);
    void write_encoder_state(Writer& w) const override;
    // The body write_body writes, read into a T (IndexPQ or a subclass with
    // the same constructor); `what` names it in errors.
    template <class T>
    static std::unique_ptr<T> read_pq(Reader& r, const char* what);
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;
};

}  // namespace nearly
