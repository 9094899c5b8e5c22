// RaBitQ: RaBitQuantizer, IndexRaBitQ, IndexIVFRaBitQ and their search parameters.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/hamming.h"
#include "nearly/index_rabitq.h"
#include "nearly/ivf_rabitq.h"
#include "nearly/pq_fast_scan.h"

namespace py = pybind11;

namespace nearly_py {

using namespace nearly;

namespace {
int check_qb(int qb) {
    if (qb < 0 || qb > 8) throw InvalidArgument("qb must be in 0..8 (got " + std::to_string(qb) + ")");
    return qb;
}
size_t check_nprobe(long long nprobe) {
    if (nprobe < 1) throw InvalidArgument("nprobe must be at least 1 (got " + std::to_string(nprobe) + ")");
    return size_t(nprobe);
}
RaBitQuantizer& rabitq_of_flat(IndexRaBitQ& i) { return i.rabitq; }
RaBitQuantizer& rabitq_of_ivf(IndexIVFRaBitQ& i) { return i.rabitq; }
}  // namespace

void bind_rabitq(py::module_& m) {
    py::class_<RaBitQuantizer>(m, "RaBitQuantizer")
        .def("_clone", [](const RaBitQuantizer& q) { return RaBitQuantizer(q); }, "An independent copy (clone_Quantizer).")
        .def(py::init([](long long d, int metric, long long nb_bits) {
                 if (d < 1) throw InvalidArgument("RaBitQuantizer: d must be positive");
                 if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
                     throw InvalidArgument("RaBitQuantizer: metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
                 if (nb_bits < 1 || nb_bits > 9) throw InvalidArgument("RaBitQuantizer: nb_bits must be 1 to 9");
                 return RaBitQuantizer(size_t(d), MetricType(metric), size_t(nb_bits));
             }),
             py::arg("d"), py::arg("metric") = int(METRIC_L2), py::arg("nb_bits") = 1)
        // faiss's RaBitQuantizer learns nothing: codes are relative to the
        // origin (or to a centroid inside the indexes).
        .def("train", [](const RaBitQuantizer& q, py::handle x_obj) { as_matrix(x_obj, int(q.d), "x"); },
             py::arg("x"), "Nothing to learn (faiss's); the shape of x is checked.")
        .def("compute_codes", [](const RaBitQuantizer& q, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(q.d), "x");
            const idx_t n = x.shape(0);
            py::array_t<uint8_t> codes({n, idx_t(q.code_size)});
            py::gil_scoped_release release;
            check_finite(x.data(), size_t(n) * q.d, "x");
            q.encode(size_t(n), x.data(), nullptr, codes.mutable_data());
            return codes;
        }, py::arg("x"), "Codes of the rows of x against the origin: (n, code_size) uint8.")
        .def("decode", [](const RaBitQuantizer& q, py::handle codes_obj) {
            auto codes = as_codes(codes_obj, q.code_size, "codes");
            const idx_t n = codes.shape(0);
            py::array_t<float> x({n, idx_t(q.d)});
            py::gil_scoped_release release;
            q.decode(size_t(n), codes.data(), nullptr, x.mutable_data());
            return x;
        }, py::arg("codes"), "faiss's decode: the sign bits scaled to keep inner products.")
        .def_readonly("d", &RaBitQuantizer::d)
        .def_readonly("nb_bits", &RaBitQuantizer::nb_bits)
        .def_readonly("code_size", &RaBitQuantizer::code_size)
        .def_property_readonly("metric_type", [](const RaBitQuantizer& q) { return int(q.metric); });

    py::class_<RaBitQSearchParameters, SearchParameters, std::shared_ptr<RaBitQSearchParameters>>(
        m, "RaBitQSearchParameters")
        .def(py::init([](int qb, bool centered, std::shared_ptr<IDSelector> sel) {
                 auto p = std::make_shared<RaBitQSearchParameters>();
                 p->qb = check_qb(qb);
                 p->centered = centered;
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("qb") = 4, py::arg("centered") = false, py::arg("sel") = nullptr)
        .def_property("qb", [](const RaBitQSearchParameters& p) { return p.qb; },
                      [](RaBitQSearchParameters& p, int v) { p.qb = check_qb(v); })
        .def_readwrite("centered", &RaBitQSearchParameters::centered);

    py::class_<IVFRaBitQSearchParameters, SearchParametersIVF, std::shared_ptr<IVFRaBitQSearchParameters>>(
        m, "IVFRaBitQSearchParameters")
        .def(py::init([](long long nprobe, int qb, bool centered, std::shared_ptr<IDSelector> sel) {
                 auto p = std::make_shared<IVFRaBitQSearchParameters>();
                 p->nprobe = check_nprobe(nprobe);
                 p->qb = check_qb(qb);
                 p->centered = centered;
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("nprobe") = 1, py::arg("qb") = 4, py::arg("centered") = false,
             py::arg("sel") = nullptr)
        .def_property("qb", [](const IVFRaBitQSearchParameters& p) { return p.qb; },
                      [](IVFRaBitQSearchParameters& p, int v) { p.qb = check_qb(v); })
        .def_readwrite("centered", &IVFRaBitQSearchParameters::centered);

    py::class_<IndexRaBitQ, Index, std::shared_ptr<IndexRaBitQ>>(m, "IndexRaBitQ")
        .def(py::init([](int d, int metric, int nb_bits) {
                 return std::make_shared<IndexRaBitQ>(d, MetricType(metric), nb_bits);
             }),
             py::arg("d"), py::arg("metric") = int(METRIC_L2), py::arg("nb_bits") = 1)
        .def_property_readonly("rabitq", &rabitq_of_flat, py::return_value_policy::reference_internal)
        .def_property("qb", [](const IndexRaBitQ& i) { return i.qb; },
                      [](IndexRaBitQ& i, int v) { i.qb = check_qb(v); })
        .def_readwrite("centered", &IndexRaBitQ::centered)
        .def_property_readonly("center", [](const IndexRaBitQ& self) {
            return py::array_t<float>(self.center.size(), self.center.data());
        }, "The training vectors' mean (a numpy copy; empty before train()).")
        .def_property_readonly("code_size", &IndexRaBitQ::code_size)
        .def_property_readonly("codes", codes_getter<IndexRaBitQ>(), kCodesDoc);

    py::class_<IndexIVFRaBitQ, IndexIVF, std::shared_ptr<IndexIVFRaBitQ>>(m, "IndexIVFRaBitQ")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int metric, bool own_invlists, int nb_bits) {
                 if (nlist < 1) throw InvalidArgument("IndexIVFRaBitQ: nlist must be positive");
                 if (!own_invlists) throw NotSupported("IndexIVFRaBitQ: own_invlists=False is not implemented");
                 return std::make_shared<IndexIVFRaBitQ>(quantizer, d, size_t(nlist), MetricType(metric), nb_bits);
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2),
             py::arg("own_invlists") = true, py::arg("nb_bits") = 1)
        .def_property_readonly("rabitq", &rabitq_of_ivf, py::return_value_policy::reference_internal)
        .def_property("qb", [](const IndexIVFRaBitQ& i) { return i.qb; },
                      [](IndexIVFRaBitQ& i, int v) { i.qb = check_qb(v); })
        .def_readwrite("centered", &IndexIVFRaBitQ::centered,
                       "The default of searches without IVFRaBitQSearchParameters: the query's quantizer "
                       "symmetric around 0.");

    py::class_<IndexRaBitQFastScan, IndexRaBitQ, std::shared_ptr<IndexRaBitQFastScan>>(m, "IndexRaBitQFastScan")
        .def(py::init([](int d, int metric, int bbs, int nb_bits) {
                 check_bbs(bbs);
                 return std::make_shared<IndexRaBitQFastScan>(d, MetricType(metric), nb_bits);
             }),
             py::arg("d"), py::arg("metric") = int(METRIC_L2), py::arg("bbs") = 32, py::arg("nb_bits") = 1)
        .def_property_readonly("bbs", [](const IndexRaBitQFastScan&) { return 32; })
        .def_property(
            "implem", [](const IndexRaBitQFastScan& i) { return i.implem; },
            [](IndexRaBitQFastScan& i, int v) { i.implem = checked_fast_scan_implem(v, false); },
            "faiss's fast-scan implementation knob: nearly's RaBitQ scan (exact tables) serves every value.");

    py::class_<IndexIVFRaBitQFastScan, IndexIVFRaBitQ, std::shared_ptr<IndexIVFRaBitQFastScan>>(
        m, "IndexIVFRaBitQFastScan")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, int metric, int bbs, bool own_invlists,
                         int nb_bits) {
                 check_bbs(bbs);
                 if (nlist < 1) throw InvalidArgument("IndexIVFRaBitQFastScan: nlist must be positive");
                 if (!own_invlists) throw NotSupported("IndexIVFRaBitQFastScan: own_invlists=False is not implemented");
                 return std::make_shared<IndexIVFRaBitQFastScan>(quantizer, d, size_t(nlist), MetricType(metric),
                                                                 nb_bits);
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2),
             py::arg("bbs") = 32, py::arg("own_invlists") = true, py::arg("nb_bits") = 1)
        .def(py::init([](const IndexIVFRaBitQ& orig, int bbs) {
                 check_bbs(bbs);
                 py::gil_scoped_release release;
                 return std::make_shared<IndexIVFRaBitQFastScan>(orig);
             }),
             py::arg("orig"), py::arg("bbs") = 32,
             "faiss's conversion: orig's quantizer (shared), entries, nprobe, qb and centered; the codes are the same.")
        .def_property_readonly("bbs", [](const IndexIVFRaBitQFastScan&) { return 32; })
        .def_property(
            "implem", [](const IndexIVFRaBitQFastScan& i) { return i.implem; },
            [](IndexIVFRaBitQFastScan& i, int v) { i.implem = checked_fast_scan_implem(v, true); },
            "faiss's fast-scan implementation knob: nearly's RaBitQ scan (exact tables) serves every value.");

    // The kernel and its levels, for the tests: dot[j], pop[j] of codes (n, stride) against planes (qb, nbytes).
    m.def("_rabitq_dots", [](py::array_t<uint8_t, py::array::c_style | py::array::forcecast> planes,
                             py::array_t<uint8_t, py::array::c_style | py::array::forcecast> codes, size_t nbytes,
                             const std::string& level) {
        if (planes.ndim() != 2 || codes.ndim() != 2 || size_t(planes.shape(1)) != nbytes ||
            size_t(codes.shape(1)) < nbytes || planes.shape(0) > 8)
            throw InvalidArgument("_rabitq_dots: planes (qb <= 8, nbytes), codes (n, >= nbytes)");
        RaBitQDotsFn fn = level == "scalar" ? rabitq_dots_scalar : nullptr;
#if defined(NEARLY_HAVE_AVX2)
        if (level == "popcnt") fn = rabitq_dots_popcnt;
        if (level == "vpopcntdq") {
            if (!cpu_has_avx512_vpopcntdq()) throw NotSupported("this CPU has no AVX-512 VPOPCNTDQ");
            fn = rabitq_dots_vpopcntdq;
        }
#endif
        if (level == "dispatch") fn = rabitq_dots_kernel();
        if (!fn) throw InvalidArgument("unknown kernel level " + level);
        const size_t n = size_t(codes.shape(0));
        py::array_t<uint32_t> dot(n), pop(n);
        fn(planes.data(), size_t(planes.shape(0)), codes.data(), nbytes, size_t(codes.shape(1)), n, dot.mutable_data(),
           pop.mutable_data());
        return py::make_tuple(dot, pop);
    }, py::arg("planes"), py::arg("codes"), py::arg("nbytes"), py::arg("level"));
}

}  // namespace nearly_py
