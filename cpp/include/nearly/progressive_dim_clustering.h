// faiss's ProgressiveDimClustering (Liu et al., "Improved Residual Vector
// Quantization for High-dimensional Approximate Nearest Neighbor Search",
// AAAI 2015): k-means first in 1 dimension of the data's PCA basis, then in
// exponentially more (d^((i + 1) / steps) at step i), each step starting
// from the last one's centroids padded with zeros; the centroids are rotated
// back at the end. The leading PCA directions carry most of the variance,
// so the early, cheap steps place the centroids and the last ones refine
// them: a lower objective than plain k-means for the same iterations. The
// residual quantizer trains its codebooks with it.
#pragma once
#include <functional>
#include <vector>

#include "nearly/index.h"
#include "nearly/kmeans.h"

namespace nearly {

struct ProgressiveDimClusteringParameters : ClusteringParameters {
    int progressive_dim_steps = 10;
    bool apply_pca = true;
    ProgressiveDimClusteringParameters() { niter = 10; }  // per step, faiss's default
    explicit ProgressiveDimClusteringParameters(const ClusteringParameters& cp) : ClusteringParameters(cp) {}
};

struct ProgressiveDimClustering : ProgressiveDimClusteringParameters {
    size_t d, k;
    std::vector<float> centroids;  // k x d after train
    // Every step's iterations, one after the other.
    std::vector<ClusteringIterationStats> iteration_stats;

    ProgressiveDimClustering(int d, int k,
                             const ProgressiveDimClusteringParameters& params = ProgressiveDimClusteringParameters());
    // Index that assigns the points of a step in dimension dim (faiss's
    // ProgressiveDimIndexFactory: a GPU index, say); null, or a factory
    // returning an exact flat index: the built-in exact assignment. L2.
    using IndexFactory = std::function<IndexPtr(int dim)>;
    void train(idx_t n, const float* x, const IndexFactory& factory = nullptr);
};

}  // namespace nearly
