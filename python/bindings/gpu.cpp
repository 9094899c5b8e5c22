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
