// Multi-vector document storage, exact Chamfer search and re-ranking, ball
// carving; the Python indexes are in python/nearly/multivector.py.
#include <pybind11/pybind11.h>

#include <memory>

#include "arrays.h"
#include "selector_arg.h"
#include "nearly/multivector.h"
#include "nearly/selector.h"

namespace nearly_py {

using namespace nearly;

namespace {

template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
    py::array_t<T> out(v.size());
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

py::tuple result_arrays(size_t nq, size_t k, std::vector<float>& D, std::vector<idx_t>& I) {
    py::array_t<float> Da({nq, k});
    py::array_t<idx_t> Ia({nq, k});
    std::copy(D.begin(), D.end(), Da.mutable_data());
    std::copy(I.begin(), I.end(), Ia.mutable_data());
    return py::make_tuple(Da, Ia);
}
}  // namespace

void bind_multivector(py::module_& m) {
    py::class_<MultiVectorStore, std::shared_ptr<MultiVectorStore>>(m, "_MultiVectorStore")
        .def(py::init([](int d, const std::string& dtype) {
            if (dtype != "float32" && dtype != "float16")
                throw InvalidArgument("token_dtype must be 'float32' or 'float16', got '" + dtype + "'");
            return std::make_shared<MultiVectorStore>(d, dtype == "float32" ? TokenDtype::Float32
                                                                            : TokenDtype::Float16);
        }), py::arg("d"), py::arg("dtype") = "float32")
        .def_property_readonly("d", &MultiVectorStore::dim)
        .def_property_readonly("dtype", [](const MultiVectorStore& s) {
            return s.dtype() == TokenDtype::Float32 ? "float32" : "float16";
        })
        .def_property_readonly("n_docs", &MultiVectorStore::n_docs)
        .def_property_readonly("n_vectors", &MultiVectorStore::n_vectors)
        .def("ids", [](const MultiVectorStore& s) { return to_numpy(s.ids()); })
        .def("keys", [](const MultiVectorStore& s) { return to_numpy(s.keys()); })
        .def("lengths", [](const MultiVectorStore& s) { return to_numpy(s.lengths()); })
        .def("document", [](const MultiVectorStore& s, size_t pos) {
            std::vector<float> v = s.document(pos);
            py::array_t<float> out({v.size() / size_t(s.dim()), size_t(s.dim())});
            std::copy(v.begin(), v.end(), out.mutable_data());
            return out;
        }, py::arg("pos"))
        .def("add", [](MultiVectorStore& s, py::handle x_obj, py::handle l_obj, py::handle ids_obj) {
            FloatArray x = as_matrix(x_obj, s.dim(), "vectors");
            IdArray l = as_lengths(l_obj, "lengths");
            IdArray ids;
            const bool have_ids = !ids_obj.is_none();
            if (have_ids) ids = as_ids(ids_obj, l.shape(0), "ids");
            py::array_t<idx_t> keys(l.shape(0));
            idx_t* kp = keys.mutable_data();
            {
                py::gil_scoped_release release;
                s.add(x.data(), x.shape(0), l.data(), l.shape(0), have_ids ? ids.data() : nullptr, kp);
            }
            return keys;
        }, py::arg("vectors"), py::arg("lengths"), py::arg("ids") = py::none(),
           "Appends ragged documents; returns the internal keys given to them.")
        .def("search", [](const MultiVectorStore& s, py::handle q_obj, py::handle l_obj, py::handle k_obj) {
            idx_t k = as_k(k_obj);
            FloatArray q = as_matrix(q_obj, s.dim(), "query vectors");
            IdArray l = as_lengths(l_obj, "query lengths");
            const size_t nq = l.shape(0);
            std::vector<float> D(nq * k);
            std::vector<idx_t> I(nq * k);
            {
                py::gil_scoped_release release;
                s.search(q.data(), q.shape(0), l.data(), nq, k, D.data(), I.data());
            }
            return result_arrays(nq, k, D, I);
        }, py::arg("vectors"), py::arg("lengths"), py::arg("k"), "Exact Chamfer top-k: (D, I).")
        .def("rerank", [](const MultiVectorStore& s, py::handle q_obj, py::handle l_obj, py::handle c_obj,
                          py::handle k_obj) {
            idx_t k = as_k(k_obj);
            FloatArray q = as_matrix(q_obj, s.dim(), "query vectors");
            IdArray l = as_lengths(l_obj, "query lengths");
            IdArray c = to_array<IdArray>(c_obj, "candidates");
            const size_t nq = l.shape(0);
            if (c.ndim() != 2 || size_t(c.shape(0)) != nq)
                throw InvalidArgument("candidates must be an (nq, n_candidates) int64 array, got shape " +
                                      shape_str(c));
            std::vector<float> D(nq * k);
            std::vector<idx_t> I(nq * k);
            {
                py::gil_scoped_release release;
                s.rerank(q.data(), q.shape(0), l.data(), nq, c.data(), c.shape(1), k, D.data(), I.data());
            }
            return result_arrays(nq, k, D, I);
        }, py::arg("vectors"), py::arg("lengths"), py::arg("candidate_keys"), py::arg("k"),
           "Exact Chamfer re-ranking of candidate keys: (D, I) with the documents' ids.")
        .def("remove_ids", [](MultiVectorStore& s, py::handle what) {
            std::shared_ptr<IDSelector> sel = selector_or_ids(what);
            std::vector<idx_t> removed;
            {
                py::gil_scoped_release release;
                removed = s.remove_ids(*sel);
            }
            return to_numpy(removed);
        }, py::arg("sel"), "Removes documents by id; returns the keys they had.")
        .def("reset", &MultiVectorStore::reset, py::call_guard<py::gil_scoped_release>())
        .def("clone", [](const MultiVectorStore& s) {
            py::gil_scoped_release release;
            return std::make_shared<MultiVectorStore>(s.clone());
        }, "An independent copy of the store.")
        .def("serialize", [](const MultiVectorStore& s) {
            std::vector<uint8_t> b;
            {
                py::gil_scoped_release release;
                b = s.serialize();
            }
            return to_numpy(b);
        })
        .def_static("deserialize", [](py::handle data) {
            ByteArray a = as_bytes(data);
            py::gil_scoped_release release;
            return std::make_shared<MultiVectorStore>(MultiVectorStore::deserialize(a.data(), a.shape(0)));
        }, py::arg("data"));

    m.def("_ball_carve", [](py::handle x_obj, py::handle l_obj, float tau) {
        FloatArray x = as_matrix(x_obj, -1, "query vectors");
        IdArray l = as_lengths(l_obj, "query lengths");
        std::vector<float> v;
        std::vector<int64_t> lens;
        {
            py::gil_scoped_release release;
            ball_carve(x.data(), x.shape(0), l.data(), l.shape(0), x.shape(1), tau, v, lens);
        }
        const size_t d = x.shape(1);
        py::array_t<float> out({v.size() / d, d});
        std::copy(v.begin(), v.end(), out.mutable_data());
        return py::make_tuple(out, to_numpy(lens));
    }, py::arg("vectors"), py::arg("lengths"), py::arg("tau"),
       "Greedy ball carving of query sets (each cluster replaced by its sum): (vectors, lengths).");
}

}  // namespace nearly_py
