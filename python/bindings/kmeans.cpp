// k-means: faiss's ClusteringParameters and Clustering. The Kmeans class is
// Python (python/nearly/kmeans.py), like faiss's.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/index.h"
#include "nearly/kmeans.h"

namespace nearly_py {

using namespace nearly;

void bind_kmeans(py::module_& m) {
    py::class_<ClusteringParameters>(m, "ClusteringParameters")
        .def(py::init<>())
        .def_readwrite("niter", &ClusteringParameters::niter)
        .def_readwrite("nredo", &ClusteringParameters::nredo)
        .def_readwrite("verbose", &ClusteringParameters::verbose)
        .def_readwrite("spherical", &ClusteringParameters::spherical)
        .def_readwrite("min_points_per_centroid", &ClusteringParameters::min_points_per_centroid)
        .def_readwrite("max_points_per_centroid", &ClusteringParameters::max_points_per_centroid)
        .def_readwrite("seed", &ClusteringParameters::seed);

    py::class_<Clustering, ClusteringParameters>(m, "Clustering")
        .def(py::init([](int d, int k, const ClusteringParameters* cp) {
                 return cp ? Clustering(d, k, *cp) : Clustering(d, k);
             }),
             py::arg("d"), py::arg("k"), py::arg("cp") = nullptr)
        .def_readonly("d", &Clustering::d)
        .def_readonly("k", &Clustering::k)
        // Like faiss: `index` assigns the points (its metric is the clustering
        // metric) and holds the centroids afterwards.
        .def("train", [](Clustering& self, py::handle x_obj, Index* index) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            if (index && index->d != self.d)
                throw InvalidArgument("Index dimension " + std::to_string(index->d) +
                                      " not the same as data dimension " + std::to_string(self.d));
            MetricType metric = index ? index->metric_type : (self.spherical ? METRIC_INNER_PRODUCT : METRIC_L2);
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data(), metric);
            if (index) {
                index->reset();
                index->add(self.k, self.centroids.data());
            }
        }, py::arg("x"), py::arg("index") = nullptr)
        .def_property_readonly("centroids", [](const Clustering& self) {
            py::array_t<float> out(self.centroids.size());
            std::copy(self.centroids.begin(), self.centroids.end(), out.mutable_data());
            return out;
        })
        .def_property_readonly("obj", [](const Clustering& self) {
            py::array_t<double> out(self.iteration_stats.size());
            for (size_t i = 0; i < self.iteration_stats.size(); i++) out.mutable_data()[i] = self.iteration_stats[i].obj;
            return out;
        }, "Objective of every iteration (float64 numpy array, like faiss's Kmeans.obj).")
        .def_property_readonly("iteration_stats", [](const Clustering& self) {
            py::list out;
            for (const auto& s : self.iteration_stats)
                out.append(py::dict(py::arg("obj") = s.obj, py::arg("time") = s.time,
                                    py::arg("time_search") = s.time_search,
                                    py::arg("imbalance_factor") = s.imbalance_factor, py::arg("nsplit") = s.nsplit));
            return out;
        });
}

}  // namespace nearly_py
