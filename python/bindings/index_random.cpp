// IndexRandom: faiss's stand-in index that answers random results.
#include <pybind11/pybind11.h>

#include "nearly/index_random.h"

namespace py = pybind11;

namespace nearly_py {

using namespace nearly;

void bind_index_random(py::module_& m) {
    py::class_<IndexRandom, Index, std::shared_ptr<IndexRandom>>(
        m, "IndexRandom",
        "faiss's IndexRandom(d, ntotal, seed, metric): k distinct random ids per query with increasing random "
        "distances (faiss's, value for value), storing nothing; for timing what surrounds a search.")
        .def(py::init([](long long d, long long ntotal, long long seed, int metric) {
                 if (d < 1) throw InvalidArgument("IndexRandom: d must be positive");
                 if (metric != int(METRIC_L2) && metric != int(METRIC_INNER_PRODUCT))
                     throw InvalidArgument("IndexRandom: metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
                 return std::make_shared<IndexRandom>(int(d), ntotal, seed, MetricType(metric));
             }),
             py::arg("d"), py::arg("ntotal") = 0, py::arg("seed") = 1234, py::arg("metric") = int(METRIC_L2))
        .def_readwrite("seed", &IndexRandom::seed);
}

}  // namespace nearly_py
