// User-chosen int64 ids on top of any index whose internal ids are 0..n-1.
#pragma once
#include <functional>
#include <unordered_map>
#include <vector>

#include "nearly/index.h"

namespace nearly {

class Reader;

// IndexIDMap2 (with_reverse_map) also reconstructs by external id.
struct IndexIDMap : Index {
    IndexPtr index;
    std::vector<idx_t> id_map;

    explicit IndexIDMap(IndexPtr index, bool with_reverse_map = false);

    std::string type_name() const override { return reverse_ ? "IDMap2" : "IDMap"; }
    void train(idx_t n, const float* x) override;
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // The wrapped index's standalone codes, with these ids (faiss's); ids
    // are required.
    void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    void merge_from(Index& other, idx_t add_id = 0) override;
    // faiss reports the wrapped index's code size, though sa_encode raises.
    size_t sa_code_size() const override { return index->sa_code_size(); }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIDMap> read_body(Reader& r, bool with_reverse_map);

    bool has_reverse_map() const { return reverse_; }
    // faiss's IndexIDMap2::check_consistency: the reverse map holds exactly
    // the ids of id_map, each pointing back at its row (throws CorruptData
    // otherwise; nothing to check without a reverse map).
    void check_consistency() const;
    std::vector<idx_t> ids() const;

   protected:
    IndexIDMap(IndexPtr index, bool with_reverse_map, std::vector<idx_t> ids);  // for read_body

   private:
    std::unique_ptr<SearchParameters> translate(const SearchParameters* params) const;
    std::unique_ptr<SearchParameters> untranslated(const SearchParameters* params) const;
    // add_with_ids / add_sa_codes: add_inner(ids) stores the entries in
    // the wrapped index, with the ids when it keeps them itself (native), or
    // add_inner(nullptr) and the ids go to id_map.
    void add_mapped(idx_t n, const idx_t* ids, const std::function<void(const idx_t*)>& add_inner);
    void sync_from_inner();  // d, metric, is_trained, ntotal follow the wrapped index
    void rebuild_reverse_map();

    bool reverse_;
    std::unordered_map<idx_t, idx_t> rev_map_;
};

struct IndexIDMap2 : IndexIDMap {
    explicit IndexIDMap2(IndexPtr index) : IndexIDMap(std::move(index), true) {}

   private:
    friend struct IndexIDMap;
    IndexIDMap2(IndexPtr index, std::vector<idx_t> ids) : IndexIDMap(std::move(index), true, std::move(ids)) {}
};

}  // namespace nearly
