// Exact k-means in one dimension (Grønlund et al., "Fast Exact k-Means,
// k-Medians and Bregman Divergence Clustering in 1D", 2017, section 2.2):
// over the sorted points, D[m][i] = min over j <= i of D[m - 1][j - 1] +
// cost(j .. i), the cost a stretch's sum of squared deviations from its mean
// (prefix sums in double). Each layer's matrix is totally monotone, so SMAWK
// finds its row minima in O(n): O(k n) in all. faiss's kmeans1d, smawk and
// Clustering1D.
#pragma once
#include <cstddef>
#include <functional>

#include "nearly/common.h"
#include "nearly/kmeans.h"

namespace nearly {

// The leftmost minimum of each row of a totally monotone nrows x ncols
// matrix (lookup(i, j): its entry), by SMAWK: O(nrows + ncols) lookups.
void smawk(size_t nrows, size_t ncols, const std::function<double(size_t, size_t)>& lookup, idx_t* argmins);

// The k centroids (ascending) minimizing the sum of squared distances of the
// n values to their nearest centroid; returns the clusters' imbalance
// factor (faiss's return value). n >= k.
double kmeans1d(const float* x, size_t n, size_t k, float* centroids);

// faiss's Clustering1D: Clustering(1, k) whose train_exact runs kmeans1d on
// (a sample of at most k * max_points_per_centroid of) the values.
struct Clustering1D : Clustering {
    explicit Clustering1D(int k, const ClusteringParameters& params = ClusteringParameters())
        : Clustering(1, k, params) {}
    void train_exact(idx_t n, const float* x);
};

}  // namespace nearly
