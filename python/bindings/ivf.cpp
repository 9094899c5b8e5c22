// Inverted-file indexes: the IndexIVF base, IndexIVFFlat and SearchParametersIVF.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "invlists.h"
#include "nearly/ivf.h"
#include "nearly/ivf_flat.h"
#include "nearly/ivf_flat_dedup.h"
#include "nearly/ivf_flat_panorama.h"
#include "nearly/ivf_independent_quantizer.h"
#include "nearly/kmeans.h"

namespace nearly_py {

using namespace nearly;

namespace {
size_t non_negative(long long v, const char* what) {
    if (v < 0) throw InvalidArgument(std::string(what) + " must be non-negative (got " + std::to_string(v) + ")");
    return size_t(v);
}
size_t check_max_codes(long long v) {
    if (v < 0) throw InvalidArgument("max_codes must be non-negative (0: no limit; got " + std::to_string(v) + ")");
    return size_t(v);
}

size_t check_nprobe(long long nprobe) {
    if (nprobe < 1) throw InvalidArgument("nprobe must be at least 1 (got " + std::to_string(nprobe) + ")");
    return size_t(nprobe);
}
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
    py::class_<IndexIVF, Index, std::shared_ptr<IndexIVF>> ivf(m, "IndexIVF");
    ivf
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
        .def_property_readonly("invlists", [](std::shared_ptr<IndexIVF> self) { return lists_of(self); },
                               "The index's inverted lists (faiss's; read them, change them through the index).")
        .def("replace_invlists", [](std::shared_ptr<IndexIVF> self, py::handle il, bool own) {
            ListsObject& lo = own_lists_arg(il, "replace_invlists");
            lo.write("replace_invlists", [&](ListsObject::Own& o) {
                // faiss's merge_ondisk sets ntotal first: it must be what the lists hold.
                size_t total = 0;
                for (size_t l = 0; l < o.lists.nlist(); l++) total += o.lists[l].ids.size();
                const idx_t announced = self->announced_ntotal;
                self->announced_ntotal = -1;
                if (announced >= 0 && size_t(announced) != total)
                    throw InvalidArgument("replace_invlists: ntotal was set to " + std::to_string(announced) +
                                          " but the lists hold " + std::to_string(total) + " entries");
                self->replace_lists(std::move(o.lists), CodeLayout{o.code_size});
                o.index = self;
                return 0;
            });
        }, py::arg("il"), py::arg("own") = false,
           "faiss's replace_invlists with an ArrayInvertedLists or OnDiskInvertedLists: its entries become the "
           "index's (ntotal follows them; lists in a file stay in it) and the object reads the index's lists from "
           "then on.")
        .def_readwrite("_announced_ntotal", &IndexIVF::announced_ntotal)
        .def_property("_list_limits", [](const IndexIVF& self) {
            py::list out;
            for (const IndexIVF::ListLimit& lim : self.list_limits()) out.append(py::make_tuple(lim.stop_words, lim.maxsize));
            return out;
        }, [](IndexIVF& self, const std::vector<std::pair<bool, size_t>>& limits) {
            std::vector<IndexIVF::ListLimit> v;
            for (const auto& [stop, maxsize] : limits) v.push_back({stop, maxsize});
            py::gil_scoped_release release;
            self.set_list_limits(std::move(v));
        }, "The (stop_words, maxsize) limits on what searches scan of each list, innermost first "
           "(StopWordsInvertedLists / CappedInvertedLists over the index's lists).")

        .def("get_list_size", &IndexIVF::list_size, py::arg("list_no"))
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
    def_preassigned_adds<IndexIVF>(ivf, [](const IndexIVF& self, py::handle x, bool flat) {
        return as_matrix(flat ? py::reinterpret_borrow<py::object>(x).attr("reshape")(-1, self.d) : x, self.d, "x");
    }, "add / add_with_ids with each vector's list given (-1: counted, not stored), e.g. computed on a GPU.");

    py::class_<IndexIVFFlat, IndexIVF, std::shared_ptr<IndexIVFFlat>>(m, "IndexIVFFlat")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int metric) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFFlat: nlist must be positive");
                 return std::make_shared<IndexIVFFlat>(quantizer, d, size_t(nlist), MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2));

    py::class_<IndexIVFFlatDedup, IndexIVFFlat, std::shared_ptr<IndexIVFFlatDedup>>(
        m, "IndexIVFFlatDedup",
        "faiss's IndexIVFFlatDedup: IVF-Flat storing each distinct vector once; a copy's id is returned at the "
        "stored vector's distance.")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int metric, bool own_invlists) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFFlatDedup: nlist must be positive");
                 if (!own_invlists)
                     throw NotSupported("IndexIVFFlatDedup: own_invlists=False (external inverted lists) is not supported");
                 return std::make_shared<IndexIVFFlatDedup>(quantizer, d, size_t(nlist), MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2),
             py::arg("own_invlists") = true)
        .def("_instances", [](const IndexIVFFlatDedup& self) {
            const auto pairs = self.instances();
            py::array_t<idx_t> out({py::ssize_t(pairs.size()), py::ssize_t(2)});
            auto o = out.mutable_unchecked<2>();
            for (size_t i = 0; i < pairs.size(); i++) o(i, 0) = pairs[i].first, o(i, 1) = pairs[i].second;
            return out;
        }, "(stored id, copy id) pairs, sorted (faiss's instances map, which its Python cannot read).");

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

    py::class_<IndexIVFIndependentQuantizer, Index, std::shared_ptr<IndexIVFIndependentQuantizer>>(
        m, "IndexIVFIndependentQuantizer",
        "faiss's IndexIVFIndependentQuantizer(quantizer, index_ivf, vt=None): lists chosen by a quantizer over the "
        "input vectors, stored and scanned by index_ivf after the transform vt.")
        .def(py::init([](IndexPtr quantizer, std::shared_ptr<IndexIVF> ivf, TransformPtr vt) {
                 return std::make_shared<IndexIVFIndependentQuantizer>(std::move(quantizer), std::move(ivf),
                                                                       std::move(vt));
             }),
             py::arg("quantizer"), py::arg("index_ivf"), py::arg("vt") = nullptr)
        .def_readonly("quantizer", &IndexIVFIndependentQuantizer::quantizer)
        .def_readonly("index_ivf", &IndexIVFIndependentQuantizer::index_ivf)
        .def_readonly("vt", &IndexIVFIndependentQuantizer::vt)
        .def_readwrite("cp", &IndexIVFIndependentQuantizer::cp, py::return_value_policy::reference_internal)
        .def("_refresh_from_inner", &IndexIVFIndependentQuantizer::sync_from_parts,
             py::call_guard<py::gil_scoped_release>());
}

}  // namespace nearly_py
