// The Index interface, exact (Flat) indexes, IDMap and PreTransform.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "selector_arg.h"
#include "nearly/distance_computer.h"
#include "nearly/extra_distances.h"
#include "nearly/flat.h"
#include "nearly/flat_panorama.h"
#include "nearly/idmap.h"
#include "nearly/transform.h"

namespace nearly_py {

using namespace nearly;

namespace {

struct BoundDistanceComputer {
    std::unique_ptr<DistanceComputer> dc;
    int d;
    bool accepts_nan;  // NaNEuclidean, GOWER: NaN marks a missing component
};

struct TransformChain {
    std::shared_ptr<IndexPreTransform> owner;
    TransformPtr at(py::ssize_t i) const {
        const py::ssize_t n = py::ssize_t(owner->chain.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw py::index_error("transform chain index out of range");
        return owner->chain[size_t(i)];
    }
};




// An output array the caller passed (faiss's D=, I=, codes=, ...: written in
// place) or a new one.
template <class T>
py::array_t<T> out_array(py::handle given, std::vector<py::ssize_t> shape, const char* what) {
    if (given.is_none()) return py::array_t<T>(shape);
    // The type first: a cast of anything else would make a converted copy.
    py::array_t<T> a;
    bool ok = py::isinstance<py::array_t<T, py::array::c_style>>(given);
    if (ok) {
        a = py::reinterpret_borrow<py::array_t<T>>(given);
        ok = a.writeable() && a.ndim() == py::ssize_t(shape.size());
    }
    for (size_t i = 0; ok && i < shape.size(); i++) ok = a.shape(i) == shape[i];
    if (!ok) {
        std::string want;
        for (size_t i = 0; i < shape.size(); i++) want += (i ? ", " : "") + std::to_string(shape[i]);
        throw InvalidArgument(std::string(what) + " must be a writeable C-contiguous " +
                              py::str(py::dtype::of<T>()).cast<std::string>() + " array of shape (" + want + ")");
    }
    return a;
}

py::tuple search_impl(const Index& self, py::handle x_obj, py::handle k_obj, py::handle params, py::handle D_obj,
                      py::handle I_obj, bool unordered) {
    FloatArray x = as_matrix(x_obj, self.d, "x");
    idx_t k = as_k(k_obj);
    idx_t n = x.shape(0);
    auto D = out_array<float>(D_obj, {n, k}, "D");
    auto I = out_array<idx_t>(I_obj, {n, k}, "I");
    const SearchParameters* p = params_ptr(params);
    {
        py::gil_scoped_release release;
        if (unordered)
            self.search_unordered(n, x.data(), k, D.mutable_data(), I.mutable_data(), p);
        else
            self.search(n, x.data(), k, D.mutable_data(), I.mutable_data(), p);
    }
    return py::make_tuple(D, I);
}

py::array_t<idx_t> assign(const Index& self, py::handle x_obj, py::handle k_obj, py::handle labels_obj) {
    FloatArray x = as_matrix(x_obj, self.d, "x");
    const idx_t k = as_k(k_obj), n = x.shape(0);
    auto I = out_array<idx_t>(labels_obj, {n, k}, "labels");
    std::vector<float> D(size_t(n) * size_t(k));
    {
        py::gil_scoped_release release;
        self.search(n, x.data(), k, D.data(), I.mutable_data());
    }
    return I;
}

py::array_t<float> reconstruct_batch(const Index& self, py::handle keys_obj, py::handle x_obj) {
    IdArray keys = as_ids(keys_obj, -1, "key");
    const idx_t n = keys.shape(0);
    auto out = out_array<float>(x_obj, {n, idx_t(self.d)}, "x");
    {
        py::gil_scoped_release release;
        self.reconstruct_batch(n, keys.data(), out.mutable_data());
    }
    return out;
}

py::tuple search_and_reconstruct(const Index& self, py::handle x_obj, py::handle k_obj, py::handle params,
                                 py::handle D_obj, py::handle I_obj, py::handle R_obj) {
    FloatArray x = as_matrix(x_obj, self.d, "x");
    const idx_t k = as_k(k_obj), n = x.shape(0);
    auto D = out_array<float>(D_obj, {n, k}, "D");
    auto I = out_array<idx_t>(I_obj, {n, k}, "I");
    auto R = out_array<float>(R_obj, {n, k, idx_t(self.d)}, "R");
    const SearchParameters* p = params_ptr(params);
    {
        py::gil_scoped_release release;
        self.search_and_reconstruct(n, x.data(), k, D.mutable_data(), I.mutable_data(), R.mutable_data(), p);
    }
    return py::make_tuple(D, I, R);
}

py::array_t<uint8_t> sa_encode(const Index& self, py::handle x_obj, py::handle codes_obj) {
    FloatArray x = as_matrix(x_obj, self.d, "x");
    const idx_t n = x.shape(0);
    auto codes = out_array<uint8_t>(codes_obj, {n, idx_t(self.sa_code_size())}, "codes");
    {
        py::gil_scoped_release release;
        self.sa_encode(n, x.data(), codes.mutable_data());
    }
    return codes;
}

py::array_t<float> sa_decode(const Index& self, py::handle codes_obj, py::handle x_obj) {
    auto codes = as_codes(codes_obj, self.sa_code_size(), "codes");
    const idx_t n = codes.shape(0);
    auto x = out_array<float>(x_obj, {n, idx_t(self.d)}, "x");
    {
        py::gil_scoped_release release;
        self.sa_decode(n, codes.data(), x.mutable_data());
    }
    return x;
}

py::tuple search(const Index& self, py::handle x_obj, py::handle k_obj, py::handle params, py::handle D_obj,
                 py::handle I_obj) {
    return search_impl(self, x_obj, k_obj, params, D_obj, I_obj, false);
}

py::tuple range_search(const Index& self, py::handle x_obj, float radius, py::handle params) {
    FloatArray x = as_matrix(x_obj, self.d, "x");
    const SearchParameters* p = params_ptr(params);
    RangeSearchResult res;
    {
        py::gil_scoped_release release;
        self.range_search(x.shape(0), x.data(), radius, res, p);
    }
    return range_result_tuple(res);
}

size_t remove_ids(Index& self, py::handle what) {
    std::shared_ptr<IDSelector> sel = selector_or_ids(what);
    py::gil_scoped_release release;
    return self.remove_ids(*sel);
}

py::array_t<float> reconstruct_n(const Index& self, idx_t i0, idx_t ni) {
    if (ni == -1) ni = self.ntotal - i0;  // faiss: -1 means "up to ntotal"
    if (ni == 0) return py::array_t<float>(std::vector<py::ssize_t>{0, py::ssize_t(self.d)});
    if (ni < 0) throw OutOfRange("reconstruct_n: bad range (n0=" + std::to_string(i0) + ", ni=" + std::to_string(ni) + ")");
    py::array_t<float> out({ni, idx_t(self.d)});
    py::gil_scoped_release release;
    self.reconstruct_n(i0, ni, out.mutable_data());
    return out;
}

}  // namespace

void bind_flat(py::module_& m) {
    m.attr("METRIC_INNER_PRODUCT") = int(METRIC_INNER_PRODUCT);
    m.attr("METRIC_L2") = int(METRIC_L2);
    m.attr("METRIC_L1") = int(METRIC_L1);
    m.attr("METRIC_Linf") = int(METRIC_Linf);
    m.attr("METRIC_Lp") = int(METRIC_Lp);
    m.attr("METRIC_Canberra") = int(METRIC_Canberra);
    m.attr("METRIC_BrayCurtis") = int(METRIC_BrayCurtis);
    m.attr("METRIC_JensenShannon") = int(METRIC_JensenShannon);
    m.attr("METRIC_Jaccard") = int(METRIC_Jaccard);
    m.attr("METRIC_NaNEuclidean") = int(METRIC_NaNEuclidean);
    m.attr("METRIC_GOWER") = int(METRIC_GOWER);

    py::class_<SearchParameters, std::shared_ptr<SearchParameters>>(m, "SearchParameters")
        .def(py::init([](std::shared_ptr<IDSelector> sel) {
                 auto p = std::make_shared<SearchParameters>();
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("sel") = nullptr)
        .def_property("sel", [](const SearchParameters& p) { return std::const_pointer_cast<IDSelector>(p.sel); },
                      [](SearchParameters& p, std::shared_ptr<IDSelector> s) { p.sel = s; });

    // A distance computer with the dimension of its index's queries; it
    // keeps the index alive and is not for sharing between threads (its
    // query is state), as in faiss. Calls keep the GIL: they are tiny.
    py::class_<BoundDistanceComputer>(m, "DistanceComputer",
                                      "faiss's DistanceComputer: set_query(x), then dc(i) scores stored vector i "
                                      "as the index's search does (squared L2, inner product, or the raw value of "
                                      "an extra metric).")
        .def("set_query", [](BoundDistanceComputer& self, py::handle x_obj) {
            auto x = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x_obj);
            if (!x || x.size() != self.d)
                throw InvalidArgument("set_query: the query must be " + std::to_string(self.d) + " floats");
            if (!self.accepts_nan) check_finite(x.data(), size_t(self.d), "the query");
            self.dc->set_query(x.data());
        }, py::arg("x"), "The query, d floats.")
        .def("__call__", [](BoundDistanceComputer& self, idx_t i) { return (*self.dc)(i); }, py::arg("i"))
        .def("symmetric_dis", [](BoundDistanceComputer& self, idx_t i, idx_t j) { return self.dc->symmetric_dis(i, j); },
             py::arg("i"), py::arg("j"), "The score between stored vectors i and j (their reconstructions).");

    py::class_<Index, std::shared_ptr<Index>>(m, "Index")
        .def_readonly("d", &Index::d)
        .def_readonly("ntotal", &Index::ntotal)
        .def_property("is_trained", [](const Index& i) { return i.is_trained; },
                      [](Index& i, bool v) {
                          py::gil_scoped_release release;
                          i.set_trained(v);
                      })
        .def_property("metric_type", [](const Index& i) { return int(i.metric_type); },
                      [](Index& i, int m) {
                          py::gil_scoped_release release;
                          i.set_metric_type(MetricType(m));
                      }, "Fixed when the index is built, but on the IVF families that score by it at search "
                         "time (Flat, PQ, SQ), which take METRIC_L2 or METRIC_INNER_PRODUCT before train().")
        .def_readwrite("metric_arg", &Index::metric_arg)
        .def_readwrite("verbose", &Index::verbose)
        .def("train", [](Index& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data());
        }, py::arg("x"), "Trains the index on x, (n, d) float32 (a no-op for indexes that learn nothing).")
        .def("add", [](Index& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            py::gil_scoped_release release;
            self.add(x.shape(0), x.data());
        }, py::arg("x"), "Adds vectors to the index: x is (n, d) float32; they get ids ntotal, ntotal + 1, ...")
        .def("add_with_ids", [](Index& self, py::handle x_obj, py::handle ids_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            IdArray ids = as_ids(ids_obj, x.shape(0), "ids");
            py::gil_scoped_release release;
            self.add_with_ids(x.shape(0), x.data(), ids.data());
        }, py::arg("x"), py::arg("ids"), "Adds vectors to the index with the given int64 ids (one per row of x).")
        .def("add_sa_codes", [](Index& self, py::handle codes_obj, py::handle ids_obj) {
            auto codes = as_codes(codes_obj, self.sa_code_size(), "codes");
            const idx_t n = codes.shape(0);
            std::unique_ptr<IdArray> ids;
            if (!ids_obj.is_none()) ids = std::make_unique<IdArray>(as_ids(ids_obj, n, "ids"));
            py::gil_scoped_release release;
            self.add_sa_codes(n, codes.data(), ids ? ids->data() : nullptr);
        }, py::arg("codes"), py::arg("ids") = py::none(),
           "faiss's add_sa_codes: stores standalone codes (sa_encode's, (n, sa_code_size()) uint8) as they are, "
           "with ids where the index keeps ids.")
        .def("search", &search, py::arg("x"), py::arg("k"), py::kw_only(), py::arg("params") = py::none(),
             py::arg("D") = py::none(), py::arg("I") = py::none(),
             "k nearest neighbours of each row of x: returns (D float32 (n, k), I int64 (n, k)).")
        .def("_search_unordered", [](const Index& self, py::handle x, py::handle k, py::handle params) {
            return search_impl(self, x, k, params, py::none(), py::none(), true);
        }, py::arg("x"), py::arg("k"), py::kw_only(), py::arg("params") = py::none(),
           "Test hook: search() whose k results per query may come in any order (what re-ranking asks for).")
        .def("range_search", &range_search, py::arg("x"), py::arg("thresh"), py::kw_only(),
             py::arg("params") = py::none(), "All results within thresh: returns (lims, D, I).")
        .def("get_distance_computer", [](const Index& self) {
            return BoundDistanceComputer{self.get_distance_computer(), self.d, metric_accepts_nan(self.metric_type)};
        }, py::keep_alive<0, 1>(), "faiss's get_distance_computer(): a DistanceComputer over this index's vectors.")
        .def("reconstruct", [](const Index& self, idx_t key) {
            py::array_t<float> out(self.d);
            py::gil_scoped_release release;
            self.reconstruct(key, out.mutable_data());
            return out;
        }, py::arg("key"), "The stored (or decoded) vector of id key, (d,) float32.")
        .def("reconstruct_n", &reconstruct_n, py::arg("n0") = 0, py::arg("ni") = -1,
             "The vectors of ids n0 .. n0 + ni - 1, (ni, d) float32 (ni = -1: up to ntotal).")
        .def("reconstruct_batch", &reconstruct_batch, py::arg("key"), py::arg("x") = py::none(),
             "The vectors of the given keys, (n, d) float32.")
        .def("assign", &assign, py::arg("x"), py::arg("k"), py::arg("labels") = py::none(),
             "The labels of the k nearest neighbours of each row of x, (n, k) int64.")
        .def("search_and_reconstruct", &search_and_reconstruct, py::arg("x"), py::arg("k"), py::kw_only(),
             py::arg("params") = py::none(), py::arg("D") = py::none(), py::arg("I") = py::none(),
             py::arg("R") = py::none(),
             "search() and the results' vectors: (D, I, R float32 (n, k, d)); missing results' rows are NaN.")
        .def("sa_code_size", &Index::sa_code_size, "Bytes of one standalone code (faiss's vector codec).")
        .def("sa_encode", &sa_encode, py::arg("x"), py::arg("codes") = py::none(),
             "The codes this index would store for x, without adding them: (n, sa_code_size()) uint8.")
        .def("sa_decode", &sa_decode, py::arg("codes"), py::arg("x") = py::none(),
             "The vectors the codes decode to, (n, d) float32.")
        .def("remove_ids", &remove_ids, py::arg("sel"),
             "Removes the vectors whose ids the selector (or an array of ids) names; returns how many went.")
        .def("reset", [](Index& self) {
            py::gil_scoped_release release;
            self.reset();
        }, "Removes every vector (the training stays).")
        .def("merge_from", [](Index& self, Index& other, idx_t add_id) {
            py::gil_scoped_release release;
            self.merge_from(other, add_id);
        }, py::arg("otherIndex"), py::arg("add_id") = 0)
        .def("__repr__", [](const Index& i) {
            return "<nearly." + py::str(py::type::of(py::cast(&i)).attr("__name__")).cast<std::string>() +
                   " d=" + std::to_string(i.d) + " ntotal=" + std::to_string(i.ntotal) + ">";
        });

    py::class_<IndexFlat, Index, std::shared_ptr<IndexFlat>>(m, "IndexFlat")
        .def(py::init([](int d, int metric) { return std::make_shared<IndexFlat>(d, MetricType(metric)); }),
             py::arg("d"), py::arg("metric") = int(METRIC_L2))
        // faiss returns a pointer to the stored floats, read through
        // rev_swig_ptr(index.get_xb(), ntotal * d); here a copy (ntotal * d
        // floats, flat), which rev_swig_ptr passes through and no add can
        // invalidate.
        .def("get_xb", [](const IndexFlat& self) { return reconstruct_n(self, 0, self.ntotal).reshape({-1}); })
        // faiss's IndexFlatCodes.codes: the vectors' bytes (vector_to_array(
        // index.codes).view("float32")), here a numpy copy.
        .def_property_readonly("codes", [](const IndexFlat& self) {
            return reconstruct_n(self, 0, self.ntotal).reshape({-1}).attr("view")("uint8");
        })
        .def_property_readonly("code_size", [](const IndexFlat& self) { return size_t(self.d) * sizeof(float); })
        .def("permute_entries", &permute_entries<IndexFlat>, py::arg("perm"), "Row i becomes the old row perm[i] (perm: a permutation of 0 .. ntotal - 1).");
    py::class_<IndexFlatL2, IndexFlat, std::shared_ptr<IndexFlatL2>>(m, "IndexFlatL2")
        .def(py::init<int>(), py::arg("d"));
    py::class_<IndexFlatIP, IndexFlat, std::shared_ptr<IndexFlatIP>>(m, "IndexFlatIP")
        .def(py::init<int>(), py::arg("d"));

    py::class_<IndexFlatPanorama, Index, std::shared_ptr<IndexFlatPanorama>> flat_panorama(m, "IndexFlatPanorama");
    flat_panorama.attr("kDefaultBatchSize") = IndexFlatPanorama::kDefaultBatchSize;
    flat_panorama
        .def(py::init([](int d, int metric, size_t n_levels, size_t batch_size) {
                 return std::make_shared<IndexFlatPanorama>(d, MetricType(metric), n_levels, batch_size);
             }), py::arg("d"), py::arg("metric"), py::arg("n_levels"),
             py::arg("batch_size") = IndexFlatPanorama::kDefaultBatchSize)
        .def_property_readonly("n_levels", &IndexFlatPanorama::n_levels)
        .def_property_readonly("batch_size", &IndexFlatPanorama::batch_size)
        .def_property_readonly("cum_sums", [](const IndexFlatPanorama& self) {
            std::vector<float> t = self.tail_norms();
            py::array_t<float> out(py::ssize_t(t.size()));
            std::copy(t.begin(), t.end(), out.mutable_data());
            return out;
        }, "Each row's tail norms (n_levels + 1 a row): || v[level_begin(l):] ||.")
        .def("search_subset", [](const IndexFlatPanorama& self, py::handle x_obj, py::handle labels_obj, py::handle k_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const idx_t k = as_k(k_obj);
            auto labels = py::array_t<idx_t, py::array::c_style | py::array::forcecast>::ensure(labels_obj);
            if (!labels || labels.ndim() != 2 || labels.shape(0) != x.shape(0))
                throw InvalidArgument("search_subset: labels must be an (n, k_base) int64 array, n the number of queries");
            const idx_t n = x.shape(0), kb = labels.shape(1);
            py::array_t<float> D({n, k});
            py::array_t<idx_t> I({n, k});
            {
                py::gil_scoped_release release;
                self.search_subset(n, x.data(), kb, labels.data(), k, D.mutable_data(), I.mutable_data());
            }
            return py::make_tuple(D, I);
        }, py::arg("x"), py::arg("base_labels"), py::arg("k"),
           "k nearest neighbours of each query among its candidates base_labels (n, k_base), -1 skipped.")
        .def("permute_entries", &permute_entries<IndexFlatPanorama>, py::arg("perm"), "Row i becomes the old row perm[i] (perm: a permutation of 0 .. ntotal - 1).");
    py::class_<IndexFlatL2Panorama, IndexFlatPanorama, std::shared_ptr<IndexFlatL2Panorama>>(m, "IndexFlatL2Panorama")
        .def(py::init<int, size_t, size_t>(), py::arg("d"), py::arg("n_levels"),
             py::arg("batch_size") = IndexFlatPanorama::kDefaultBatchSize);
    py::class_<IndexFlatIPPanorama, IndexFlatPanorama, std::shared_ptr<IndexFlatIPPanorama>>(m, "IndexFlatIPPanorama")
        .def(py::init<int, size_t, size_t>(), py::arg("d"), py::arg("n_levels"),
             py::arg("batch_size") = IndexFlatPanorama::kDefaultBatchSize);

    // faiss's Panorama: how a d-dimensional vector is cut into levels.
    py::class_<Panorama> panorama(m, "Panorama");
    panorama.attr("kDefaultBatchSize") = IndexFlatPanorama::kDefaultBatchSize;
    panorama.def(py::init<size_t, size_t>(), py::arg("d"), py::arg("n_levels"))
        .def_readonly("d", &Panorama::d)
        .def_readonly("n_levels", &Panorama::n_levels)
        .def_readonly("level_width", &Panorama::width)
        .def_readonly("level_width_floats", &Panorama::width);  // faiss's name

    py::class_<PanoramaStats>(m, "PanoramaStats")
        .def_property("total_dims_scanned", [](const PanoramaStats& s) { return uint64_t(s.total_dims_scanned); },
                      [](PanoramaStats& s, uint64_t v) { s.total_dims_scanned = v; })
        .def_property("total_dims", [](const PanoramaStats& s) { return uint64_t(s.total_dims); },
                      [](PanoramaStats& s, uint64_t v) { s.total_dims = v; })
        .def_property_readonly("ratio_dims_scanned", &PanoramaStats::ratio_dims_scanned)
        .def("reset", &PanoramaStats::reset);
    m.def("_indexPanorama_stats", []() -> PanoramaStats& { return panorama_stats; }, py::return_value_policy::reference);

    py::class_<IndexIDMap, Index, std::shared_ptr<IndexIDMap>>(m, "IndexIDMap")
        .def(py::init([](IndexPtr inner) { return std::make_shared<IndexIDMap>(inner, false); }), py::arg("index"))
        .def_readonly("index", &IndexIDMap::index)
        .def_property_readonly("id_map", [](const IndexIDMap& self) {
            std::vector<idx_t> ids = self.ids();
            py::array_t<idx_t> out(ids.size());
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
        });
    py::class_<IndexIDMap2, IndexIDMap, std::shared_ptr<IndexIDMap2>>(m, "IndexIDMap2")
        .def(py::init([](IndexPtr inner) { return std::make_shared<IndexIDMap2>(inner); }), py::arg("index"))
        .def("check_consistency", &IndexIDMap2::check_consistency);

    auto apply = [](const VectorTransform& t, py::handle x_obj) {
        FloatArray x = as_matrix(x_obj, t.d_in, "x");
        py::array_t<float> out({idx_t(x.shape(0)), idx_t(t.d_out)});
        py::gil_scoped_release release;
        t.apply(x.shape(0), x.data(), out.mutable_data());
        return out;
    };
    py::class_<VectorTransform, std::shared_ptr<VectorTransform>>(m, "VectorTransform")
        .def_readonly("d_in", &VectorTransform::d_in)
        .def_readonly("d_out", &VectorTransform::d_out)
        .def_readwrite("is_trained", &VectorTransform::is_trained)
        .def("train", [](VectorTransform& t, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, t.d_in, "x");
            py::gil_scoped_release release;
            t.train(x.shape(0), x.data());
        }, py::arg("x"))
        .def("apply", apply, py::arg("x"))
        .def("apply_py", apply, py::arg("x"))
        .def("reverse_transform", [](const VectorTransform& t, py::handle y_obj) {
            FloatArray y = as_matrix(y_obj, t.d_out, "xt");
            py::array_t<float> out({idx_t(y.shape(0)), idx_t(t.d_in)});
            py::gil_scoped_release release;
            t.reverse(y.shape(0), y.data(), out.mutable_data());
            return out;
        }, py::arg("xt"));
    py::class_<NormalizationTransform, VectorTransform, std::shared_ptr<NormalizationTransform>>(
        m, "NormalizationTransform")
        .def(py::init([](int d, float norm) {
            if (norm != 2.0f) throw InvalidArgument("NormalizationTransform: only norm=2.0 is supported");
            return std::make_shared<NormalizationTransform>(d);
        }), py::arg("d"), py::arg("norm") = 2.0f)
        .def_property_readonly("norm", [](const NormalizationTransform&) { return 2.0f; },
                               "The norm the vectors are scaled to (faiss's field; nearly supports 2.0).");

    py::class_<IndexPreTransform, Index, std::shared_ptr<IndexPreTransform>>(m, "IndexPreTransform")
        .def("_refresh_from_inner", &IndexPreTransform::refresh_from_inner,
             py::call_guard<py::gil_scoped_release>())
        .def(py::init([](TransformPtr t, IndexPtr inner) { return std::make_shared<IndexPreTransform>(t, inner); }),
             py::arg("ltrans"), py::arg("index"))
        .def(py::init([](IndexPtr inner) {
            return std::make_shared<IndexPreTransform>(std::vector<TransformPtr>{}, inner);
        }), py::arg("index"))
        .def(py::init([](std::vector<TransformPtr> chain, IndexPtr inner) {
            return std::make_shared<IndexPreTransform>(std::move(chain), inner);
        }), py::arg("chain"), py::arg("index"))
        .def("prepend_transform", &IndexPreTransform::prepend_transform, py::arg("ltrans"))
        .def_readonly("index", &IndexPreTransform::index)
        .def_property_readonly("chain", [](std::shared_ptr<IndexPreTransform> self) { return TransformChain{self}; });

    // faiss exposes IndexPreTransform.chain as a std::vector (at(i), size());
    // a Python list would not have those. Keeps the index alive.
    py::class_<TransformChain>(m, "TransformChain")
        .def("size", [](const TransformChain& c) { return c.owner->chain.size(); })
        .def("__len__", [](const TransformChain& c) { return c.owner->chain.size(); })
        .def("at", &TransformChain::at, py::arg("i"))
        .def("__getitem__", &TransformChain::at, py::arg("i"));
}

}  // namespace nearly_py
