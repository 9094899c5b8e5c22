"""faiss's Kmeans wrapper over the native Clustering.

Keyword arguments are the fields of ClusteringParameters (niter, nredo, verbose,
spherical, seed, min_points_per_centroid, max_points_per_centroid,
int_centroids, frozen_centroids, early_stop_threshold, init_method,
afkmc2_chain_length); an unknown one raises
AttributeError, as in faiss.
"""
import numpy as np

from . import _nearly


class Kmeans:
    """k-means with faiss's API: ``train(x)`` returns the final objective and
    fills ``centroids`` (k, d), ``obj`` (per iteration), ``iteration_stats``;
    ``index`` (IndexFlatL2, or IndexFlatIP when spherical) holds the centroids.
    """

    def __init__(self, d, k, **kwargs):
        self.d = int(d)
        self.reset(k)
        # As faiss: progressive_dim_steps among the settings asks for
        # ProgressiveDimClustering (PCA basis, growing dimension; L2).
        self.cp = (_nearly.ProgressiveDimClusteringParameters() if "progressive_dim_steps" in kwargs
                   else _nearly.ClusteringParameters())
        for name, value in kwargs.items():
            if name == "gpu":
                if value not in (False, 0):
                    raise RuntimeError("Kmeans: gpu=True is not supported on the CPU build; use gpu=False")
                continue
            getattr(self.cp, name)  # AttributeError for an unknown field, like faiss
            setattr(self.cp, name, value)
        self.gpu = False
        self.set_index()

    def set_index(self):
        self.index = _nearly.IndexFlatIP(self.d) if self.cp.spherical else _nearly.IndexFlatL2(self.d)

    def reset(self, k=None):
        """Prepares a new clustering, possibly with another number of centroids."""
        if k is not None:
            self.k = int(k)
        self.centroids = None
        self.obj = None
        self.iteration_stats = None

    def train(self, x, weights=None, init_centroids=None):
        """weights: one per row of x (a centroid is the weighted mean of its
        points); init_centroids: up to k rows where the iterations start."""
        x = np.ascontiguousarray(x, dtype="float32")
        if x.ndim != 2 or x.shape[1] != self.d:
            raise _nearly.InvalidArgumentError(
                f"Kmeans.train: x must have shape (n, {self.d}), got {x.shape}")
        if isinstance(self.cp, _nearly.ProgressiveDimClusteringParameters):
            if weights is not None or init_centroids is not None or self.cp.spherical:
                raise _nearly.InvalidArgumentError(
                    "Kmeans: weights, init_centroids and spherical do not go with progressive_dim_steps (nor in faiss)")
            clus = _nearly.ProgressiveDimClustering(self.d, self.k, self.cp)
            clus.train(len(x), x)
            return self._keep(clus)
        clus = _nearly.Clustering(self.d, self.k, self.cp)
        if init_centroids is not None:
            init_centroids = np.ascontiguousarray(init_centroids, dtype="float32")
            if init_centroids.ndim != 2 or init_centroids.shape[1] != self.d:
                raise _nearly.InvalidArgumentError(
                    f"Kmeans.train: init_centroids must have shape (nc, {self.d}), got {init_centroids.shape}")
            clus.centroids = init_centroids
        clus.train(x, self.index, weights)
        return self._keep(clus)

    def _keep(self, clus):
        """Takes a trained clustering's centroids and statistics; returns the final objective."""
        self.centroids = clus.centroids.reshape(self.k, self.d)
        self.obj = clus.obj
        # faiss's Kmeans keeps the statistics as a list of dicts.
        self.iteration_stats = [
            {"obj": st.obj, "time": st.time, "time_search": st.time_search,
             "imbalance_factor": st.imbalance_factor, "nsplit": st.nsplit}
            for st in (clus.iteration_stats.at(i) for i in range(clus.iteration_stats.size()))]
        return float(self.obj[-1]) if self.obj.size > 0 else 0.0

    def assign(self, x):
        """(D, I) of the nearest centroid of each row of x, both 1-D."""
        x = np.ascontiguousarray(x, dtype="float32")
        assert self.centroids is not None, "should train before assigning"
        self.index.reset()
        self.index.add(self.centroids)
        D, I = self.index.search(x, 1)
        return D.ravel(), I.ravel()


class ProgressiveDimIndexFactory:
    """faiss's ProgressiveDimIndexFactory: called with a step's dimension, the
    index ProgressiveDimClustering assigns that step's points with (exact L2;
    nearly then runs its own exact assignment, the same results)."""

    def __call__(self, dim):
        return _nearly.IndexFlatL2(int(dim))


class SuperKmeans:
    """faiss's SuperKmeans: Kmeans's surface over SuperKMeans (k-means whose
    assignments skip most distances; L2). Keyword arguments are the fields
    of SuperKMeansParameters (niter, seed, verbose, max_points_per_centroid,
    d_prime_fraction, ...). ``train(x)`` returns the final objective and
    fills ``centroids`` (k, d), ``obj``, ``iteration_stats`` and
    ``gemm_pruning_rates``; ``assign(x)`` gives each row's nearest centroid."""

    def __init__(self, d, k, **kwargs):
        self.d, self.k = int(d), int(k)
        self.cp = _nearly.SuperKMeansParameters()
        for name, value in kwargs.items():
            getattr(self.cp, name)  # AttributeError for an unknown field, like faiss
            setattr(self.cp, name, value)
        self.index = _nearly.IndexFlatL2(self.d)
        self.centroids = self.obj = self.iteration_stats = self.gemm_pruning_rates = None

    def train(self, x):
        x = np.ascontiguousarray(x, dtype="float32")
        if x.ndim != 2 or x.shape[1] != self.d:
            raise _nearly.InvalidArgumentError(f"SuperKmeans.train: x must have shape (n, {self.d}), got {x.shape}")
        sk = _nearly.SuperKMeans(self.d, self.k, self.cp)
        sk.train(x)
        self.centroids = sk.centroids.reshape(self.k, self.d)
        stats = [sk.iteration_stats.at(i) for i in range(sk.iteration_stats.size())]
        self.obj = np.array([st.obj for st in stats], dtype=np.float64)
        self.iteration_stats = [
            {"obj": st.obj, "time": st.time, "time_search": st.time_search,
             "imbalance_factor": st.imbalance_factor, "nsplit": st.nsplit} for st in stats]
        self.gemm_pruning_rates = sk.gemm_pruning_rates
        self.index.reset()
        self.index.add(self.centroids)
        return float(self.obj[-1]) if self.obj.size > 0 else 0.0

    def assign(self, x):
        """(D, I) of the nearest centroid of each row of x, both 1-D."""
        assert self.centroids is not None, "should train before assigning"
        D, I = self.index.search(np.ascontiguousarray(x, dtype="float32"), 1)
        return D.ravel(), I.ravel()


def precompute_ad_thresholds(d, epsilon):
    """faiss's ADSampling threshold table (a Float32Vector of d + 1 values):
    coeff[p] = chi2_quantile(p, 1 - epsilon) / d."""
    from .compat import Float32Vector
    out = Float32Vector()
    out.assign(_nearly._precompute_ad_thresholds(int(d), float(epsilon)))
    return out
