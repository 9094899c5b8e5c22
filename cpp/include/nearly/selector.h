// ID selectors: which ids a search may return or remove_ids may delete.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "nearly/common.h"

namespace nearly {

struct IDSelector {
    virtual ~IDSelector() = default;
    virtual bool is_member(idx_t id) const = 0;
};

using SelectorPtr = std::shared_ptr<const IDSelector>;

struct IDSelectorAll : IDSelector {
    bool is_member(idx_t) const override { return true; }
};

// imin <= id < imax. assume_sorted (faiss's): the ids of an inverted list
// are expected in ascending order (added in order: timestamps, say), so a
// search scans only the stretch of each list in range, found by bisection.
// nearly checks the order of each list it so scans (a pass over its ids);
// a list out of order is scanned whole with the selector, never wrongly.
struct IDSelectorRange : IDSelector {
    idx_t imin, imax;
    bool assume_sorted;
    IDSelectorRange(idx_t imin, idx_t imax, bool assume_sorted = false)
        : imin(imin), imax(imax), assume_sorted(assume_sorted) {}
    bool is_member(idx_t id) const override { return id >= imin && id < imax; }
    // faiss's find_sorted_ids_bounds: [j0, j1) of sorted ids[0..n) in range
    // (j0 >= j1 when none).
    std::pair<size_t, size_t> sorted_ids_bounds(const idx_t* ids, size_t n) const;
};

// A set of ids; sorted copy plus a small Bloom filter so most misses cost one
// bit test. (faiss keeps two classes, Array and Batch, with different speed
// trade-offs; both names map to this.)
struct IDSelectorBatch : IDSelector {
    explicit IDSelectorBatch(std::vector<idx_t> ids);
    bool is_member(idx_t id) const override;
    const std::vector<idx_t>& ids() const { return sorted_; }

   private:
    std::vector<idx_t> sorted_;
    std::vector<uint64_t> bloom_;
    uint64_t bloom_mask_ = 0;
};

struct IDSelectorArray : IDSelectorBatch {
    using IDSelectorBatch::IDSelectorBatch;
};

// Bit (id & 7) of byte (id >> 3), like faiss; ids past the bitmap are out.
struct IDSelectorBitmap : IDSelector {
    std::vector<uint8_t> bitmap;
    explicit IDSelectorBitmap(std::vector<uint8_t> bitmap) : bitmap(std::move(bitmap)) {}
    bool is_member(idx_t id) const override {
        return id >= 0 && size_t(id >> 3) < bitmap.size() && ((bitmap[id >> 3] >> (id & 7)) & 1);
    }
};

struct IDSelectorNot : IDSelector {
    SelectorPtr sel;
    explicit IDSelectorNot(SelectorPtr sel) : sel(std::move(sel)) {}
    bool is_member(idx_t id) const override { return !sel->is_member(id); }
};

struct IDSelectorAnd : IDSelector {
    SelectorPtr lhs, rhs;
    IDSelectorAnd(SelectorPtr a, SelectorPtr b) : lhs(std::move(a)), rhs(std::move(b)) {}
    bool is_member(idx_t id) const override { return lhs->is_member(id) && rhs->is_member(id); }
};

struct IDSelectorOr : IDSelector {
    SelectorPtr lhs, rhs;
    IDSelectorOr(SelectorPtr a, SelectorPtr b) : lhs(std::move(a)), rhs(std::move(b)) {}
    bool is_member(idx_t id) const override { return lhs->is_member(id) || rhs->is_member(id); }
};

struct IDSelectorXOr : IDSelector {
    SelectorPtr lhs, rhs;
    IDSelectorXOr(SelectorPtr a, SelectorPtr b) : lhs(std::move(a)), rhs(std::move(b)) {}
    bool is_member(idx_t id) const override { return lhs->is_member(id) != rhs->is_member(id); }
};

// Asks `sel` about the external id of an internal position (IndexIDMap).
struct IDSelectorTranslated : IDSelector {
    const std::vector<idx_t>& id_map;
    const IDSelector& sel;
    IDSelectorTranslated(const std::vector<idx_t>& id_map, const IDSelector& sel) : id_map(id_map), sel(sel) {}
    bool is_member(idx_t i) const override {
        return i >= 0 && size_t(i) < id_map.size() && sel.is_member(id_map[i]);
    }
};

// faiss's IDSelectorTranslated as user code builds it: position i passes
// when sel passes id_map[i]. The map is shared: an IDMap's own (read live;
// the pointer keeps the index alive) or a copy of an array. An IDMap given
// one built from itself applies sel to its ids directly.
struct IDSelectorTranslatedShared : IDSelector {
    std::shared_ptr<const std::vector<idx_t>> id_map;
    SelectorPtr sel;
    IDSelectorTranslatedShared(std::shared_ptr<const std::vector<idx_t>> id_map, SelectorPtr sel)
        : id_map(std::move(id_map)), sel(std::move(sel)) {}
    bool is_member(idx_t i) const override {
        return i >= 0 && size_t(i) < id_map->size() && sel->is_member((*id_map)[size_t(i)]);
    }
};

}  // namespace nearly
