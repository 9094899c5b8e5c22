// faiss's random draws (random.h), written into arrays the Python layer makes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "nearly/common.h"
#include "nearly/random.h"

namespace py = pybind11;

namespace nearly_py {

namespace {

template <class T>
T* out_data(py::array& a) {
    if (!py::isinstance<py::array_t<T, py::array::c_style>>(a) || !a.writeable())
        throw nearly::InvalidArgument("the output must be a writeable C-contiguous " +
                                      py::str(py::dtype::of<T>()).cast<std::string>() + " array");
    return static_cast<T*>(a.mutable_data());
}

}  // namespace

void bind_random(py::module_& m) {
    m.def("_float_rand", [](py::array out, int64_t seed) {
        float* x = out_data<float>(out);
        py::gil_scoped_release release;
        nearly::float_rand(x, size_t(out.size()), seed);
    }, py::arg("out"), py::arg("seed"));
    m.def("_float_randn", [](py::array out, int64_t seed) {
        float* x = out_data<float>(out);
        py::gil_scoped_release release;
        nearly::float_randn(x, size_t(out.size()), seed);
    }, py::arg("out"), py::arg("seed"));
    m.def("_int64_rand", [](py::array out, int64_t seed) {
        int64_t* x = out_data<int64_t>(out);
        py::gil_scoped_release release;
        nearly::int64_rand(x, size_t(out.size()), seed);
    }, py::arg("out"), py::arg("seed"));
    m.def("_int64_rand_max", [](py::array out, uint64_t max, int64_t seed) {
        int64_t* x = out_data<int64_t>(out);
        py::gil_scoped_release release;
        nearly::int64_rand_max(x, size_t(out.size()), max, seed);
    }, py::arg("out"), py::arg("max"), py::arg("seed"));
    m.def("_rand_perm", [](py::array out, int64_t seed) {
        int* x = out_data<int>(out);
        py::gil_scoped_release release;
        nearly::rand_perm(x, size_t(out.size()), seed);
    }, py::arg("out"), py::arg("seed"));
}

}  // namespace nearly_py
