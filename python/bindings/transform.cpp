// Linear transforms: LinearTransform, RandomRotationMatrix, OPQMatrix (the
// VectorTransform base and IndexPreTransform are bound with the flat indexes).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/linear_transform.h"
#include "nearly/opq.h"

namespace nearly_py {

using namespace nearly;

namespace {

py::array_t<float> to_numpy(const std::vector<float>& v) {
    py::array_t<float> out(v.size());
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

std::vector<float> from_numpy(py::handle obj, size_t expected, const char* what) {
    auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(obj);
    if (!a) throw InvalidArgument(std::string(what) + " must be a float array");
    if (size_t(a.size()) != expected)
        throw InvalidArgument(std::string(what) + " must have " + std::to_string(expected) + " values, got " +
                              std::to_string(a.size()));
    std::vector<float> v(a.data(), a.data() + a.size());
    check_finite(v.data(), v.size(), what);
    return v;
}

}  // namespace

void bind_transform(py::module_& m) {
    py::class_<LinearTransform, VectorTransform, std::shared_ptr<LinearTransform>>(m, "LinearTransform")
        .def(py::init<int, int, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("have_bias") = false)
        // Copies, 1-D like faiss's std::vector (faiss.vector_to_array(t.A)).
        .def_property("A", [](const LinearTransform& t) { return to_numpy(t.A); },
                      [](LinearTransform& t, py::handle a) { t.A = from_numpy(a, size_t(t.d_out) * t.d_in, "A"); })
        .def_property("b", [](const LinearTransform& t) { return to_numpy(t.b); },
                      [](LinearTransform& t, py::handle b) { t.b = from_numpy(b, size_t(t.d_out), "b"); })
        .def_readwrite("have_bias", &LinearTransform::have_bias)
        .def_readwrite("is_orthonormal", &LinearTransform::is_orthonormal)
        .def_readwrite("verbose", &LinearTransform::verbose)
        .def("set_is_orthonormal", &LinearTransform::set_is_orthonormal)
        .def("transform_transpose", [](const LinearTransform& t, py::handle y_obj) {
            FloatArray y = as_matrix(y_obj, t.d_out, "y");
            py::array_t<float> out({idx_t(y.shape(0)), idx_t(t.d_in)});
            py::gil_scoped_release release;
            t.transform_transpose(y.shape(0), y.data(), out.mutable_data());
            return out;
        }, py::arg("y"));

    py::class_<RandomRotationMatrix, LinearTransform, std::shared_ptr<RandomRotationMatrix>>(m, "RandomRotationMatrix")
        .def(py::init<int, int>(), py::arg("d_in"), py::arg("d_out"))
        .def("init", &RandomRotationMatrix::init, py::arg("seed"));

    py::class_<OPQMatrix, LinearTransform, std::shared_ptr<OPQMatrix>>(m, "OPQMatrix")
        .def(py::init<int, int, int>(), py::arg("d"), py::arg("M") = 1, py::arg("d2") = -1)
        .def_readonly("M", &OPQMatrix::M)
        .def_readwrite("niter", &OPQMatrix::niter)
        .def_readwrite("niter_pq", &OPQMatrix::niter_pq)
        .def_readwrite("niter_pq_0", &OPQMatrix::niter_pq_0)
        .def_readwrite("max_train_points", &OPQMatrix::max_train_points);
}

}  // namespace nearly_py
