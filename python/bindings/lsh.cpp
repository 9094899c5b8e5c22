// IndexLSH: sign bits of a (random) projection, searched by Hamming distance;
// IndexIVFSpectralHash: bits of a transform within the lists of an IVF index.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/index_lsh.h"
#include "nearly/ivf_spectral_hash.h"

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
        .def_property_readonly("codes", codes_getter<IndexLSH>(), kCodesDoc);

    using SH = IndexIVFSpectralHash;
    py::class_<SH, IndexIVF, std::shared_ptr<SH>> sh(
        m, "IndexIVFSpectralHash",
        "faiss's IndexIVFSpectralHash: nbit bits of a transform of each vector (vt, a random rotation by default), "
        "bit j the parity of floor((y_j - threshold_j) * 2 / period), searched by Hamming distance in the probed "
        "lists.");
    sh.def(py::init([](IndexPtr quantizer, int d, long long nlist, int nbit, float period, bool own_invlists) {
              if (nlist < 1) throw InvalidArgument("IndexIVFSpectralHash: nlist must be positive");
              if (!own_invlists)
                  throw NotSupported("IndexIVFSpectralHash: own_invlists=False is not implemented (give the index "
                                     "lists with replace_invlists)");
              return std::make_shared<SH>(quantizer, d, size_t(nlist), nbit, period);
          }),
          py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("nbit"), py::arg("period"),
          py::arg("own_invlists") = true)
        .def_readonly("nbit", &SH::nbit)
        .def_property("period", &SH::period, &SH::set_period,
                      "The width of a 0 and a 1 interval together; set only while the index holds no codes.")
        .def_property("threshold_type", [](const SH& self) { return int(self.threshold_type()); },
                      [](SH& self, int t) { self.set_threshold_type(SH::ThresholdType(t)); },
                      "Thresh_global, Thresh_centroid, Thresh_centroid_half or Thresh_median; set only while the "
                      "index holds no codes (Thresh_median then needs train()).")
        .def_property_readonly("trained", [](const SH& self) {
            const std::vector<float> t = self.trained_thresholds();
            return py::array_t<float>(py::ssize_t(t.size()), t.data());
        }, "The thresholds, nlist * nbit (empty for Thresh_global), a numpy copy.")
        .def_property_readonly("vt", &SH::vt, "The transform d -> nbit (shared, not a copy).")
        .def("replace_vt", [](SH& self, const IndexPreTransform& encoder, bool) { self.replace_vt(encoder); },
             py::arg("encoder"), py::arg("own") = false,
             "The transform of an encoder \"<transform>,LSH\" (one transform, an IndexLSH taking signs).")
        .def("replace_vt", [](SH& self, TransformPtr vt, bool) { self.replace_vt(std::move(vt)); },
             py::arg("vt"), py::arg("own") = false,
             "Another transform d -> nbit, while the index holds no codes; thresholds back to Thresh_global.");
    sh.attr("Thresh_global") = int(SH::Thresh_global);
    sh.attr("Thresh_centroid") = int(SH::Thresh_centroid);
    sh.attr("Thresh_centroid_half") = int(SH::Thresh_centroid_half);
    sh.attr("Thresh_median") = int(SH::Thresh_median);
}

}  // namespace nearly_py
