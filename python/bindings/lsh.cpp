// IndexLSH: sign bits of a (random) projection, searched by Hamming distance.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "nearly/index_lsh.h"

namespace py = pybind11;

namespace nearly_py {

using namespace nearly;

void bind_lsh(py::module_& m) {
    py::class_<IndexLSH, Index, std::shared_ptr<IndexLSH>>(m, "IndexLSH")
        .def(py::init([](int d, int nbits, bool rotate_data, bool train_thresholds) {
                 return std::make_shared<IndexLSH>(d, nbits, rotate_data, train_thresholds);
             }),
             py::arg("d"), py::arg("nbits"), py::arg("rotate_data") = true, py::arg("train_thresholds") = false)
        .def_readonly("nbits", &IndexLSH::nbits)
        .def_readonly("rotate_data", &IndexLSH::rotate_data)
        .def_readonly("train_thresholds", &IndexLSH::train_thresholds)
        .def_readonly("rrot", &IndexLSH::rrot, py::return_value_policy::reference_internal)
        .def_property_readonly("thresholds", [](const IndexLSH& self) {
            return py::array_t<float>(self.thresholds.size(), self.thresholds.data());
        }, "The per-bit medians learned by train() (empty without train_thresholds), a numpy copy.")
        .def_property_readonly("code_size", &IndexLSH::code_size)
        .def_property_readonly("codes", [](const IndexLSH& self) {
            std::vector<uint8_t> c = self.get_codes();
            return py::array_t<uint8_t>(c.size(), c.data());
        }, "The stored codes, ntotal * code_size bytes (a numpy copy).");
}

}  // namespace nearly_py
