// EDEN codes (nearly/eden.h): IndexEDEN and IndexIVFEDEN, faiss's classes,
// with faiss's EDENScaleType values.
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/index_eden.h"
#include "nearly/ivf_eden.h"

namespace nearly_py {

using namespace nearly;

namespace {
constexpr int kUnbiased = 1, kBiased = 2;  // faiss's EDENScaleType_UNBIASED / _BIASED

bool biased_scale(int scale_type, const char* who) {
    if (scale_type != kUnbiased && scale_type != kBiased)
        throw InvalidArgument(std::string(who) + ": invalid EDEN scale type " + std::to_string(scale_type) +
                              " (EDENScaleType_UNBIASED or EDENScaleType_BIASED)");
    return scale_type == kBiased;
}

size_t eden_bits(long long nb_bits, const char* who) {
    if (nb_bits < 1 || nb_bits > 8)
        throw InvalidArgument(std::string(who) + ": nb_bits must be 1 to 8 (got " + std::to_string(nb_bits) + ")");
    return size_t(nb_bits);
}
}  // namespace

void bind_eden(py::module_& m) {
    m.attr("EDENScaleType_UNBIASED") = kUnbiased;
    m.attr("EDENScaleType_BIASED") = kBiased;

    py::class_<IndexEDEN, Index, std::shared_ptr<IndexEDEN>>(
        m, "IndexEDEN",
        "faiss's IndexEDEN: EDEN codes (nb_bits per dimension, the normal law's Lloyd-Max cells, and a "
        "per-vector scale) around the training vectors' mean; put a random rotation before it (\"RR...\").")
        .def(py::init([](int d, int metric, long long nb_bits, int scale_type) {
                 if (d < 1) throw InvalidArgument("IndexEDEN: d must be positive");
                 return std::make_shared<IndexEDEN>(d, MetricType(metric), eden_bits(nb_bits, "IndexEDEN"),
                                                    biased_scale(scale_type, "IndexEDEN"));
             }),
             py::arg("d"), py::arg("metric") = int(METRIC_L2), py::arg("nb_bits") = 1,
             py::arg("scale_type") = kUnbiased)
        .def_property_readonly("sq", [](IndexEDEN& self) -> const ScalarQuantizer& { return self.codec.sq; },
                               py::return_value_policy::reference_internal, "The codebook (QT_<nb_bits>bit_eden).")
        .def_property_readonly("scale_type", [](const IndexEDEN& self) { return self.codec.biased ? kBiased : kUnbiased; })
        .def_property_readonly("center", [](const IndexEDEN& self) {
            py::array_t<float> out(self.center.size());
            std::copy(self.center.begin(), self.center.end(), out.mutable_data());
            return out;
        }, "The training vectors' mean (a numpy copy; empty until trained).")
        .def_property_readonly("code_size", &IndexEDEN::code_size)
        .def_property_readonly("codes", codes_getter<IndexEDEN>(), kCodesDoc);

    py::class_<IndexIVFEDEN, IndexIVF, std::shared_ptr<IndexIVFEDEN>>(
        m, "IndexIVFEDEN", "faiss's IndexIVFEDEN: EDEN codes of each vector around its list's centroid.")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int metric, bool own_invlists, long long nb_bits,
                         int scale_type) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFEDEN: nlist must be positive");
                 if (!own_invlists)
                     throw NotSupported("IndexIVFEDEN: own_invlists=False is not implemented (give the index lists "
                                        "with replace_invlists)");
                 return std::make_shared<IndexIVFEDEN>(quantizer, d, size_t(nlist), MetricType(metric),
                                                       eden_bits(nb_bits, "IndexIVFEDEN"),
                                                       biased_scale(scale_type, "IndexIVFEDEN"));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2),
             py::arg("own_invlists") = true, py::arg("nb_bits") = 1, py::arg("scale_type") = kUnbiased)
        .def_property_readonly("sq", [](IndexIVFEDEN& self) -> const ScalarQuantizer& { return self.codec.sq; },
                               py::return_value_policy::reference_internal, "The codebook (QT_<nb_bits>bit_eden).")
        .def_property_readonly("scale_type",
                               [](const IndexIVFEDEN& self) { return self.codec.biased ? kBiased : kUnbiased; });
}

}  // namespace nearly_py
