// IndexNNDescentFlat and its knobs as faiss exposes them (index.nndescent.S ...),
// and nearly.nn_descent_graph: the approximate k-NN graph alone.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/extra_distances.h"
#include "nearly/nn_descent.h"

namespace nearly_py {

using namespace nearly;

namespace {
// faiss's index.nndescent: the build's and the search's parameters, kept alive with the index.
struct NNDescentView {
    std::shared_ptr<IndexNNDescentFlat> index;
};

int at_least(int v, int lo, const char* what) {
    if (v < lo)
        throw InvalidArgument(std::string("NNDescent: ") + what + " must be at least " + std::to_string(lo) +
                              " (got " + std::to_string(v) + ")");
    return v;
}
}  // namespace

void bind_nn_descent(py::module_& m) {
    py::class_<NNDescentView>(m, "NNDescent")
        .def_property("S", [](const NNDescentView& v) { return v.index->nndescent.S; },
                      [](NNDescentView& v, int x) { v.index->nndescent.S = at_least(x, 1, "S"); })
        .def_property("R", [](const NNDescentView& v) { return v.index->nndescent.R; },
                      [](NNDescentView& v, int x) { v.index->nndescent.R = at_least(x, 0, "R"); })
        .def_property("L", [](const NNDescentView& v) { return v.index->nndescent.L; },
                      [](NNDescentView& v, int x) { v.index->nndescent.L = at_least(x, 1, "L"); })
        .def_property("iter", [](const NNDescentView& v) { return v.index->nndescent.iter; },
                      [](NNDescentView& v, int x) { v.index->nndescent.iter = at_least(x, 0, "iter"); })
        .def_property("search_L", [](const NNDescentView& v) { return v.index->search_L; },
                      [](NNDescentView& v, int x) { v.index->search_L = at_least(x, 0, "search_L"); })
        .def_property("random_seed", [](const NNDescentView& v) { return v.index->nndescent.random_seed; },
                      [](NNDescentView& v, int x) { v.index->nndescent.random_seed = x; })
        .def_property_readonly("K", [](const NNDescentView& v) { return v.index->nndescent.K; })
        .def_property_readonly("d", [](const NNDescentView& v) { return v.index->d; })
        .def_property_readonly("ntotal", [](const NNDescentView& v) { return v.index->ntotal; })
        .def_property_readonly("has_built", [](const NNDescentView& v) { return v.index->has_built(); })
        .def_property_readonly("final_graph", [](const NNDescentView& v) {
            const auto& g = v.index->graph();
            py::array_t<int32_t> out({py::ssize_t(v.index->ntotal), py::ssize_t(v.index->nndescent.K)});
            std::copy(g.begin(), g.end(), out.mutable_data());
            return out;
        }, "(ntotal, K) neighbour ids, nearest first, -1 padded (a numpy copy; faiss's is flat).");

    py::class_<IndexNNDescentFlat, Index, std::shared_ptr<IndexNNDescentFlat>>(m, "IndexNNDescentFlat")
        .def(py::init([](int d, int K, int metric) {
                 return std::make_shared<IndexNNDescentFlat>(d, K, MetricType(metric));
             }),
             py::arg("d"), py::arg("K") = 32, py::arg("metric") = int(METRIC_L2))
        .def_property_readonly("nndescent", [](std::shared_ptr<IndexNNDescentFlat> self) { return NNDescentView{self}; });

    m.def("nn_descent_graph", [](py::handle x_obj, int K, int metric, int S, int R, int L, int iter, int seed,
                                 bool verbose, float metric_arg) {
        FloatArray x = to_array<FloatArray>(x_obj, "x");
        if (x.ndim() != 2) throw InvalidArgument("x must be a 2-D array (n, d)");
        const MetricType mt = checked_metric(metric);
        if (!metric_accepts_nan(mt)) check_finite(x.data(), size_t(x.size()), "x");
        NNDescentParams p;
        p.K = at_least(K, 1, "K");
        p.S = at_least(S, 1, "S");
        p.R = at_least(R, 0, "R");
        p.L = L > 0 ? L : K + 50;
        p.iter = at_least(iter, 0, "iter");
        p.random_seed = seed;
        const size_t n = size_t(x.shape(0)), d = size_t(x.shape(1));
        std::vector<int32_t> g;
        {
            py::gil_scoped_release release;
            g = nn_descent(x.data(), n, d, mt, metric_arg, p, verbose);
        }
        py::array_t<int32_t> out({py::ssize_t(n), py::ssize_t(K)});
        std::copy(g.begin(), g.end(), out.mutable_data());
        return out;
    }, py::arg("x"), py::arg("K"), py::arg("metric") = int(METRIC_L2), py::kw_only(), py::arg("S") = 10,
       py::arg("R") = 100, py::arg("L") = 0, py::arg("iter") = 10, py::arg("random_seed") = 2021,
       py::arg("verbose") = false, py::arg("metric_arg") = 0.f,
       "The approximate K-NN graph of x by NN-descent under any of IndexFlat's metrics: (n, K) neighbour rows, "
       "nearest first, the row itself left out, -1 padded (L: candidates per row while building, 0: K + 50; "
       "metric_arg: METRIC_Lp's p).");
}

}  // namespace nearly_py
