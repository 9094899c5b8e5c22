// Inverted-file indexes: the IndexIVF base, IndexIVFFlat and SearchParametersIVF.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/ivf.h"
#include "nearly/ivf_flat.h"
#include "nearly/ivf_flat_panorama.h"
#include "nearly/kmeans.h"

namespace nearly_py {

using namespace nearly;

namespace {
size_t non_negative(long long v, const char* what) {
    if (v < 0) throw InvalidArgument(std::string(what) + " must be non-negative (got " + std::to_string(v) + ")");
    return size_t(v);
}
// faiss exposes the lists as index.invlists (list_size, nlist, code_size).
struct InvertedListsView {
    std::shared_ptr<IndexIVF> index;
};

// faiss's OnDiskInvertedLists: lists in a file of their own, filled by
// merge_from_multiple, then given to an index with replace_invlists; from
// then on the object reads the index's lists (as faiss's, which the index
// then holds).
struct OnDiskLists {
    std::shared_ptr<InvertedLists> lists;  // before replace_invlists
    size_t code_size = 0;
    std::string filename;
    std::shared_ptr<IndexIVF> index;  // after
    size_t nlist() const { return index ? index->nlist : lists->nlist(); }
    size_t list_size(size_t l) const {
        check_list(l);
        return index ? index->list_size(l) : (*lists)[l].ids.size();
    }
    void check_list(size_t l) const {
        if (l >= nlist())
            throw InvalidArgument("list number " + std::to_string(l) + " out of range [0, " + std::to_string(nlist()) + ")");
    }
    std::vector<idx_t> ids(size_t l) const {
        check_list(l);
        if (index) return index->list_ids(l);
        const auto& v = (*lists)[l].ids;
        return std::vector<idx_t>(v.begin(), v.end());
    }
    std::vector<uint8_t> codes(size_t l) const {
        check_list(l);
        if (index) return index->list_codes_copy(l);
        const auto& v = (*lists)[l].codes;
        return std::vector<uint8_t>(v.begin(), v.end());
    }
};

// The lists merge_from_multiple reads: InvertedLists of indexes (index.invlists), or other OnDiskInvertedLists.
InvertedLists::Source merge_source(py::handle h, size_t nlist, size_t code_size) {
    InvertedLists::Source src;
    std::shared_ptr<IndexIVF> index;
    if (py::isinstance<InvertedListsView>(h)) {
        index = py::cast<const InvertedListsView&>(h).index;
    } else if (py::isinstance<OnDiskLists>(h)) {
        const auto& od = py::cast<const OnDiskLists&>(h);
        if (od.index) {
            index = od.index;
        } else {
            auto held = std::make_shared<OnDiskLists>(od);
            if (held->nlist() != nlist || held->code_size != code_size)
                throw InvalidArgument("merge_from_multiple: every source must have the same nlist and code_size");
            src.size = [held](size_t l) { return held->list_size(l); };
            src.fetch = [held](size_t l, std::vector<idx_t>& ids, std::vector<uint8_t>& codes) {
                ids = held->ids(l);
                codes = held->codes(l);
            };
            return src;
        }
    } else {
        throw InvalidArgument("merge_from_multiple: the sources must be inverted lists (index.invlists, "
                              "OnDiskInvertedLists), in a list or an InvertedListsPtrVector");
    }
    if (index->nlist != nlist || index->code_size != code_size)
        throw InvalidArgument("merge_from_multiple: every source must have the same nlist (" + std::to_string(nlist) +
                              ") and code_size (" + std::to_string(code_size) + ")");
    src.size = [index](size_t l) { return index->list_size(l); };
    src.fetch = [index](size_t l, std::vector<idx_t>& ids, std::vector<uint8_t>& codes) {
        ids = index->list_ids(l);
        codes = index->list_codes_copy(l);
    };
    return src;
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

size_t check_max_codes(long long v) {
    if (v < 0) throw InvalidArgument("max_codes must be non-negative (0: no limit; got " + std::to_string(v) + ")");
    return size_t(v);
}

size_t check_nprobe(long long nprobe) {
    if (nprobe < 1) throw InvalidArgument("nprobe must be at least 1 (got " + std::to_string(nprobe) + ")");
    return size_t(nprobe);
}

// The lists given to the *_preassigned searches: Iq (n, nprobe) list
// numbers, Dq their centroid scores or None.
struct Assignment {
    py::array_t<idx_t, py::array::c_style | py::array::forcecast> Iq;
    py::array_t<float, py::array::c_style | py::array::forcecast> Dq;
    size_t np = 0;
    bool has_scores = false;
    Assignment(idx_t n, py::handle Iq_obj, py::handle Dq_obj) {
        Iq = py::array_t<idx_t, py::array::c_style | py::array::forcecast>::ensure(Iq_obj);
        if (!Iq || Iq.ndim() != 2 || Iq.shape(0) != n || Iq.shape(1) < 1)
            throw InvalidArgument("Iq must be an (n, nprobe) array of list numbers");
        np = size_t(Iq.shape(1));
        if (Dq_obj.is_none()) return;
        Dq = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(Dq_obj);
        if (!Dq || Dq.ndim() != 2 || Dq.shape(0) != n || size_t(Dq.shape(1)) != np)
            throw InvalidArgument("Dq must be an (n, nprobe) float32 array like Iq");
        has_scores = true;
    }
    const idx_t* lists() const { return Iq.data(); }
    const float* scores() const { return has_scores ? Dq.data() : nullptr; }
};
}  // namespace

void bind_ivf(py::module_& m) {
    py::class_<SearchParametersIVF, SearchParameters, std::shared_ptr<SearchParametersIVF>>(m, "SearchParametersIVF")
        .def(py::init([](long long nprobe, std::shared_ptr<IDSelector> sel, long long max_codes,
                         bool ensure_topk_full, std::shared_ptr<SearchParameters> quantizer_params,
                         long long max_lists_num, long long max_empty_result_buckets) {
                 auto p = std::make_shared<SearchParametersIVF>();
                 p->nprobe = check_nprobe(nprobe);
                 p->sel = sel;
                 p->max_codes = check_max_codes(max_codes);
                 p->ensure_topk_full = ensure_topk_full;
                 p->quantizer_params = quantizer_params;
                 p->max_lists_num = non_negative(max_lists_num, "max_lists_num");
                 p->max_empty_result_buckets = non_negative(max_empty_result_buckets, "max_empty_result_buckets");
                 return p;
             }),
             py::kw_only(), py::arg("nprobe") = 1, py::arg("sel") = nullptr, py::arg("max_codes") = 0,
             py::arg("ensure_topk_full") = false, py::arg("quantizer_params") = nullptr, py::arg("max_lists_num") = 0,
             py::arg("max_empty_result_buckets") = 0)
        .def_property("max_lists_num", [](const SearchParametersIVF& p) { return p.max_lists_num; },
                      [](SearchParametersIVF& p, long long v) { p.max_lists_num = non_negative(v, "max_lists_num"); },
                      "k-NN: visit at most this many of the nprobe lists, the nearest (0: all; with "
                      "ensure_topk_full at least k).")
        .def_property("max_empty_result_buckets", [](const SearchParametersIVF& p) { return p.max_empty_result_buckets; },
                      [](SearchParametersIVF& p, long long v) {
                          p.max_empty_result_buckets = non_negative(v, "max_empty_result_buckets");
                      },
                      "Range search: a query stops after this many probed lists in a row added no result "
                      "(0: never).")
        .def_property("quantizer_params",
                      [](const SearchParametersIVF& p) { return std::const_pointer_cast<SearchParameters>(p.quantizer_params); },
                      [](SearchParametersIVF& p, std::shared_ptr<SearchParameters> q) { p.quantizer_params = q; },
                      "Search parameters of the coarse quantizer (faiss's): SearchParametersHNSW(efSearch=...) for an "
                      "HNSW quantizer.")
        .def_property("nprobe", [](const SearchParametersIVF& p) { return p.nprobe; },
                      [](SearchParametersIVF& p, long long v) { p.nprobe = check_nprobe(v); })
        .def_property("max_codes", [](const SearchParametersIVF& p) { return p.max_codes; },
                      [](SearchParametersIVF& p, long long v) { p.max_codes = check_max_codes(v); },
                      "Codes scanned per query at most, the last list in part (0: no limit), as faiss.")
        .def_readwrite("ensure_topk_full", &SearchParametersIVF::ensure_topk_full,
                       "With max_codes: at least k codes that pass the selector, lists scanned whole (faiss's).");

    py::class_<InvertedListsView>(m, "InvertedLists")
        .def_property_readonly("nlist", [](const InvertedListsView& v) { return v.index->nlist; })
        .def_property_readonly("code_size", [](const InvertedListsView& v) { return v.index->code_size; })
        .def("list_size", [](const InvertedListsView& v, size_t l) { return v.index->list_size(l); }, py::arg("list_no"))
        .def("compute_ntotal", [](const InvertedListsView& v) {
            size_t total = 0;
            for (size_t l = 0; l < v.index->nlist; l++) total += v.index->list_size(l);
            return total;
        })
        .def("imbalance_factor", [](const InvertedListsView& v) {
            std::vector<size_t> sizes(v.index->nlist);
            double total = 0;
            for (size_t l = 0; l < sizes.size(); l++) total += double(sizes[l] = v.index->list_size(l));
            return imbalance_factor(sizes.data(), sizes.size(), total);
        }, "faiss's imbalance factor of the list sizes (1 when balanced).")
        // faiss's text: how many lists have a size below each power of two.
        .def("print_stats", [](const InvertedListsView& v) {
            std::vector<int> below(40, 0);
            for (size_t l = 0; l < v.index->nlist; l++) {
                const size_t s = v.index->list_size(l);
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
        .def("_index_lists_on_disk", [](const InvertedListsView& v) -> py::object {
            auto f = v.index->lists_file();
            if (!f) return py::none();
            OnDiskLists od;
            od.code_size = v.index->code_size;
            od.filename = f->path();
            od.index = v.index;
            return py::cast(od);
        })
        .def("get_ids", [](const InvertedListsView& v, size_t l) {
            std::vector<idx_t> ids = v.index->list_ids(l);
            py::array_t<idx_t> out(ids.size());
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
        }, py::arg("list_no"), "The ids of one list as a numpy array (faiss returns a pointer).")
        .def("get_codes", [](const InvertedListsView& v, size_t l) {
            std::vector<uint8_t> codes = v.index->list_codes_copy(l);
            py::array_t<uint8_t> out(codes.size());
            std::copy(codes.begin(), codes.end(), out.mutable_data());
            return out;
        }, py::arg("list_no"), "The codes of one list, list_size * code_size bytes (faiss returns a pointer).");

    py::class_<OnDiskLists>(m, "OnDiskInvertedLists", "faiss's OnDiskInvertedLists: inverted lists in a file of their "
                            "own, mapped (searched through the page cache, so larger than memory), written to by adds; "
                            "write_index then records the file's name, not the lists.")
        .def(py::init([](long long nlist, long long code_size, py::handle fname) {
                 if (nlist < 1 || code_size < 1) throw InvalidArgument("nlist and code_size must be positive");
                 std::string path = py::cast<std::string>(py::module_::import("os").attr("fspath")(fname));
                 OnDiskLists od;
                 od.code_size = size_t(code_size);
                 od.filename = path;
                 od.lists = std::make_shared<InvertedLists>(size_t(nlist));
                 od.lists->move_to_file(ListFile::create(path, size_t(nlist)), CodeLayout{size_t(code_size)});
                 return od;
             }),
             py::arg("nlist"), py::arg("code_size"), py::arg("filename"))
        .def_property_readonly("nlist", &OnDiskLists::nlist)
        .def_property_readonly("code_size", [](const OnDiskLists& od) { return od.code_size; })
        .def_property_readonly("filename", [](const OnDiskLists& od) { return od.filename; })
        .def_property_readonly("totsize", [](const OnDiskLists& od) {
            auto f = od.index ? od.index->lists_file() : od.lists->file();
            return f ? f->end() : 0;
        }, "Bytes of the file in use.")
        .def("list_size", &OnDiskLists::list_size, py::arg("list_no"))
        .def("compute_ntotal", [](const OnDiskLists& od) {
            size_t total = 0;
            for (size_t l = 0; l < od.nlist(); l++) total += od.list_size(l);
            return total;
        })
        .def("get_ids", [](const OnDiskLists& od, size_t l) { return ids_array(od.ids(l)); }, py::arg("list_no"))
        .def("get_codes", [](const OnDiskLists& od, size_t l) { return codes_array(od.codes(l)); }, py::arg("list_no"))
        .def("merge_from_multiple", [](OnDiskLists& od, py::handle ils, long long n_il, bool shift_ids, bool verbose) {
            if (od.index)
                throw NotSupported("merge_from_multiple: these lists belong to an index now (merge into an "
                                   "OnDiskInvertedLists before replace_invlists)");
            std::vector<py::handle> items;
            if (py::isinstance<InvertedListsView>(ils) || py::isinstance<OnDiskLists>(ils)) {
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
                sources.push_back(merge_source(h, od.nlist(), od.code_size));
                if (shift_ids) {
                    sources.back().shift = shift;
                    for (size_t l = 0; l < od.nlist(); l++) shift += idx_t(sources.back().size(l));
                }
            }
            py::gil_scoped_release release;
            return od.lists->merge_from(sources, CodeLayout{od.code_size}, od.code_size, verbose);
        }, py::arg("ils"), py::arg("n_il") = -1, py::arg("shift_ids") = false, py::arg("verbose") = false,
           "Fills these empty lists with every entry of the given lists (list by list, in their order; with "
           "shift_ids each source's ids shifted by the entries of the sources before it). Returns the number of "
           "entries: faiss's merge_ondisk sets ntotal from it.");

    py::class_<IndexIVFStats>(m, "IndexIVFStats")
        .def(py::init<>())
        .def_readwrite("nq", &IndexIVFStats::nq)
        .def_readwrite("nlist", &IndexIVFStats::nlist)
        .def_readwrite("ndis", &IndexIVFStats::ndis)
        .def_readwrite("nheap_updates", &IndexIVFStats::nheap_updates)
        .def_readwrite("quantization_time", &IndexIVFStats::quantization_time)
        .def_readwrite("search_time", &IndexIVFStats::search_time)
        .def("reset", &IndexIVFStats::reset)
        .def("add", &IndexIVFStats::add, py::arg("other"));
    // The process-wide counters themselves (nearly.cvar.indexIVF_stats), not a copy.
    m.def("_indexIVF_stats", []() -> IndexIVFStats& { return indexIVF_stats; }, py::return_value_policy::reference);

    // The properties every IVF family shares (faiss's IndexIVF).
    py::class_<IndexIVF, Index, std::shared_ptr<IndexIVF>>(m, "IndexIVF")
        .def_property("quantizer", &IndexIVF::get_quantizer,
                      [](IndexIVF& i, py::handle q) {
                          IndexPtr p;
                          try {
                              p = py::cast<IndexPtr>(q);
                          } catch (const py::cast_error&) {
                              throw InvalidArgument("the quantizer must be a native nearly index (IndexFlat, "
                                                    "IndexHNSWFlat, ...)");
                          }
                          py::gil_scoped_release release;
                          i.set_quantizer(std::move(p));
                      },
                      "The coarse quantizer. faiss's `index.quantizer = q` works: same d; nlist centroids once "
                      "trained; the same centroids once codes are stored by residual.")
        .def_readonly("nlist", &IndexIVF::nlist)
        .def_readonly("code_size", &IndexIVF::code_size)
        .def_readonly("by_residual", &IndexIVF::by_residual)
        .def("search_and_return_codes", [](const IndexIVF& self, py::handle x_obj, py::handle k_obj,
                                           bool include_listnos, py::handle params) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const idx_t k = as_k(k_obj), n = x.shape(0);
            const idx_t cs = idx_t(include_listnos ? self.sa_code_size() : self.code_size);
            py::array_t<float> D({n, k});
            py::array_t<idx_t> I({n, k});
            py::array_t<uint8_t> codes({n, k, cs});
            const SearchParameters* p = params_ptr(params);
            {
                py::gil_scoped_release release;
                self.search_and_return_codes(n, x.data(), k, D.mutable_data(), I.mutable_data(), codes.mutable_data(),
                                             include_listnos, p);
            }
            return py::make_tuple(D, I, codes);
        }, py::arg("x"), py::arg("k"), py::arg("include_listnos") = false, py::kw_only(), py::arg("params") = py::none(),
           "search() and the results' codes as stored: (D, I, codes uint8 (n, k, code_size)); with include_listnos "
           "each code starts with its list number, the sa_decode() format. Missing results' codes are all 0xff.")
        .def("check_ids_sorted", [](const IndexIVF& i) {
            py::gil_scoped_release release;
            return i.check_ids_sorted();
        }, "faiss's check: every list holds its ids in ascending order (IDSelectorRange's assume_sorted then "
           "scans only the ids in range).")
        // Reference, like faiss: index.cp.niter = 20 changes the next train().
        .def_readwrite("cp", &IndexIVF::cp, py::return_value_policy::reference_internal)
        // faiss's idiom: index_ivf.clustering_index = a GPU or HNSW index
        // trains the coarse quantizer's k-means through it.
        .def_property("clustering_index", &IndexIVF::get_clustering_index,
                      [](IndexIVF& i, py::handle v) { i.set_clustering_index(clustering_index_arg(v)); })
        .def_property("quantizer_trains_alone", [](const IndexIVF& i) { return i.quantizer_trains_alone; },
                      [](IndexIVF& i, int v) {
                          if (v < 0 || v > 2) throw InvalidArgument("quantizer_trains_alone must be 0, 1 or 2");
                          i.quantizer_trains_alone = v;
                      })
        .def_property("nprobe", [](const IndexIVF& i) { return i.nprobe; },
                      [](IndexIVF& i, long long v) { i.nprobe = check_nprobe(v); })
        .def_property("parallel_mode", [](const IndexIVF& i) { return i.parallel_mode; },
                      [](IndexIVF& i, int v) {
                          if (v < 0 || (v & ~1024) > 3)
                              throw InvalidArgument("parallel_mode must be 0 to 3, with PARALLEL_MODE_NO_HEAP_INIT "
                                                    "(1024) or not");
                          i.parallel_mode = v;
                      },
                      "faiss's OpenMP split, kept for code that sets it: nearly picks its own (same results). "
                      "PARALLEL_MODE_NO_HEAP_INIT (1024): search_preassigned(..., D=, I=) merges its results "
                      "into the ones D and I hold.")
        .def_property("max_codes", [](const IndexIVF& i) { return i.max_codes; },
                      [](IndexIVF& i, long long v) { i.max_codes = check_max_codes(v); },
                      "Codes scanned per query at most, the last list in part (0: no limit), as faiss; "
                      "SearchParametersIVF.max_codes overrides it.")
        .def("make_direct_map", [](IndexIVF& self, bool enable) {
            py::gil_scoped_release release;
            self.make_direct_map(enable);
        }, py::arg("new_maintain_direct_map") = true)
        .def("has_direct_map", &IndexIVF::has_direct_map)
        .def("check_compatible_for_merge", &IndexIVF::check_compatible_for_merge, py::arg("otherIndex"),
             "Raises unless otherIndex's codes mean the same here (same family, centroids and encoder).")
        .def("search_preassigned", [](const IndexIVF& self, py::handle x_obj, py::handle k_obj, py::handle Iq_obj,
                                      py::handle Dq_obj, py::handle params) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const idx_t n = x.shape(0), k = as_k(k_obj);
            const Assignment a(n, Iq_obj, Dq_obj);
            const SearchParameters* p = params.is_none() ? nullptr : py::cast<const SearchParameters*>(params);
            py::array_t<float> D({n, k});
            py::array_t<idx_t> I({n, k});
            {
                py::gil_scoped_release release;
                self.search_preassigned(n, x.data(), k, a.np, a.lists(), a.scores(), D.mutable_data(),
                                        I.mutable_data(), p);
            }
            return py::make_tuple(D, I);
        }, py::arg("x"), py::arg("k"), py::arg("Iq"), py::arg("Dq") = py::none(), py::kw_only(),
           py::arg("params") = py::none(),
           "search() over the lists given per query (Iq, n x nprobe; -1 skipped) with their centroid scores "
           "(Dq; None: computed): returns (D, I).")
        .def("range_search_preassigned", [](const IndexIVF& self, py::handle x_obj, float radius, py::handle Iq_obj,
                                            py::handle Dq_obj, py::handle params) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const idx_t n = x.shape(0);
            const Assignment a(n, Iq_obj, Dq_obj);
            const SearchParameters* p = params.is_none() ? nullptr : py::cast<const SearchParameters*>(params);
            RangeSearchResult res;
            {
                py::gil_scoped_release release;
                self.range_search_preassigned(n, x.data(), radius, a.np, a.lists(), a.scores(), res, p);
            }
            return range_result_tuple(res);
        }, py::arg("x"), py::arg("radius"), py::arg("Iq"), py::arg("Dq") = py::none(), py::kw_only(),
           py::arg("params") = py::none(),
           "range_search() over the lists given per query (Iq, n x nprobe; -1 skipped) with their centroid "
           "scores (Dq; None: computed): returns (lims, D, I).")
        .def_property_readonly("invlists", [](std::shared_ptr<IndexIVF> self) { return InvertedListsView{self}; })
        .def("replace_invlists", [](std::shared_ptr<IndexIVF> self, py::handle il, bool own) {
            if (!py::isinstance<OnDiskLists>(il))
                throw NotSupported("replace_invlists: nearly takes an OnDiskInvertedLists here (the lists of another "
                                   "index cannot be shared: merge_from copies them)");
            OnDiskLists& od = py::cast<OnDiskLists&>(il);
            if (od.index) throw NotSupported("replace_invlists: these OnDiskInvertedLists already belong to an index");
            // faiss's merge_ondisk sets ntotal first: it must be what the lists hold.
            size_t total = 0;
            for (size_t l = 0; l < od.lists->nlist(); l++) total += (*od.lists)[l].ids.size();
            const idx_t announced = self->announced_ntotal;
            self->announced_ntotal = -1;
            if (announced >= 0 && size_t(announced) != total)
                throw InvalidArgument("replace_invlists: ntotal was set to " + std::to_string(announced) +
                                      " but the lists hold " + std::to_string(total) + " entries");
            {
                py::gil_scoped_release release;
                self->replace_lists(std::move(*od.lists), CodeLayout{od.code_size});
            }
            od.lists.reset();
            od.index = self;
        }, py::arg("il"), py::arg("own") = false,
           "faiss's replace_invlists with an OnDiskInvertedLists: its entries become the index's (ntotal follows "
           "them) and the index's lists live in its file from now on.")
        .def_readwrite("_announced_ntotal", &IndexIVF::announced_ntotal)

        .def("get_list_size", &IndexIVF::list_size, py::arg("list_no"))
        .def("add_preassigned", [](IndexIVF& self, py::handle x_obj, py::handle lists_obj, py::handle ids_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            IdArray lists = as_ids(lists_obj, x.shape(0), "list_nos");
            IdArray ids;
            if (!ids_obj.is_none()) ids = as_ids(ids_obj, x.shape(0), "ids");
            const idx_t* idp = ids_obj.is_none() ? nullptr : ids.data();
            py::gil_scoped_release release;
            self.add_core(x.shape(0), x.data(), idp, lists.data());
        }, py::arg("x"), py::arg("list_nos"), py::arg("ids") = py::none(),
           "add / add_with_ids with each vector's list given (-1: counted, not stored), e.g. computed on a GPU.")
        // faiss's pointer-shaped spelling (swig_ptr hands arrays through).
        .def("add_core", [](IndexIVF& self, idx_t n, py::handle x_obj, py::handle ids_obj, py::handle lists_obj) {
            FloatArray x = as_matrix(py::reinterpret_borrow<py::object>(x_obj).attr("reshape")(-1, self.d), self.d, "x");
            if (n < 0 || n > x.shape(0)) throw InvalidArgument("add_core: n is larger than x");
            IdArray ids, lists;
            if (!ids_obj.is_none()) ids = as_ids(py::reinterpret_borrow<py::object>(ids_obj).attr("ravel")(), -1, "xids");
            if (!lists_obj.is_none()) lists = as_ids(py::reinterpret_borrow<py::object>(lists_obj).attr("ravel")(), -1, "precomputed_idx");
            if ((!ids_obj.is_none() && ids.shape(0) < n) || (!lists_obj.is_none() && lists.shape(0) < n))
                throw InvalidArgument("add_core: xids and precomputed_idx must hold n entries");
            const idx_t* idp = ids_obj.is_none() ? nullptr : ids.data();
            const idx_t* lp = lists_obj.is_none() ? nullptr : lists.data();
            py::gil_scoped_release release;
            self.add_core(n, x.data(), idp, lp);
        }, py::arg("n"), py::arg("x"), py::arg("xids"), py::arg("precomputed_idx") = py::none())
        .def("update_vectors", [](IndexIVF& self, py::handle keys_obj, py::handle x_obj) {
            IdArray keys = as_ids(keys_obj, -1, "keys");
            FloatArray x = as_matrix(x_obj, self.d, "x");
            if (x.shape(0) != keys.shape(0)) throw InvalidArgument("update_vectors: one row of x per key");
            py::gil_scoped_release release;
            self.update_vectors(keys.shape(0), keys.data(), x.data());
        }, py::arg("keys"), py::arg("x"),
           "faiss's update_vectors: the vectors of these ids become x's rows, re-assigned to their lists "
           "(needs make_direct_map()).")
        .def("copy_subset_to", [](const IndexIVF& self, IndexIVF& other, int subset_type, idx_t a1, idx_t a2) {
            py::gil_scoped_release release;
            return self.copy_subset_to(other, subset_type, a1, a2);
        }, py::arg("other"), py::arg("subset_type"), py::arg("a1"), py::arg("a2"),
           "Appends a subset of the entries to other (faiss's subset types 0-4); returns how many.")
        .def("add_entries", [](IndexIVF& self, size_t list_no, py::handle codes_obj, py::handle ids_obj) {
            auto codes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(codes_obj);
            IdArray ids = as_ids(ids_obj, -1, "ids");
            if (!codes || size_t(codes.size()) != size_t(ids.shape(0)) * self.code_size)
                throw InvalidArgument("codes must hold len(ids) * code_size bytes");
            py::gil_scoped_release release;
            self.add_entries(list_no, size_t(ids.shape(0)), codes.data(), ids.data());
        }, py::arg("list_no"), py::arg("codes"), py::arg("ids"),
           "Appends encoded entries to one list (nearly only; as invlists.add_entries in faiss).")
        .def("list_ids", [](const IndexIVF& self, size_t list_no) {
            std::vector<idx_t> ids = self.list_ids(list_no);
            py::array_t<idx_t> out(ids.size());
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
        }, py::arg("list_no"), "Ids stored in one inverted list, in storage order.");

    py::class_<IndexIVFFlat, IndexIVF, std::shared_ptr<IndexIVFFlat>>(m, "IndexIVFFlat")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int metric) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFFlat: nlist must be positive");
                 return std::make_shared<IndexIVFFlat>(quantizer, d, size_t(nlist), MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2));

    py::class_<IndexIVFFlatPanorama, IndexIVFFlat, std::shared_ptr<IndexIVFFlatPanorama>> ivf_panorama(
        m, "IndexIVFFlatPanorama");
    ivf_panorama.attr("kDefaultBatchSize") = IndexIVFFlatPanorama::kDefaultBatchSize;
    ivf_panorama
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, long long n_levels, int metric, bool own_invlists,
                         long long batch_size) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFFlatPanorama: nlist must be positive");
                 if (n_levels < 1) throw InvalidArgument("IndexIVFFlatPanorama: n_levels must be > 0");
                 if (batch_size < 1) throw InvalidArgument("IndexIVFFlatPanorama: batch_size must be > 0");
                 if (!own_invlists)
                     throw NotSupported("IndexIVFFlatPanorama: own_invlists=False (external inverted lists) is not supported");
                 return std::make_shared<IndexIVFFlatPanorama>(quantizer, d, size_t(nlist), size_t(n_levels),
                                                               MetricType(metric), size_t(batch_size));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("n_levels"),
             py::arg("metric") = int(METRIC_L2), py::arg("own_invlists") = true,
             py::arg("batch_size") = IndexIVFFlatPanorama::kDefaultBatchSize)
        .def_property_readonly("n_levels", &IndexIVFFlatPanorama::n_levels)
        .def_property_readonly("batch_size", &IndexIVFFlatPanorama::batch_size);
}

}  // namespace nearly_py
