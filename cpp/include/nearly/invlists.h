// The inverted lists of an IVF index, whatever its codes are: per list the
// codes (laid out as the owner's CodeLayout says: one after the other, or in
// fast-scan blocks) and the ids beside them, and faiss's direct map
// (id -> (list, offset)) kept up to date on demand. Shared by the float IVF
// families (IndexIVF) and the binary one (IndexBinaryIVF); the owner holds
// its lock around every call.
#pragma once
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nearly/code_layout.h"
#include "nearly/common.h"
#include "nearly/list_file.h"
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
    // Replaces list l with n entries: their ids, their codes laid out by layout.
    void assign(size_t l, const idx_t* ids, size_t n, const uint8_t* codes, const CodeLayout& layout);
    // The file the lists live in, or null (in memory).
    const std::shared_ptr<ListFile>& file() const { return file_; }
    // faiss's permute_invlists: list i becomes the old list perm[i] (perm a
    // permutation of 0 .. nlist - 1, checked). Lists in memory only (a
    // file's slots stay where they are).
    void permute(const idx_t* perm);
    // The lists move into file (nlist empty lists), where they stay.
    void move_to_file(std::shared_ptr<ListFile> file, const CodeLayout& layout);
    // The entries of every list in sources merged into these empty lists,
    // list by list (faiss's merge_from_multiple): each source gives its
    // list sizes and, for list l, its ids and codes one after the other;
    // their ids shifted by shift[i]. Returns the entries merged.
    struct Source {
        std::function<size_t(size_t)> size;
        std::function<void(size_t, std::vector<idx_t>&, std::vector<uint8_t>&)> fetch;
        idx_t shift = 0;
    };
    size_t merge_from(const std::vector<Source>& sources, const CodeLayout& layout, size_t code_size, bool verbose);
    void set_direct_map(bool enable);
    bool has_direct_map() const { return direct_map_; }
    // (list, offset) of an id: needs the direct map (faiss's texts otherwise).
    std::pair<size_t, size_t> locate(idx_t key) const;
    // Per list: ids, then the codes counted in units of unit bytes; then the
    // direct map flag. read checks every size and that they add up to ntotal.
    // Lists in a file are written as the file's name and their slots in it
    // where w writes a file (write_index), in full where it writes memory
    // (serialize_index, clone, pickle: a copy that does not share the file).
    void write(Writer& w, size_t unit) const;
    void read(Reader& r, size_t unit, const CodeLayout& layout, idx_t ntotal, const char* what);

   private:
    void rebuild_direct_map();
    void check_writable() const;
    // The views of list l (or of every list when the file was mapped anew) taken again.
    void refresh(size_t l, const CodeLayout& layout);
    void refresh_all(const CodeLayout& layout);
    std::shared_ptr<ListFile> file_;
    uint64_t generation_ = 0;
    bool direct_map_ = false;
    std::unordered_map<idx_t, std::pair<size_t, size_t>> where_;
};

}  // namespace nearly
