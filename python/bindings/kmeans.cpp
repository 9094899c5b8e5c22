// k-means: faiss's ClusteringParameters and Clustering. The Kmeans class is
// Python (python/nearly/kmeans.py), like faiss's.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/clustering_initialization.h"
#include "nearly/flat.h"
#include "nearly/index.h"
#include "nearly/kmeans.h"
#include "nearly/kmeans1d.h"
#include "nearly/progressive_dim_clustering.h"
#include "nearly/simd.h"
#include "nearly/super_kmeans.h"

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

// faiss's enum class reaches Python as plain ints (ClusteringInitMethod_*).
ClusteringInitMethod as_init_method(int v) {
    if (v < 0 || v > int(ClusteringInitMethod::AFK_MC2))
        throw InvalidArgument("init method must be ClusteringInitMethod_RANDOM (0), _KMEANS_PLUS_PLUS (1) or "
                              "_AFK_MC2 (2), got " + std::to_string(v));
    return ClusteringInitMethod(v);
}

uint16_t as_chain_length(long v) {
    if (v < 0 || v > 65535) throw InvalidArgument("afkmc2_chain_length must be in [0, 65535], got " + std::to_string(v));
    return uint16_t(v);
}

// What Clustering.train and train_encoded share. Like faiss, `index` assigns
// the points (its metric is the clustering's) and holds the centroids
// afterwards; an exact flat index assigns as the built-in search does (the
// same results, faster), any other through its search.
struct TrainArgs {
    Index* index;
    MetricType metric;
    float metric_arg;
    Index* assigner;
    FloatArray weights;
    const float* w = nullptr;

    TrainArgs(const Clustering& self, Index* index, py::handle weights_obj, idx_t n, const char* what,
              const char* point)
        : index(index),
          metric(index ? index->metric_type : (self.spherical ? METRIC_INNER_PRODUCT : METRIC_L2)),
          metric_arg(index ? index->metric_arg : 0.f),
          assigner(index && !dynamic_cast<IndexFlat*>(index) ? index : nullptr) {
        if (index && index->d != self.d)
            throw InvalidArgument("Index dimension " + std::to_string(index->d) +
                                  " not the same as data dimension " + std::to_string(self.d));
        if (weights_obj.is_none()) return;
        weights = to_array<FloatArray>(weights_obj, "weights");
        if (weights.ndim() != 1 || weights.shape(0) != n)
            throw InvalidArgument(std::string(what) + ": weights must have one entry per " + point + " (" +
                                  std::to_string(n) + "), got " + std::to_string(weights.size()));
        w = weights.data();
    }
    void refill(const Clustering& self) const {
        if (!index) return;
        index->reset();
        index->add(self.k, self.centroids.data());
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
        .def_readwrite("early_stop_threshold", &ClusteringParameters::early_stop_threshold)
        .def_property("decode_block_size", [](const ClusteringParameters& p) { return p.decode_block_size; },
                      [](ClusteringParameters& p, long v) {
                          if (v <= 0) throw InvalidArgument("decode_block_size must be positive");
                          p.decode_block_size = size_t(v);
                      })
        .def_property("init_method", [](const ClusteringParameters& p) { return int(p.init_method); },
                      [](ClusteringParameters& p, int v) { p.init_method = as_init_method(v); })
        .def_property("afkmc2_chain_length", [](const ClusteringParameters& p) { return int(p.afkmc2_chain_length); },
                      [](ClusteringParameters& p, long v) { p.afkmc2_chain_length = as_chain_length(v); });

    m.attr("ClusteringInitMethod_RANDOM") = int(ClusteringInitMethod::RANDOM);
    m.attr("ClusteringInitMethod_KMEANS_PLUS_PLUS") = int(ClusteringInitMethod::KMEANS_PLUS_PLUS);
    m.attr("ClusteringInitMethod_AFK_MC2") = int(ClusteringInitMethod::AFK_MC2);

    py::class_<ClusteringInitialization>(m, "ClusteringInitialization")
        .def(py::init<size_t, size_t>(), py::arg("d"), py::arg("k"))
        .def_readwrite("d", &ClusteringInitialization::d)
        .def_readwrite("k", &ClusteringInitialization::k)
        .def_readwrite("seed", &ClusteringInitialization::seed)
        .def_property("method", [](const ClusteringInitialization& p) { return int(p.method); },
                      [](ClusteringInitialization& p, int v) { p.method = as_init_method(v); })
        .def_property("afkmc2_chain_length",
                      [](const ClusteringInitialization& p) { return int(p.afkmc2_chain_length); },
                      [](ClusteringInitialization& p, long v) { p.afkmc2_chain_length = as_chain_length(v); })
        // nearly's form: the k centroids picked among the rows of x, away
        // from the existing ones (rows of d) when given.
        .def("init_centroids", [](const ClusteringInitialization& self, py::handle x_obj, py::handle existing_obj) {
            FloatArray x = as_matrix(x_obj, int(self.d), "x");
            FloatArray existing;
            size_t n_existing = 0;
            if (!existing_obj.is_none()) {
                existing = as_matrix(existing_obj, int(self.d), "existing");
                n_existing = size_t(existing.shape(0));
            }
            py::array_t<float> out({py::ssize_t(self.k), py::ssize_t(self.d)});
            float* c = out.mutable_data();
            {
                py::gil_scoped_release release;
                self.init_centroids(size_t(x.shape(0)), x.data(), c, n_existing,
                                    n_existing ? existing.data() : nullptr);
            }
            return out;
        }, py::arg("x"), py::arg("existing") = py::none())
        // faiss's form: init_centroids(n, swig_ptr(x), swig_ptr(centroids),
        // n_existing_centroids=0, swig_ptr(existing)=None) fills centroids.
        .def("init_centroids", [](const ClusteringInitialization& self, long n, py::handle x_obj,
                                  py::handle c_obj, long n_existing, py::handle existing_obj) {
            if (n < 0 || n_existing < 0) throw InvalidArgument("init_centroids: n and n_existing must be >= 0");
            const float* x = pointer_memory<float>(x_obj, size_t(n) * self.d, false, "x");
            float* c = pointer_memory<float>(c_obj, self.k * self.d, true, "centroids");
            const float* existing = nullptr;
            if (n_existing > 0) {
                if (existing_obj.is_none())
                    throw InvalidArgument("init_centroids: n_existing_centroids > 0 needs existing_centroids");
                existing = pointer_memory<float>(existing_obj, size_t(n_existing) * self.d, false, "existing_centroids");
            }
            py::gil_scoped_release release;
            self.init_centroids(size_t(n), x, c, size_t(n_existing), existing);
        }, py::arg("n"), py::arg("x"), py::arg("centroids"), py::arg("n_existing_centroids") = 0,
           py::arg("existing_centroids") = py::none());

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
            const TrainArgs a(self, index, weights_obj, x.shape(0), "Clustering.train", "training vector");
            std::unique_ptr<IndexAssignStep> step;
            if (a.assigner) step.reset(new IndexAssignStep(*a.assigner));
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data(), a.metric, step.get(), a.metric_arg, a.w);
            a.refill(self);
        }, py::arg("x"), py::arg("index") = nullptr, py::arg("weights") = py::none())
        // faiss's train_encoded(codes, codec, index, weights=None): the points
        // are codec's codes (n x sa_code_size() bytes), decoded a block of
        // decode_block_size at a time.
        .def("train_encoded", [](Clustering& self, py::handle codes_obj, const Index& codec, Index* index,
                                 py::handle weights_obj) {
            auto codes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(codes_obj);
            const size_t cs = codec.sa_code_size();
            if (!codes || codes.ndim() != 2 || size_t(codes.shape(1)) != cs)
                throw InvalidArgument("Clustering.train_encoded: codes must be a 2-D uint8 array of " +
                                      std::to_string(cs) + " bytes a row (the codec's sa_code_size)");
            if (codec.d != self.d)
                throw InvalidArgument("Clustering.train_encoded: the codec has d = " + std::to_string(codec.d) +
                                      ", the clustering d = " + std::to_string(self.d));
            const TrainArgs a(self, index, weights_obj, codes.shape(0), "Clustering.train_encoded", "code");
            py::gil_scoped_release release;
            self.train_encoded(codes.shape(0), codes.data(), codec, a.metric, a.assigner, a.metric_arg, a.w);
            a.refill(self);
        }, py::arg("codes"), py::arg("codec"), py::arg("index") = nullptr, py::arg("weights") = py::none())
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

    py::class_<ProgressiveDimClusteringParameters, ClusteringParameters>(m, "ProgressiveDimClusteringParameters")
        .def(py::init<>())
        .def_readwrite("progressive_dim_steps", &ProgressiveDimClusteringParameters::progressive_dim_steps)
        .def_readwrite("apply_pca", &ProgressiveDimClusteringParameters::apply_pca);

    py::class_<ProgressiveDimClustering, ProgressiveDimClusteringParameters>(
        m, "ProgressiveDimClustering",
        "faiss's ProgressiveDimClustering: k-means in 1 dimension of the PCA basis, then in exponentially more, "
        "each step warm-started from the last (L2).")
        .def(py::init([](int d, int k, const ProgressiveDimClusteringParameters* cp) {
                 return cp ? ProgressiveDimClustering(d, k, *cp) : ProgressiveDimClustering(d, k);
             }),
             py::arg("d"), py::arg("k"), py::arg("cp") = nullptr)
        .def_property_readonly("d", [](const ProgressiveDimClustering& self) { return self.d; })
        .def_property_readonly("k", [](const ProgressiveDimClustering& self) { return self.k; })
        // faiss's train(n, swig_ptr(x), factory): x holds n rows of d; the
        // factory, called with each step's dimension, gives the index that
        // assigns (ProgressiveDimIndexFactory: exact).
        .def("train", [](ProgressiveDimClustering& self, long long n, py::handle x_obj, py::object factory) {
            if (n < 0) throw InvalidArgument("ProgressiveDimClustering.train: n must be >= 0");
            const float* x = pointer_memory<float>(x_obj, size_t(n) * self.d, false, "x");
            ProgressiveDimClustering::IndexFactory make;
            if (!factory.is_none())
                make = [&factory](int dim) {
                    py::gil_scoped_acquire gil;
                    py::object index = factory(dim);
                    try {
                        return index.cast<IndexPtr>();
                    } catch (const py::cast_error&) {
                        throw InvalidArgument("ProgressiveDimClustering.train: the factory must return an index");
                    }
                };
            py::gil_scoped_release release;
            self.train(idx_t(n), x, make);
        }, py::arg("n"), py::arg("x"), py::arg("factory") = py::none())
        .def_property_readonly("centroids", [](const ProgressiveDimClustering& self) {
            return py::array_t<float>(py::ssize_t(self.centroids.size()), self.centroids.data());
        }, "k * d floats after train (a numpy copy).")
        .def_property_readonly("obj", [](const ProgressiveDimClustering& self) {
            py::array_t<double> out(self.iteration_stats.size());
            for (size_t i = 0; i < self.iteration_stats.size(); i++) out.mutable_data()[i] = self.iteration_stats[i].obj;
            return out;
        }, "Objective of every iteration of every step (float64).")
        .def_property_readonly("iteration_stats", [](const ProgressiveDimClustering& self) {
            return IterationStatsVector{self.iteration_stats};
        });

    py::class_<Clustering1D, Clustering>(m, "Clustering1D",
                                         "faiss's Clustering1D: exact 1-D k-means by dynamic programming (kmeans1d.h).")
        .def(py::init([](int k, const ClusteringParameters* cp) {
                 if (k < 1) throw InvalidArgument("Clustering1D: k must be positive");
                 return cp ? Clustering1D(k, *cp) : Clustering1D(k);
             }),
             py::arg("k"), py::arg("cp") = nullptr)
        .def("train_exact", [](Clustering1D& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, 1, "x");
            py::gil_scoped_release release;
            self.train_exact(x.shape(0), x.data());
        }, py::arg("x"), "The k centroids of the values that minimize the k-means objective exactly.");
    // faiss's pointer-style test entry points: smawk(nrows, ncols, swig_ptr(x), swig_ptr(argmins)),
    // kmeans1d(swig_ptr(x), n, nclusters, swig_ptr(centroids)).
    m.def("smawk", [](long long nrows, long long ncols, py::handle x_obj, py::handle out_obj) {
        if (nrows < 0 || ncols < 1) throw InvalidArgument("smawk: nrows >= 0 and ncols >= 1");
        FloatArray x = to_array<FloatArray>(x_obj, "x");
        if (size_t(x.size()) < size_t(nrows) * size_t(ncols)) throw InvalidArgument("smawk: x holds fewer than nrows * ncols values");
        auto out = py::cast<py::array>(out_obj);
        if (!out || out.dtype().kind() != 'i' || out.itemsize() != 8 || size_t(out.size()) < size_t(nrows) ||
            !(out.flags() & py::array::c_style))
            throw InvalidArgument("smawk: argmins must be a contiguous int64 array of nrows entries");
        const float* a = x.data();
        idx_t* o = static_cast<idx_t*>(out.mutable_data());
        py::gil_scoped_release release;
        smawk(size_t(nrows), size_t(ncols), [a, ncols](size_t i, size_t j) { return double(a[i * ncols + j]); }, o);
    }, py::arg("nrows"), py::arg("ncols"), py::arg("x"), py::arg("argmins"));
    m.def("kmeans1d", [](py::handle x_obj, long long n, long long k, py::handle c_obj) {
        FloatArray x = to_array<FloatArray>(x_obj, "x");
        if (n < 0 || size_t(x.size()) < size_t(n)) throw InvalidArgument("kmeans1d: x holds fewer than n values");
        if (k < 1) throw InvalidArgument("kmeans1d: nclusters must be positive");
        auto c = py::cast<py::array>(c_obj);
        if (!c || c.dtype().kind() != 'f' || c.itemsize() != 4 || size_t(c.size()) < size_t(k) ||
            !(c.flags() & py::array::c_style))
            throw InvalidArgument("kmeans1d: centroids must be a contiguous float32 array of nclusters entries");
        float* cp = static_cast<float*>(c.mutable_data());
        const float* xp = x.data();
        py::gil_scoped_release release;
        return kmeans1d(xp, size_t(n), size_t(k), cp);
    }, py::arg("x"), py::arg("n"), py::arg("nclusters"), py::arg("centroids"),
       "Exact 1-D k-means: the centroids (ascending) written into centroids; returns the imbalance factor.");

    py::class_<SuperKMeansParameters, ClusteringParameters>(m, "SuperKMeansParameters")
        .def(py::init<>())
        .def_readwrite("d_prime_fraction", &SuperKMeansParameters::d_prime_fraction)
        .def_readwrite("pdx_block_size", &SuperKMeansParameters::pdx_block_size)
        .def_readwrite("ad_epsilon_factor", &SuperKMeansParameters::ad_epsilon_factor)
        .def_readwrite("pruning_target_low", &SuperKMeansParameters::pruning_target_low)
        .def_readwrite("pruning_target_high", &SuperKMeansParameters::pruning_target_high)
        .def_readwrite("d_prime_adjust", &SuperKMeansParameters::d_prime_adjust)
        .def_readwrite("d_prime_min", &SuperKMeansParameters::d_prime_min)
        .def_readwrite("x_batch", &SuperKMeansParameters::x_batch)
        .def_readwrite("y_batch", &SuperKMeansParameters::y_batch)
        .def_readwrite("omp_chunk", &SuperKMeansParameters::omp_chunk);

    py::class_<SuperKMeans>(m, "SuperKMeans",
                            "faiss's SuperKMeans: k-means whose assignments skip most distances by ADSampling's "
                            "test in a randomly rotated space (L2; for large k and d).")
        .def(py::init([](int d, int k, const SuperKMeansParameters* cp) {
                 return cp ? SuperKMeans(d, k, *cp) : SuperKMeans(d, k);
             }),
             py::arg("d"), py::arg("k"), py::arg("cp") = nullptr)
        .def_readonly("d", &SuperKMeans::d)
        .def_readonly("k", &SuperKMeans::k)
        .def_readwrite("cp", &SuperKMeans::cp)
        .def("train", [](SuperKMeans& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            py::gil_scoped_release release;
            self.train(x.shape(0), x.data());
        }, py::arg("x"))
        .def_property_readonly("centroids", [](const SuperKMeans& self) {
            py::array_t<float> out(self.centroids.size());
            std::copy(self.centroids.begin(), self.centroids.end(), out.mutable_data());
            return out;
        })
        .def_property_readonly("gemm_pruning_rates", [](const SuperKMeans& self) {
            py::array_t<float> out(self.gemm_pruning_rates.size());
            std::copy(self.gemm_pruning_rates.begin(), self.gemm_pruning_rates.end(), out.mutable_data());
            return out;
        })
        .def_property_readonly("iteration_stats",
                               [](const SuperKMeans& self) { return IterationStatsVector{self.iteration_stats}; });

    // Test hook: the active level's select_within (simd.h).
    m.def("_select_within", [](py::handle ip_obj, py::handle yn_obj, float base, float limit) {
        FloatArray ip = to_array<FloatArray>(ip_obj, "ip"), yn = to_array<FloatArray>(yn_obj, "yn");
        if (ip.size() != yn.size()) throw InvalidArgument("_select_within: ip and yn of the same length");
        const size_t n = size_t(ip.size());
        std::vector<int32_t> idx(n + 16);
        std::vector<float> out(n + 16);
        const size_t m = simd().select_within(ip.data(), yn.data(), n, base, limit, idx.data(), out.data());
        py::array_t<int32_t> I(m);
        py::array_t<float> V(m);
        std::copy(idx.begin(), idx.begin() + m, I.mutable_data());
        std::copy(out.begin(), out.begin() + m, V.mutable_data());
        return py::make_tuple(I, V);
    }, py::arg("ip"), py::arg("yn"), py::arg("base"), py::arg("limit"));
    m.def("_precompute_ad_thresholds", [](int d, double epsilon) {
        std::vector<float> c = precompute_ad_thresholds(d, epsilon);
        py::array_t<float> out(c.size());
        std::copy(c.begin(), c.end(), out.mutable_data());
        return out;
    }, py::arg("d"), py::arg("epsilon"));
    m.def("super_kmeans_assign_iteration", [](py::handle X_obj, py::handle Y_obj, py::handle tau_obj,
                                              py::handle A_obj, long long d_prime, py::handle coeff_obj,
                                              const SuperKMeansParameters& cp) {
        // In place, as faiss's: tau and the assignments are float32 / int32
        // arrays of n, checked here rather than reinterpreted.
        auto exact = [](py::handle h, const char* what, const char* dtype, bool ok) {
            if (!ok)
                throw py::type_error(std::string("super_kmeans_assign_iteration: ") + what + " must be a C-contiguous " +
                                     dtype + " numpy array");
            return py::reinterpret_borrow<py::array>(h);
        };
        FloatArray X = to_array<FloatArray>(X_obj, "X"), Y = to_array<FloatArray>(Y_obj, "Y");
        if (X.ndim() != 2 || Y.ndim() != 2 || X.shape(1) != Y.shape(1))
            throw InvalidArgument("super_kmeans_assign_iteration: X (n, d) and Y (k, d) must share d");
        const size_t n = size_t(X.shape(0)), d = size_t(X.shape(1)), k = size_t(Y.shape(0));
        py::array tau = exact(tau_obj, "tau", "float32",
                              py::isinstance<py::array_t<float>>(tau_obj) &&
                                  (py::reinterpret_borrow<py::array>(tau_obj).flags() & py::array::c_style));
        py::array A = exact(A_obj, "assignments", "int32",
                            py::isinstance<py::array_t<int32_t>>(A_obj) &&
                                (py::reinterpret_borrow<py::array>(A_obj).flags() & py::array::c_style));
        FloatArray coeff = to_array<FloatArray>(coeff_obj, "ad_coeff");
        if (size_t(tau.size()) != n || size_t(A.size()) != n)
            throw InvalidArgument("super_kmeans_assign_iteration: tau and the assignments must hold n = " +
                                  std::to_string(n) + " entries");
        if (size_t(coeff.size()) < d + 1)
            throw InvalidArgument("super_kmeans_assign_iteration: ad_coeff must hold d + 1 = " + std::to_string(d + 1) +
                                  " thresholds");
        if (!tau.writeable() || !A.writeable())
            throw InvalidArgument("super_kmeans_assign_iteration: tau and the assignments are written in place");
        if (d_prime < 1 || size_t(d_prime) >= d)
            throw InvalidArgument("super_kmeans_assign_iteration: d_prime must be in [1, d)");
        int64_t total = 0, pruned = 0;
        float* t = static_cast<float*>(tau.mutable_data());
        int32_t* a = static_cast<int32_t*>(A.mutable_data());
        {
            py::gil_scoped_release release;
            super_kmeans_assign_iteration(X.data(), n, d, Y.data(), k, t, a, size_t(d_prime), coeff.data(), cp,
                                          &total, &pruned);
        }
        return py::make_tuple(total, pruned);
    }, py::arg("X"), py::arg("Y"), py::arg("tau"), py::arg("assignments"), py::arg("d_prime"), py::arg("ad_coeff"),
       py::arg("cp"),
       "One pruned assignment pass (tau and assignments updated in place); returns (pairs, pairs pruned at d').");
}

}  // namespace nearly_py
