#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/distance.h"
#include "nearly/extra_distances.h"
#include "nearly/simd.h"

namespace nearly_py {

using namespace nearly;

namespace {
// NaN is a missing component under NaNEuclidean and GOWER, an error elsewhere.
std::pair<FloatArray, FloatArray> query_and_base(py::handle xq_obj, py::handle xb_obj, MetricType metric) {
    FloatArray xb = as_matrix(xb_obj, -1, "xb");
    FloatArray xq = as_matrix(xq_obj, int(xb.shape(1)), "xq");
    if (!metric_accepts_nan(metric)) {
        check_finite(xb.data(), xb.size(), "xb");
        check_finite(xq.data(), xq.size(), "xq");
    }
    return {xq, xb};
}

FloatArray as_vector(py::handle obj, const char* what) {
    FloatArray a = to_array<FloatArray>(obj, what);
    if (a.ndim() != 1) throw InvalidArgument(std::string(what) + " must be 1-D");
    return a;
}
}  // namespace

void bind_distance(py::module_& m) {
    m.def("knn", [](py::handle xq_obj, py::handle xb_obj, py::handle k_obj, int metric, float metric_arg) {
        const MetricType mt = checked_metric(metric);
        auto [xq, xb] = query_and_base(xq_obj, xb_obj, mt);
        idx_t k = as_k(k_obj);
        py::array_t<float> D({idx_t(xq.shape(0)), k});
        py::array_t<idx_t> I({idx_t(xq.shape(0)), k});
        {
            py::gil_scoped_release release;
            if (is_extra_metric(mt))
                knn_extra(xq.data(), xq.shape(0), xb.data(), xb.shape(0), xb.shape(1), mt, metric_arg, k,
                          D.mutable_data(), I.mutable_data());
            else
                knn_exhaustive(xq.data(), xq.shape(0), xb.data(), xb.shape(0), xb.shape(1), mt, k, D.mutable_data(),
                               I.mutable_data());
        }
        return py::make_tuple(D, I);
    }, py::arg("xq"), py::arg("xb"), py::arg("k"), py::arg("metric") = int(METRIC_L2), py::arg("metric_arg") = 0.f,
       "Exact k-NN of xq in xb without building an index: returns (D, I).");

    m.def("pairwise_distances", [](py::handle xq_obj, py::handle xb_obj, int metric, float metric_arg) {
        const MetricType mt = checked_metric(metric);
        auto [xq, xb] = query_and_base(xq_obj, xb_obj, mt);
        py::array_t<float> out({idx_t(xq.shape(0)), idx_t(xb.shape(0))});
        {
            py::gil_scoped_release release;
            if (is_extra_metric(mt))
                pairwise_extra(xq.data(), xq.shape(0), xb.data(), xb.shape(0), xb.shape(1), mt, metric_arg,
                               out.mutable_data());
            else
                pairwise_distances(xq.data(), xq.shape(0), xb.data(), xb.shape(0), xb.shape(1), mt,
                                   out.mutable_data());
        }
        return out;
    }, py::arg("xq"), py::arg("xb"), py::arg("metric") = int(METRIC_L2), py::arg("metric_arg") = 0.f);

    m.def("normalize_L2", [](py::handle x_obj) {
        if (!py::isinstance<py::array_t<float, py::array::c_style>>(x_obj))
            throw py::type_error("normalize_L2 works in place: x must be a C-contiguous float32 numpy array");
        py::array_t<float, py::array::c_style> x = py::cast<py::array_t<float, py::array::c_style>>(x_obj);
        if (!x.writeable()) throw InvalidArgument("normalize_L2: x is read-only");
        if (x.ndim() != 2 && x.ndim() != 1) throw InvalidArgument("normalize_L2: x must be 1-D or 2-D");
        size_t n = x.ndim() == 2 ? x.shape(0) : 1, d = x.ndim() == 2 ? x.shape(1) : x.shape(0);
        py::gil_scoped_release release;
        normalize_L2(x.mutable_data(), n, d);
    }, py::arg("x"), "Scales each row of x to unit L2 norm, in place.");

    // Kernel entry points at the active SIMD level, for tests and benchmarks.
    m.def("fvec_inner_products_ny", [](py::handle q_obj, py::handle x_obj) {
        FloatArray q = as_vector(q_obj, "q");
        FloatArray x = as_matrix(x_obj, int(q.shape(0)), "x");
        py::array_t<float> out(x.shape(0));
        py::gil_scoped_release release;
        simd().inner_products_ny(q.data(), x.data(), q.shape(0), x.shape(0), out.mutable_data());
        return out;
    }, py::arg("q"), py::arg("x"));
    m.def("fvec_L2sqr_ny", [](py::handle q_obj, py::handle x_obj) {
        FloatArray q = as_vector(q_obj, "q");
        FloatArray x = as_matrix(x_obj, int(q.shape(0)), "x");
        py::array_t<float> out(x.shape(0));
        py::gil_scoped_release release;
        simd().l2sqr_ny(q.data(), x.data(), q.shape(0), x.shape(0), out.mutable_data());
        return out;
    }, py::arg("q"), py::arg("x"));
    m.def("_inner_products_rows", [](py::handle q_obj, py::handle x_obj, py::handle order_obj) {
        FloatArray q = as_vector(q_obj, "q");
        FloatArray x = as_matrix(x_obj, int(q.shape(0)), "x");
        IdArray order = as_ids(order_obj, -1, "order");
        std::vector<const float*> rows(size_t(order.shape(0)));
        for (size_t i = 0; i < rows.size(); i++) {
            const idx_t r = order.data()[i];
            if (r < 0 || r >= x.shape(0)) throw OutOfRange("order: row out of range");
            rows[i] = x.data() + size_t(r) * size_t(q.shape(0));
        }
        py::array_t<float> out(py::ssize_t(rows.size()));
        py::gil_scoped_release release;
        simd().inner_products_rows(q.data(), rows.data(), q.shape(0), rows.size(), out.mutable_data());
        return out;
    }, py::arg("q"), py::arg("x"), py::arg("order"), "Test hook: <q, x[order[i]]> for each i (Panorama's kernel).");
    m.def("fvec_inner_product", [](py::handle a_obj, py::handle b_obj) {
        FloatArray a = as_vector(a_obj, "x"), b = as_vector(b_obj, "y");
        if (a.shape(0) != b.shape(0)) throw InvalidArgument("x and y differ in length");
        return simd().inner_product(a.data(), b.data(), a.shape(0));
    }, py::arg("x"), py::arg("y"));
    m.def("fvec_L2sqr", [](py::handle a_obj, py::handle b_obj) {
        FloatArray a = as_vector(a_obj, "x"), b = as_vector(b_obj, "y");
        if (a.shape(0) != b.shape(0)) throw InvalidArgument("x and y differ in length");
        return simd().l2sqr(a.data(), b.data(), a.shape(0));
    }, py::arg("x"), py::arg("y"));
    m.def("dot_i8", [](py::array_t<int8_t, py::array::c_style | py::array::forcecast> a,
                       py::array_t<int8_t, py::array::c_style | py::array::forcecast> b) {
        if (a.ndim() != 1 || b.ndim() != 1 || a.shape(0) != b.shape(0))
            throw InvalidArgument("dot_i8: a and b must be 1-D int8 arrays of the same length");
        return simd().dot_i8(a.data(), b.data(), a.shape(0));
    }, py::arg("a"), py::arg("b"), "Integer dot product of int8 codes at the active SIMD level.");
    // The four-query kernels (test hooks): 4 queries against every row of x.
    using FourQ = void (*)(const float*, const float*, size_t, size_t, float*, size_t);
    auto four_queries = [](FourQ SimdKernels::*kernel, const char* name) {
        return [kernel, name](py::handle q_obj, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, -1, "x");
            FloatArray q = as_matrix(q_obj, int(x.shape(1)), "q");
            if (q.shape(0) != 4) throw InvalidArgument(std::string(name) + ": q must have 4 rows");
            py::array_t<float> out({idx_t(4), idx_t(x.shape(0))});
            py::gil_scoped_release release;
            (simd().*kernel)(q.data(), x.data(), x.shape(1), x.shape(0), out.mutable_data(), x.shape(0));
            return out;
        };
    };
    m.def("ip_4q", four_queries(&SimdKernels::ip_4q, "ip_4q"), py::arg("q"), py::arg("x"),
          "Inner products of 4 queries with every row of x at the active SIMD level.");
    m.def("l2sqr_4q", four_queries(&SimdKernels::l2sqr_4q, "l2sqr_4q"), py::arg("q"), py::arg("x"),
          "Squared L2 distances of 4 queries to every row of x at the active SIMD level.");
    m.def("gemm_ip", [](py::handle q_obj, py::handle x_obj) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        FloatArray q = as_matrix(q_obj, int(x.shape(1)), "q");
        py::array_t<float> out({idx_t(q.shape(0)), idx_t(x.shape(0))});
        py::gil_scoped_release release;
        gemm_ip(q.data(), q.shape(0), x.data(), x.shape(0), x.shape(1), out.mutable_data());
        return out;
    }, py::arg("q"), py::arg("x"), "Q @ X.T through the packed micro-kernel of the active SIMD level.");
}

}  // namespace nearly_py
