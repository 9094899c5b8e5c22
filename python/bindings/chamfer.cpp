// Exact Chamfer (MaxSim) scores of vector sets; the Python API is in
// python/nearly/multivector.py.
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/chamfer.h"
#include "nearly/ragged.h"

namespace nearly_py {

using namespace nearly;


void bind_chamfer(py::module_& m) {
    m.def("_chamfer_scores", [](py::handle q_obj, py::handle ql_obj, py::handle x_obj, py::handle xl_obj) {
        FloatArray x = as_matrix(x_obj, -1, "doc_vectors");
        FloatArray q = as_matrix(q_obj, int(x.shape(1)), "query_vectors");
        IdArray ql = as_lengths(ql_obj, "query_lengths"), xl = as_lengths(xl_obj, "doc_lengths");
        py::array_t<float> out({ql.shape(0), xl.shape(0)});
        py::gil_scoped_release release;
        chamfer_scores(q.data(), q.shape(0), ql.data(), ql.shape(0), x.data(), x.shape(0), xl.data(), xl.shape(0),
                       x.shape(1), out.mutable_data());
        return out;
    }, py::arg("query_vectors"), py::arg("query_lengths"), py::arg("doc_vectors"), py::arg("doc_lengths"),
       "Chamfer scores of ragged query sets against ragged documents: (n_queries, n_docs).");

    m.def("_chamfer_scores_gather", [](py::handle q_obj, py::handle x_obj, py::handle xl_obj, py::handle ids_obj) {
        FloatArray x = as_matrix(x_obj, -1, "doc_vectors");
        FloatArray q = as_matrix(q_obj, int(x.shape(1)), "query_vectors");
        IdArray xl = as_lengths(xl_obj, "doc_lengths");
        IdArray ids = as_ids(ids_obj, -1, "ids");
        py::array_t<float> out(ids.shape(0));
        py::gil_scoped_release release;
        std::vector<size_t> offsets = ragged_offsets(xl.data(), xl.shape(0), x.shape(0), "chamfer documents");
        check_finite(x.data(), x.size(), "the document vectors");
        chamfer_scores_gather(q.data(), q.shape(0), x.data(), offsets.data(), xl.shape(0), ids.data(), ids.shape(0),
                              x.shape(1), out.mutable_data());
        return out;
    }, py::arg("query_vectors"), py::arg("doc_vectors"), py::arg("doc_lengths"), py::arg("ids"),
       "Chamfer scores of one query set against the documents ids (re-ranking).");

    m.def("_chamfer_score_reference", [](py::handle q_obj, py::handle x_obj) {
        FloatArray x = as_matrix(x_obj, -1, "doc_vectors");
        FloatArray q = as_matrix(q_obj, int(x.shape(1)), "query_vectors");
        py::gil_scoped_release release;
        return chamfer_score_reference(q.data(), q.shape(0), x.data(), x.shape(0), x.shape(1));
    }, py::arg("query_vectors"), py::arg("doc_vectors"), "The scalar reference Chamfer score (tests).");
}

}  // namespace nearly_py
