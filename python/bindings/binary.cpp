// Recurrent binary codes (RecurrentBinarizer, IndexBinaryRecurrent), the SDC
// and Hamming kernels for tests and benchmarks, and the trainer hook that
// calls nearly.binary's numpy trainer.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>

#include "arrays.h"
#include "hnsw_view.h"
#include "nearly/binary_hnsw.h"
#include "nearly/binary_ivf.h"
#include "nearly/binary_recurrent.h"
#include "nearly/binary_sdc.h"
#include "nearly/hamming.h"

namespace nearly_py {

using namespace nearly;
using U8Array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

namespace {

std::vector<float> floats(py::handle obj) {
    FloatArray a = to_array<FloatArray>(obj, "parameter");
    return std::vector<float>(a.data(), a.data() + a.size());
}

std::vector<std::vector<float>> float_list(py::handle obj) {
    std::vector<std::vector<float>> out;
    for (py::handle h : obj) out.push_back(floats(h));
    return out;
}

// One encoder map from a sequence of (A, a) layers, A of shape (in, out).
EncoderMap map_from(py::handle layers, const char* what) {
    std::vector<int> dims;
    std::vector<std::vector<float>> A, a;
    for (py::handle layer : layers) {
        py::tuple pair = py::tuple(py::reinterpret_borrow<py::object>(layer));
        if (pair.size() != 2) throw InvalidArgument(std::string("RecurrentBinarizer: map ") + what + ": layers are (A, a) pairs");
        FloatArray m = to_array<FloatArray>(pair[0], what);
        if (m.ndim() != 2) throw InvalidArgument(std::string("RecurrentBinarizer: map ") + what + ": A must be 2-D");
        if (dims.empty()) dims.push_back(int(m.shape(0)));
        if (dims.back() != m.shape(0))
            throw InvalidArgument(std::string("RecurrentBinarizer: map ") + what + ": layer widths do not chain");
        dims.push_back(int(m.shape(1)));
        A.emplace_back(m.data(), m.data() + m.size());
        a.push_back(floats(pair[1]));
    }
    return EncoderMap::from_layers(dims, A, a, what);
}

// The parameter dict of a trainer: linear maps (W, B, c, R, r) or layer
// stacks (W_layers, B_layers, R_layers, normalize_f).
void set_from_dict(RecurrentEncoder& enc, py::dict p) {
    if (p.contains("W_layers")) {
        std::vector<EncoderMap> B, R;
        for (py::handle h : p["B_layers"]) B.push_back(map_from(h, "B"));
        for (py::handle h : p["R_layers"]) R.push_back(map_from(h, "R"));
        const bool norm = p.contains("normalize_f") && p["normalize_f"].cast<bool>();
        enc.set_maps(floats(p["mean"]), map_from(p["W_layers"], "W"), std::move(B), std::move(R), norm,
                     p["alpha"].cast<float>(), floats(p["D"]), floats(p["e"]));
    } else {
        enc.set_params(floats(p["mean"]), floats(p["W"]), p["alpha"].cast<float>(), float_list(p["B"]),
                       float_list(p["c"]), float_list(p["R"]), float_list(p["r"]), floats(p["D"]), floats(p["e"]));
    }
}

// A trainer that runs nearly.binary.fit_params(x, m, bits_per_dim, method, **options).
RecurrentTrainer python_trainer(const std::string& method, py::dict options) {
    return [method, options](RecurrentEncoder& enc, idx_t n, const float* x) {
        py::gil_scoped_acquire gil;
        py::array_t<float> arr({n, idx_t(enc.d)}, x);
        py::object fit = py::module_::import("nearly.binary").attr("fit_params");
        set_from_dict(enc, fit(arr, enc.m, enc.nb, method, **options));
    };
}
}  // namespace

U8Array as_codes(py::handle obj, size_t code_size, const char* what) {
    if (obj.is_none()) throw InvalidArgument(std::string(what) + " is None");
    py::array a = py::array::ensure(obj);
    if (!a) {
        PyErr_Clear();
        throw InvalidArgument(std::string(what) + " cannot be converted to an array");
    }
    if (a.dtype().kind() != 'u' || a.dtype().itemsize() != 1)  // TypeError, like faiss
        throw py::type_error("Input argument " + std::string(what) + " must be ndarray of dtype uint8, but found " +
                             py::str(a.dtype()).cast<std::string>());
    U8Array c = U8Array::ensure(a);
    if (c.ndim() != 2 || size_t(c.shape(1)) != code_size)
        throw InvalidArgument(std::string(what) + " must have shape (n, " + std::to_string(code_size) +
                              ") (code_size bytes per code), got shape " + shape_str(c));
    return c;
}

namespace {

py::array_t<uint8_t> encode(const RecurrentEncoder& enc, py::handle x_obj) {
    FloatArray x = as_matrix(x_obj, enc.d, "x");
    if (!enc.is_trained) throw NotSupported("RecurrentBinarizer: not trained: call train() before encode()");
    py::array_t<uint8_t> out({idx_t(x.shape(0)), idx_t(enc.code_size())});
    py::gil_scoped_release release;
    enc.encode(x.shape(0), x.data(), out.mutable_data());
    return out;
}

py::array_t<float> decode(const RecurrentEncoder& enc, py::handle c_obj) {
    U8Array c = as_codes(c_obj, enc.code_size(), "codes");
    if (!enc.is_trained) throw NotSupported("RecurrentBinarizer: not trained: call train() before decode()");
    py::array_t<float> out({idx_t(c.shape(0)), idx_t(enc.d)});
    py::gil_scoped_release release;
    enc.decode(c.shape(0), c.data(), out.mutable_data());
    return out;
}

void register_trainer() {
    set_recurrent_trainer([](RecurrentEncoder& enc, idx_t n, const float* x) {
        py::gil_scoped_acquire gil;
        py::array_t<float> arr({n, idx_t(enc.d)}, x);
        py::object fit = py::module_::import("nearly.binary").attr("fit_recurrent");
        set_from_dict(enc, fit(arr, enc.m, enc.nb));
    });
}

}  // namespace

void bind_binary(py::module_& m) {
    register_trainer();

    py::class_<RecurrentEncoder, std::shared_ptr<RecurrentEncoder>>(m, "RecurrentBinarizer")
        .def(py::init<int, int, int>(), py::arg("d"), py::arg("m"), py::arg("bits_per_dim"))
        .def_readonly("d", &RecurrentEncoder::d)
        .def_readonly("m", &RecurrentEncoder::m)
        .def_readonly("bits_per_dim", &RecurrentEncoder::nb)
        .def_readonly("is_trained", &RecurrentEncoder::is_trained)
        .def_readonly("alpha", &RecurrentEncoder::alpha)
        .def_property_readonly("code_size", &RecurrentEncoder::code_size)
        .def_property_readonly("mean", [](const RecurrentEncoder& e) {
            return py::array_t<float>(e.mean.size(), e.mean.data());
        })
        .def("train", [](RecurrentEncoder& self, py::handle x_obj, const std::string& method, py::kwargs options) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const RecurrentTrainer trainer = python_trainer(method, options);  // outlives the GIL release
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data(), trainer);
        }, py::arg("x"), py::arg("method") = "numpy",
           "Fits the maps on x: method 'numpy' (default) or 'torch' (extra 'train'); keyword options go to "
           "nearly.binary.fit_params.")
        .def("set_params", &set_from_dict, py::arg("params"))
        .def("encode", &encode, py::arg("x"), "uint8 codes (n, code_size): bit planes, see binary_sdc.h")
        .def("decode", &decode, py::arg("codes"));

    py::class_<IndexBinaryRecurrent, Index, std::shared_ptr<IndexBinaryRecurrent>>(m, "IndexBinaryRecurrent")
        .def(py::init([](int d, int mm, int nb, int metric) {
                 if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
                     throw InvalidArgument("metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
                 return std::make_shared<IndexBinaryRecurrent>(d, mm, nb, MetricType(metric));
             }),
             py::arg("d"), py::arg("m"), py::arg("bits_per_dim"), py::arg("metric") = int(METRIC_INNER_PRODUCT))
        .def_readonly("binarizer", &IndexBinaryRecurrent::encoder)
        .def_readwrite("use_popcount", &IndexBinaryRecurrent::use_popcount)
        .def("train", [](IndexBinaryRecurrent& self, py::handle x_obj, const std::string& method, py::kwargs options) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const RecurrentTrainer trainer = python_trainer(method, options);
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data(), trainer);
        }, py::arg("x"), py::arg("method") = "numpy",
           "Trains the binarizer on x (see RecurrentBinarizer.train for method and options).")
        .def_property_readonly("code_size", &IndexBinaryRecurrent::code_size)
        .def_property_readonly("m", [](const IndexBinaryRecurrent& i) { return i.encoder->m; })
        .def_property_readonly("bits_per_dim", [](const IndexBinaryRecurrent& i) { return i.encoder->nb; })
        .def_property_readonly("codes", [](const IndexBinaryRecurrent& i) {
            std::vector<uint8_t> c = i.codes();
            py::array_t<uint8_t> out({idx_t(c.size() / i.code_size()), idx_t(i.code_size())});
            std::copy(c.begin(), c.end(), out.mutable_data());
            return out;
        })
        .def_property_readonly("id_map", [](const IndexBinaryRecurrent& i) {
            std::vector<idx_t> ids = i.ids();
            py::array_t<idx_t> out(ids.size());
            std::copy(ids.begin(), ids.end(), out.mutable_data());
            return out;
        })
        .def_property_readonly("_vector_terms", [](const IndexBinaryRecurrent& i) {
            std::vector<float> t = i.contents().terms;
            py::array_t<float> out(t.size());
            std::copy(t.begin(), t.end(), out.mutable_data());
            return out;
        }, "Test hook: the per-vector terms vt of D (recurrent_key), in insertion order.")
        .def("_query_terms", [](const IndexBinaryRecurrent& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            if (!self.encoder->is_trained) throw NotSupported("RecurrentBinarizer: not trained");
            py::array_t<float> out(x.shape(0));
            py::gil_scoped_release release;
            recurrent_query_terms(*self.encoder, self.metric_type, x.shape(0), x.data(), out.mutable_data());
            return out;
        }, py::arg("x"), "Test hook: the per-query terms qt of D (recurrent_key).")
        .def("sdc_scores", [](const IndexBinaryRecurrent& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            py::array_t<int32_t> out({idx_t(x.shape(0)), self.ntotal});
            py::gil_scoped_release release;
            self.sdc_scores(x.shape(0), x.data(), out.mutable_data());
            return out;
        }, py::arg("x"), "Integer SDC scores 2^(2u) <b_q, b_x> of each query against every stored code.");

    py::class_<IndexBinaryRecurrentHNSW, Index, std::shared_ptr<IndexBinaryRecurrentHNSW>>(m, "IndexBinaryRecurrentHNSW")
        .def(py::init([](int d, int mm, int nb, int M, int metric) {
                 if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
                     throw InvalidArgument("metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
                 return std::make_shared<IndexBinaryRecurrentHNSW>(d, mm, nb, M, MetricType(metric));
             }),
             py::arg("d"), py::arg("m"), py::arg("bits_per_dim"), py::arg("M") = 32,
             py::arg("metric") = int(METRIC_INNER_PRODUCT))
        .def_readonly("binarizer", &IndexBinaryRecurrentHNSW::encoder)
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexBinaryRecurrentHNSW> self) { return hnsw_view(self); })
        .def_property_readonly("code_size", &IndexBinaryRecurrentHNSW::code_size)
        .def_property_readonly("m", [](const IndexBinaryRecurrentHNSW& i) { return i.encoder->m; })
        .def_property_readonly("bits_per_dim", [](const IndexBinaryRecurrentHNSW& i) { return i.encoder->nb; });

    py::class_<IndexIVFBinaryRecurrent, IndexIVF, std::shared_ptr<IndexIVFBinaryRecurrent>>(m, "IndexIVFBinaryRecurrent")
        .def(py::init([](IndexPtr quantizer, int d, int64_t nlist, int mm, int nb, int metric) {
                 if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
                     throw InvalidArgument("metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
                 if (nlist < 1) throw InvalidArgument("IndexIVFBinaryRecurrent: nlist must be positive");
                 return std::make_shared<IndexIVFBinaryRecurrent>(quantizer, d, size_t(nlist), mm, nb, MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("m"), py::arg("bits_per_dim"),
             py::arg("metric") = int(METRIC_INNER_PRODUCT))
        .def_readonly("binarizer", &IndexIVFBinaryRecurrent::encoder)
        .def_property_readonly("m", [](const IndexIVFBinaryRecurrent& i) { return i.encoder->m; })
        .def_property_readonly("bits_per_dim", [](const IndexIVFBinaryRecurrent& i) { return i.encoder->nb; });

    // Kernels on raw codes (tests, benchmarks).
    m.def("sdc_scan", [](py::handle q_obj, py::handle codes_obj, int mm, int nb, bool popcount) {
        sdc_check_shape(mm, nb);
        const size_t cs = sdc_code_size(mm, nb);
        U8Array q = as_codes(q_obj, cs, "q");
        U8Array c = as_codes(codes_obj, cs, "codes");
        if (q.shape(0) != 1) throw InvalidArgument("q must hold one code");
        const size_t n = c.shape(0), nblocks = (n + kSdcBlock - 1) / kSdcBlock;
        std::vector<uint8_t> blocks(nblocks * kSdcBlock * cs, 0);
        sdc_to_blocks(c.data(), n, cs, blocks.data());
        std::vector<int32_t> out(nblocks * kSdcBlock);
        {
            py::gil_scoped_release release;
            if (popcount)
                sdc_scan_popcount(q.data(), blocks.data(), nblocks, mm, nb, out.data());
            else
                sdc_scan(q.data(), blocks.data(), nblocks, mm, nb, out.data());
        }
        return py::array_t<int32_t>(n, out.data());
    }, py::arg("q"), py::arg("codes"), py::arg("m"), py::arg("bits_per_dim"), py::arg("popcount") = false,
       "SDC scores of one canonical code against n canonical codes, at the active SIMD level.");
    m.def("sdc_scan_timed", [](py::handle q_obj, py::handle codes_obj, int mm, int nb, bool popcount, int reps) {
        sdc_check_shape(mm, nb);
        const size_t cs = sdc_code_size(mm, nb);
        U8Array q = as_codes(q_obj, cs, "q");
        U8Array c = as_codes(codes_obj, cs, "codes");
        const size_t n = c.shape(0), nblocks = (n + kSdcBlock - 1) / kSdcBlock;
        std::vector<uint8_t> blocks(nblocks * kSdcBlock * cs, 0);
        sdc_to_blocks(c.data(), n, cs, blocks.data());
        std::vector<int32_t> out(nblocks * kSdcBlock);
        std::vector<SdcQuery> sq(q.shape(0));
        for (py::ssize_t i = 0; i < q.shape(0); i++) sdc_prepare(q.data() + i * cs, mm, nb, sq[i]);
        py::gil_scoped_release release;
        // Database chunks of 64 blocks, every query over each chunk (what the
        // index search does); the tables are prepared outside the timing.
        auto t0 = std::chrono::steady_clock::now();
        std::vector<const SdcQuery*> qp;
        for (const SdcQuery& s : sq) qp.push_back(&s);
        std::vector<std::vector<int32_t>> outs(sq.size(), std::vector<int32_t>(64 * kSdcBlock));
        std::vector<int32_t*> op;
        for (auto& o : outs) op.push_back(o.data());
        for (int r = 0; r < reps; r++)
            for (size_t b0 = 0; b0 < nblocks; b0 += 64)
                for (size_t g = 0; g < qp.size(); g += 16)
                    sdc_scan_multi(qp.data() + g, std::min<size_t>(16, qp.size() - g),
                                   blocks.data() + b0 * kSdcBlock * cs, std::min<size_t>(64, nblocks - b0),
                                   op.data() + g, popcount);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }, py::arg("q"), py::arg("codes"), py::arg("m"), py::arg("bits_per_dim"), py::arg("popcount"), py::arg("reps"),
       "Seconds for reps single-thread passes of every query in q over the codes, no top-k: for benchmarks.");
    m.def("sdc_scan_multi", [](py::handle q_obj, py::handle codes_obj, int mm, int nb) {
        sdc_check_shape(mm, nb);
        const size_t cs = sdc_code_size(mm, nb);
        U8Array q = as_codes(q_obj, cs, "q");
        U8Array c = as_codes(codes_obj, cs, "codes");
        const size_t n = c.shape(0), nq = q.shape(0), nblocks = (n + kSdcBlock - 1) / kSdcBlock;
        std::vector<uint8_t> blocks(nblocks * kSdcBlock * cs, 0);
        sdc_to_blocks(c.data(), n, cs, blocks.data());
        std::vector<SdcQuery> sq(nq);
        std::vector<const SdcQuery*> qp;
        std::vector<std::vector<int32_t>> outs(nq, std::vector<int32_t>(nblocks * kSdcBlock));
        std::vector<int32_t*> op;
        for (size_t i = 0; i < nq; i++) {
            sdc_prepare(q.data() + i * cs, mm, nb, sq[i]);
            qp.push_back(&sq[i]);
            op.push_back(outs[i].data());
        }
        sdc_scan_multi(qp.data(), nq, blocks.data(), nblocks, op.data());
        py::array_t<int32_t> out({idx_t(nq), idx_t(n)});
        for (size_t i = 0; i < nq; i++) std::copy(outs[i].begin(), outs[i].begin() + n, out.mutable_data() + i * n);
        return out;
    }, py::arg("q"), py::arg("codes"), py::arg("m"), py::arg("bits_per_dim"),
       "SDC scores of several queries scanned together (the multi-query kernel).");
    m.def("sdc_candidates", [](py::array_t<int32_t, py::array::c_style | py::array::forcecast> s, int32_t smin,
                               py::object off_obj) {
        std::vector<idx_t> out;
        const size_t n = s.size();
        if (off_obj.is_none()) {
            for (size_t j = sdc_next_at_least(s.data(), 0, n, smin); j < n; j = sdc_next_at_least(s.data(), j + 1, n, smin))
                out.push_back(idx_t(j));
        } else {
            auto off = py::cast<py::array_t<int32_t, py::array::c_style | py::array::forcecast>>(off_obj);
            if (size_t(off.size()) != n) throw InvalidArgument("off must have one entry per score");
            for (size_t j = sdc_next_at_least_off(s.data(), off.data(), 0, n, smin); j < n;
                 j = sdc_next_at_least_off(s.data(), off.data(), j + 1, n, smin))
                out.push_back(idx_t(j));
        }
        return py::array_t<idx_t>(out.size(), out.data());
    }, py::arg("scores"), py::arg("smin"), py::arg("off") = py::none(),
       "Positions with score (+ off) >= smin, through the pre-filter kernel (tests).");
    m.def("sdc_score_ref", [](py::handle q_obj, py::handle x_obj, int mm, int nb) {
        sdc_check_shape(mm, nb);
        const size_t cs = sdc_code_size(mm, nb);
        U8Array q = as_codes(q_obj, cs, "q"), x = as_codes(x_obj, cs, "x");
        py::array_t<int32_t> out(x.shape(0));
        for (py::ssize_t j = 0; j < x.shape(0); j++)
            out.mutable_data()[j] = sdc_score_ref(q.data(), x.data() + j * cs, mm, nb);
        return out;
    }, py::arg("q"), py::arg("x"), py::arg("m"), py::arg("bits_per_dim"));
    m.def("sdc_popcount_native", &sdc_popcount_native);
    m.def("sdc_popcount_kernel", [] { return std::string(sdc_popcount_kernel()); },
          "The kernel of the bit-plane popcount path at the active SIMD level.");
    m.def("hamming_vpopcntdq_native", &hamming_vpopcntdq_native);
    m.def("hamming_ny", [](py::handle q_obj, py::handle x_obj) {
        U8Array q = to_array<U8Array>(q_obj, "q");
        if (q.ndim() != 1) throw InvalidArgument("q must be one code (1-D uint8)");
        U8Array x = as_codes(x_obj, q.shape(0), "x");
        py::array_t<int32_t> out(x.shape(0));
        py::gil_scoped_release release;
        hamming_ny(q.data(), x.data(), q.shape(0), x.shape(0), out.mutable_data());
        return out;
    }, py::arg("q"), py::arg("x"));
}

}  // namespace nearly_py
