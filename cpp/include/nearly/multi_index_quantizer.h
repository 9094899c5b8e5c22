// faiss's MultiIndexQuantizer, the coarse quantizer of an inverted
// multi-index (IMI; Babenko & Lempitsky, CVPR 2012): a product quantizer of M
// sub-quantizers (usually 2) whose ksub^M cells are the lists. No centroid
// is stored: cell t = t_0 + t_1 ksub + ... is the concatenation of the
// sub-centroids t_m, and a search enumerates the cells nearest to a query
// from the M per-subspace distance tables (the multi-sequence algorithm),
// so 2^20 or more lists cost a table of a few thousand floats per query.
// Always L2, like faiss's.
#pragma once
#include <memory>
#include <vector>

#include "nearly/index.h"
#include "nearly/pq.h"

namespace nearly {

class Reader;

struct MultiIndexQuantizer : Index {
    ProductQuantizer pq;

    MultiIndexQuantizer(int d, size_t M, size_t nbits);

    std::string type_name() const override { return "MultiIndexQuantizer"; }
    bool trains_alone() const override { return true; }
    // Trains the sub-quantizers (pq.train); then ntotal = ksub^M cells.
    void train(idx_t n, const float* x) override;
    // After pq.centroids were set by hand.
    void set_trained(bool trained) override;
    // faiss's `miq.pq = other`: other's codebooks (the same d, M and nbits);
    // set_trained(true) then makes the cells.
    void set_pq(const ProductQuantizer& other);
    // The k cells nearest to each query by L2 (sums of the M sub-distances,
    // ascending; ties to the smaller cell number); k beyond ntotal is padded.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    // The cells are virtual: there is nothing to add or reset (faiss's texts).
    void add(idx_t n, const float* x) override;
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<MultiIndexQuantizer> read_body(Reader& r);

    // The sub-quantizer m's centroid index in cell `key`.
    size_t sub_cell(idx_t key, size_t m) const { return size_t(key >> (m * pq.nbits)) & (pq.ksub - 1); }
    // The cells nearest to one query from its M distance tables (tab: M x
    // ksub): k sums and cell numbers into D and I, the missing padded.
    // Exposed for the tests of the enumeration.
    void nearest_cells(const float* tab, size_t k, float* D, idx_t* I) const;

   protected:
    // The k nearest cells from each subspace's r nearest sub-centroids
    // (dis, ids: M x r, ascending; an id < 0 ends its list).
    void combine_sorted(const float* dis, const idx_t* ids, size_t r, size_t k, float* D, idx_t* I) const;

   private:
    void check_key(idx_t key) const;
};

// faiss's MultiIndexQuantizer2: the M sub-quantizers are searched through
// indexes of their own (an HNSW over 2^14 sub-centroids, say, instead of a
// whole distance table each), which train() fills with the sub-centroids.
// The cells are then enumerated as MultiIndexQuantizer's; with exact assign
// indexes the results are the same.
struct MultiIndexQuantizer2 : MultiIndexQuantizer {
    std::vector<IndexPtr> assign_indexes;  // M indexes of d / M dimensions

    MultiIndexQuantizer2(int d, size_t M, size_t nbits, std::vector<IndexPtr> indexes);

    std::string type_name() const override { return "MultiIndexQuantizer2"; }
    void train(idx_t n, const float* x) override;
    // No parameters (faiss's rule): the assign indexes take their own.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<MultiIndexQuantizer2> read_body(Reader& r);
};

}  // namespace nearly
