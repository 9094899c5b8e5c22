// faiss's inverted-list objects (invlists.h) and ivflib's get_invlist_range / set_invlist_range.
#include "invlists.h"

#include <pybind11/stl.h>

#include "nearly/kmeans.h"
#include "nearly/list_file.h"

namespace nearly_py {

using namespace nearly;

namespace {
constexpr size_t kInvalidCodeSize = size_t(-1);  // faiss's InvertedLists::INVALID_CODE_SIZE

// The bytes of an array (faiss's swig_ptr hands a pointer: any dtype), C-contiguous.
py::array raw_array(py::handle obj, const char* what) {
    if (!py::isinstance<py::array>(obj)) throw InvalidArgument(std::string(what) + " must be a numpy array");
    return py::array::ensure(obj, py::array::c_style);
}

py::array_t<idx_t> ids_array(const std::vector<idx_t>& ids) {
    py::array_t<idx_t> out(ids.size());
    std::copy(ids.begin(), ids.end(), out.mutable_data());
    return out;
}

py::array_t<uint8_t> codes_array(const std::vector<uint8_t>& codes) {
    py::array_t<uint8_t> out(codes.size());
    std::copy(codes.begin(), codes.end(), out.mutable_data());
    return out;
}

// n ids and n codes from faiss's (n_entry, ids, code) arguments.
struct Entries {
    IdArray ids;
    py::array codes;
    size_t n;
    Entries(size_t n_entry, py::handle ids_obj, py::handle codes_obj, size_t code_size) : n(n_entry) {
        ids = as_ids(py::module_::import("numpy").attr("ravel")(ids_obj), -1, "ids");
        codes = raw_array(codes_obj, "code");
        if (size_t(ids.shape(0)) < n)
            throw InvalidArgument("ids holds " + std::to_string(ids.shape(0)) + " ids, fewer than n_entry = " +
                                  std::to_string(n));
        if (size_t(codes.nbytes()) < n * code_size)
            throw InvalidArgument("code holds " + std::to_string(codes.nbytes()) + " bytes, fewer than n_entry * " +
                                  "code_size = " + std::to_string(n * code_size));
    }
    const uint8_t* code_bytes() const { return static_cast<const uint8_t*>(codes.data()); }
};

std::vector<idx_t> own_ids(const ListsObject::Own& o, size_t l) {
    const auto& v = o.lists[l].ids;
    return std::vector<idx_t>(v.begin(), v.end());
}

std::vector<uint8_t> own_codes(const ListsObject::Own& o, size_t l) {
    const auto& v = o.lists[l].codes;
    return std::vector<uint8_t>(v.begin(), v.end());
}

// List l of o becomes its first offset entries, then these, then (update) the rest.
void splice(ListsObject::Own& o, size_t l, size_t offset, size_t n, const idx_t* ids, const uint8_t* codes) {
    std::vector<idx_t> new_ids = own_ids(o, l);
    std::vector<uint8_t> new_codes = own_codes(o, l);
    const size_t cs = o.code_size;
    if (new_ids.size() < offset + n) {
        new_ids.resize(offset + n);
        new_codes.resize((offset + n) * cs);
    }
    std::copy(ids, ids + n, new_ids.begin() + offset);
    std::copy(codes, codes + n * cs, new_codes.begin() + offset * cs);
    o.lists.assign(l, new_ids.data(), new_ids.size(), new_codes.data(), CodeLayout{cs});
}

std::shared_ptr<ListsObject::Own> make_own(long long nlist, long long code_size, const char* what) {
    if (nlist < 1 || code_size < 1)
        throw InvalidArgument(std::string(what) + ": nlist and code_size must be positive (got " +
                              std::to_string(nlist) + ", " + std::to_string(code_size) + ")");
    return std::make_shared<ListsObject::Own>(size_t(nlist), size_t(code_size));
}
}  // namespace

size_t ListsObject::nlist() const {
    auto ix = owner();
    return ix ? ix->nlist : own->lists.nlist();
}

size_t ListsObject::code_size() const {
    auto ix = owner();
    return ix ? ix->code_size : own->code_size;
}

bool ListsObject::blocked() const {
    auto ix = owner();
    if (!ix) return false;
    const CodeLayout lay = ix->layout();
    return lay.block > 1 && lay.levels == 0;
}

void ListsObject::check_list(size_t l) const {
    if (l >= nlist())
        throw InvalidArgument("list number " + std::to_string(l) + " out of range [0, " + std::to_string(nlist()) + ")");
}

void ListsObject::check_own(const char* what) const {
    if (owner())
        throw NotSupported(std::string(what) + ": these inverted lists belong to an index; change them through the index "
                           "(add_with_ids, add_sa_codes, remove_ids, update_vectors, set_invlist_range)");
}

size_t ListsObject::list_size(size_t l) const {
    check_list(l);
    if (auto ix = owner()) return ix->list_size(l);
    std::lock_guard<std::mutex> lk(own->mutex);
    return own->lists[l].ids.size();
}

std::vector<idx_t> ListsObject::ids(size_t l) const {
    check_list(l);
    if (auto ix = owner()) return ix->list_ids(l);
    std::lock_guard<std::mutex> lk(own->mutex);
    return own_ids(*own, l);
}

std::vector<uint8_t> ListsObject::entry_codes(size_t l) const {
    check_list(l);
    if (auto ix = owner()) return ix->list_codes_copy(l);
    std::lock_guard<std::mutex> lk(own->mutex);
    return own_codes(*own, l);
}

std::vector<uint8_t> ListsObject::stored_codes(size_t l) const {
    check_list(l);
    if (blocked()) return owner()->list_stored_copy(l);
    return entry_codes(l);
}

InvertedLists::Source ListsObject::source() const {
    InvertedLists::Source src;
    if (auto ix = owner()) {
        src.size = [ix](size_t l) { return ix->list_size(l); };
        src.fetch = [ix](size_t l, std::vector<idx_t>& ids, std::vector<uint8_t>& codes) {
            ids = ix->list_ids(l);
            codes = ix->list_codes_copy(l);
        };
        return src;
    }
    // A merge holds its own lists' lock: another's is only tried, so two
    // merges into each other fail instead of waiting on each other forever.
    auto o = own;
    auto locked = [o] {
        std::unique_lock<std::mutex> lk(o->mutex, std::try_to_lock);
        if (!lk.owns_lock()) throw InvalidArgument("merge: a source's lists are being changed in another thread");
        return lk;
    };
    src.size = [o, locked](size_t l) {
        auto lk = locked();
        return o->lists[l].ids.size();
    };
    src.fetch = [o, locked](size_t l, std::vector<idx_t>& ids, std::vector<uint8_t>& codes) {
        auto lk = locked();
        ids = own_ids(*o, l);
        codes = own_codes(*o, l);
    };
    return src;
}

py::object lists_of(const std::shared_ptr<IndexIVF>& index) {
    if (auto f = index->lists_file()) {
        OnDiskLists od;
        od.index = index;
        od.filename = f->path();
        return py::cast(od);
    }
    ListsObject view;
    view.index = index;
    if (view.blocked()) return py::cast(BlockLists{view});
    return py::cast(ArrayLists{view});
}

ListsObject& own_lists_arg(py::handle il, const char* what) {
    if (!py::isinstance<ListsObject>(il))
        throw InvalidArgument(std::string(what) + ": expected an ArrayInvertedLists or OnDiskInvertedLists, got " +
                              std::string(py::str(py::type::of(il).attr("__name__"))));
    ListsObject& lo = py::cast<ListsObject&>(il);
    if (lo.owner())
        throw NotSupported(std::string(what) + ": these inverted lists already belong to an index (an index's lists are "
                           "not shared: get_invlist_range copies them, merge_from moves them)");
    return lo;
}

void bind_invlists(py::module_& m) {
    py::class_<ListsObject> base(m, "InvertedLists",
                                 "faiss's InvertedLists: an index's lists (index.invlists) or lists of their own.");
    base.attr("INVALID_CODE_SIZE") = py::int_(kInvalidCodeSize);
    base.def_property_readonly("nlist", &ListsObject::nlist)
        .def("_reads_index", [](const ListsObject& lo, const std::shared_ptr<IndexIVF>& ix) { return lo.owner() == ix; },
             py::arg("index"), "Whether these are that index's lists.")
        .def_property_readonly("_belongs_to_index", [](const ListsObject& lo) { return bool(lo.owner()); })
        .def_property_readonly("_entry_code_size", &ListsObject::code_size, "Bytes per entry, whatever the layout.")
        .def_property_readonly("code_size", [](const ListsObject& lo) {
            return lo.blocked() ? kInvalidCodeSize : lo.code_size();
        }, "Bytes per entry (INVALID_CODE_SIZE for fast-scan blocks, as faiss's BlockInvertedLists).")
        .def("list_size", &ListsObject::list_size, py::arg("list_no"))
        .def("is_empty", [](const ListsObject& lo, size_t l, py::handle) { return lo.list_size(l) == 0; },
             py::arg("list_no"), py::arg("inverted_list_context") = py::none())
        .def("compute_ntotal", [](const ListsObject& lo) {
            size_t total = 0;
            for (size_t l = 0; l < lo.nlist(); l++) total += lo.list_size(l);
            return total;
        })
        .def("imbalance_factor", [](const ListsObject& lo) {
            std::vector<size_t> sizes(lo.nlist());
            double total = 0;
            for (size_t l = 0; l < sizes.size(); l++) total += double(sizes[l] = lo.list_size(l));
            return imbalance_factor(sizes.data(), sizes.size(), total);
        }, "faiss's imbalance factor of the list sizes (1 when balanced).")
        // faiss's text: how many lists have a size below each power of two.
        .def("print_stats", [](const ListsObject& lo) {
            std::vector<int> below(40, 0);
            for (size_t l = 0; l < lo.nlist(); l++) {
                const size_t s = lo.list_size(l);
                for (size_t j = 0; j < below.size(); j++)
                    if ((s >> j) == 0) {
                        below[j]++;
                        break;
                    }
            }
            for (size_t j = 0; j < below.size(); j++)
                if (below[j])
                    py::print("list size in < " + std::to_string(size_t(1) << j) + ": " + std::to_string(below[j]) +
                              " instances");
        })
        .def("get_ids", [](const ListsObject& lo, size_t l) { return ids_array(lo.ids(l)); }, py::arg("list_no"),
             "The ids of one list as a numpy array (a copy; faiss returns a pointer).")
        .def("get_codes", [](const ListsObject& lo, size_t l) { return codes_array(lo.stored_codes(l)); },
             py::arg("list_no"),
             "The codes of one list (a copy): list_size * code_size bytes, or whole fast-scan blocks of block_size "
             "bytes for BlockInvertedLists.")
        .def("_entry_codes", [](const ListsObject& lo, size_t l) { return codes_array(lo.entry_codes(l)); },
             py::arg("list_no"), "The codes of one list, one entry after the other, whatever the layout.")
        .def("get_single_id", [](const ListsObject& lo, size_t l, size_t offset) {
            const std::vector<idx_t> ids = lo.ids(l);
            if (offset >= ids.size())
                throw InvalidArgument("offset " + std::to_string(offset) + " past list " + std::to_string(l) +
                                      "'s " + std::to_string(ids.size()) + " entries");
            return ids[offset];
        }, py::arg("list_no"), py::arg("offset"))
        .def("get_single_code", [](const ListsObject& lo, size_t l, size_t offset) {
            const std::vector<uint8_t> codes = lo.entry_codes(l);
            const size_t cs = lo.code_size();
            if (offset >= codes.size() / cs)
                throw InvalidArgument("offset " + std::to_string(offset) + " past list " + std::to_string(l) +
                                      "'s " + std::to_string(codes.size() / cs) + " entries");
            return codes_array(std::vector<uint8_t>(codes.begin() + offset * cs, codes.begin() + (offset + 1) * cs));
        }, py::arg("list_no"), py::arg("offset"), "One entry's code (code_size bytes, whatever the layout).")
        .def("add_entries", [](const ListsObject& lo, size_t l, size_t n_entry, py::handle ids, py::handle code) {
            lo.check_list(l);
            const Entries e(n_entry, ids, code, lo.code_size());
            return lo.write("add_entries", [&](ListsObject::Own& o) {
                const size_t offset = o.lists[l].ids.size();
                for (size_t i = 0; i < e.n; i++)
                    o.lists.append(l, e.code_bytes() + i * o.code_size, CodeLayout{o.code_size}, e.ids.data()[i]);
                return offset;
            });
        }, py::arg("list_no"), py::arg("n_entry"), py::arg("ids"), py::arg("code"),
           "Appends n_entry entries (their ids, their codes one after the other) to a list; returns the offset of "
           "the first.")
        .def("add_entry", [](const ListsObject& lo, size_t l, idx_t id, py::handle code, py::handle) {
            lo.check_list(l);
            const IdArray ids(std::vector<py::ssize_t>{1}, &id);
            const Entries e(1, ids, code, lo.code_size());
            return lo.write("add_entry", [&](ListsObject::Own& o) {
                o.lists.append(l, e.code_bytes(), CodeLayout{o.code_size}, id);
                return o.lists[l].ids.size() - 1;
            });
        }, py::arg("list_no"), py::arg("theid"), py::arg("code"), py::arg("inverted_list_context") = py::none())
        .def("update_entries", [](const ListsObject& lo, size_t l, size_t offset, size_t n_entry, py::handle ids,
                                  py::handle code) {
            lo.check_list(l);
            const Entries e(n_entry, ids, code, lo.code_size());
            lo.write("update_entries", [&](ListsObject::Own& o) {
                const size_t size = o.lists[l].ids.size();
                if (offset > size || e.n > size - offset)
                    throw InvalidArgument("update_entries: entries [" + std::to_string(offset) + ", " +
                                          std::to_string(offset + e.n) + ") past list " + std::to_string(l) + "'s " +
                                          std::to_string(size));
                splice(o, l, offset, e.n, e.ids.data(), e.code_bytes());
                return 0;
            });
        }, py::arg("list_no"), py::arg("offset"), py::arg("n_entry"), py::arg("ids"), py::arg("code"))
        .def("update_entry", [](const ListsObject& lo, size_t l, size_t offset, idx_t id, py::handle code) {
            lo.check_list(l);
            const IdArray ids(std::vector<py::ssize_t>{1}, &id);
            const Entries e(1, ids, code, lo.code_size());
            lo.write("update_entry", [&](ListsObject::Own& o) {
                if (offset >= o.lists[l].ids.size())
                    throw InvalidArgument("update_entry: offset " + std::to_string(offset) + " past list " +
                                          std::to_string(l) + "'s " + std::to_string(o.lists[l].ids.size()));
                splice(o, l, offset, 1, &id, e.code_bytes());
                return 0;
            });
        }, py::arg("list_no"), py::arg("offset"), py::arg("id"), py::arg("code"))
        .def("resize", [](const ListsObject& lo, size_t l, long long new_size) {
            lo.check_list(l);
            if (new_size < 0) throw InvalidArgument("resize: new_size must be non-negative");
            lo.write("resize", [&](ListsObject::Own& o) {
                std::vector<idx_t> ids = own_ids(o, l);
                std::vector<uint8_t> codes = own_codes(o, l);
                ids.resize(size_t(new_size), 0);  // new entries: id 0, zero codes (faiss leaves them undefined)
                codes.resize(size_t(new_size) * o.code_size, 0);
                o.lists.assign(l, ids.data(), ids.size(), codes.data(), CodeLayout{o.code_size});
                return 0;
            });
        }, py::arg("list_no"), py::arg("new_size"))
        .def("reset", [](const ListsObject& lo) {
            lo.write("reset", [](ListsObject::Own& o) {
                for (size_t l = 0; l < o.lists.nlist(); l++)
                    o.lists.assign(l, nullptr, 0, nullptr, CodeLayout{o.code_size});
                return 0;
            });
        }, "Empties every list.")
        .def("permute_invlists", [](const ListsObject& lo, py::handle map_obj) {
            const IdArray perm = as_ids(py::module_::import("numpy").attr("ravel")(map_obj), -1, "map");
            if (size_t(perm.shape(0)) < lo.nlist())
                throw InvalidArgument("permute_invlists: the map must hold nlist = " + std::to_string(lo.nlist()) +
                                      " entries");
            if (auto ix = lo.owner()) {
                py::gil_scoped_release release;
                ix->permute_lists(perm.data());
                return;
            }
            lo.write("permute_invlists", [&](ListsObject::Own& o) {
                o.lists.permute(perm.data());
                return 0;
            });
        }, py::arg("map"),
           "faiss's permute_invlists: list i becomes the old list map[i]. On an index's lists (contrib's "
           "ivf_tools.permute_invlists) permute the quantizer's centroids alike, as that function does.")
        .def("merge_from", [](const ListsObject& lo, const ListsObject& other, long long add_id) {
            if (&other == &lo || (other.own && other.own == lo.own))
                throw InvalidArgument("merge_from: lists cannot be merged into themselves");
            other.check_own("merge_from (the lists merged in are emptied, as faiss's)");
            if (other.nlist() != lo.nlist() || other.code_size() != lo.code_size())
                throw InvalidArgument("merge_from: the other lists must have the same nlist and code_size");
            const InvertedLists::Source src = other.source();
            lo.write("merge_from", [&](ListsObject::Own& o) {
                for (size_t l = 0; l < o.lists.nlist(); l++) {
                    std::vector<idx_t> ids;
                    std::vector<uint8_t> codes;
                    src.fetch(l, ids, codes);
                    for (size_t i = 0; i < ids.size(); i++)
                        o.lists.append(l, codes.data() + i * o.code_size, CodeLayout{o.code_size}, ids[i] + add_id);
                }
                return 0;
            });
            other.write("merge_from", [](ListsObject::Own& o) {
                for (size_t l = 0; l < o.lists.nlist(); l++) o.lists.assign(l, nullptr, 0, nullptr, CodeLayout{o.code_size});
                return 0;
            });
        }, py::arg("oivf"), py::arg("add_id"),
           "faiss's merge_from: appends other's entries (ids + add_id) to each list, then empties other.");

    py::class_<ArrayLists, ListsObject>(m, "ArrayInvertedLists",
                                        "faiss's ArrayInvertedLists: lists in memory, codes of code_size bytes one "
                                        "after the other; replace_invlists / set_invlist_range give them to an index.")
        .def(py::init([](long long nlist, long long code_size) {
                 ArrayLists a;
                 a.own = make_own(nlist, code_size, "ArrayInvertedLists");
                 return a;
             }),
             py::arg("nlist"), py::arg("code_size"));

    py::class_<BlockLists, ListsObject>(m, "BlockInvertedLists",
                                        "faiss's BlockInvertedLists: a fast-scan index's lists, whole blocks of "
                                        "n_per_block entries (block_size bytes) per list.")
        .def_property_readonly("n_per_block", [](const BlockLists& b) { return b.owner()->layout().block; })
        .def_property_readonly("block_size", [](const BlockLists& b) { return b.owner()->layout().block_bytes(); });

    py::class_<OnDiskLists, ListsObject>(m, "OnDiskInvertedLists",
                                         "faiss's OnDiskInvertedLists: inverted lists in a file of their own, mapped "
                                         "(searched through the page cache, so larger than memory), written to by "
                                         "adds; write_index then records the file's name, not the lists.")
        .def(py::init([](long long nlist, long long code_size, py::handle fname) {
                 OnDiskLists od;
                 od.own = make_own(nlist, code_size, "OnDiskInvertedLists");
                 od.filename = py::cast<std::string>(py::module_::import("os").attr("fspath")(fname));
                 od.own->lists.move_to_file(ListFile::create(od.filename, size_t(nlist)), CodeLayout{size_t(code_size)});
                 return od;
             }),
             py::arg("nlist"), py::arg("code_size"), py::arg("filename"))
        .def_property_readonly("filename", [](const OnDiskLists& od) { return od.filename; })
        .def_property_readonly("totsize", [](const OnDiskLists& od) {
            auto ix = od.owner();
            auto f = ix ? ix->lists_file() : od.own->lists.file();
            return f ? f->end() : 0;
        }, "Bytes of the file in use.")
        .def("merge_from_multiple", [](const OnDiskLists& od, py::handle ils, long long n_il, bool shift_ids,
                                       bool verbose) {
            std::vector<py::handle> items;
            if (py::isinstance<ListsObject>(ils)) {
                items.push_back(ils);
            } else {
                for (py::handle h : ils) items.push_back(h);
            }
            if (n_il >= 0) {
                if (size_t(n_il) > items.size())
                    throw InvalidArgument("merge_from_multiple: n_il = " + std::to_string(n_il) + " but " +
                                          std::to_string(items.size()) + " inverted lists given");
                items.resize(size_t(n_il));
            }
            std::vector<InvertedLists::Source> sources;
            idx_t shift = 0;
            for (py::handle h : items) {
                if (!py::isinstance<ListsObject>(h))
                    throw InvalidArgument("merge_from_multiple: the sources must be inverted lists (index.invlists, "
                                          "ArrayInvertedLists, OnDiskInvertedLists), in a list or an "
                                          "InvertedListsPtrVector");
                const ListsObject& lo = py::cast<const ListsObject&>(h);
                if (lo.own && lo.own == od.own) throw InvalidArgument("merge_from_multiple: lists cannot merge themselves");
                if (lo.nlist() != od.nlist() || lo.code_size() != od.code_size())
                    throw InvalidArgument("merge_from_multiple: every source must have the same nlist (" +
                                          std::to_string(od.nlist()) + ") and code_size (" +
                                          std::to_string(od.code_size()) + ")");
                sources.push_back(lo.source());
                if (shift_ids) {
                    sources.back().shift = shift;
                    for (size_t l = 0; l < od.nlist(); l++) shift += idx_t(sources.back().size(l));
                }
            }
            return od.write("merge_from_multiple", [&](ListsObject::Own& o) {
                return o.lists.merge_from(sources, CodeLayout{o.code_size}, o.code_size, verbose);
            });
        }, py::arg("ils"), py::arg("n_il") = -1, py::arg("shift_ids") = false, py::arg("verbose") = false,
           "Fills these empty lists with every entry of the given lists (list by list, in their order; with "
           "shift_ids each source's ids shifted by the entries of the sources before it). Returns the number of "
           "entries: faiss's merge_ondisk sets ntotal from it.");

    m.def("_quantizer_places_lists", [](const IndexPtr& q, long long nlist) {
        return nlist > 0 && quantizer_places_lists(*q, size_t(nlist));
    }, py::arg("quantizer"), py::arg("nlist"));
    m.def("_get_invlist_range", [](const std::shared_ptr<IndexIVF>& index, long long i0, long long i1) {
        if (i0 < 0 || i0 > i1 || size_t(i1) > index->nlist)
            throw InvalidArgument("get_invlist_range: [" + std::to_string(i0) + ", " + std::to_string(i1) +
                                  ") is not a range of the index's lists [0, " + std::to_string(index->nlist) + ")");
        if (i1 == i0) throw InvalidArgument("get_invlist_range: an empty range (an ArrayInvertedLists has nlist >= 1)");
        ArrayLists a;
        a.own = make_own(i1 - i0, index->code_size, "get_invlist_range");
        py::gil_scoped_release release;
        for (size_t l = size_t(i0); l < size_t(i1); l++) {
            const std::vector<idx_t> ids = index->list_ids(l);
            const std::vector<uint8_t> codes = index->list_codes_copy(l);
            a.own->lists.assign(l - size_t(i0), ids.data(), ids.size(), codes.data(), CodeLayout{index->code_size});
        }
        return a;
    }, py::arg("index"), py::arg("i0"), py::arg("i1"));
    m.def("_set_invlist_range", [](const std::shared_ptr<IndexIVF>& index, long long i0, long long i1, py::handle src) {
        ListsObject& lo = own_lists_arg(src, "set_invlist_range");
        if (i0 < 0 || i0 > i1 || size_t(i1) > index->nlist)
            throw InvalidArgument("set_invlist_range: [" + std::to_string(i0) + ", " + std::to_string(i1) +
                                  ") is not a range of the index's lists [0, " + std::to_string(index->nlist) + ")");
        if (lo.nlist() != size_t(i1 - i0))
            throw InvalidArgument("set_invlist_range: the lists hold " + std::to_string(lo.nlist()) +
                                  " lists for the range's " + std::to_string(i1 - i0));
        lo.write("set_invlist_range", [&](ListsObject::Own& o) {
            index->replace_list_range(size_t(i0), o.lists, CodeLayout{o.code_size});
            return 0;
        });
    }, py::arg("index"), py::arg("i0"), py::arg("i1"), py::arg("src"));
}

}  // namespace nearly_py
