#include "nearly/progressive_dim_clustering.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "nearly/flat.h"
#include "nearly/pca.h"

namespace nearly {

ProgressiveDimClustering::ProgressiveDimClustering(int d_, int k_, const ProgressiveDimClusteringParameters& params)
    : ProgressiveDimClusteringParameters(params), d(size_t(d_)), k(size_t(k_)) {
    NEARLY_CHECK_ARG(d_ > 0 && k_ > 0, "ProgressiveDimClustering: d and k must be positive");
}

void ProgressiveDimClustering::train(idx_t n, const float* x, const IndexFactory& factory) {
    NEARLY_CHECK_ARG(progressive_dim_steps >= 1,
                     "ProgressiveDimClustering: progressive_dim_steps must be at least 1, got " +
                         std::to_string(progressive_dim_steps));
    check_finite(x, size_t(n) * d, "ProgressiveDimClustering training data");
    const size_t nn = size_t(n);
    iteration_stats.clear();
    std::vector<float> xbuf;
    PCAMatrix pca{int(d), int(d)};
    if (apply_pca) {
        if (verbose) std::printf("Training PCA transform\n");
        pca.train(n, x);
        xbuf.resize(nn * d);
        pca.apply(n, x, xbuf.data());
        x = xbuf.data();
    }
    size_t d_prev = 0;
    for (int it = 0; it < progressive_dim_steps; it++) {
        const size_t di = size_t(std::pow(double(d), (1. + it) / progressive_dim_steps));
        if (verbose) std::printf("Progressive dim step %d: cluster in dimension %zu\n", it, di);
        Clustering clus(int(di), int(k), *this);
        if (d_prev > 0) {  // warm start, padded with zeros
            clus.centroids.assign(k * di, 0.f);
            for (size_t c = 0; c < k; c++)
                std::copy_n(&centroids[c * d_prev], std::min(d_prev, di), &clus.centroids[c * di]);
        }
        std::vector<float> xsub(nn * di);
        for (size_t i = 0; i < nn; i++) std::copy_n(x + i * d, di, &xsub[i * di]);
        IndexPtr index = factory ? factory(int(di)) : nullptr;
        NEARLY_CHECK_ARG(!index || index->d == int(di), "ProgressiveDimClustering: the factory made an index of d = " +
                                                            std::to_string(index ? index->d : 0) + " for dimension " +
                                                            std::to_string(di));
        std::unique_ptr<IndexAssignStep> step;
        if (index && !dynamic_cast<IndexFlat*>(index.get())) step = std::make_unique<IndexAssignStep>(*index);
        clus.train(n, xsub.data(), index ? index->metric_type : METRIC_L2, step.get());
        centroids = std::move(clus.centroids);
        iteration_stats.insert(iteration_stats.end(), clus.iteration_stats.begin(), clus.iteration_stats.end());
        d_prev = di;
    }
    if (d_prev < d) {  // pow rounding short of d: pad the last columns with zeros
        std::vector<float> full(k * d, 0.f);
        for (size_t c = 0; c < k; c++) std::copy_n(&centroids[c * d_prev], d_prev, &full[c * d]);
        centroids.swap(full);
    }
    if (apply_pca) {
        if (verbose) std::printf("Revert PCA transform on centroids\n");
        std::vector<float> back(k * d);
        pca.reverse(idx_t(k), centroids.data(), back.data());
        centroids.swap(back);
    }
}

}  // namespace nearly
