// The _nearly extension: error mapping, SIMD and thread controls, GPU probe;
// the index families bind themselves in their own files.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

namespace nearly_py {
void bind_selectors(py::module_& m);
void bind_flat(py::module_& m);
void bind_transform(py::module_& m);
void bind_hnsw(py::module_& m);
void bind_graph_build(py::module_& m);
void bind_io(py::module_& m);
void bind_distance(py::module_& m);
void bind_fde(py::module_& m);
void bind_chamfer(py::module_& m);
void bind_multivector(py::module_& m);
void bind_kmeans(py::module_& m);
void bind_invlists(py::module_& m);
void bind_ivf(py::module_& m);
void bind_pq(py::module_& m);
void bind_sq(py::module_& m);
void bind_eden(py::module_& m);
void bind_residual_quantizer(py::module_& m);
void bind_gpu(py::module_& m);
void bind_binary(py::module_& m);
void bind_binary_flat(py::module_& m);
void bind_random(py::module_& m);
void bind_lsh(py::module_& m);
void bind_lattice(py::module_& m);
void bind_rabitq(py::module_& m);
void bind_nsg(py::module_& m);
void bind_nn_descent(py::module_& m);
void bind_index_random(py::module_& m);
}  // namespace nearly_py

#if defined(NEARLY_WITH_CUDA)
namespace nearly { int cuda_device_count(); }
#endif

using namespace nearly_py;

namespace {

PyObject* g_invalid_argument = nullptr;
PyObject* g_out_of_range = nullptr;
PyObject* g_index_file = nullptr;
PyObject* g_file_missing = nullptr;
PyObject* g_timed_out = nullptr;

PyObject* new_exception(py::module_& m, const char* name, std::initializer_list<PyObject*> bases, const char* doc) {
    py::tuple t(bases.size());
    size_t i = 0;
    for (PyObject* b : bases) t[i++] = py::reinterpret_borrow<py::object>(b);
    std::string full = std::string("nearly.") + name;
    PyObject* e = PyErr_NewExceptionWithDoc(full.c_str(), doc, t.ptr(), nullptr);
    if (!e) throw py::error_already_set();
    m.add_object(name, py::reinterpret_borrow<py::object>(e));
    return e;
}

// Called by the core from long loops; takes the GIL briefly.
bool python_interrupt_pending() {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
        PyErr_Clear();  // re-raised as KeyboardInterrupt by the translator
        return true;
    }
    return false;
}

}  // namespace

PYBIND11_MODULE(_nearly, m) {
    m.doc() = "nearly native core";

    g_invalid_argument = new_exception(m, "InvalidArgumentError",
                                       {PyExc_ValueError, PyExc_AssertionError, PyExc_RuntimeError},
                                       "A bad argument (shape, dtype, k, ids, NaN). Also an AssertionError and a "
                                       "RuntimeError, which faiss raises for these (its Python checks and its C++ "
                                       "ones).");
    g_out_of_range = new_exception(m, "IndexOutOfRangeError", {PyExc_RuntimeError, PyExc_IndexError},
                                   "A key or id that is not in the index.");
    g_index_file = new_exception(m, "IndexFileError", {PyExc_RuntimeError},
                                 "A serialized index that is truncated, corrupt or of an unsupported version.");
    g_timed_out = new_exception(m, "TimedOutError", {PyExc_RuntimeError, PyExc_TimeoutError},
                                "A call that ran past the deadline of its thread's TimeoutGuard (a RuntimeError, "
                                "as faiss raises, and a TimeoutError).");
    g_file_missing = new_exception(m, "IndexFileNotFoundError", {PyExc_FileNotFoundError, PyExc_RuntimeError},
                                   "read_index on a path that does not exist.");

    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const nearly::InvalidArgument& e) {
            PyErr_SetString(g_invalid_argument, e.what());
        } catch (const nearly::OutOfRange& e) {
            PyErr_SetString(g_out_of_range, e.what());
        } catch (const nearly::CorruptData& e) {
            PyErr_SetString(g_index_file, e.what());
        } catch (const nearly::FileMissing& e) {
            PyErr_SetString(g_file_missing, e.what());
        } catch (const nearly::TimedOut& e) {
            PyErr_SetString(g_timed_out, e.what());
        } catch (const nearly::Interrupted& e) {
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        } catch (const nearly::NotSupported& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
    });
    nearly::set_interrupt_callback(python_interrupt_pending);
    // TimeoutGuard's deadline, per calling thread.
    m.def("_steady_seconds", &nearly::steady_seconds);
    m.def("_thread_deadline", &nearly::thread_deadline);
    m.def("_set_thread_deadline", &nearly::set_thread_deadline, py::arg("deadline"));

    m.def("simd_level", [] { return nearly::simd_level_name(nearly::simd_level()); },
          "The SIMD instruction set the kernels run with: scalar, avx2, avx512 or neon.");
    m.def("simd_levels_supported", [] {
        std::vector<std::string> out;
        for (auto l : nearly::simd_levels_supported()) out.push_back(nearly::simd_level_name(l));
        return out;
    }, "Levels this CPU and build can run, weakest first.");
    m.def("set_simd_level", &nearly::set_simd_level, py::arg("level"),
          "Forces a SIMD level (tests, benchmarks). NEARLY_SIMD does the same at import.");

    m.def("omp_set_num_threads", &nearly::set_num_threads, py::arg("num_threads"),
          "Sets the size of nearly's thread pool (named like faiss's; nearly does not use OpenMP).",
          py::call_guard<py::gil_scoped_release>());
    m.def("omp_get_max_threads", &nearly::get_num_threads, "The size of nearly's thread pool.");
    // For the tests: how many threads ran the tasks of one parallel call of
    // ntasks tasks, each waiting until two threads have joined or 200 ms pass.
    m.def("_pool_threads_in_one_call", [](size_t ntasks) {
        std::mutex mu;
        std::set<std::thread::id> seen;
        nearly::parallel_for(ntasks, [&](size_t) {
            {
                std::lock_guard<std::mutex> lk(mu);
                seen.insert(std::this_thread::get_id());
            }
            for (int i = 0; i < 200; i++) {
                {
                    std::lock_guard<std::mutex> lk(mu);
                    if (seen.size() >= 2) return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        });
        return seen.size();
    }, py::arg("ntasks"), py::call_guard<py::gil_scoped_release>());

    m.def("get_num_gpus", [] {
#if defined(NEARLY_WITH_CUDA)
        return nearly::cuda_device_count();
#else
        return 0;
#endif
    }, "Number of CUDA devices usable by nearly (0 without a GPU, a driver, or a CUDA build).");
#if defined(NEARLY_WITH_CUDA)
    m.attr("has_cuda_build") = true;
#else
    m.attr("has_cuda_build") = false;
#endif

    bind_selectors(m);
    bind_flat(m);
    bind_transform(m);
    bind_hnsw(m);
    bind_graph_build(m);
    bind_io(m);
    bind_distance(m);
    bind_fde(m);
    bind_chamfer(m);
    bind_multivector(m);
    bind_kmeans(m);
    bind_invlists(m);
    bind_ivf(m);
    bind_pq(m);
    bind_sq(m);
    bind_eden(m);
    bind_residual_quantizer(m);
    bind_gpu(m);
    bind_binary(m);
    bind_binary_flat(m);
    bind_random(m);
    bind_lsh(m);
    bind_lattice(m);
    bind_rabitq(m);
    bind_nsg(m);
    bind_nn_descent(m);
    bind_index_random(m);
}
