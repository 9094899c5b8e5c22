// The inverted lists of an IVF index, whatever its codes are: per list the
// codes (laid out as the owner's CodeLayout says: one after the other, or in
// fast-scan blocks) and the ids beside them, and faiss's direct map
// (id -> (list, offset)) kept up to date on demand. Shared by the float IVF
// families (IndexIVF) and the binary one (IndexBinaryIVF); the owner holds
// its lock around every call.
#pragma once
#include <unordered_map>
#include <utility>
#include <vector>

#include "nearly/code_layout.h"
#include "nearly/common.h"
#include "nearly/mapped_array.h"
#include "nearly/selector.h"

namespace nearly {

class Writer;
class Reader;

struct InvertedLists {
    // Each a vector of its own, or a view of a mapped file (mapped_array.h).
    struct List {
        MappedArray<uint8_t> codes;
        MappedArray<idx_t> ids;
    };
    std::vector<List> lists;

    // The layout is the owner's, passed to each call (families set code_size
    // after the base is built).
    explicit InvertedLists(size_t nlist) : lists(nlist) {}

    size_t nlist() const { return lists.size(); }
    const List& operator[](size_t l) const { return lists[l]; }
    void append(size_t l, const uint8_t* code, const CodeLayout& layout, idx_t id);
    // Removes the entries whose ids sel accepts; the others keep their order.
    size_t remove(const IDSelector& sel, const CodeLayout& layout);
    void clear();
    void set_direct_map(bool enable);
    bool has_direct_map() const { return direct_map_; }
    // (list, offset) of an id: needs the direct map (faiss's texts otherwise).
    std::pair<size_t, size_t> locate(idx_t key) const;
    // Per list: ids, then the codes counted in units of unit bytes; then the
    // direct map flag. read checks every size and that they add up to ntotal.
    void write(Writer& w, size_t unit) const;
    void read(Reader& r, size_t unit, const CodeLayout& layout, idx_t ntotal, const char* what);

   private:
    void rebuild_direct_map();
    bool direct_map_ = false;
    std::unordered_map<idx_t, std::pair<size_t, size_t>> where_;
};

}  // namespace nearly
