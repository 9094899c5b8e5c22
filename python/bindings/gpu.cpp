// GPU indexes and kernels. Raw device pointers come in as integers: the
// Python layer (nearly/gpu.py) reads __cuda_array_interface__ from cupy or
// torch arrays and allocates device outputs; numpy arrays take the ordinary
// Index paths, which copy to and from the device inside the core.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"

#if defined(NEARLY_WITH_CUDA)
#include "cublas_loader.h"
#include "gpu_flat.h"
#include "binary_gpu.h"
#include "chamfer_gpu.h"
#include "gpu_binary_recurrent.h"
#include "fde_gpu.h"
#include "gpu_muvera.h"
#include "gpu_graph.h"
#include "graph_build.h"
#include "neighbor_table.h"
#include "gpu_ivf.h"
#include "kmeans_gpu.h"
#include "nearly/hnsw.h"
#include "nearly/idmap.h"
#include "nearly/ivf.h"
#include "nearly/multivector.h"
#include "gpu_resources.h"
#include "select_k.h"
#endif

namespace nearly_py {

#if defined(NEARLY_WITH_CUDA)
using namespace nearly;
using namespace nearly::gpu;

namespace {
template <class T>
T* ptr(uintptr_t p) {
    return reinterpret_cast<T*>(p);
}
}  // namespace

void bind_gpu(py::module_& m) {
    m.def("_add_cublas_search_dir", &add_cublas_search_dir, py::arg("dir"));
    m.def("_cublas_path", [] { return cublas().path; }, py::call_guard<py::gil_scoped_release>());

    py::class_<GpuResources, std::shared_ptr<GpuResources>>(m, "_GpuResources")
        .def(py::init<int>(), py::arg("device") = 0, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("device", &GpuResources::device)
        .def("set_temp_memory", &GpuResources::set_temp_memory, py::arg("bytes"))
        .def_property_readonly("temp_memory", &GpuResources::temp_memory)
        .def_property_readonly("cached_bytes", &GpuResources::cached_bytes)
        .def("free_cache", &GpuResources::free_cache, py::call_guard<py::gil_scoped_release>())
        .def("synchronize", &GpuResources::synchronize, py::call_guard<py::gil_scoped_release>());

    py::class_<GpuIndexFlat, Index, std::shared_ptr<GpuIndexFlat>>(m, "_GpuIndexFlat")
        .def(py::init([](std::shared_ptr<GpuResources> res, int d, int metric, bool fp16) {
                 NEARLY_CHECK_ARG(d > 0, "d must be > 0");
                 return std::make_shared<GpuIndexFlat>(res, d, MetricType(metric), fp16);
             }),
             py::arg("res"), py::arg("d"), py::arg("metric"), py::arg("use_float16"))
        .def_readonly("use_float16", &GpuIndexFlat::use_float16)
        .def_readwrite("allow_tf32", &GpuIndexFlat::allow_tf32)
        .def("getDevice", &GpuIndexFlat::device)
        .def("copyFrom", &GpuIndexFlat::copy_from, py::arg("index"), py::call_guard<py::gil_scoped_release>())
        .def("copyTo", &GpuIndexFlat::copy_to, py::arg("index"), py::call_guard<py::gil_scoped_release>())
        .def("_add_ptr", [](GpuIndexFlat& self, idx_t n, uintptr_t x) { self.add(n, ptr<const float>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_search_ptr",
             [](const GpuIndexFlat& self, idx_t n, uintptr_t x, idx_t k, uintptr_t D, uintptr_t I) {
                 self.search(n, ptr<const float>(x), k, ptr<float>(D), ptr<idx_t>(I));
             },
             py::call_guard<py::gil_scoped_release>());

    py::class_<GpuIndexIVF, Index, std::shared_ptr<GpuIndexIVF>>(m, "_GpuIndexIVF")
        .def_readonly("nlist", &GpuIndexIVF::nlist)
        .def_readwrite("nprobe", &GpuIndexIVF::nprobe)
        .def_readonly("code_size", &GpuIndexIVF::code_size)
        .def_readwrite("cp", &GpuIndexIVF::cp)
        .def("getDevice", &GpuIndexIVF::device)
        .def("get_list_size", &GpuIndexIVF::list_size, py::arg("list_no"))
        .def("centroids", [](const GpuIndexIVF& self) {
            std::vector<float> c;
            {
                py::gil_scoped_release release;
                c = self.centroids();
            }
            py::array_t<float> out({py::ssize_t(c.size() / self.d), py::ssize_t(self.d)});
            std::copy(c.begin(), c.end(), out.mutable_data());
            return out;
        })
        .def("list_contents", [](const GpuIndexIVF& self, size_t l) {
            std::vector<uint8_t> codes;
            std::vector<idx_t> ids;
            {
                py::gil_scoped_release release;
                self.list_contents(l, codes, ids);
            }
            py::array_t<uint8_t> c({py::ssize_t(ids.size()), py::ssize_t(self.code_size)});
            std::copy(codes.begin(), codes.end(), c.mutable_data());
            py::array_t<idx_t> i(ids.size());
            std::copy(ids.begin(), ids.end(), i.mutable_data());
            return py::make_tuple(c, i);
        }, py::arg("list_no"))
        .def("_train_ptr", [](GpuIndexIVF& self, idx_t n, uintptr_t x) { self.train(n, ptr<const float>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_add_ptr", [](GpuIndexIVF& self, idx_t n, uintptr_t x) { self.add(n, ptr<const float>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_add_with_ids_ptr",
             [](GpuIndexIVF& self, idx_t n, uintptr_t x, uintptr_t ids) {
                 self.add_with_ids(n, ptr<const float>(x), ptr<const idx_t>(ids));
             },
             py::call_guard<py::gil_scoped_release>())
        .def("_search_ptr",
             [](const GpuIndexIVF& self, idx_t n, uintptr_t x, idx_t k, uintptr_t D, uintptr_t I, long long nprobe) {
                 SearchParametersIVF p;
                 p.nprobe = nprobe > 0 ? size_t(nprobe) : self.nprobe;
                 self.search(n, ptr<const float>(x), k, ptr<float>(D), ptr<idx_t>(I), &p);
             },
             py::call_guard<py::gil_scoped_release>());

    py::class_<GpuIndexIVFFlat, GpuIndexIVF, std::shared_ptr<GpuIndexIVFFlat>>(m, "_GpuIndexIVFFlat")
        .def(py::init([](std::shared_ptr<GpuResources> res, int d, long long nlist, int metric) {
                 NEARLY_CHECK_ARG(nlist > 0, "nlist must be positive");
                 return std::make_shared<GpuIndexIVFFlat>(res, d, size_t(nlist), MetricType(metric));
             }),
             py::arg("res"), py::arg("d"), py::arg("nlist"), py::arg("metric"))
        .def("copyFrom", &GpuIndexIVFFlat::copy_from, py::arg("index"), py::call_guard<py::gil_scoped_release>())
        .def("_to_cpu", &GpuIndexIVFFlat::to_cpu, py::call_guard<py::gil_scoped_release>());

    py::class_<GpuIndexIVFPQ, GpuIndexIVF, std::shared_ptr<GpuIndexIVFPQ>>(m, "_GpuIndexIVFPQ")
        .def(py::init([](std::shared_ptr<GpuResources> res, int d, long long nlist, long long M, long long nbits,
                         int metric) {
                 NEARLY_CHECK_ARG(nlist > 0 && M > 0 && nbits > 0, "nlist, M and nbits must be positive");
                 return std::make_shared<GpuIndexIVFPQ>(res, d, size_t(nlist), size_t(M), size_t(nbits),
                                                        MetricType(metric));
             }),
             py::arg("res"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits"), py::arg("metric"))
        .def_readonly("M", &GpuIndexIVFPQ::M)
        .def_readonly("nbits", &GpuIndexIVFPQ::nbits)
        .def_readonly("dsub", &GpuIndexIVFPQ::dsub)
        .def_readwrite("pq_cp", &GpuIndexIVFPQ::pq_cp)
        .def_readwrite("use_float16_tables", &GpuIndexIVFPQ::use_float16_tables)
        .def("pq_centroids", [](const GpuIndexIVFPQ& self) {
            std::vector<float> c = self.pq_centroids();
            py::array_t<float> out(c.size());
            std::copy(c.begin(), c.end(), out.mutable_data());
            return out;
        })
        .def("_copy_from", [](GpuIndexIVFPQ& self, const IndexIVF& cpu, py::handle pq_obj) {
            FloatArray pq = to_array<FloatArray>(pq_obj, "pq centroids");
            NEARLY_CHECK_ARG(size_t(pq.size()) == self.M * 256 * self.dsub, "pq centroids: wrong size");
            py::gil_scoped_release release;
            self.copy_from(cpu, pq.data());
        });

    m.def("_gpu_kmeans", [](std::shared_ptr<GpuResources> res, py::handle x_obj, int k, const ClusteringParameters& cp,
                            int metric) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        std::vector<float> c;
        float obj = 0;
        {
            py::gil_scoped_release release;
            c = gpu_kmeans(*res, cp, int(x.shape(1)), k, x.shape(0), x.data(), MetricType(metric), &obj);
        }
        py::array_t<float> out({py::ssize_t(k), py::ssize_t(x.shape(1))});
        std::copy(c.begin(), c.end(), out.mutable_data());
        return py::make_tuple(out, obj);
    }, py::arg("res"), py::arg("x"), py::arg("k"), py::arg("cp"), py::arg("metric"));

    py::class_<GpuFdeEncoder, std::shared_ptr<GpuFdeEncoder>>(m, "_GpuFdeEncoder")
        .def(py::init([](std::shared_ptr<GpuResources> res, std::shared_ptr<FdeEncoder> cpu) {
                 return std::make_shared<GpuFdeEncoder>(res, cpu);
             }),
             py::arg("res"), py::arg("encoder"), py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("output_dimension", &GpuFdeEncoder::output_dimension)
        .def("_encode_ptr", [](const GpuFdeEncoder& self, bool documents, uintptr_t x, size_t n_vectors,
                               py::handle lengths_obj, uintptr_t out) {
            IdArray lengths = to_array<IdArray>(lengths_obj, "lengths");
            NEARLY_CHECK_ARG(lengths.ndim() == 1, "lengths must be a 1-D array of per-set vector counts");
            py::gil_scoped_release release;
            self.encode(documents ? FdeEncoding::document_average : FdeEncoding::query_sum, ptr<const float>(x),
                        n_vectors, lengths.data(), size_t(lengths.shape(0)), ptr<float>(out));
        });

    // Chamfer scores: host lengths, the rest host or device pointers (cand 0:
    // every document).
    m.def("_chamfer_scores_ptr",
          [](std::shared_ptr<GpuResources> res, uintptr_t q, size_t n_qv, py::handle ql_obj, uintptr_t x, size_t n_xv,
             py::handle xl_obj, int d, uintptr_t cand, size_t n_cand, uintptr_t scores) {
              IdArray ql = as_lengths(ql_obj, "query lengths"), xl = as_lengths(xl_obj, "document lengths");
              py::gil_scoped_release release;
              chamfer_scores(*res, ptr<const float>(q), n_qv, ql.data(), size_t(ql.shape(0)), ptr<const float>(x), n_xv,
                             xl.data(), size_t(xl.shape(0)), d, ptr<const int64_t>(cand), n_cand, ptr<float>(scores));
          });

    py::class_<GpuIndexMuvera, std::shared_ptr<GpuIndexMuvera>>(m, "_GpuIndexMuvera")
        .def(py::init([](std::shared_ptr<GpuResources> res, std::shared_ptr<FdeEncoder> query_encoder,
                         py::handle inner_obj, const IndexIDMap& cpu_inner, const MultiVectorStore& store,
                         bool ball_carving, float tau) {
                 IndexPtr inner = inner_obj.is_none() ? nullptr : inner_obj.cast<IndexPtr>();
                 py::gil_scoped_release release;
                 return std::make_shared<GpuIndexMuvera>(res, query_encoder, inner, cpu_inner, store, ball_carving,
                                                         tau);
             }),
             py::arg("res"), py::arg("query_encoder"), py::arg("inner"), py::arg("cpu_inner"), py::arg("store"),
             py::arg("ball_carving"), py::arg("tau"))
        .def_property_readonly("d", &GpuIndexMuvera::dim)
        .def_property_readonly("ntotal", &GpuIndexMuvera::n_docs)
        .def_property_readonly("n_vectors", &GpuIndexMuvera::n_vectors)
        .def_property_readonly("fde_dim", &GpuIndexMuvera::fde_dim)
        .def_property_readonly("token_dtype",
                               [](const GpuIndexMuvera& self) { return self.fp16() ? "float16" : "float32"; })
        .def("getDevice", &GpuIndexMuvera::device)
        .def("_search_ptr", [](const GpuIndexMuvera& self, uintptr_t q, size_t n_qv, py::handle lengths_obj, size_t k,
                               size_t n_cand, py::handle params_obj, uintptr_t D, uintptr_t I) {
            IdArray lengths = as_lengths(lengths_obj, "query lengths");
            const SearchParameters* params = nullptr;
            if (!params_obj.is_none()) {
                try {
                    params = params_obj.cast<const SearchParameters*>();
                } catch (const py::cast_error&) {
                    throw InvalidArgument("params must be a SearchParameters object");
                }
            }
            py::gil_scoped_release release;
            self.search(ptr<const float>(q), n_qv, lengths.data(), size_t(lengths.shape(0)), k, n_cand, params,
                        ptr<float>(D), ptr<idx_t>(I));
        });

    py::class_<GpuIndexHNSW, Index, std::shared_ptr<GpuIndexHNSW>>(m, "_GpuIndexHNSW")
        .def(py::init([](std::shared_ptr<GpuResources> res, const IndexHNSWFlat& cpu) {
                 return std::make_shared<GpuIndexHNSW>(res, cpu);
             }),
             py::arg("res"), py::arg("index"), py::call_guard<py::gil_scoped_release>())
        .def(py::init([](std::shared_ptr<GpuResources> res, int d, int M, int metric) {
                 return std::make_shared<GpuIndexHNSW>(res, d, M, MetricType(metric));
             }),
             py::arg("res"), py::arg("d"), py::arg("M"), py::arg("metric"))
        .def("_add_ptr", [](GpuIndexHNSW& self, idx_t n, uintptr_t x) { self.add(n, ptr<const float>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_to_cpu", [](const GpuIndexHNSW& self) { return std::shared_ptr<IndexHNSWFlat>(self.to_cpu()); },
             py::call_guard<py::gil_scoped_release>())
        .def_property("build_knn_factor", [](const GpuIndexHNSW& i) { return i.build.graph.knn_factor; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 1, "build_knn_factor must be >= 1");
                          i.build.graph.knn_factor = v;
                      })
        .def_property("build_merge_factor", [](const GpuIndexHNSW& i) { return i.build.graph.merge_factor; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 1, "build_merge_factor must be >= 1");
                          i.build.graph.merge_factor = v;
                      })
        .def_property("build_far_factor", [](const GpuIndexHNSW& i) { return i.build.graph.far_factor; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 0, "build_far_factor must be >= 0");
                          i.build.graph.far_factor = v;
                      })
        .def_property("build_n_lists", [](const GpuIndexHNSW& i) { return i.build.n_lists; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 0, "build_n_lists must be >= 0 (0: about 1,000 vectors per list)");
                          i.build.n_lists = v;
                      })
        .def_property("build_n_probe", [](const GpuIndexHNSW& i) { return i.build.n_probe; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 1, "build_n_probe must be >= 1");
                          i.build.n_probe = v;
                      })
        .def_property("build_exact_below", [](const GpuIndexHNSW& i) { return i.build.exact_below; },
                      [](GpuIndexHNSW& i, int64_t v) { i.build.exact_below = std::max<int64_t>(0, v); })
        .def_property("verbose", [](const GpuIndexHNSW& i) { return i.build.verbose; },
                      [](GpuIndexHNSW& i, bool v) { i.build.verbose = v; })
        .def_readwrite("efSearch", &GpuIndexHNSW::efSearch)
        .def_property("search_width", [](const GpuIndexHNSW& i) { return i.params.width; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 1, "search_width must be >= 1");
                          i.params.width = v;
                      })
        .def_property("search_merge", [](const GpuIndexHNSW& i) { return i.params.merge; },
                      [](GpuIndexHNSW& i, bool v) { i.params.merge = v; })
        .def_property("search_fp16", [](const GpuIndexHNSW& i) { return i.params.fp16; },
                      [](GpuIndexHNSW& i, bool v) { i.params.fp16 = v; })
        .def_property("max_iterations", [](const GpuIndexHNSW& i) { return i.params.max_iterations; },
                      [](GpuIndexHNSW& i, int v) { i.params.max_iterations = std::max(0, v); })
        .def_property("seed_rounds", [](const GpuIndexHNSW& i) { return i.params.seed_rounds; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 1, "seed_rounds must be >= 1");
                          i.params.seed_rounds = v;
                      })
        .def_property_readonly("degree", &GpuIndexHNSW::degree)
        .def("_search_ptr",
             [](const GpuIndexHNSW& self, idx_t n, uintptr_t x, idx_t k, uintptr_t D, uintptr_t I, int ef) {
                 SearchParametersHNSW p;
                 p.efSearch = ef > 0 ? ef : self.efSearch;
                 self.search(n, ptr<const float>(x), k, ptr<float>(D), ptr<idx_t>(I), &p);
             },
             py::call_guard<py::gil_scoped_release>());

    m.def("_gpu_prune_links", [](std::shared_ptr<GpuResources> res, py::handle x_obj, py::handle ids,
                                 py::handle scores, int metric, int cap) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        NeighborTable c = as_table(ids, scores, x.shape(0)), t;
        {
            py::gil_scoped_release release;
            t = gpu_prune_links(*res, x.data(), x.shape(0), int(x.shape(1)), MetricType(metric), c, cap);
        }
        return table_out(t);
    });
    m.def("_gpu_merge_reverse_links", [](std::shared_ptr<GpuResources> res, py::handle x_obj, py::handle ids,
                                         py::handle scores, int metric, int cap, int max_merge) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        NeighborTable c = as_table(ids, scores, x.shape(0)), t;
        {
            py::gil_scoped_release release;
            t = gpu_merge_reverse_links(*res, x.data(), x.shape(0), int(x.shape(1)), MetricType(metric), c, cap,
                                        max_merge);
        }
        return table_out(t);
    });
    m.def("_gpu_level_knn", [](std::shared_ptr<GpuResources> res, py::handle x_obj, int k, int metric, int n_lists,
                               int n_probe) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        NeighborTable t;
        {
            py::gil_scoped_release release;
            t = gpu_level_knn(*res, x.data(), x.shape(0), int(x.shape(1)), MetricType(metric), k, n_lists, n_probe);
        }
        return table_out(t);
    });

    py::class_<GpuIndexBinaryFlat, std::shared_ptr<GpuIndexBinaryFlat>>(m, "_GpuIndexBinaryFlat")
        .def(py::init([](std::shared_ptr<GpuResources> res, int d) { return std::make_shared<GpuIndexBinaryFlat>(res, d); }),
             py::arg("res"), py::arg("d"))
        .def_readonly("d", &GpuIndexBinaryFlat::d)
        .def_readonly("code_size", &GpuIndexBinaryFlat::code_size)
        .def_readonly("ntotal", &GpuIndexBinaryFlat::ntotal)
        .def("_add_ptr", [](GpuIndexBinaryFlat& self, idx_t n, uintptr_t x) { self.add(n, ptr<const uint8_t>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_search_ptr",
             [](const GpuIndexBinaryFlat& self, idx_t n, uintptr_t x, idx_t k, uintptr_t D, uintptr_t I) {
                 self.search(n, ptr<const uint8_t>(x), k, ptr<int32_t>(D), ptr<idx_t>(I));
             },
             py::call_guard<py::gil_scoped_release>())
        .def("_reconstruct_n_ptr",
             [](const GpuIndexBinaryFlat& self, idx_t i0, idx_t ni, uintptr_t out) {
                 self.reconstruct_n(i0, ni, ptr<uint8_t>(out));
             },
             py::call_guard<py::gil_scoped_release>())
        .def("reset", &GpuIndexBinaryFlat::reset, py::call_guard<py::gil_scoped_release>());

    py::class_<GpuIndexBinaryRecurrent, Index, std::shared_ptr<GpuIndexBinaryRecurrent>>(m, "_GpuIndexBinaryRecurrent")
        .def(py::init([](std::shared_ptr<GpuResources> res, const IndexBinaryRecurrent& cpu) {
                 return std::make_shared<GpuIndexBinaryRecurrent>(res, cpu);
             }),
             py::arg("res"), py::arg("index"), py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("m", &GpuIndexBinaryRecurrent::m)
        .def_property_readonly("bits_per_dim", &GpuIndexBinaryRecurrent::bits_per_dim)
        .def_property_readonly("code_size", &GpuIndexBinaryRecurrent::code_size)
        .def("getDevice", &GpuIndexBinaryRecurrent::device)
        .def("_to_cpu", &GpuIndexBinaryRecurrent::to_cpu, py::call_guard<py::gil_scoped_release>())
        .def("_train_ptr", [](GpuIndexBinaryRecurrent& self, idx_t n, uintptr_t x) { self.train(n, ptr<const float>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_add_ptr", [](GpuIndexBinaryRecurrent& self, idx_t n, uintptr_t x) { self.add(n, ptr<const float>(x)); },
             py::call_guard<py::gil_scoped_release>())
        .def("_add_with_ids_ptr",
             [](GpuIndexBinaryRecurrent& self, idx_t n, uintptr_t x, uintptr_t ids) {
                 self.add_with_ids(n, ptr<const float>(x), ptr<const idx_t>(ids));
             },
             py::call_guard<py::gil_scoped_release>())
        .def("_search_ptr",
             [](const GpuIndexBinaryRecurrent& self, idx_t n, uintptr_t x, idx_t k, uintptr_t D, uintptr_t I) {
                 self.search(n, ptr<const float>(x), k, ptr<float>(D), ptr<idx_t>(I));
             },
             py::call_guard<py::gil_scoped_release>());

    m.def("_sdc_knn_ptr",
          [](std::shared_ptr<GpuResources> res, uintptr_t q, idx_t nq, uintptr_t x, idx_t nx, int m_, int nb, int k,
             uintptr_t S, uintptr_t I) {
              sdc_knn(*res, ptr<const uint8_t>(q), nq, ptr<const uint8_t>(x), nx, m_, nb, k, ptr<int32_t>(S),
                      ptr<idx_t>(I));
          },
          py::call_guard<py::gil_scoped_release>());

    m.def("_knn_gpu_ptr",
          [](std::shared_ptr<GpuResources> res, int metric, uintptr_t xq, idx_t nq, uintptr_t xb, idx_t nb, int d,
             int k, uintptr_t D, uintptr_t I, bool fp16) {
              brute_force_knn(*res, MetricType(metric), ptr<const float>(xq), nq, ptr<const float>(xb), nb, d, k,
                              ptr<float>(D), ptr<idx_t>(I), fp16);
          },
          py::call_guard<py::gil_scoped_release>());

    // Device pointers only: the test and benchmark entry to the selection kernels.
    m.def("_select_k_ptr",
          [](std::shared_ptr<GpuResources> res, uintptr_t in, uintptr_t in_ids, int64_t rows, int64_t cols, int k,
             bool largest, uintptr_t out, uintptr_t out_ids) {
              std::lock_guard<std::mutex> call(res->call_mutex());
              NEARLY_CHECK_ARG(cols >= 0 && rows >= 0, "select_k: negative shape");
              select_k(*res, ptr<const float>(in), ptr<const int64_t>(in_ids), rows, cols, k, largest, ptr<float>(out),
                       ptr<int64_t>(out_ids));
              res->synchronize();
          },
          py::call_guard<py::gil_scoped_release>());
}

#else

void bind_gpu(py::module_&) {}

#endif

}  // namespace nearly_py
