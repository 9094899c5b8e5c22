// faiss's IndexIVFFlatDedup: IVF-Flat that stores each distinct vector once.
// A vector added again (the same bytes, so the same list) is not stored: its
// id is kept beside the stored entry's, and a search gives it at the stored
// entry's distance. Results are IndexIVFFlat's over every vector added (ties
// in any order) at the memory and scan cost of the distinct ones: corpora of
// crawled text hold many exact copies.
//
// Beyond faiss: filtered search tests each copy's own id (faiss tests only
// the stored one's), range search works, merge_from carries the copies, and
// remove_ids counts the copies it removes in ntotal. As in faiss there is no
// direct map, so reconstruct and the calls built on it are refused.
#pragma once
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nearly/ivf_flat.h"

namespace nearly {

struct IndexIVFFlatDedup : IndexIVFFlat {
    IndexIVFFlatDedup(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2);

    // k-means on the distinct training vectors (a copy would weigh twice).
    void train(idx_t n, const float* x) override;
    // The copies of a result fill the slots after it, so results are ordered.
    void search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                          const SearchParameters* params = nullptr) const override;
    // A stored entry whose id is removed lives on under one of its copies' ids.
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;

    // Refused (NotSupported), as in faiss: a copy has no entry to find.
    void make_direct_map(bool enable = true) override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                const SearchParameters* params = nullptr) const override;
    void search_and_return_codes(idx_t n, const float* x, idx_t k, float* D, idx_t* I, uint8_t* codes,
                                 bool include_listnos, const SearchParameters* params = nullptr) const override;
    size_t copy_subset_to(IndexIVF& other, int subset_type, idx_t a1, idx_t a2) const override;

    // (stored id, id of a copy) pairs, sorted: faiss's `instances` map.
    std::vector<std::pair<idx_t, idx_t>> instances() const;

    std::string type_name() const override { return "IVFFlatDedup"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFFlatDedup> read_body(Reader& r);

   protected:
    size_t store_entries(size_t n, const idx_t* list_of, const uint8_t* codes, size_t stride, const idx_t* ids,
                         idx_t first_id) override;
    std::unique_ptr<IDSelector> entry_selector(const IDSelector* sel) const override;
    void finish_search(idx_t n, idx_t k, float* D, idx_t* I, const IDSelector* sel) const override;
    void finish_range_search(std::vector<std::vector<std::pair<idx_t, float>>>& hits,
                             const IDSelector* sel) const override;
    void merge_family_state(IndexIVF& other, idx_t add_id) override;

   private:
    // stored id -> the ids of its copies, in the order they were added;
    // under rw_mutex_.
    std::unordered_map<idx_t, std::vector<idx_t>> copies_;
    // The ids a result with this stored id stands for that sel accepts
    // (all of them without sel), the stored id first.
    void expand(idx_t stored, const IDSelector* sel, std::vector<idx_t>& out) const;
};

}  // namespace nearly
