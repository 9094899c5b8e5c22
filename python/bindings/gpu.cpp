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
#include "gpu_binary_recurrent.h"
#include "fde_gpu.h"
#include "gpu_graph.h"
#include "gpu_ivf.h"
#include "kmeans_gpu.h"
#include "nearly/hnsw.h"
#include "nearly/ivf.h"
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

    py::class_<GpuIndexHNSW, Index, std::shared_ptr<GpuIndexHNSW>>(m, "_GpuIndexHNSW")
        .def(py::init([](std::shared_ptr<GpuResources> res, const IndexHNSWFlat& cpu) {
                 return std::make_shared<GpuIndexHNSW>(res, cpu);
             }),
             py::arg("res"), py::arg("index"), py::call_guard<py::gil_scoped_release>())
        .def_readwrite("efSearch", &GpuIndexHNSW::efSearch)
        .def_property("search_width", [](const GpuIndexHNSW& i) { return i.params.width; },
                      [](GpuIndexHNSW& i, int v) {
                          NEARLY_CHECK_ARG(v >= 1, "search_width must be >= 1");
                          i.params.width = v;
                      })
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
