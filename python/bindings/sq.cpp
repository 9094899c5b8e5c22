// Scalar quantization: ScalarQuantizer (faiss's codec and its classic
// QuantizerTypes and RangeStats), IndexScalarQuantizer, IndexIVFScalarQuantizer.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <utility>

#include "arrays.h"
#include "nearly/index_sq.h"
#include "nearly/ivf_sq.h"
#include "nearly/scalar_quantizer.h"
#include "nearly/turboquant.h"

namespace nearly_py {

using namespace nearly;

namespace {
ScalarQuantizer::QuantizerType check_qtype(int qtype, const char* who) {
    if (!ScalarQuantizer::valid_qtype(qtype))
        throw NotSupported(std::string(who) + ": qtype " + std::to_string(qtype) +
                           " not implemented in nearly (QT_8bit, QT_4bit, QT_8bit_uniform, QT_4bit_uniform, "
                           "QT_fp16, QT_8bit_direct, QT_6bit, QT_bf16, QT_8bit_direct_signed, QT_0bit (IVF only), the TurboQuant "
                           "types QT_1bit_tqmse to QT_8bit_tqmse and QT_2bit_tq to QT_5bit_tq, and EDEN's "
                           "QT_1bit_eden to QT_8bit_eden are)");
    return ScalarQuantizer::QuantizerType(qtype);
}

ScalarQuantizer& sq_of_index(IndexScalarQuantizer& i) { return i.sq; }
ScalarQuantizer& sq_of_ivf(IndexIVFScalarQuantizer& i) { return i.sq; }
}  // namespace

void bind_sq(py::module_& m) {
    // faiss's ScalarQuantizer with faiss's QuantizerType and RangeStat values.
    py::class_<ScalarQuantizer> sq(m, "ScalarQuantizer");
    sq.def("_clone", [](const ScalarQuantizer& q) { return ScalarQuantizer(q); }, "An independent copy (clone_Quantizer).");
    for (auto [name, v] : {std::pair<const char*, int>{"QT_8bit", ScalarQuantizer::QT_8bit},
                           {"QT_4bit", ScalarQuantizer::QT_4bit},
                           {"QT_8bit_uniform", ScalarQuantizer::QT_8bit_uniform},
                           {"QT_4bit_uniform", ScalarQuantizer::QT_4bit_uniform},
                           {"QT_fp16", ScalarQuantizer::QT_fp16},
                           {"QT_8bit_direct", ScalarQuantizer::QT_8bit_direct},
                           {"QT_6bit", ScalarQuantizer::QT_6bit},
                           {"QT_bf16", ScalarQuantizer::QT_bf16},
                           {"QT_8bit_direct_signed", ScalarQuantizer::QT_8bit_direct_signed},
                           {"QT_0bit", ScalarQuantizer::QT_0bit},
                           {"QT_1bit_tqmse", ScalarQuantizer::QT_1bit_tqmse},
                           {"QT_2bit_tqmse", ScalarQuantizer::QT_2bit_tqmse},
                           {"QT_3bit_tqmse", ScalarQuantizer::QT_3bit_tqmse},
                           {"QT_4bit_tqmse", ScalarQuantizer::QT_4bit_tqmse},
                           {"QT_8bit_tqmse", ScalarQuantizer::QT_8bit_tqmse},
                           {"QT_2bit_tq", ScalarQuantizer::QT_2bit_tq},
                           {"QT_3bit_tq", int(ScalarQuantizer::QT_2bit_tq) + 1},
                           {"QT_4bit_tq", int(ScalarQuantizer::QT_2bit_tq) + 2},
                           {"QT_5bit_tq", ScalarQuantizer::QT_5bit_tq},
                           {"RS_minmax", ScalarQuantizer::RS_minmax},
                           {"RS_meanstd", ScalarQuantizer::RS_meanstd},
                           {"RS_quantiles", ScalarQuantizer::RS_quantiles},
                           {"RS_optim", ScalarQuantizer::RS_optim}})
        sq.attr(name) = v;
    // EDEN's types (the codebooks of IndexEDEN) and QT_count, by faiss's values.
    const char* later_types[] = {"QT_1bit_eden", "QT_2bit_eden", "QT_3bit_eden", "QT_4bit_eden",
                                 "QT_5bit_eden", "QT_6bit_eden", "QT_7bit_eden", "QT_8bit_eden", "QT_count"};
    for (size_t i = 0; i < sizeof(later_types) / sizeof(later_types[0]); i++)
        sq.attr(later_types[i]) = int(ScalarQuantizer::QT_1bit_eden) + int(i);
    sq.def(py::init([](int d, int qtype) {
           if (d < 1) throw InvalidArgument("ScalarQuantizer: d must be positive");
           return ScalarQuantizer(size_t(d), check_qtype(qtype, "ScalarQuantizer"));
       }),
       py::arg("d"), py::arg("qtype") = int(ScalarQuantizer::QT_8bit))
        .def_readonly("d", &ScalarQuantizer::d)
        .def_readonly("code_size", &ScalarQuantizer::code_size)
        .def_readonly("bits", &ScalarQuantizer::bits)
        .def_property_readonly("qtype", [](const ScalarQuantizer& s) { return int(s.qtype); })
        .def_property("rangestat", [](const ScalarQuantizer& s) { return int(s.rangestat); },
                      [](ScalarQuantizer& s, int rs) {
                          if (!ScalarQuantizer::valid_rangestat(rs))
                              throw InvalidArgument("ScalarQuantizer: rangestat must be RS_minmax, RS_meanstd, "
                                                    "RS_quantiles or RS_optim");
                          s.rangestat = ScalarQuantizer::RangeStat(rs);
                      }, "How train() sets the ranges (faiss's RangeStat; read at training).")
        .def_property("rangestat_arg", [](const ScalarQuantizer& s) { return s.rangestat_arg; },
                      [](ScalarQuantizer& s, float v) {
                          if (!std::isfinite(v)) throw InvalidArgument("ScalarQuantizer: rangestat_arg must be finite");
                          s.rangestat_arg = v;
                      })
        .def_property("trained", [](const ScalarQuantizer& s) {
            py::array_t<float> out(s.trained.size());
            std::copy(s.trained.begin(), s.trained.end(), out.mutable_data());
            return out;
        }, [](ScalarQuantizer& s, py::handle v) {
            auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
            if (!a || a.ndim() != 1 || size_t(a.size()) != s.trained_size())
                throw InvalidArgument("ScalarQuantizer.trained takes " + std::to_string(s.trained_size()) +
                                      " floats for this type and d (faiss's layout)");
            if (s.turboq()) {  // the seed's two floats may hold any bits: checked as a whole
                TurboQuantCodec::check_trained(s.bits, std::vector<float>(a.data(), a.data() + a.size()));
            } else {
                check_finite(a.data(), size_t(a.size()), "trained");
            }
            // In place where the size holds: a search reading the values meanwhile never sees freed memory.
            if (s.trained.size() == size_t(a.size()))
                std::copy(a.data(), a.data() + a.size(), s.trained.begin());
            else
                s.trained.assign(a.data(), a.data() + a.size());
        }, "faiss's layout (a numpy copy): vmin[d] then vdiff[d] for the per-dimension types, [vmin, vdiff] "
           "for the uniform ones, the 2^bits centroids then the 2^bits - 1 midpoints for the TurboQuant "
           "types (QT_*bit_tq: the 2^(bits-1) centroids, their midpoints, the sign seed as two floats' bits and the "
           "projection type 0), empty for fp16, bf16 and the direct types.")
        .def("train", [](ScalarQuantizer& s, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(s.d), "x");
            py::gil_scoped_release release;
            s.train(size_t(x.shape(0)), x.data());
        }, py::arg("x"))
        .def("compute_codes", [](const ScalarQuantizer& s, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(s.d), "x");
            check_finite(x.data(), size_t(x.size()), "x");
            py::array_t<uint8_t> out({py::ssize_t(x.shape(0)), py::ssize_t(s.code_size)});
            uint8_t* o = out.mutable_data();
            py::gil_scoped_release release;
            s.compute_codes(x.data(), o, size_t(x.shape(0)));
            return out;
        }, py::arg("x"))
        .def("decode", [](const ScalarQuantizer& s, py::handle codes_obj) {
            auto c = as_codes(codes_obj, s.code_size, "codes");
            if (!s.is_trained()) throw NotSupported("ScalarQuantizer: not trained");
            py::array_t<float> out({py::ssize_t(c.shape(0)), py::ssize_t(s.d)});
            float* o = out.mutable_data();
            py::gil_scoped_release release;
            s.decode(c.data(), o, size_t(c.shape(0)));
            return out;
        }, py::arg("codes"));

    py::class_<IndexScalarQuantizer, Index, std::shared_ptr<IndexScalarQuantizer>>(m, "IndexScalarQuantizer")
        .def(py::init([](int d, int qtype, int metric) {
                 return std::make_shared<IndexScalarQuantizer>(d, check_qtype(qtype, "IndexScalarQuantizer"),
                                                               MetricType(metric));
             }),
             py::arg("d"), py::arg("qtype") = int(ScalarQuantizer::QT_8bit), py::arg("metric") = int(METRIC_L2))
        .def_property("sq", &sq_of_index,
                      [](IndexScalarQuantizer& self, const ScalarQuantizer& other) {
                          py::gil_scoped_release release;
                          self.set_quantizer(other);
                      },
                      py::return_value_policy::reference_internal)
        .def_property_readonly("code_size", &IndexScalarQuantizer::code_size)
        .def_property_readonly("codes", codes_getter<IndexScalarQuantizer>(), kCodesDoc)
        .def("_set_codes", [](IndexScalarQuantizer& self, py::handle codes) { set_flat_codes(self, codes); });

    py::class_<IVFSQTurboQSearchParameters, SearchParametersIVF, std::shared_ptr<IVFSQTurboQSearchParameters>>(
        m, "IVFSQTurboQSearchParameters",
        "faiss's search parameters for TurboQuant's full codes in an IVF: qb and int_qjl pick faiss's integer "
        "approximations of the estimate; nearly scores the float query (exact, at SIMD speed) whatever they are.")
        .def(py::init([](long long nprobe, std::shared_ptr<IDSelector> sel, int qb, bool int_qjl) {
                 if (nprobe < 1) throw InvalidArgument("nprobe must be at least 1");
                 if (qb < 0 || qb > 8) throw InvalidArgument("qb must be in 0..8");
                 auto p = std::make_shared<IVFSQTurboQSearchParameters>();
                 p->nprobe = size_t(nprobe);
                 p->sel = sel;
                 p->qb = uint8_t(qb);
                 p->int_qjl = int_qjl;
                 return p;
             }),
             py::kw_only(), py::arg("nprobe") = 1, py::arg("sel") = nullptr, py::arg("qb") = 0,
             py::arg("int_qjl") = false)
        .def_property("qb", [](const IVFSQTurboQSearchParameters& p) { return int(p.qb); },
                      [](IVFSQTurboQSearchParameters& p, int v) {
                          if (v < 0 || v > 8) throw InvalidArgument("qb must be in 0..8");
                          p.qb = uint8_t(v);
                      })
        .def_readwrite("int_qjl", &IVFSQTurboQSearchParameters::int_qjl);

    py::class_<IndexIVFScalarQuantizer, IndexIVF, std::shared_ptr<IndexIVFScalarQuantizer>>(m, "IndexIVFScalarQuantizer")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int qtype, int metric, bool by_residual) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFScalarQuantizer: nlist must be positive");
                 return std::make_shared<IndexIVFScalarQuantizer>(quantizer, d, size_t(nlist),
                                                                  check_qtype(qtype, "IndexIVFScalarQuantizer"),
                                                                  MetricType(metric), by_residual);
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("qtype") = int(ScalarQuantizer::QT_8bit),
             py::arg("metric") = int(METRIC_L2), py::arg("by_residual") = true)
        .def_property("sq", &sq_of_ivf,
                      [](IndexIVFScalarQuantizer& self, const ScalarQuantizer& other) {
                          py::gil_scoped_release release;
                          self.set_sq(other);
                      },
                      py::return_value_policy::reference_internal)
        .def_property("by_residual", [](const IndexIVFScalarQuantizer& i) { return i.by_residual; },
                      [](IndexIVFScalarQuantizer& i, bool v) {
                          if (i.ntotal > 0 && v != i.by_residual)
                              throw NotSupported("IndexIVFScalarQuantizer: by_residual cannot change once vectors are added");
                          i.by_residual = v;
                      });
}

}  // namespace nearly_py
