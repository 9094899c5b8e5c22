// faiss's inverted-list objects in Python (InvertedLists, ArrayInvertedLists,
// BlockInvertedLists, OnDiskInvertedLists). One reads either an index's own
// lists (index.invlists) or lists of its own (ArrayInvertedLists(nlist,
// code_size), OnDiskInvertedLists(...)); replace_invlists hands lists of its
// own to an index, and from then on the object reads that index's lists, as
// faiss's object is then the index's.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arrays.h"
#include "nearly/invlists.h"
#include "nearly/ivf.h"

namespace nearly_py {

struct ListsObject {
    struct Own {
        Own(size_t nlist, size_t code_size) : lists(nlist), code_size(code_size) {}
        // One call at a time; taken with the GIL released (a merge runs without it).
        std::mutex mutex;
        nearly::InvertedLists lists;  // entries one after the other (CodeLayout{code_size})
        size_t code_size;
        std::shared_ptr<nearly::IndexIVF> index;  // set by replace_invlists
    };
    std::shared_ptr<nearly::IndexIVF> index;  // index.invlists
    std::shared_ptr<Own> own;                 // lists of its own
    std::string filename;                     // OnDiskInvertedLists

    // The index whose lists these are, or null while they are the object's own.
    std::shared_ptr<nearly::IndexIVF> owner() const { return index ? index : own->index; }
    size_t nlist() const;
    size_t code_size() const;  // bytes per entry
    // An index's lists in fast-scan blocks (faiss's BlockInvertedLists: no per-entry code_size).
    bool blocked() const;
    void check_list(size_t l) const;
    size_t list_size(size_t l) const;
    std::vector<idx_t> ids(size_t l) const;
    std::vector<uint8_t> entry_codes(size_t l) const;   // one code after the other
    std::vector<uint8_t> stored_codes(size_t l) const;  // as get_codes gives them (blocks when blocked())
    // A merge's source: the sizes and entries of each list.
    nearly::InvertedLists::Source source() const;
    // f(own) under the object's lock, the GIL released; throws once the lists are an index's.
    template <class F>
    auto write(const char* what, F&& f) const {
        check_own(what);
        py::gil_scoped_release release;
        std::lock_guard<std::mutex> lk(own->mutex);
        check_own(what);
        return f(*own);
    }

    // Throws once the lists are an index's.
    void check_own(const char* what) const;
};
struct ArrayLists : ListsObject {};
struct BlockLists : ListsObject {};
struct OnDiskLists : ListsObject {};

// index.invlists, as the class faiss's downcast_InvertedLists would give.
py::object lists_of(const std::shared_ptr<nearly::IndexIVF>& index);
// Lists of its own (ArrayInvertedLists / OnDiskInvertedLists not yet an index's): what replace_invlists takes.
ListsObject& own_lists_arg(py::handle il, const char* what);

}  // namespace nearly_py
