// k-means: faiss's ClusteringParameters and Clustering. The Kmeans class is
// Python (python/nearly/kmeans.py), like faiss's.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/index.h"
#include "nearly/kmeans.h"

namespace nearly_py {

using namespace nearly;

namespace {
struct IterationStatsVector {
    std::vector<ClusteringIterationStats> items;
    ClusteringIterationStats at(long i) const {
        if (i < 0) i += long(items.size());
        if (i < 0 || size_t(i) >= items.size()) throw py::index_error("iteration_stats index out of range");
        return items[size_t(i)];
    }
};
}  // namespace

void bind_kmeans(py::module_& m) {
    py::class_<ClusteringParameters>(m, "ClusteringParameters")
        .def(py::init<>())
        .def_readwrite("niter", &ClusteringParameters::niter)
        .def_readwrite("nredo", &ClusteringParameters::nredo)
        .def_readwrite("verbose", &ClusteringParameters::verbose)
        .def_readwrite("spherical", &ClusteringParameters::spherical)
        .def_readwrite("min_points_per_centroid", &ClusteringParameters::min_points_per_centroid)
        .def_readwrite("max_points_per_centroid", &ClusteringParameters::max_points_per_centroid)
        .def_readwrite("seed", &ClusteringParameters::seed)
        .def_readwrite("int_centroids", &ClusteringParameters::int_centroids)
        .def_readwrite("frozen_centroids", &ClusteringParameters::frozen_centroids)
        .def_readwrite("early_stop_threshold", &ClusteringParameters::early_stop_threshold);

    py::class_<ClusteringIterationStats>(m, "ClusteringIterationStats")
        .def_readonly("obj", &ClusteringIterationStats::obj)
        .def_readonly("time", &ClusteringIterationStats::time)
        .def_readonly("time_search", &ClusteringIterationStats::time_search)
        .def_readonly("imbalance_factor", &ClusteringIterationStats::imbalance_factor)
        .def_readonly("nsplit", &ClusteringIterationStats::nsplit);
    // faiss hands out std::vector<ClusteringIterationStats>: size(), at(i).
    py::class_<IterationStatsVector>(m, "ClusteringIterationStatsVector")
        .def("size", [](const IterationStatsVector& v) { return v.items.size(); })
        .def("__len__", [](const IterationStatsVector& v) { return v.items.size(); })
        .def("at", &IterationStatsVector::at, py::arg("i"))
        .def("__getitem__", &IterationStatsVector::at, py::arg("i"));

    py::class_<Clustering, ClusteringParameters>(m, "Clustering")
        .def(py::init([](int d, int k, const ClusteringParameters* cp) {
                 return cp ? Clustering(d, k, *cp) : Clustering(d, k);
             }),
             py::arg("d"), py::arg("k"), py::arg("cp") = nullptr)
        .def_readonly("d", &Clustering::d)
        .def_readonly("k", &Clustering::k)
        // Like faiss: `index` assigns the points (its metric is the clustering
        // metric) and holds the centroids afterwards.
        .def("train", [](Clustering& self, py::handle x_obj, Index* index, py::handle weights_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            if (index && index->d != self.d)
                throw InvalidArgument("Index dimension " + std::to_string(index->d) +
                                      " not the same as data dimension " + std::to_string(self.d));
            FloatArray weights;
            if (!weights_obj.is_none()) {
                weights = to_array<FloatArray>(weights_obj, "weights");
                if (weights.ndim() != 1 || weights.shape(0) != x.shape(0))
                    throw InvalidArgument("Clustering.train: weights must have one entry per training vector (" +
                                          std::to_string(x.shape(0)) + "), got " + std::to_string(weights.size()));
            }
            MetricType metric = index ? index->metric_type : (self.spherical ? METRIC_INNER_PRODUCT : METRIC_L2);
            const float* w = weights_obj.is_none() ? nullptr : weights.data();
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data(), metric, nullptr, 0, w);
            if (index) {
                index->reset();
                index->add(self.k, self.centroids.data());
            }
        }, py::arg("x"), py::arg("index") = nullptr, py::arg("weights") = py::none())
        .def_property("centroids", [](const Clustering& self) {
            py::array_t<float> out(self.centroids.size());
            std::copy(self.centroids.begin(), self.centroids.end(), out.mutable_data());
            return out;
        }, [](Clustering& self, py::handle c_obj) {
            // Initial centroids for the next train(): up to k rows of d.
            FloatArray c = to_array<FloatArray>(c_obj, "centroids");
            const size_t size = size_t(c.size());
            if (size % size_t(self.d) != 0 || size > size_t(self.k) * size_t(self.d))
                throw InvalidArgument("Clustering.centroids: at most k x d floats, a whole number of rows of d");
            self.centroids.assign(c.data(), c.data() + size);
        })
        .def_property_readonly("obj", [](const Clustering& self) {
            py::array_t<double> out(self.iteration_stats.size());
            for (size_t i = 0; i < self.iteration_stats.size(); i++) out.mutable_data()[i] = self.iteration_stats[i].obj;
            return out;
        }, "Objective of every iteration (float64 numpy array, like faiss's Kmeans.obj).")
        .def_property_readonly("iteration_stats",
                               [](const Clustering& self) { return IterationStatsVector{self.iteration_stats}; });
}

}  // namespace nearly_py
