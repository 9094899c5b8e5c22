// faiss's 1-bit binary indexes: IndexBinaryFlat, IndexBinaryIDMap,
// knn_hamming and their I/O.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "selector_arg.h"
#include "hnsw_view.h"
#include "nearly/binary_flat.h"
#include "nearly/binary_from_float.h"
#include "nearly/binary_hash.h"
#include "nearly/binary_hnsw.h"
#include "nearly/binary_ivf.h"
#include "nearly/hamming.h"
#include "nearly/io.h"

namespace nearly_py {

using namespace nearly;
using U8Array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

namespace {

std::string fspath(py::handle p) {
    try {
        return py::cast<std::string>(py::module_::import("os").attr("fspath")(p));
    } catch (const py::error_already_set&) {
        throw InvalidArgument("the file name must be a str or os.PathLike");
    }
}

// A binary range search's (lims, D, I): faiss's int32 distances.
py::tuple binary_range_tuple(const RangeSearchResult& res) {
    py::array_t<uint64_t> lims(res.lims.size());
    std::copy(res.lims.begin(), res.lims.end(), lims.mutable_data());
    py::array_t<int32_t> D(res.distances.size());
    for (size_t i = 0; i < res.distances.size(); i++) D.mutable_data()[i] = int32_t(res.distances[i]);
    py::array_t<idx_t> I(res.labels.size());
    std::copy(res.labels.begin(), res.labels.end(), I.mutable_data());
    return py::make_tuple(lims, D, I);
}

}  // namespace

void bind_binary_flat(py::module_& m) {
    py::class_<IndexBinary, std::shared_ptr<IndexBinary>>(m, "IndexBinary")
        .def_readonly("d", &IndexBinary::d)
        .def_readonly("code_size", &IndexBinary::code_size)
        .def_readonly("ntotal", &IndexBinary::ntotal)
        .def_readonly("is_trained", &IndexBinary::is_trained)
        .def_readwrite("verbose", &IndexBinary::verbose)
        .def_property_readonly("metric_type", [](const IndexBinary& i) { return int(i.metric_type); })
        .def("train", [](IndexBinary& self, py::handle x_obj) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data());
        }, py::arg("x"))
        .def("add", [](IndexBinary& self, py::handle x_obj) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            py::gil_scoped_release release;
            self.add(x.shape(0), x.data());
        }, py::arg("x"))
        .def("add_with_ids", [](IndexBinary& self, py::handle x_obj, py::handle ids_obj) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            IdArray ids = as_ids(ids_obj, x.shape(0), "ids");
            py::gil_scoped_release release;
            self.add_with_ids(x.shape(0), x.data(), ids.data());
        }, py::arg("x"), py::arg("ids"))
        .def("range_search", [](const IndexBinary& self, py::handle x_obj, int radius, py::handle params) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            const SearchParameters* p = params_ptr(params);
            RangeSearchResult res;
            {
                py::gil_scoped_release release;
                self.range_search(x.shape(0), x.data(), radius, res, p);
            }
            return binary_range_tuple(res);
        }, py::arg("x"), py::arg("radius"), py::kw_only(), py::arg("params") = py::none())
        .def("search", [](const IndexBinary& self, py::handle x_obj, py::handle k_obj, py::handle params) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            idx_t k = as_k(k_obj);
            idx_t n = x.shape(0);
            const SearchParameters* p = params_ptr(params);
            py::array_t<int32_t> D({n, k});
            py::array_t<idx_t> I({n, k});
            {
                py::gil_scoped_release release;
                self.search(n, x.data(), k, D.mutable_data(), I.mutable_data(), p);
            }
            return py::make_tuple(D, I);
        }, py::arg("x"), py::arg("k"), py::kw_only(), py::arg("params") = py::none(),
           "k nearest codes by Hamming distance: (D int32 (n, k), I int64 (n, k)).")
        // faiss's assign: the ids of the k nearest codes (into labels when given).
        .def("assign", [](const IndexBinary& self, py::handle x_obj, py::handle k_obj, py::handle labels_obj) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            const idx_t k = as_k(k_obj), n = x.shape(0);
            py::array_t<idx_t> labels;
            if (labels_obj.is_none()) {
                labels = py::array_t<idx_t>({n, k});
            } else {
                if (!py::isinstance<py::array_t<idx_t>>(labels_obj))
                    throw InvalidArgument("assign: labels must be an int64 array");
                labels = py::reinterpret_borrow<py::array_t<idx_t>>(labels_obj);
                if (!(labels.flags() & py::array::c_style) || !labels.writeable() || labels.size() != n * k)
                    throw InvalidArgument("assign: labels must be a writeable C-contiguous int64 array of n * k = " +
                                          std::to_string(n * k) + " values");
            }
            std::vector<int32_t> D(size_t(n * k));
            idx_t* I = labels.mutable_data();
            {
                py::gil_scoped_release release;
                self.search(n, x.data(), k, D.data(), I, nullptr);
            }
            return labels;
        }, py::arg("x"), py::arg("k"), py::arg("labels") = py::none())
        .def("reconstruct", [](const IndexBinary& self, idx_t key) {
            py::array_t<uint8_t> out(self.code_size);
            self.reconstruct(key, out.mutable_data());
            return out;
        }, py::arg("key"))
        .def("reconstruct_n", [](const IndexBinary& self, idx_t n0, idx_t ni) {
            if (ni == -1) ni = self.ntotal - n0;
            if (ni < 0 || n0 < 0 || n0 + ni > self.ntotal) throw OutOfRange("reconstruct_n: bad range");
            py::array_t<uint8_t> out({ni, idx_t(self.code_size)});
            for (idx_t i = 0; i < ni; i++) self.reconstruct(n0 + i, out.mutable_data() + i * self.code_size);
            return out;
        }, py::arg("n0") = 0, py::arg("ni") = -1)
        .def("remove_ids", [](IndexBinary& self, py::handle what) {
            std::shared_ptr<IDSelector> sel = selector_or_ids(what);
            py::gil_scoped_release release;
            return self.remove_ids(*sel);
        }, py::arg("sel"))
        .def("reset", [](IndexBinary& self) { self.reset(); })
        .def("__repr__", [](const IndexBinary& i) {
            return "<nearly." + py::str(py::type::of(py::cast(&i)).attr("__name__")).cast<std::string>() +
                   " d=" + std::to_string(i.d) + " ntotal=" + std::to_string(i.ntotal) + ">";
        });

    py::class_<IndexBinaryFlat, IndexBinary, std::shared_ptr<IndexBinaryFlat>>(m, "IndexBinaryFlat")
        .def(py::init<int>(), py::arg("d"))
        .def_readwrite("use_heap", &IndexBinaryFlat::use_heap)
        .def_property_readonly("xb", [](const IndexBinaryFlat& self) {
            const auto& c = self.codes();
            return py::array_t<uint8_t>(c.size(), c.data());
        });
    py::class_<IndexBinaryIDMap, IndexBinary, std::shared_ptr<IndexBinaryIDMap>>(m, "IndexBinaryIDMap")
        .def(py::init<IndexBinaryPtr>(), py::arg("index"))
        .def_readonly("index", &IndexBinaryIDMap::index)
        .def_property_readonly("id_map", [](const IndexBinaryIDMap& self) {
            std::vector<idx_t> ids = self.ids();
            py::array_t<idx_t> out(ids.size());
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
        });
    py::class_<IndexBinaryIDMap2, IndexBinaryIDMap, std::shared_ptr<IndexBinaryIDMap2>>(m, "IndexBinaryIDMap2")
        .def(py::init<IndexBinaryPtr>(), py::arg("index"));

    py::class_<IndexBinaryHNSW, IndexBinary, std::shared_ptr<IndexBinaryHNSW>> binary_hnsw(m, "IndexBinaryHNSW");
    def_init_level0(binary_hnsw);
    binary_hnsw
        .def(py::init<int, int>(), py::arg("d"), py::arg("M") = 32)
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexBinaryHNSW> self) { return hnsw_view(self); });

    py::class_<IndexBinaryIVF, IndexBinary, std::shared_ptr<IndexBinaryIVF>> binary_ivf(m, "IndexBinaryIVF");
    binary_ivf
        .def(py::init([](IndexBinaryPtr quantizer, int d, int64_t nlist) {
                 if (nlist < 1) throw InvalidArgument("IndexBinaryIVF: nlist must be positive");
                 return std::make_shared<IndexBinaryIVF>(quantizer, d, size_t(nlist));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"))
        .def_readonly("quantizer", &IndexBinaryIVF::quantizer)
        .def_readonly("nlist", &IndexBinaryIVF::nlist)
        .def_readwrite("cp", &IndexBinaryIVF::cp, py::return_value_policy::reference_internal)
        .def_property("nprobe", [](const IndexBinaryIVF& i) { return i.nprobe; },
                      [](IndexBinaryIVF& i, int64_t np) {
                          if (np < 1) throw InvalidArgument("nprobe must be positive");
                          i.nprobe = size_t(np);
                      })
        .def("make_direct_map", [](IndexBinaryIVF& self, bool enable) { self.make_direct_map(enable); },
             py::arg("new_maintain_direct_map") = true)
        .def_readwrite("use_heap", &IndexBinaryIVF::use_heap)
        .def_readwrite("per_invlist_search", &IndexBinaryIVF::per_invlist_search)
        .def_property("clustering_index", &IndexBinaryIVF::get_clustering_index,
                      [](IndexBinaryIVF& i, py::handle v) { i.set_clustering_index(clustering_index_arg(v)); })
        // faiss's hand-filled quantizer: is_trained = True once it holds the
        // nlist centroids (refused otherwise: adds would have no lists).
        .def_property("is_trained", [](const IndexBinaryIVF& i) { return i.is_trained; },
                      [](IndexBinaryIVF& i, bool v) {
                          if (v && (!i.quantizer || !binary_quantizer_places_lists(*i.quantizer, i.nlist)))
                              throw InvalidArgument("IndexBinaryIVF.is_trained = True needs a trained quantizer "
                                                    "holding the " + std::to_string(i.nlist) + " centroids, or an "
                                                    "IndexBinaryIDMap2 of distinct list numbers (it holds " +
                                                    std::to_string(i.quantizer ? i.quantizer->ntotal : 0) + ")");
                          if (!v && i.ntotal > 0)
                              throw InvalidArgument("IndexBinaryIVF.is_trained = False on an index holding codes");
                          i.is_trained = v;
                      })
        .def("reconstruct_n", [](const IndexBinaryIVF& self, idx_t n0, idx_t ni) {
            if (ni == -1) ni = self.ntotal - n0;
            if (ni < 0 || n0 < 0 || n0 + ni > self.ntotal) throw OutOfRange("reconstruct_n: bad range");
            py::array_t<uint8_t> out({ni, idx_t(self.code_size)});
            uint8_t* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                self.reconstruct_n(n0, ni, o);
            }
            return out;
        }, py::arg("n0") = 0, py::arg("ni") = -1)
        .def("search_preassigned", [](const IndexBinaryIVF& self, py::handle x_obj, py::handle k_obj, py::handle Iq_obj,
                                      py::handle /*Dq: unused, Hamming scans ignore the coarse distances*/,
                                      py::handle params) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            const idx_t n = x.shape(0), k = as_k(k_obj);
            const Assignment a(n, Iq_obj, py::none());
            const SearchParameters* p = params_ptr(params);
            py::array_t<int32_t> D({n, k});
            py::array_t<idx_t> I({n, k});
            {
                py::gil_scoped_release release;
                self.search_preassigned(n, x.data(), k, a.np, a.lists(), D.mutable_data(), I.mutable_data(), p);
            }
            return py::make_tuple(D, I);
        }, py::arg("x"), py::arg("k"), py::arg("Iq"), py::arg("Dq") = py::none(), py::kw_only(),
           py::arg("params") = py::none(), "search() over the lists given per query (Iq, n x nprobe; -1 skipped).")
        .def("range_search_preassigned", [](const IndexBinaryIVF& self, py::handle x_obj, int radius,
                                            py::handle Iq_obj, py::handle /*Dq*/, py::handle params) {
            U8Array x = as_codes(x_obj, self.code_size, "codes");
            const idx_t n = x.shape(0);
            const Assignment a(n, Iq_obj, py::none());
            const SearchParameters* p = params_ptr(params);
            RangeSearchResult res;
            {
                py::gil_scoped_release release;
                self.range_search_preassigned(n, x.data(), radius, a.np, a.lists(), res, p);
            }
            return binary_range_tuple(res);
        }, py::arg("x"), py::arg("radius"), py::arg("Iq"), py::arg("Dq") = py::none(), py::kw_only(),
           py::arg("params") = py::none(), "range_search() over the lists given per query: (lims, D, I).")
        .def("_shard", &IndexBinaryIVF::shard, py::arg("quantizer"), py::arg("lists"),
             py::call_guard<py::gil_scoped_release>())
        .def("list_size", &IndexBinaryIVF::list_size, py::arg("list_no"))
        .def("get_list_codes", [](const IndexBinaryIVF& self, size_t l) {
            std::vector<uint8_t> codes = self.list_codes(l);
            py::array_t<uint8_t> out({idx_t(codes.size() / size_t(self.code_size)), idx_t(self.code_size)});
            std::copy(codes.begin(), codes.end(), out.mutable_data());
            return out;
        }, py::arg("list_no"))
        .def("get_list_ids", [](const IndexBinaryIVF& self, size_t l) {
            std::vector<idx_t> ids = self.list_ids(l);
            py::array_t<idx_t> out(ids.size());
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
        }, py::arg("list_no"));
    def_preassigned_adds<IndexBinaryIVF>(binary_ivf, [](const IndexBinaryIVF& self, py::handle x, bool flat) {
        const idx_t cs = self.code_size;
        return as_codes(flat ? py::reinterpret_borrow<py::object>(x).attr("reshape")(-1, cs) : x, cs, "codes");
    }, "add / add_with_ids with each vector's list given (-1: counted, not stored).");

    auto check_nflip = [](int b, int v) {
        if (v < 0 || v > b)
            throw InvalidArgument("nflip must be in 0..b=" + std::to_string(b) + ", got " + std::to_string(v));
        return v;
    };
    py::class_<IndexBinaryHash, IndexBinary, std::shared_ptr<IndexBinaryHash>>(
        m, "IndexBinaryHash",
        "faiss's IndexBinaryHash(d, b): codes bucketed by their first b bits; a search scores the buckets within "
        "nflip bit flips of the query's.")
        .def(py::init<int, int>(), py::arg("d"), py::arg("b"))
        .def_readonly("b", &IndexBinaryHash::b)
        .def_property("nflip", [](const IndexBinaryHash& i) { return i.nflip; },
                      [check_nflip](IndexBinaryHash& i, int v) { i.nflip = check_nflip(i.b, v); })
        .def("hashtable_size", &IndexBinaryHash::hashtable_size)
        .def("display", [](const IndexBinaryHash& self) {
            std::vector<uint64_t> hashes;
            for (const auto& e : self.buckets) hashes.push_back(e.first);
            std::sort(hashes.begin(), hashes.end());
            for (uint64_t h : hashes) {
                std::string line = std::to_string(h) + ": [";
                for (idx_t id : self.buckets.at(h).ids) line += std::to_string(id) + " ";
                py::print(line + "]");
            }
        }, "Prints each bucket's ids (faiss's display()).");
    py::class_<IndexBinaryMultiHash, IndexBinary, std::shared_ptr<IndexBinaryMultiHash>>(
        m, "IndexBinaryMultiHash",
        "faiss's IndexBinaryMultiHash(d, nhash, b): nhash tables, each bucketing the codes by its own b-bit slice; "
        "a search scores every code reached in any of them.")
        .def(py::init<int, int, int>(), py::arg("d"), py::arg("nhash"), py::arg("b"))
        .def_readonly("b", &IndexBinaryMultiHash::b)
        .def_readonly("nhash", &IndexBinaryMultiHash::nhash)
        .def_property("nflip", [](const IndexBinaryMultiHash& i) { return i.nflip; },
                      [check_nflip](IndexBinaryMultiHash& i, int v) { i.nflip = check_nflip(i.b, v); })
        .def_property_readonly("storage", [](const IndexBinaryMultiHash& i) {
            return std::const_pointer_cast<const IndexBinaryFlat>(i.storage);
        }, "The codes (an IndexBinaryFlat; read it, do not add to it: the tables would not follow).")
        .def("hashtable_size", &IndexBinaryMultiHash::hashtable_size);
    py::class_<IndexBinaryFromFloat, IndexBinary, std::shared_ptr<IndexBinaryFromFloat>>(
        m, "IndexBinaryFromFloat",
        "faiss's IndexBinaryFromFloat(index): a binary index served by a float index over the codes' +-1 vectors "
        "(Hamming = squared L2 / 4); e.g. a float HNSW or IMI coarse quantizer for IndexBinaryIVF.")
        .def(py::init<IndexPtr>(), py::arg("index"))
        .def_readonly("index", &IndexBinaryFromFloat::index);
    m.def("binary_to_real", [](py::handle codes_obj) {
        auto c = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(codes_obj);
        if (!c) throw InvalidArgument("binary_to_real: codes must be a uint8 array");
        py::array_t<float> out(c.size() * 8);
        binary_to_real(size_t(c.size()) * 8, c.data(), out.mutable_data());
        return out;
    }, py::arg("codes"), "faiss's binary_to_real: each bit of the codes as +1 (set) or -1, least significant first.");
    m.def("real_to_binary", [](py::handle x_obj) {
        auto x = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x_obj);
        if (!x || x.size() % 8) throw InvalidArgument("real_to_binary: a float array of a multiple of 8 values");
        py::array_t<uint8_t> out(x.size() / 8);
        real_to_binary(size_t(x.size()), x.data(), out.mutable_data());
        return out;
    }, py::arg("x"), "faiss's real_to_binary: bit i set where x[i] > 0.");
    py::class_<IndexBinaryHashStats>(m, "IndexBinaryHashStats")
        .def(py::init<>())
        .def_readwrite("nq", &IndexBinaryHashStats::nq)
        .def_readwrite("n0", &IndexBinaryHashStats::n0)
        .def_readwrite("nlist", &IndexBinaryHashStats::nlist)
        .def_readwrite("ndis", &IndexBinaryHashStats::ndis)
        .def("reset", &IndexBinaryHashStats::reset);
    // The process-wide counters themselves (nearly.cvar.indexBinaryHash_stats), not a copy.
    m.def("_indexBinaryHash_stats", []() -> IndexBinaryHashStats& { return indexBinaryHash_stats; },
          py::return_value_policy::reference);

    m.def("knn_hamming", [](py::handle xq_obj, py::handle xb_obj, py::handle k_obj, const std::string& variant,
                            py::handle sel_obj) {
        U8Array xq = to_array<U8Array>(xq_obj, "xq");
        if (xq.ndim() != 2) throw InvalidArgument("xq must be a 2-D uint8 array");
        U8Array xq2 = as_codes(xq_obj, xq.shape(1), "xq");
        U8Array xb = as_codes(xb_obj, xq.shape(1), "xb");
        idx_t k = as_k(k_obj);
        if (variant != "hc" && variant != "mc") throw InvalidArgument("variant must be 'hc' or 'mc'");
        std::shared_ptr<IDSelector> sel;
        if (!sel_obj.is_none()) {
            if (!py::isinstance<IDSelector>(sel_obj)) throw InvalidArgument("sel must be an IDSelector or None");
            sel = py::cast<std::shared_ptr<IDSelector>>(sel_obj);
        }
        idx_t nq = xq2.shape(0);
        py::array_t<int32_t> D({nq, k});
        py::array_t<idx_t> I({nq, k});
        {
            py::gil_scoped_release release;
            knn_hamming(xq2.data(), nq, xb.data(), xb.shape(0), xq2.shape(1), k, D.mutable_data(), I.mutable_data(),
                        sel.get());
        }
        return py::make_tuple(D, I);
    }, py::arg("xq"), py::arg("xb"), py::arg("k"), py::arg("variant") = "hc", py::arg("sel") = py::none(),
       "k nearest codes of xb for each row of xq by Hamming distance: (D int32, I int64); sel: an IDSelector "
       "over the rows of xb.");

    // faiss's hamming.h utilities; python/nearly/hamming.py gives them faiss's
    // pointer-style signatures. a and b are (n, code_size) uint8 codes.
    m.def("_hammings", [](py::handle a_obj, py::handle b_obj, py::array_t<int32_t, py::array::c_style> dis) {
        U8Array a = to_array<U8Array>(a_obj, "a");
        if (a.ndim() != 2) throw InvalidArgument("a must be a 2-D uint8 array");
        U8Array b = as_codes(b_obj, a.shape(1), "b");
        if (!dis.writeable() || size_t(dis.size()) < size_t(a.shape(0)) * size_t(b.shape(0)))
            throw InvalidArgument("dis must be a writeable int32 array of na * nb values");
        py::gil_scoped_release release;
        hammings(a.data(), b.data(), a.shape(0), b.shape(0), a.shape(1), dis.mutable_data());
    });
    m.def("_hamming_count_thres", [](py::handle a_obj, py::handle b_obj, int32_t ht) {
        U8Array a = to_array<U8Array>(a_obj, "a");
        if (a.ndim() != 2) throw InvalidArgument("a must be a 2-D uint8 array");
        U8Array b = as_codes(b_obj, a.shape(1), "b");
        py::gil_scoped_release release;
        return hamming_count_thres(a.data(), b.data(), a.shape(0), b.shape(0), ht, a.shape(1));
    });
    m.def("_crosshamming_count_thres", [](py::handle x_obj, int32_t ht) {
        U8Array x = to_array<U8Array>(x_obj, "x");
        if (x.ndim() != 2) throw InvalidArgument("x must be a 2-D uint8 array");
        py::gil_scoped_release release;
        return crosshamming_count_thres(x.data(), x.shape(0), ht, x.shape(1));
    });
    m.def("_match_hamming_thres", [](py::handle a_obj, py::handle b_obj, int32_t ht) {
        U8Array a = to_array<U8Array>(a_obj, "a");
        if (a.ndim() != 2) throw InvalidArgument("a must be a 2-D uint8 array");
        U8Array b = as_codes(b_obj, a.shape(1), "b");
        std::vector<idx_t> pairs;
        std::vector<int32_t> dis;
        {
            py::gil_scoped_release release;
            match_hamming_thres(a.data(), b.data(), a.shape(0), b.shape(0), ht, a.shape(1), pairs, dis);
        }
        py::array_t<idx_t> P({py::ssize_t(dis.size()), py::ssize_t(2)});
        std::copy(pairs.begin(), pairs.end(), P.mutable_data());
        py::array_t<int32_t> D(dis.size());
        std::copy(dis.begin(), dis.end(), D.mutable_data());
        return py::make_tuple(P, D);
    });
    m.def("_knn_generalized_hamming", [](py::handle xq_obj, py::handle xb_obj, py::handle k_obj) {
        U8Array xq = to_array<U8Array>(xq_obj, "xq");
        if (xq.ndim() != 2) throw InvalidArgument("xq must be a 2-D uint8 array");
        U8Array xb = as_codes(xb_obj, xq.shape(1), "xb");
        idx_t k = as_k(k_obj);
        const idx_t nq = xq.shape(0);
        py::array_t<int32_t> D({nq, k});
        py::array_t<idx_t> I({nq, k});
        {
            py::gil_scoped_release release;
            knn_generalized_hamming(xq.data(), nq, xb.data(), xb.shape(0), xq.shape(1), k, D.mutable_data(),
                                    I.mutable_data());
        }
        return py::make_tuple(D, I);
    });

    m.def("write_index_binary", [](const IndexBinary& index, py::handle path) {
        std::string p = fspath(path);
        py::gil_scoped_release release;
        write_index_binary(index, p);
    }, py::arg("index"), py::arg("fname"));
    m.def("read_index_binary", [](py::handle path, int io_flags) {
        std::string p = fspath(path);
        py::gil_scoped_release release;
        return read_index_binary(p, (io_flags & (2 | 8)) != 0);
    }, py::arg("fname"), py::arg("io_flags") = 0);
    m.def("serialize_index_binary", [](const IndexBinary& index) {
        std::vector<uint8_t> bytes;
        {
            py::gil_scoped_release release;
            bytes = serialize_index_binary(index);
        }
        return bytes_array(std::move(bytes));
    }, py::arg("index"));
    m.def("deserialize_index_binary", [](py::handle data) {
        ByteArray a = as_bytes(data);
        py::gil_scoped_release release;
        return deserialize_index_binary(a.data(), a.shape(0));
    }, py::arg("data"));
}

}  // namespace nearly_py
