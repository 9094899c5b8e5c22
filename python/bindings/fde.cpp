// MUVERA Fixed Dimensional Encodings. nearly.FDEConfig (python/nearly/
// multivector.py) holds an _FdeEncoder: the config plus its random matrices.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cfloat>

#include "arrays.h"
#include "nearly/ams_sketch.h"
#include "nearly/fde.h"
#include "nearly/fde_signs.h"
#include "nearly/half.h"
#include "nearly/maxsim.h"
#include "nearly/libstdcxx_random.h"
#include "nearly/simd.h"

namespace nearly_py {

using namespace nearly;

namespace {

FdeProjection as_projection(const std::string& name) {
    if (name == "identity") return FdeProjection::identity;
    if (name == "ams_sketch") return FdeProjection::ams_sketch;
    throw InvalidArgument("projection_type must be 'identity' or 'ams_sketch' (got '" + name + "')");
}

py::array_t<float> encode(const FdeEncoder& enc, FdeEncoding encoding, py::handle vectors_obj,
                          py::handle lengths_obj) {
    FloatArray x = as_matrix(vectors_obj, enc.config().dimension, "vectors");
    IdArray lengths = to_array<IdArray>(lengths_obj, "lengths");
    if (lengths.ndim() != 1)
        throw InvalidArgument("lengths must be a 1-D array of per-set vector counts, got shape " + shape_str(lengths));
    const size_t n_sets = lengths.shape(0);
    py::array_t<float> out({py::ssize_t(n_sets), py::ssize_t(enc.output_dimension())});
    py::gil_scoped_release release;
    enc.encode(encoding, x.data(), x.shape(0), lengths.data(), n_sets, out.mutable_data());
    return out;
}

py::array_t<float> to_numpy(const std::vector<float>& v) {
    py::array_t<float> a(py::ssize_t(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

}  // namespace

void bind_fde(py::module_& m) {
    py::class_<FdeEncoder, std::shared_ptr<FdeEncoder>>(m, "_FdeEncoder")
        .def(py::init([](int dimension, int num_repetitions, int num_simhash_projections, int32_t seed,
                         const std::string& projection_type, int projection_dimension, bool fill_empty_partitions,
                         int final_projection_dimension) {
                 FdeConfig c;
                 c.dimension = dimension;
                 c.num_repetitions = num_repetitions;
                 c.num_simhash_projections = num_simhash_projections;
                 c.seed = seed;
                 c.projection = as_projection(projection_type);
                 c.projection_dimension = projection_dimension;
                 c.fill_empty_partitions = fill_empty_partitions;
                 c.final_projection_dimension = final_projection_dimension;
                 py::gil_scoped_release release;  // draws the matrices
                 return std::make_shared<FdeEncoder>(c);
             }),
             py::kw_only(), py::arg("dimension"), py::arg("num_repetitions"), py::arg("num_simhash_projections"),
             py::arg("seed"), py::arg("projection_type"), py::arg("projection_dimension"),
             py::arg("fill_empty_partitions"), py::arg("final_projection_dimension"),
             "The random matrices of one FDE config. final_projection_dimension 0 means none.")
        .def_property_readonly("output_dimension", &FdeEncoder::output_dimension)
        .def("encode_queries",
             [](const FdeEncoder& e, py::handle v, py::handle l) { return encode(e, FdeEncoding::query_sum, v, l); },
             py::arg("vectors"), py::arg("lengths"))
        .def("encode_documents",
             [](const FdeEncoder& e, py::handle v, py::handle l) {
                 return encode(e, FdeEncoding::document_average, v, l);
             },
             py::arg("vectors"), py::arg("lengths"));

    m.def("_vecmat", [](py::handle x_obj, py::handle w_obj, bool fused) {
        FloatArray x = to_array<FloatArray>(x_obj, "x");
        if (x.ndim() != 1) throw InvalidArgument("x must be 1-D");
        FloatArray w = as_matrix(w_obj, -1, "w");
        if (w.shape(0) != x.shape(0)) throw InvalidArgument("w must have len(x) rows");
        py::array_t<float> out(w.shape(1));
        py::gil_scoped_release release;
        (fused ? simd().vecmat_fused : simd().vecmat_unfused)(x.data(), x.shape(0), w.data(), w.shape(1),
                                                              out.mutable_data());
        return out;
    }, py::arg("x"), py::arg("w"), py::arg("fused") = false,
       "x @ w at the active SIMD level, in order, unfused or fused (tests).");
    m.def("_fde_signs", [](py::handle x_obj, py::handle w_obj) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        FloatArray w = as_matrix(w_obj, -1, "w");
        if (w.shape(0) != x.shape(1)) throw InvalidArgument("w must have x.shape[1] rows");
        const size_t m = x.shape(0), d = x.shape(1), n = w.shape(1);
        py::array_t<uint8_t> out({py::ssize_t(m), py::ssize_t(n)});
        py::gil_scoped_release release;
        if (m > 0 && n > 0) {
            const std::vector<float> norms = fde_column_norms(w.data(), d, n);
            fde_signs(x.data(), m, d, w.data(), n, norms.data(), out.mutable_data());
        }
        return out;
    }, py::arg("x"), py::arg("w"), "(x @ w > 0) per point at the active SIMD level, each sum as "
       "vecmat_unfused takes it (tests).");
    m.def("_half_to_float", [](py::array_t<uint16_t, py::array::c_style | py::array::forcecast> h) {
        if (h.ndim() != 1) throw InvalidArgument("h must be 1-D");
        py::array_t<float> out(h.shape(0));
        half_to_float(h.data(), h.shape(0), out.mutable_data());
        return out;
    }, py::arg("h"), "IEEE halves (uint16) to float32 at the active SIMD level (tests).");
    m.def("_maxsim", [](py::handle q_obj, py::handle x_obj) {
        // Best inner product of each query row with the rows of x, through
        // the level's re-ranking kernel (tests).
        FloatArray q = as_matrix(q_obj, -1, "q");
        const size_t m = q.shape(0), d = q.shape(1);
        FloatArray x = as_matrix(x_obj, int(d), "x");
        if (m == 0 || d == 0) throw InvalidArgument("q must be a non-empty (m, d) array");
        const size_t mp = (m + kMaxSimLanes - 1) / kMaxSimLanes * kMaxSimLanes;
        std::vector<float> qt(d * mp), best(mp, -FLT_MAX);
        maxsim_transpose_queries(q.data(), m, d, qt.data(), mp);
        maxsim_update(qt.data(), mp, d, x.data(), x.shape(0), best.data());
        return py::array_t<float>(py::ssize_t(m), best.data());
    }, py::arg("q"), py::arg("x"));
    m.def("_ams_sketch_block", [](py::handle x_obj, py::handle target_obj, py::handle sign_obj, size_t n_out) {
        // The sketch of x (m <= 32 points) given per input coordinate its
        // output and sign, through the level's block kernel (tests).
        FloatArray x = as_matrix(x_obj, -1, "x");
        const size_t m = x.shape(0), d = x.shape(1);
        if (m == 0 || m > kAmsMaxBlock) throw InvalidArgument("x must have 1 to 32 rows");
        IdArray target = to_array<IdArray>(target_obj, "target");
        FloatArray sign = to_array<FloatArray>(sign_obj, "sign");
        if (target.ndim() != 1 || sign.ndim() != 1 || size_t(target.shape(0)) != d || size_t(sign.shape(0)) != d)
            throw InvalidArgument("target and sign need one entry per column of x");
        std::vector<uint32_t> start(n_out + 1, 0), input(d);
        std::vector<float> sorted_sign(d);
        for (size_t i = 0; i < d; i++) {
            if (target.data()[i] < 0 || size_t(target.data()[i]) >= n_out) throw InvalidArgument("target out of range");
            start[target.data()[i] + 1]++;
        }
        for (size_t o = 0; o < n_out; o++) start[o + 1] += start[o];
        std::vector<uint32_t> next(start.begin(), start.end() - 1);
        for (size_t i = 0; i < d; i++) {
            const uint32_t e = next[target.data()[i]]++;
            input[e] = uint32_t(i);
            sorted_sign[e] = sign.data()[i];
        }
        const size_t np = (m + 7) / 8 * 8;
        std::vector<float> t(d * np), out(n_out * np);
        ams_sketch_block(x.data(), m, d, t.data(), start.data(), input.data(), sorted_sign.data(), n_out, out.data());
        py::array_t<float> res({py::ssize_t(m), py::ssize_t(n_out)});
        for (size_t p = 0; p < m; p++)
            for (size_t o = 0; o < n_out; o++) res.mutable_data()[p * n_out + o] = out[o * np + p];
        return res;
    }, py::arg("x"), py::arg("target"), py::arg("sign"), py::arg("n_out"));

    // The reference's building blocks, for the bit-exactness tests.
    m.def("_mt19937_outputs", [](uint32_t seed, size_t n) {
        std::vector<uint32_t> v(n);
        Mt19937 gen(seed);
        for (auto& x : v) x = gen();
        return py::array_t<uint32_t>(py::ssize_t(n), v.data());
    }, py::arg("seed"), py::arg("n"), "The first n outputs of std::mt19937 seeded with seed.");
    m.def("_fde_simhash_matrix", [](uint32_t seed, size_t d, size_t k) {
        return to_numpy(fde_simhash_matrix(seed, d, k));
    }, py::arg("seed"), py::arg("dimension"), py::arg("num_projections"),
       "The reference's SimHash matrix (d x k), flattened column-major.");
    m.def("_fde_ams_matrix", [](uint32_t seed, size_t d, size_t p) {
        return to_numpy(fde_ams_matrix(seed, d, p));
    }, py::arg("seed"), py::arg("dimension"), py::arg("projection_dimension"),
       "The reference's AMS projection matrix (d x p), flattened column-major.");
    m.def("_fde_count_sketch", [](py::handle x_obj, size_t final_dimension, uint32_t seed) {
        FloatArray x = to_array<FloatArray>(x_obj, "x");
        if (x.ndim() != 1) throw InvalidArgument("x must be 1-D");
        return to_numpy(fde_count_sketch(x.data(), x.shape(0), final_dimension, seed));
    }, py::arg("x"), py::arg("final_dimension"), py::arg("seed"), "The reference's final Count-Sketch of x.");
}

}  // namespace nearly_py
