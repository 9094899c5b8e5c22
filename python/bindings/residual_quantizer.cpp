// Residual quantization: ResidualQuantizer (faiss's additive quantizer with
// beam search), IndexResidualQuantizer, IndexIVFResidualQuantizer.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/index_residual_quantizer.h"
#include "nearly/index_residual_quantizer_fast_scan.h"
#include "nearly/ivf_residual_quantizer.h"
#include "nearly/ivf_residual_quantizer_fast_scan.h"
#include "nearly/distance.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/residual_coarse_quantizer.h"
#include "nearly/residual_quantizer.h"

namespace nearly_py {

using namespace nearly;

namespace {

int norm_scale_value(long long v) {
    if (v < 1 || v > 255) throw InvalidArgument("norm_scale must be in [1, 255] (got " + std::to_string(v) + ")");
    return int(v);
}
size_t positive(long long v, const char* what) {
    if (v < 1) throw InvalidArgument(std::string(what) + " must be positive (got " + std::to_string(v) + ")");
    return size_t(v);
}

ResidualQuantizer::SearchType search_type(int st) {
    if (!ResidualQuantizer::valid_search_type(st))
        throw NotSupported("ResidualQuantizer: search type " + std::to_string(st) +
                           " not implemented in nearly (ST_decompress, ST_LUT_nonorm, ST_norm_from_LUT, "
                           "ST_norm_float, ST_norm_qint8/4, ST_norm_cqint8/4, ST_norm_lsq2x4, ST_norm_rq2x4 are)");
    return ResidualQuantizer::SearchType(st);
}

// A local search knob: a non-negative int (positive where 0 makes no sense).
template <int ResidualQuantizer::LocalSearchParams::*field>
void bind_lsq_int(py::class_<ResidualQuantizer>& c, const char* name, int min, const char* doc) {
    c.def_property(name, [](const ResidualQuantizer& q) { return q.lsq.*field; },
                   [name, min](ResidualQuantizer& q, long long v) {
                       if (v < min || v > (1ll << 30))
                           throw InvalidArgument(std::string("LocalSearchQuantizer: ") + name + " must be at least " +
                                                 std::to_string(min) + " (got " + std::to_string(v) + ")");
                       q.lsq.*field = int(v);
                   }, doc);
}

// The memory of a caller's numpy array that a faiss-style call fills in
// place (faiss passes swig_ptr(a); nearly's swig_ptr is the array itself).
template <class T>
T* out_array(py::handle obj, size_t count, const char* what) {
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array>(obj) || !a.dtype().is(py::dtype::of<T>()) || !(a.flags() & py::array::c_style) ||
        !a.writeable() || size_t(a.size()) != count)
        throw InvalidArgument(std::string(what) + ": a writeable C-contiguous " + py::str(py::dtype::of<T>()).cast<std::string>() +
                              " array of " + std::to_string(count) + " elements (got " +
                              py::str(obj.get_type()).cast<std::string>() + ")");
    return static_cast<T*>(a.mutable_data());
}

template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> in_array(py::handle obj, size_t count, const char* what) {
    auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
    if (!a || size_t(a.size()) != count)
        throw InvalidArgument(std::string(what) + ": " + std::to_string(count) + " numbers expected");
    return a;
}

size_t rows_of(py::handle n, py::handle x, size_t d) {
    if (!n.is_none()) return size_t(std::max<long long>(0, n.cast<long long>()));
    auto a = py::array::ensure(x);
    return a ? size_t(a.size()) / d : 0;
}

void check_indexes(const int32_t* idx, size_t count, size_t K) {
    for (size_t i = 0; i < count; i++)
        if (idx[i] < 0 || size_t(idx[i]) >= K) throw OutOfRange("a code index is outside [0, K)");
}

// Rows of M indexes, index m below 2^nbits[m].
void check_codes(const ResidualQuantizer& q, const int32_t* idx, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < q.M; m++)
            if (idx[i * q.M + m] < 0 || size_t(idx[i * q.M + m]) >= q.K(m))
                throw OutOfRange("code index " + std::to_string(idx[i * q.M + m]) + " of codebook " +
                                 std::to_string(m) + " is outside [0, " + std::to_string(q.K(m)) + ")");
}

std::vector<size_t> widths(const std::vector<long long>& nbits) {
    NEARLY_CHECK_ARG(!nbits.empty(), "ResidualQuantizer: nbits must list at least one codebook");
    std::vector<size_t> out;
    for (long long b : nbits) out.push_back(positive(b, "nbits"));
    return out;
}

// An exhaustive search of the 2^(sum of nbits) centroids: a residual coarse
// quantizer over a copy of q does it a block of centroids at a time.
void knn_centroids(const ResidualQuantizer& q, MetricType metric, long long n, py::handle x_obj, long long k,
                   py::handle D_obj, py::handle I_obj) {
    NEARLY_CHECK_ARG(n >= 0, "knn_centroids: n must be non-negative");
    auto x = in_array<float>(x_obj, size_t(n) * q.d, "knn_centroids xq");
    float* D = out_array<float>(D_obj, size_t(n) * size_t(std::max(k, 0LL)), "knn_centroids distances");
    idx_t* I = out_array<idx_t>(I_obj, size_t(n) * size_t(std::max(k, 0LL)), "knn_centroids labels");
    if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
    NEARLY_CHECK_ARG(q.tot_code_bits <= 32, "knn_centroids: at most 2^32 centroids");
    ResidualCoarseQuantizer rcq(int(q.d), q.nbits, metric);
    rcq.rq = q;
    rcq.rq.set_search_type(ResidualQuantizer::ST_decompress);
    rcq.set_beam_factor(-1.f);
    rcq.set_trained(true);
    if (n == 0) return;
    py::gil_scoped_release release;
    rcq.search(idx_t(n), x.data(), idx_t(k), D, I);
}

ResidualQuantizer& rq_of_index(IndexResidualQuantizer& i) { return i.rq; }
ResidualQuantizer& rq_of_ivf(IndexIVFResidualQuantizer& i) { return i.rq; }
ResidualQuantizer& rq_of_rcq(ResidualCoarseQuantizer& i) { return i.rq; }
}  // namespace

void bind_residual_quantizer(py::module_& m) {
    py::class_<ResidualQuantizer> rq(m, "ResidualQuantizer");
    rq.def("_clone", [](const ResidualQuantizer& q) { return ResidualQuantizer(q); }, "An independent copy (clone_Quantizer).");
    for (auto [name, v] : {std::pair<const char*, int>{"ST_decompress", ResidualQuantizer::ST_decompress},
                           {"ST_LUT_nonorm", ResidualQuantizer::ST_LUT_nonorm},
                           {"ST_norm_from_LUT", ResidualQuantizer::ST_norm_from_LUT},
                           {"ST_norm_float", ResidualQuantizer::ST_norm_float},
                           {"ST_norm_qint8", ResidualQuantizer::ST_norm_qint8},
                           {"ST_norm_qint4", ResidualQuantizer::ST_norm_qint4},
                           {"ST_norm_cqint8", ResidualQuantizer::ST_norm_cqint8},
                           {"ST_norm_cqint4", ResidualQuantizer::ST_norm_cqint4},
                           {"ST_norm_lsq2x4", ResidualQuantizer::ST_norm_lsq2x4},
                           {"ST_norm_rq2x4", ResidualQuantizer::ST_norm_rq2x4},
                           {"Train_default", ResidualQuantizer::Train_default},
                           {"Train_progressive_dim", ResidualQuantizer::Train_progressive_dim},
                           {"Train_refine_codebook", ResidualQuantizer::Train_refine_codebook},
                           {"Train_top_beam", ResidualQuantizer::Train_top_beam},
                           {"Skip_codebook_tables", ResidualQuantizer::Skip_codebook_tables}})
        rq.attr(name) = v;
    rq.def(py::init([](long long d, long long M, long long nbits, int st) {
           return ResidualQuantizer(positive(d, "d"), positive(M, "M"), positive(nbits, "nbits"), search_type(st));
       }),
       py::arg("d"), py::arg("M"), py::arg("nbits"), py::arg("search_type") = int(ResidualQuantizer::ST_decompress))
        .def(py::init([](long long d, const std::vector<long long>& nbits, int st) {
                 return ResidualQuantizer(positive(d, "d"), widths(nbits), search_type(st));
             }),
             py::arg("d"), py::arg("nbits"), py::arg("search_type") = int(ResidualQuantizer::ST_decompress),
             "faiss's ResidualQuantizer(d, nbits): one codebook of 2^nbits[m] words per entry of nbits.")
        .def_readonly("d", &ResidualQuantizer::d)
        .def_readonly("M", &ResidualQuantizer::M)
        .def_readonly("nsplits", &ResidualQuantizer::nsplits,
                      "Slices of d, each with its own codebooks (faiss's ProductResidualQuantizer); 1: plain.")
        .def("subquantizer", [](const ResidualQuantizer& q, long long s) {
            if (s < 0 || size_t(s) >= q.nsplits)
                throw OutOfRange("subquantizer " + std::to_string(s) + " of " + std::to_string(q.nsplits));
            return q.nsplits == 1 ? q : q.split(size_t(s));
        }, py::arg("s"), "The quantizer of slice s (a copy; the quantizer itself when there is one slice).")
        .def_readonly("nbits", &ResidualQuantizer::nbits, "Bits of each codebook (faiss's per-codebook list).")
        .def_readonly("codebook_offsets", &ResidualQuantizer::codebook_offsets,
                      "Where codebook m starts among the codewords (M + 1 offsets).")
        .def_readonly("code_size", &ResidualQuantizer::code_size)
        .def_readonly("norm_bits", &ResidualQuantizer::norm_bits)
        .def_property_readonly("tot_bits", [](const ResidualQuantizer& q) { return q.tot_code_bits + q.norm_bits; })
        .def_readonly("total_codebook_size", &ResidualQuantizer::total_codebook_size)
        .def_property("search_type", [](const ResidualQuantizer& q) { return int(q.search_type); },
                      [](ResidualQuantizer& q, int v) { q.set_search_type(v); },
                      "faiss's search type; switching among the types that store no norm (ST_decompress, "
                      "ST_LUT_nonorm, ST_norm_from_LUT) changes how a trained index scores its codes.")
        .def_property("max_beam_size", [](const ResidualQuantizer& q) { return q.max_beam_size; },
                      [](ResidualQuantizer& q, int v) {
                          if (v < 1) throw InvalidArgument("ResidualQuantizer: max_beam_size must be at least 1");
                          q.max_beam_size = v;
                      })
        .def_property("train_type", [](const ResidualQuantizer& q) { return q.train_type; },
                      [](ResidualQuantizer& q, int v) { q.train_type = v; },
                      "faiss's Train_* bits (checked by train()).")
        .def_property("use_beam_LUT", [](const ResidualQuantizer& q) { return int(q.use_beam_LUT); },
                      [](ResidualQuantizer& q, int v) {
                          py::gil_scoped_release release;
                          q.use_beam_LUT = v != 0;
                          if (q.use_beam_LUT && q.is_trained && !q.has_beam_tables()) q.compute_codebook_tables();
                      },
                      "faiss's use_beam_LUT: 1 encodes through tables of <x, word> and the codebooks' cross "
                      "products instead of d-dimensional residuals (the same codes up to rounding of near ties; "
                      "cheaper when d is large); not saved with the index.")
        .def_readwrite("cp", &ResidualQuantizer::cp, py::return_value_policy::reference_internal)
        .def_readwrite("progressive_dim_steps", &ResidualQuantizer::progressive_dim_steps)
        .def_readwrite("apply_pca", &ResidualQuantizer::apply_pca)
        .def_readwrite("verbose", &ResidualQuantizer::verbose)
        .def_property("is_trained", [](const ResidualQuantizer& q) { return q.is_trained; },
                      [](ResidualQuantizer& q, bool v) {
                          // faiss's "fake training": codebooks assigned, then marked trained. The
                          // norm codings that learn from data need train().
                          if (v && q.codebooks.size() != q.total_codebook_size * q.d)
                              throw NotSupported("ResidualQuantizer: assign codebooks before marking it trained");
                          const int st = q.search_type;
                          if (v && st >= ResidualQuantizer::ST_norm_qint8)
                              throw NotSupported("ResidualQuantizer: search type " + std::to_string(st) +
                                                 " learns its norm coding in train(); only ST_decompress, "
                                                 "ST_LUT_nonorm, ST_norm_from_LUT and ST_norm_float can be marked "
                                                 "trained by hand");
                          q.is_trained = v;
                      },
                      "Assigning True after `codebooks = ...` is faiss's fake training (for the search types "
                      "whose norms need no training).")
        .def_readonly("norm_min", &ResidualQuantizer::norm_min)
        .def_readonly("norm_max", &ResidualQuantizer::norm_max)
        .def_property_readonly("norm_tabs", [](const ResidualQuantizer& q) {
            const bool two_by_four = q.search_type == ResidualQuantizer::ST_norm_rq2x4 ||
                                     q.search_type == ResidualQuantizer::ST_norm_lsq2x4;
            const size_t n = two_by_four ? q.norm_centroids.size() : 0;
            py::array_t<float> out(n);
            std::copy(q.norm_centroids.begin(), q.norm_centroids.begin() + n, out.mutable_data());
            return out;
        }, "ST_norm_rq2x4 / ST_norm_lsq2x4: the norm quantizer's two codebooks of 16 (faiss's norm_tabs; a norm code "
           "c stands for norm_tabs[c & 15] + norm_tabs[16 + (c >> 4)]); empty otherwise.")
        .def_property("codebooks", [](const ResidualQuantizer& q) {
            // Product mode: faiss's compact layout, each slice's codewords
            // at its own width (nearly keeps them at full width, zero off
            // the slice).
            const size_t ds = q.d / q.nsplits, rows = q.codebooks.size() / q.d;
            py::array_t<float> out(rows * ds);
            float* o = out.mutable_data();
            for (size_t w = 0; w < rows; w++) {
                const size_t s = w / (rows / q.nsplits);
                std::copy_n(&q.codebooks[w * q.d + s * ds], ds, o + w * ds);
            }
            return out;
        }, [](ResidualQuantizer& q, py::handle c) {
            const size_t ds = q.d / q.nsplits, rows = q.total_codebook_size;
            auto a = in_array<float>(c, rows * ds, "codebooks");
            check_finite(a.data(), size_t(a.size()), "codebooks");
            std::vector<float> full(rows * q.d, 0.f);
            for (size_t w = 0; w < rows; w++) {
                const size_t s = w / (rows / q.nsplits);
                std::copy_n(a.data() + w * ds, ds, &full[w * q.d + s * ds]);
            }
            q.set_codebooks(full.data());
        }, "total_codebook_size codewords of d floats, one codebook after the other (product mode: of d / nsplits floats, "
           "faiss's layout); a numpy copy, and assigning one replaces them (faiss's `codebooks = ...`).")
        .def("compute_LUT", [](const ResidualQuantizer& q, long long n, py::handle x_obj, py::handle lut_obj) {
            NEARLY_CHECK_ARG(n >= 0, "compute_LUT: n must be non-negative");
            auto x = in_array<float>(x_obj, size_t(n) * q.d, "compute_LUT x");
            const size_t ts = q.total_codebook_size;
            float* lut = out_array<float>(lut_obj, size_t(n) * ts, "compute_LUT lut");
            if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
            py::gil_scoped_release release;
            for (size_t i = 0; i < size_t(n); i++) q.compute_lut(x.data() + i * q.d, lut + i * ts);
        }, py::arg("n"), py::arg("x"), py::arg("lut"),
           "faiss's compute_LUT(n, x, lut): lut[i] = <x_i, every codeword> (n x total_codebook_size), written into "
           "lut.")
        .def("pack_codes", [](const ResidualQuantizer& q, long long n, py::handle idx_obj, py::handle out_obj,
                              long long ld_codes) {
            NEARLY_CHECK_ARG(n >= 0, "pack_codes: n must be non-negative");
            if (ld_codes == -1) ld_codes = (long long)q.M;
            NEARLY_CHECK_ARG(ld_codes >= (long long)q.M, "pack_codes: ld_codes must be at least M");
            const size_t ld = size_t(ld_codes);
            auto all = in_array<int32_t>(idx_obj, size_t(n) * ld, "pack_codes codes");
            // The first M of each row of ld indexes (faiss's ld_codes: a beam's best).
            std::vector<int32_t> idx(size_t(n) * q.M);
            for (size_t i = 0; i < size_t(n); i++) std::copy_n(all.data() + i * ld, q.M, &idx[i * q.M]);
            check_codes(q, idx.data(), size_t(n));
            uint8_t* out = out_array<uint8_t>(out_obj, size_t(n) * q.code_size, "pack_codes out");
            if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
            py::gil_scoped_release release;
            q.pack_codes(size_t(n), idx.data(), out);
        }, py::arg("n"), py::arg("codes"), py::arg("packed_codes"), py::arg("ld_codes") = -1,
           "faiss's pack_codes(n, codes, packed[, ld_codes]): n x M indexes (rows ld_codes apart) to codes, written "
           "into packed.")
        .def("retrain_AQ_codebook", [](ResidualQuantizer& q, long long n, py::handle x_obj) {
            NEARLY_CHECK_ARG(n > 0, "retrain_AQ_codebook: n must be positive");
            auto x = in_array<float>(x_obj, size_t(n) * q.d, "retrain_AQ_codebook x");
            py::gil_scoped_release release;
            q.retrain_AQ_codebook(size_t(n), x.data());
        }, py::arg("n"), py::arg("x"),
           "faiss's retrain_AQ_codebook(n, x): the codes of x, then the least-squares codebooks for them (the "
           "codebooks are replaced; their tables and a learnt norm coding follow).")
        .def_property("max_mem_distances", [](const ResidualQuantizer& q) { return q.max_mem_distances; },
                      [](ResidualQuantizer& q, long long v) {
                          NEARLY_CHECK_ARG(v > 0, "ResidualQuantizer: max_mem_distances must be positive");
                          q.max_mem_distances = size_t(v);
                      },
                      "faiss's max_mem_distances: bytes an encoding's beams may hold at once (the vectors are "
                      "encoded in blocks that fit; the codes do not depend on it).")
        .def_readwrite("niter_codebook_refine", &ResidualQuantizer::niter_codebook_refine,
                       "Least-squares refits after training under Train_refine_codebook (faiss's, 5).")
        .def("initialize_from", [](ResidualQuantizer& q, const ResidualQuantizer& other, long long skip_M) {
            NEARLY_CHECK_ARG(skip_M >= 0, "initialize_from: skip_M must be non-negative");
            py::gil_scoped_release release;
            q.initialize_from(other, size_t(skip_M));
        }, py::arg("other"), py::arg("skip_M") = 0,
           "faiss's initialize_from: this quantizer's M codebooks become other's codebooks skip_M .. skip_M + M - 1 "
           "(their widths and other's settings; trained when other is), so its codes are a slice of other's.")
        .def("compute_codebook_tables", [](ResidualQuantizer& q) {
            NEARLY_CHECK_ARG(q.codebooks.size() == q.total_codebook_size * q.d, "compute_codebook_tables: no codebooks yet");
            py::gil_scoped_release release;
            q.compute_codebook_tables(true);
        }, "faiss's compute_codebook_tables: centroid_norms and codebook_cross_products (training computes the cross "
           "products only for ST_norm_from_LUT, the search type that reads them).")
        .def_property_readonly("centroid_norms", [](const ResidualQuantizer& q) {
            return py::array_t<float>(py::ssize_t(q.centroid_norms.size()), q.centroid_norms.data());
        }, "||c||^2 of every codeword (total_codebook_size floats), a numpy copy.")
        .def_property_readonly("codebook_cross_products", [](const ResidualQuantizer& q) {
            return py::array_t<float>(py::ssize_t(q.cross_products.size()), q.cross_products.data());
        }, "ST_norm_from_LUT: for m = 1..M-1, <every word of codebooks 0..m-1, every word of codebook m> "
           "(codebook_offsets[m] x 2^nbits[m] each, one after the other; faiss's layout), a numpy copy.")
        .def("compute_centroid_norms", [](const ResidualQuantizer& q, py::handle out_obj) {
            NEARLY_CHECK_ARG(q.tot_code_bits <= 32, "compute_centroid_norms: at most 2^32 centroids");
            const size_t nc = size_t(1) << q.tot_code_bits;
            float* out = out_array<float>(out_obj, nc, "compute_centroid_norms norms (2^tot_bits)");
            if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
            py::gil_scoped_release release;
            parallel_for_blocks(nc, 4096, [&](size_t t) {
                std::vector<int32_t> idx(q.M);
                std::vector<float> c(q.d);
                q.centroid_indexes(uint64_t(t), idx.data());
                q.decode_unpacked(idx.data(), c.data(), 1);
                double s = 0;
                for (float v : c) s += double(v) * v;
                out[t] = float(s);
            });
        }, py::arg("norms"), "faiss's compute_centroid_norms: ||c_t||^2 of every one of the 2^(sum of nbits) "
                             "centroids (sums of one word per codebook), written into norms.")
        .def("knn_centroids_inner_product", [](const ResidualQuantizer& q, long long n, py::handle x_obj, long long k,
                                               py::handle D_obj, py::handle I_obj) {
            knn_centroids(q, METRIC_INNER_PRODUCT, n, x_obj, k, D_obj, I_obj);
        }, py::arg("n"), py::arg("xq"), py::arg("k"), py::arg("distances"), py::arg("labels"),
           "faiss's knn_centroids_inner_product: the k centroids of largest <x, c> (exhaustive), into distances "
           "and labels.")
        .def("knn_centroids_L2", [](const ResidualQuantizer& q, long long n, py::handle x_obj, long long k,
                                    py::handle D_obj, py::handle I_obj, py::handle) {
            knn_centroids(q, METRIC_L2, n, x_obj, k, D_obj, I_obj);
        }, py::arg("n"), py::arg("xq"), py::arg("k"), py::arg("distances"), py::arg("labels"),
           py::arg("centroid_norms") = py::none(),
           "faiss's knn_centroids_L2: the k nearest centroids (exhaustive), into distances and labels (the norms "
           "are computed here; the argument is accepted for faiss's signature).")
        .def("decode_c", [](const ResidualQuantizer& q, py::handle codes_obj, py::handle x_obj, long long n) {
            NEARLY_CHECK_ARG(n >= 0, "decode_c: n must be non-negative");
            auto c = in_array<uint8_t>(codes_obj, size_t(n) * q.code_size, "decode_c codes");
            float* x = out_array<float>(x_obj, size_t(n) * q.d, "decode_c x");
            if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
            py::gil_scoped_release release;
            q.decode(c.data(), x, size_t(n));
        }, py::arg("codes"), py::arg("x"), py::arg("n"), "faiss's decode_c(codes, x, n): decodes into x.")
        .def("train", [](ResidualQuantizer& q, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(q.d), "x");
            py::gil_scoped_release release;
            q.train(size_t(x.shape(0)), x.data());
        }, py::arg("x"))
        .def_property("local_search", [](const ResidualQuantizer& q) { return q.local_search; },
                      [](ResidualQuantizer& q, bool v) {
                          if (q.is_trained && v != q.local_search)
                              throw NotSupported("ResidualQuantizer: local_search can only change before training");
                          if (v) q.one_nbits();  // local search needs one width for all codebooks
                          q.local_search = v;
                      },
                      "Local search mode (faiss's LocalSearchQuantizer, LSQ++): codebooks learnt jointly, codes "
                      "searched by iterated conditional modes; set before training.")
        .def_property_readonly("K", [](const ResidualQuantizer& q) { return q.K(); })
        .def_property("p", [](const ResidualQuantizer& q) { return q.lsq.p; },
                      [](ResidualQuantizer& q, float v) {
                          if (!(v >= 0.f && v < 1e6f)) throw InvalidArgument("LocalSearchQuantizer: p must be >= 0");
                          q.lsq.p = v;
                      }, "Local search: the codebook shake decays as (1 - t / train_iters)^p.")
        .def_property("lambd", [](const ResidualQuantizer& q) { return q.lsq.lambd; },
                      [](ResidualQuantizer& q, float v) {
                          if (!(v >= 0.f && v < 1e30f)) throw InvalidArgument("LocalSearchQuantizer: lambd must be >= 0");
                          q.lsq.lambd = v;
                      }, "Local search: the ridge of the codebooks' least squares.")
        .def("update_codebooks", [](ResidualQuantizer& q, py::handle x_obj, py::handle codes_obj, py::handle n_obj) {
            const size_t n = rows_of(n_obj, x_obj, q.d);
            auto x = in_array<float>(x_obj, n * q.d, "update_codebooks x");
            auto codes = in_array<int32_t>(codes_obj, n * q.M, "update_codebooks codes (n x M)");
            check_finite(x.data(), size_t(x.size()), "x");
            check_codes(q, codes.data(), n);
            py::gil_scoped_release release;
            q.update_codebooks(x.data(), codes.data(), n);
        }, py::arg("x"), py::arg("codes"), py::arg("n") = py::none(),
           "Local search: the codebooks that minimise the error of x with these codes (n x M indexes), faiss's "
           "ridge-regularised least squares (the quantizer's codebooks are replaced).")
        .def("compute_binary_terms", [](const ResidualQuantizer& q, py::handle out_obj) {
            const size_t MK = q.M * q.K();
            float* out = out_array<float>(out_obj, MK * MK, "compute_binary_terms binaries (M x M x K x K)");
            NEARLY_CHECK_ARG(q.codebooks.size() == MK * q.d, "compute_binary_terms: no codebooks yet");
            py::gil_scoped_release release;
            q.compute_binary_terms(out);
        }, py::arg("binaries"), "faiss's compute_binary_terms: 2 <c_mk, c_m'k'> into an M x M x K x K array.")
        .def("compute_unary_terms", [](const ResidualQuantizer& q, py::handle x_obj, py::handle out_obj, long long n) {
            NEARLY_CHECK_ARG(n >= 0, "compute_unary_terms: n must be non-negative");
            auto x = in_array<float>(x_obj, size_t(n) * q.d, "compute_unary_terms x");
            float* out = out_array<float>(out_obj, q.M * size_t(n) * q.K(), "compute_unary_terms unaries (M x n x K)");
            NEARLY_CHECK_ARG(q.codebooks.size() == q.M * q.K() * q.d, "compute_unary_terms: no codebooks yet");
            py::gil_scoped_release release;
            q.compute_unary_terms(x.data(), out, size_t(n));
        }, py::arg("x"), py::arg("unaries"), py::arg("n"),
           "faiss's compute_unary_terms: ||c_mk||^2 - 2 <x_i, c_mk> into an M x n x K array.")
        .def("icm_encode_step", [](const ResidualQuantizer& q, py::handle codes_obj, py::handle u_obj,
                                   py::handle b_obj, long long n, long long iters) {
            NEARLY_CHECK_ARG(n >= 0 && iters >= 0, "icm_encode_step: n and n_iters must be non-negative");
            const size_t K = q.K();
            int32_t* codes = out_array<int32_t>(codes_obj, size_t(n) * q.M, "icm_encode_step codes (n x M)");
            check_indexes(codes, size_t(n) * q.M, K);
            auto u = in_array<float>(u_obj, q.M * size_t(n) * K, "icm_encode_step unaries (M x n x K)");
            auto b = in_array<float>(b_obj, q.M * q.M * K * K, "icm_encode_step binaries (M x M x K x K)");
            py::gil_scoped_release release;
            q.icm_encode_step(codes, u.data(), b.data(), size_t(n), size_t(iters));
        }, py::arg("codes"), py::arg("unaries"), py::arg("binaries"), py::arg("n"), py::arg("n_iters"),
           "faiss's icm_encode_step: n_iters sweeps of conditional modes over the codes, in place.")
        .def("compute_codes", [](const ResidualQuantizer& q, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(q.d), "x");
            check_finite(x.data(), size_t(x.size()), "x");
            if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
            py::array_t<uint8_t> out({py::ssize_t(x.shape(0)), py::ssize_t(q.code_size)});
            uint8_t* o = out.mutable_data();
            py::gil_scoped_release release;
            q.compute_codes(x.data(), o, size_t(x.shape(0)));
            return out;
        }, py::arg("x"))
        .def("decode", [](const ResidualQuantizer& q, py::handle codes_obj) {
            auto c = as_codes(codes_obj, q.code_size, "codes");
            if (!q.is_trained) throw NotSupported("ResidualQuantizer: not trained");
            py::array_t<float> out({py::ssize_t(c.shape(0)), py::ssize_t(q.d)});
            float* o = out.mutable_data();
            py::gil_scoped_release release;
            q.decode(c.data(), o, size_t(c.shape(0)));
            return out;
        }, py::arg("codes"));

    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::train_iters>(rq, "train_iters", 0, "Local search: training iterations.");
    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::encode_ils_iters>(rq, "encode_ils_iters", 0,
                                                                          "Local search: restarts per encoding.");
    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::train_ils_iters>(rq, "train_ils_iters", 0,
                                                                         "Local search: restarts per training iteration.");
    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::icm_iters>(rq, "icm_iters", 0,
                                                                   "Local search: conditional-mode sweeps per restart.");
    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::chunk_size>(rq, "chunk_size", 1,
                                                                    "Local search: vectors encoded at a time.");
    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::random_seed>(rq, "random_seed", 0, "Local search: the seed.");
    bind_lsq_int<&ResidualQuantizer::LocalSearchParams::nperts>(rq, "nperts", 0,
                                                                "Local search: indexes redrawn per restart.");

    m.def("_beam_search_encode_step", [](long long d, long long K, py::handle cent_obj, long long n, long long B,
                                         py::handle res_obj, long long m_, py::handle codes_obj, long long B2,
                                         py::handle new_codes_obj, py::handle new_res_obj, py::handle new_dist_obj) {
        NEARLY_CHECK_ARG(d > 0 && K > 0 && n >= 0 && B > 0 && m_ >= 0,
                         "beam_search_encode_step: d, K and beam_size positive, n and m non-negative");
        NEARLY_CHECK_ARG(B2 > 0 && B2 <= B * K, "beam_search_encode_step: new_beam_size must be in [1, beam_size * K]");
        const size_t dd = size_t(d), k = size_t(K), nn = size_t(n), b = size_t(B), m = size_t(m_), b2 = size_t(B2);
        auto cent = in_array<float>(cent_obj, k * dd, "beam_search_encode_step cent (K x d)");
        auto res = in_array<float>(res_obj, nn * b * dd, "beam_search_encode_step residuals (n x beam_size x d)");
        auto codes = in_array<int32_t>(codes_obj, nn * b * m, "beam_search_encode_step codes (n x beam_size x m)");
        int32_t* new_codes = out_array<int32_t>(new_codes_obj, nn * b2 * (m + 1), "beam_search_encode_step new_codes");
        float* new_res = out_array<float>(new_res_obj, nn * b2 * dd, "beam_search_encode_step new_residuals");
        float* new_dist = out_array<float>(new_dist_obj, nn * b2, "beam_search_encode_step new_distances");
        check_finite(cent.data(), size_t(cent.size()), "cent");
        check_finite(res.data(), size_t(res.size()), "residuals");
        py::gil_scoped_release release;
        std::vector<float> norms(k);
        norms_L2sqr(cent.data(), k, dd, norms.data());
        beam_search_step(dd, k, cent.data(), norms.data(), nn, b, res.data(), codes.data(), m, b2, new_res, new_codes,
                         new_dist);
    });

    m.def("beam_search_encode_step_tab", [](long long K, long long n, long long B, py::handle cross_obj, long long ldc,
                                            py::handle offsets_obj, py::handle qcp_obj, long long ldqc,
                                            py::handle cnorms_obj, long long m_, py::handle codes_obj,
                                            py::handle dist_obj, long long B2, py::handle new_codes_obj,
                                            py::handle new_dist_obj, py::handle) {
        NEARLY_CHECK_ARG(K > 0 && n >= 0 && B > 0 && m_ >= 0 && ldc >= K && ldqc >= K,
                         "beam_search_encode_step_tab: K and beam_size positive, n and m non-negative, ldc and ldqc "
                         "at least K");
        NEARLY_CHECK_ARG(B2 > 0 && B2 <= B * K, "beam_search_encode_step_tab: new_beam_size must be in [1, beam_size * K]");
        const size_t k = size_t(K), nn = size_t(n), b = size_t(B), m = size_t(m_), b2 = size_t(B2);
        auto offsets = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(offsets_obj);
        NEARLY_CHECK_ARG(offsets && size_t(offsets.size()) >= m,
                         "beam_search_encode_step_tab: codebook_offsets needs an entry per previous codebook");
        auto codes = in_array<int32_t>(codes_obj, nn * b * m, "beam_search_encode_step_tab codes (n x beam_size x m)");
        // The cross-product rows a code can name: up to the last previous
        // codebook's last word, which the codes are checked against.
        size_t rows = 0;
        for (size_t l = 0; l < m; l++) {
            const size_t next = l + 1 < m ? size_t(offsets.data()[l + 1]) : 0;
            for (size_t i = 0; i < nn * b; i++) {
                const int32_t c = codes.data()[i * m + l];
                NEARLY_CHECK_ARG(c >= 0 && (l + 1 == m || size_t(offsets.data()[l]) + size_t(c) < next),
                                 "beam_search_encode_step_tab: a code index is outside its codebook");
                rows = std::max(rows, size_t(offsets.data()[l]) + size_t(c) + 1);
            }
        }
        py::array_t<float, py::array::c_style | py::array::forcecast> cross;
        if (m > 0) {
            cross = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(cross_obj);
            NEARLY_CHECK_ARG(cross && size_t(cross.size()) >= (rows ? (rows - 1) * size_t(ldc) + k : 0),
                             "beam_search_encode_step_tab: the cross products do not cover the codes");
        }
        auto qcp = in_array<float>(qcp_obj, nn ? (nn - 1) * size_t(ldqc) + k : 0, "beam_search_encode_step_tab query_cp");
        auto cnorms = in_array<float>(cnorms_obj, k, "beam_search_encode_step_tab cent_norms (K)");
        auto dist = in_array<float>(dist_obj, nn * b, "beam_search_encode_step_tab distances (n x beam_size)");
        int32_t* new_codes = out_array<int32_t>(new_codes_obj, nn * b2 * (m + 1), "beam_search_encode_step_tab new_codes");
        float* new_dist = out_array<float>(new_dist_obj, nn * b2, "beam_search_encode_step_tab new_distances");
        std::vector<size_t> offs(offsets.data(), offsets.data() + m);
        py::gil_scoped_release release;
        beam_search_tab_step(k, nn, b, m > 0 ? cross.data() : nullptr, size_t(ldc), offs.data(), qcp.data(),
                             size_t(ldqc), cnorms.data(), m, codes.data(), dist.data(), b2, new_codes, new_dist);
    }, py::arg("K"), py::arg("n"), py::arg("beam_size"), py::arg("codebook_cross_norms"), py::arg("ldc"),
       py::arg("codebook_offsets"), py::arg("query_cp"), py::arg("ldqc"), py::arg("cent_norms_i"), py::arg("m"),
       py::arg("codes"), py::arg("distances"), py::arg("new_beam_size"), py::arg("new_codes"),
       py::arg("new_distances"), py::arg("approx_topk_mode") = py::none(),
       "faiss's beam_search_encode_step_tab: one beam-search step through tables (see beam_search_tab_step in "
       "residual_quantizer.h).");

    // faiss's product residual quantizers: the same classes with a quantizer
    // in product mode (nearly.ProductResidualQuantizer and the
    // IndexProductResidualQuantizer* names are built on these).
    m.def("_product_residual_quantizer", [](long long d, long long nsplits, long long Msub, long long nbits, int st) {
        return ResidualQuantizer::product(positive(d, "d"), positive(nsplits, "nsplits"), positive(Msub, "Msub"),
                                          positive(nbits, "nbits"), search_type(st));
    });
    m.def("_make_product", [](std::shared_ptr<Index> index, long long nsplits) {
        ResidualQuantizer* rq = nullptr;
        if (auto* flat = dynamic_cast<IndexResidualQuantizer*>(index.get())) rq = &flat->rq;
        if (auto* ivf = dynamic_cast<IndexIVFResidualQuantizer*>(index.get())) rq = &ivf->rq;
        if (!rq || index->ntotal > 0 || rq->is_trained)
            throw InvalidArgument("_make_product: an empty, untrained residual-quantizer index");
        *rq = ResidualQuantizer::product(rq->d, positive(nsplits, "nsplits"), rq->M / size_t(positive(nsplits, "nsplits")),
                                         rq->one_nbits(), rq->search_type);
        return index;
    });

    py::class_<IndexResidualQuantizer, Index, std::shared_ptr<IndexResidualQuantizer>>(m, "IndexResidualQuantizer")
        .def(py::init([](int d, long long M, long long nbits, int metric, int st) {
                 return std::make_shared<IndexResidualQuantizer>(d, positive(M, "M"), positive(nbits, "nbits"),
                                                                 MetricType(metric), search_type(st));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits"), py::arg("metric") = int(METRIC_L2),
             py::arg("search_type") = int(ResidualQuantizer::ST_decompress))
        .def(py::init([](int d, const std::vector<long long>& nbits, int metric, int st) {
                 return std::make_shared<IndexResidualQuantizer>(d, widths(nbits), MetricType(metric), search_type(st));
             }),
             py::arg("d"), py::arg("nbits"), py::arg("metric") = int(METRIC_L2),
             py::arg("search_type") = int(ResidualQuantizer::ST_decompress),
             "faiss's IndexResidualQuantizer(d, nbits[, metric, search_type]): one codebook per entry of nbits.")
        .def_property_readonly("rq", &rq_of_index, py::return_value_policy::reference_internal)
        .def_property_readonly("code_size", &IndexResidualQuantizer::code_size)
        .def_property_readonly("codes", codes_getter<IndexResidualQuantizer>(), kCodesDoc);

    constexpr const char* kNormScaleDoc =
        "faiss's norm_scale: under L2 the norm's two fast-scan tables are quantized this many times coarser "
        "and multiplied back in the scan, so that the inner-product tables keep their resolution. Training "
        "sets it (faiss's estimate); 1 quantizes all tables alike.";
    py::class_<IndexResidualQuantizerFastScan, IndexResidualQuantizer, std::shared_ptr<IndexResidualQuantizerFastScan>>(
        m, "IndexResidualQuantizerFastScan")
        .def(py::init([](int d, long long M, long long nbits, int metric, int st, long long bbs) {
                 check_bbs(bbs);
                 return std::make_shared<IndexResidualQuantizerFastScan>(d, positive(M, "M"), positive(nbits, "nbits"),
                                                                         MetricType(metric), search_type(st));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits") = 4, py::arg("metric") = int(METRIC_L2),
             py::arg("search_type") = int(ResidualQuantizer::ST_norm_rq2x4), py::arg("bbs") = 32)
        .def(py::init([](const IndexResidualQuantizer& orig, long long bbs) {
                 check_bbs(bbs);
                 py::gil_scoped_release release;
                 return std::make_shared<IndexResidualQuantizerFastScan>(orig);
             }),
             py::arg("orig"), py::arg("bbs") = 32,
             "faiss's IndexAdditiveQuantizerFastScan(index): a 4-bit IndexResidualQuantizer (ST_norm_rq2x4 under L2, "
             "ST_LUT_nonorm under inner product) as a fast-scan index.")
        .def_property_readonly("bbs", [](const IndexResidualQuantizerFastScan&) { return IndexResidualQuantizerFastScan::bbs; })
        .def_property_readonly("aq", &rq_of_index, py::return_value_policy::reference_internal)
        .def_property_readonly("codes", [](const IndexResidualQuantizerFastScan& self) {
            return bytes_array(self.stored_codes());
        }, "The codes as stored, in blocks of 32 (the last one padded), a numpy copy.")
        .def_property(
            "implem", [](const IndexResidualQuantizerFastScan& i) { return i.implem; },
            [](IndexResidualQuantizerFastScan& i, int v) { i.implem = checked_fast_scan_implem(v, false); },
            "faiss's fast-scan implementation knob: 2 scores with float tables (exactly, as IndexResidualQuantizer); "
            "0, 3, 4, 12-15 run the quantized-table scan.")
        .def_readwrite("qbs", &IndexResidualQuantizerFastScan::qbs,
                       "faiss's query batch size; kept (nearly batches its own way).")
        .def_property(
            "norm_scale", [](const IndexResidualQuantizerFastScan& i) { return i.norm_scale; },
            [](IndexResidualQuantizerFastScan& i, long long v) { i.norm_scale = norm_scale_value(v); }, kNormScaleDoc)
        .def_readwrite("rescale_norm", &IndexResidualQuantizerFastScan::rescale_norm,
                       "faiss's switch: False quantizes the norm's tables like the others.")
        .def_property_readonly("M", &IndexResidualQuantizerFastScan::fast_scan_M,
                               "Subquantizers of a fast-scan code (faiss's M): the codebooks, and the two of the "
                               "norm under L2.");

    py::class_<IndexIVFResidualQuantizer, IndexIVF, std::shared_ptr<IndexIVFResidualQuantizer>>(
        m, "IndexIVFResidualQuantizer")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, long long M, long long nbits, int metric, int st) {
                 return std::make_shared<IndexIVFResidualQuantizer>(quantizer, d, positive(nlist, "nlist"),
                                                                    positive(M, "M"), positive(nbits, "nbits"),
                                                                    MetricType(metric), search_type(st));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits"),
             py::arg("metric") = int(METRIC_L2), py::arg("search_type") = int(ResidualQuantizer::ST_decompress))
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, const std::vector<long long>& nbits, int metric,
                         int st) {
                 return std::make_shared<IndexIVFResidualQuantizer>(quantizer, d, positive(nlist, "nlist"), widths(nbits),
                                                                    MetricType(metric), search_type(st));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("nbits"),
             py::arg("metric") = int(METRIC_L2), py::arg("search_type") = int(ResidualQuantizer::ST_decompress),
             "faiss's IndexIVFResidualQuantizer(quantizer, d, nlist, nbits[, metric, search_type]): one codebook per "
             "entry of nbits.")
        .def_property_readonly("rq", &rq_of_ivf, py::return_value_policy::reference_internal)
        .def_property("by_residual", [](const IndexIVFResidualQuantizer& i) { return i.by_residual; },
                      [](IndexIVFResidualQuantizer& i, bool v) {
                          if (i.ntotal > 0 && v != i.by_residual)
                              throw NotSupported(
                                  "IndexIVFResidualQuantizer: by_residual cannot change once vectors are added");
                          i.by_residual = v;
                      });

    py::class_<IndexIVFResidualQuantizerFastScan, IndexIVFResidualQuantizer,
               std::shared_ptr<IndexIVFResidualQuantizerFastScan>>(m, "IndexIVFResidualQuantizerFastScan")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, long long M, long long nbits, int metric, int st,
                         long long bbs) {
                 check_bbs(bbs);
                 return std::make_shared<IndexIVFResidualQuantizerFastScan>(
                     quantizer, d, positive(nlist, "nlist"), positive(M, "M"), positive(nbits, "nbits"),
                     MetricType(metric), search_type(st));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits") = 4,
             py::arg("metric") = int(METRIC_L2), py::arg("search_type") = int(ResidualQuantizer::ST_norm_rq2x4),
             py::arg("bbs") = 32)
        .def(py::init([](const IndexIVFResidualQuantizer& orig, long long bbs) {
                 check_bbs(bbs);
                 py::gil_scoped_release release;
                 return std::make_shared<IndexIVFResidualQuantizerFastScan>(orig);
             }),
             py::arg("orig"), py::arg("bbs") = 32,
             "faiss's IndexIVFAdditiveQuantizerFastScan(orig): a 4-bit IVF RQ / LSQ index's codebooks and entries "
             "in fast-scan blocks (the quantizer is shared). Inner product, or L2 without by_residual and with "
             "the norm in 2 x 4 bits (ST_norm_rq2x4 / ST_norm_lsq2x4), as faiss.")
        .def_property_readonly("bbs", [](const IndexIVFResidualQuantizerFastScan&) {
            return IndexIVFResidualQuantizerFastScan::bbs;
        })
        .def_property_readonly("aq", &rq_of_ivf, py::return_value_policy::reference_internal)
        .def_property(
            "implem", [](const IndexIVFResidualQuantizerFastScan& i) { return i.implem; },
            [](IndexIVFResidualQuantizerFastScan& i, int v) { i.implem = checked_fast_scan_implem(v, true); },
            "faiss's fast-scan implementation knob: 1 (101) scores with float tables (exactly, as "
            "IndexIVFResidualQuantizer); 0, 2, 10-15 (+100) run the quantized-table scan.")
        .def_readwrite("qbs", &IndexIVFResidualQuantizerFastScan::qbs,
                       "faiss's query batch size; kept (nearly batches its own way).")
        .def_property(
            "norm_scale", [](const IndexIVFResidualQuantizerFastScan& i) { return i.norm_scale; },
            [](IndexIVFResidualQuantizerFastScan& i, long long v) { i.norm_scale = norm_scale_value(v); }, kNormScaleDoc)
        .def_readwrite("rescale_norm", &IndexIVFResidualQuantizerFastScan::rescale_norm,
                       "faiss's switch: False quantizes the norm's tables like the others.")
        .def_property_readonly("M", &IndexIVFResidualQuantizerFastScan::fast_scan_M,
                               "Subquantizers of a fast-scan code (faiss's M): the codebooks, and the two of the "
                               "norm under L2.");

    py::class_<SearchParametersResidualCoarseQuantizer, SearchParameters,
               std::shared_ptr<SearchParametersResidualCoarseQuantizer>>(m, "SearchParametersResidualCoarseQuantizer")
        .def(py::init([](float beam_factor) {
                 auto p = std::make_shared<SearchParametersResidualCoarseQuantizer>();
                 p->beam_factor = beam_factor;
                 return p;
             }),
             py::kw_only(), py::arg("beam_factor") = 4.f)
        .def_readwrite("beam_factor", &SearchParametersResidualCoarseQuantizer::beam_factor);

    py::class_<ResidualCoarseQuantizer, Index, std::shared_ptr<ResidualCoarseQuantizer>>(m, "ResidualCoarseQuantizer")
        .def(py::init([](int d, long long M, long long nbits, int metric) {
                 return std::make_shared<ResidualCoarseQuantizer>(d, positive(M, "M"), positive(nbits, "nbits"),
                                                                  MetricType(metric));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits"), py::arg("metric") = int(METRIC_L2),
             "faiss's ResidualCoarseQuantizer(d, M, nbits[, metric]): 2^(M nbits) centroids, the sums of one word "
             "of each of M codebooks, searched by beam search (IVF65536(RCQ2x8),...).")
        .def(py::init([](int d, const std::vector<long long>& nbits, int metric) {
                 return std::make_shared<ResidualCoarseQuantizer>(d, widths(nbits), MetricType(metric));
             }),
             py::arg("d"), py::arg("nbits"), py::arg("metric") = int(METRIC_L2),
             "faiss's ResidualCoarseQuantizer(d, nbits[, metric]): 2^(sum of nbits) centroids, one codebook per "
             "entry of nbits (RCQ1x3_1x4_1x5).")
        .def_property("rq", &rq_of_rcq, [](ResidualCoarseQuantizer& q, const ResidualQuantizer& other) {
            py::gil_scoped_release release;
            q.set_rq(other);
        }, py::return_value_policy::reference_internal,
           "The residual quantizer whose codeword sums are the centroids; assigning one copies it in (same d and "
           "codebook widths, a plain residual quantizer).")
        .def_property_readonly("aq", &rq_of_rcq, py::return_value_policy::reference_internal,
                               "faiss's AdditiveCoarseQuantizer.aq: the quantizer whose codeword sums are the "
                               "centroids (rq, or lsq).")
        .def_property_readonly("local_search", &ResidualCoarseQuantizer::local_search,
                               "True for faiss's LocalSearchCoarseQuantizer (LSQ++ codebooks, exhaustive search).")
        .def_property("beam_factor", [](const ResidualCoarseQuantizer& q) { return q.beam_factor; },
                      [](ResidualCoarseQuantizer& q, float bf) {
                          py::gil_scoped_release release;
                          q.set_beam_factor(bf);
                      })
        .def("set_beam_factor", [](ResidualCoarseQuantizer& q, float bf) {
            py::gil_scoped_release release;
            q.set_beam_factor(bf);
        }, py::arg("beam_factor"),
           "At least 1: a beam search keeping beam_factor x k candidates per step; negative: every centroid "
           "scanned (exact).");

    m.def("_local_search_coarse_quantizer", [](int d, long long M, long long nbits, int metric) {
        const std::vector<size_t> nbits_each(positive(M, "M"), positive(nbits, "nbits"));
        return std::make_shared<ResidualCoarseQuantizer>(d, nbits_each, MetricType(metric), true);
    }, py::arg("d"), py::arg("M"), py::arg("nbits"), py::arg("metric") = int(METRIC_L2),
          "faiss's LocalSearchCoarseQuantizer(d, M, nbits[, metric]): a ResidualCoarseQuantizer whose quantizer is "
          "an LSQ++ (local search mode), searched exhaustively.");
}

}  // namespace nearly_py
