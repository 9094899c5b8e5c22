// faiss's IndexPQ: every vector stored as its PQ code (code_size bytes); a
// search computes one distance table per query and scans all codes (ADC).
#pragma once
#include <memory>
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/polysemous.h"
#include "nearly/pq.h"

namespace nearly {

class Reader;

// faiss's IndexPQStats (cvar.indexPQ_stats): queries, codes considered and,
// for polysemous searches, codes that passed the Hamming filter.
struct IndexPQStats {
    size_t nq = 0, ncode = 0, n_hamming_pass = 0;
    void reset() { *this = IndexPQStats(); }
};
extern IndexPQStats indexPQ_stats;
void record_pq_stats(size_t nq, size_t ncode, size_t n_hamming_pass);  // under a lock

struct IndexPQ : IndexFlatCodes {
    ProductQuantizer pq;
    // faiss's search types: asymmetric PQ distances (ST_PQ); Hamming
    // distances between the query's code and the codes (ST_HE), or the
    // number of subquantizers whose centroids differ (ST_generalized_HE);
    // symmetric PQ distances between codes (ST_SDC); PQ distances of the
    // codes within Hamming distance < polysemous_ht of the query's code
    // (ST_polysemous), or with fewer than polysemous_ht differing centroids
    // (ST_polysemous_generalize). The last two need L2 and 8-bit codes.
    enum SearchType { ST_PQ = 0, ST_HE, ST_generalized_HE, ST_SDC, ST_polysemous, ST_polysemous_generalize };
    int search_type = ST_PQ;
    int polysemous_ht = 0;  // set to M * nbits + 1 (no filter) by the constructor, as faiss
    bool do_polysemous_training = false;  // renumber the centroids for Hamming filtering at train()
    PolysemousTraining polysemous_training;

    IndexPQ(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "PQ"; }
    void train(idx_t n, const float* x) override;
    void set_trained(bool trained) override;  // after pq.centroids were set by hand
    // faiss's `index.pq = other`: the other quantizer's codebooks (the same
    // d, M and nbits), while the index holds no codes (theirs would change meaning).
    void set_quantizer(const ProductQuantizer& other);
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    // faiss's hamming_distance_table: (n, ntotal) Hamming distances between
    // the codes of x and the stored codes.
    void hamming_distance_table(idx_t n, const float* x, int32_t* dis) const;
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

   private:
    // The stored codes one after the other: codes_ itself, or (fast-scan
    // blocks) a copy gathered into scratch.
    const uint8_t* plain_codes(std::vector<uint8_t>& scratch) const;
    // The searches on codes: search types other than ST_PQ.
    void search_code_to_code(idx_t n, const float* x, idx_t k, float* D, idx_t* I, int type,
                             const IDSelector* sel) const;
    void search_polysemous(idx_t n, const float* x, idx_t k, float* D, idx_t* I, int ht, bool generalized,
                           const IDSelector* sel) const;
};

// faiss's SearchParametersPQ: the search type and Hamming threshold of one
// search (ST_PQ by default; a polysemous_ht of 0 means no filter).
struct SearchParametersPQ : SearchParameters {
    int search_type = IndexPQ::ST_PQ;
    int polysemous_ht = 0;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersPQ>(*this); }
};

}  // namespace nearly
