// faiss's IndexIVFPQR ("IVF{nlist},PQ{M}+{M_refine}"): an IVFPQ whose
// k * k_factor best candidates are re-ranked with a second PQ (refine_pq)
// of what the first leaves, x - c - pq(x - c). L2 only, as faiss.
//
// The refined distance needs no decoding of the candidates' lists: with
// y = c + pq(r) (the IVFPQ reconstruction) and e the refinement's decoding,
//   ||x - y - e||^2 = ||x - y||^2 + (||e||^2 + 2 <y, e>) - 2 <x, e>,
// where ||x - y||^2 is the IVFPQ search's own distance, the middle term is
// kept per vector at add time (refine_bias) and <x, e> is M_refine lookups
// in the query's inner-product table. faiss recomputes y from the list
// entry instead; the results are the same up to float rounding.
//
// The refinement codes are kept by id, as faiss's: ids are ntotal,
// ntotal + 1, ... (add_with_ids takes only those); remove_ids,
// update_vectors, add_sa_codes and replacing the lists are refused (faiss
// refuses remove_ids too; the others would leave the codes behind).
#pragma once
#include <memory>
#include <vector>

#include "nearly/ivfpq.h"

namespace nearly {

struct IndexIVFPQR : IndexIVFPQ {
    ProductQuantizer refine_pq;
    std::vector<uint8_t> refine_codes;  // ntotal x refine_pq.code_size, by id
    std::vector<float> refine_bias;     // ntotal: ||e||^2 + 2 <y, e>
    float k_factor = 4;                 // candidates re-ranked: k * k_factor

    IndexIVFPQR(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits, size_t M_refine,
                size_t nbits_refine);

    std::string type_name() const override { return "IVFPQR"; }
    void add(idx_t n, const float* x) override { add_with_ids(n, x, nullptr); }
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                          const SearchParameters* params = nullptr) const override {
        search(n, x, k, D, I, params);
    }
    // The given lists' k * k_factor best, re-ranked (faiss's).
    void search_preassigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* assign,
                            const float* centroid_dis, float* D, idx_t* I,
                            const SearchParameters* params = nullptr) const override;
    void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                const SearchParameters* params = nullptr) const override;
    // The IVFPQ reconstruction plus the refinement's (faiss's reconstruct_from_offset).
    void reconstruct(idx_t key, float* out) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void update_vectors(idx_t n, const idx_t* ids, const float* x) override;
    void add_entries(size_t list_no, size_t n, const uint8_t* codes, const idx_t* ids) override;
    void replace_lists(InvertedLists&& lists, const CodeLayout& their_layout) override;
    void replace_list_range(size_t l0, const InvertedLists& lists, const CodeLayout& their_layout) override;
    // Other's entries and refinement codes appended: add_id must be ntotal.
    void merge_from(Index& other, idx_t add_id = 0) override;
    void reset() override;
    // faiss's `index.refine_pq = other.refine_pq`: same d, M and nbits, no codes yet.
    void set_refine_pq(const ProductQuantizer& other);
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFPQR> read_body(Reader& r);

   protected:
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    idx_t train_encoder_num_vectors() const override;
    bool encoder_trained() const override { return pq_trained_ && refine_trained_; }
    void assume_encoder_trained() override;
    void write_encoder_state(Writer& w) const override;
    bool metric_settable() const override { return false; }

   private:
    bool refine_trained_ = false;
    // Held shared by searches, exclusively by whatever changes the codes (the
    // lists and the refinement codes change together); taken before the
    // index's own lock.
    mutable SharedMutex refine_mutex_;
    void refine_decode_add(idx_t id, float* out) const;  // out += e(id), when id has a refinement code
    idx_t candidates(idx_t k) const;                     // k * k_factor, at least k
    // The k best of each query's k1 IVFPQ candidates (D1, I1) by refined distance.
    void rerank(idx_t n, const float* x, idx_t k, idx_t k1, const float* D1, const idx_t* I1, float* D,
                idx_t* I) const;
};

}  // namespace nearly
