// faiss's SuperKMeans (Kuffo, Hepkema & Boncz, "A Super Fast K-means for
// Indexing Vector Embeddings", arXiv 2603.20009): Lloyd's k-means whose
// assignment step skips most (point, centroid) distances. In a randomly
// rotated space every coordinate of x - y carries about ||x - y||^2 / d, so
// the distance over the first p coordinates, divided by ||x - y||^2 / d,
// follows a chi-squared law with p degrees of freedom (ADSampling, Gao &
// Long, SIGMOD 2023). A centroid whose partial distance exceeds
// tau * chi2_quantile(p, 1 - epsilon) / d, tau being the point's distance
// to its current centroid, is dropped: it would beat tau with probability
// below epsilon. Iteration 0 assigns exactly; the later ones compute the
// first d' coordinates of every distance in one GEMM and finish the few
// survivors a block of coordinates at a time, testing again after each.
// d' follows the pruning rate (kept between two targets).
//
// Everything else is Clustering's (kmeans.h: faiss's sampling, initial
// centroids, empty-cluster splits, statistics): the pruned assignment is a
// KmeansStep. L2 only; meant for k >= 1024, d >= 128.
#pragma once
#include <cstdint>
#include <vector>

#include "nearly/kmeans.h"

namespace nearly {

struct SuperKMeansParameters : ClusteringParameters {
    float d_prime_fraction = 0.125f;  // the first d' = d * this (at least d_prime_min)
    int pdx_block_size = 64;          // coordinates finished between two tests
    float ad_epsilon_factor = 1.0f;   // epsilon = this / d
    // The pruning rate kept in [low, high]: above, d' shrinks by
    // d_prime_adjust (cheaper GEMM); below, it grows (a sharper test).
    float pruning_target_low = 0.95f;
    float pruning_target_high = 0.97f;
    float d_prime_adjust = 0.20f;
    int d_prime_min = 16;  // the chi-squared approximation holds from about 16 degrees of freedom
    int x_batch = 4096;    // points per GEMM block
    int y_batch = 1024;    // centroids per GEMM block
    int omp_chunk = 8;     // faiss's OpenMP chunk; nearly's pool splits its own way
};

// coeff[p] = chi2_quantile(p, 1 - epsilon) / d for p in [1, d] (coeff[0] = 0);
// the quantile by the Wilson-Hilferty cube-root approximation.
std::vector<float> precompute_ad_thresholds(int d, double epsilon);

// One pruned assignment of n points X (n x d, rotated) to k centroids Y
// (k x d, rotated): tau[i] in: the exact distance to centroid assign[i];
// out: the distance to the new assignment (exact: recomputed in full for
// every change). ad_coeff: d + 1 thresholds. Counts the (point, centroid)
// pairs and those dropped at the d' test.
// The buffers of one pass, kept across the iterations of a training (they
// grow only).
struct SuperKMeansScratch {
    std::vector<float> xp, yp, xn, yn, ip;
};
void super_kmeans_assign_iteration(const float* X, size_t n, size_t d, const float* Y, size_t k, float* tau,
                                   int32_t* assign, size_t d_prime, const float* ad_coeff,
                                   const SuperKMeansParameters& cp, int64_t* total_pairs = nullptr,
                                   int64_t* pruned_at_gemm = nullptr, SuperKMeansScratch* scratch = nullptr);

struct SuperKMeans {
    SuperKMeansParameters cp;
    int d, k;
    std::vector<float> centroids;  // k x d, in the original space
    std::vector<ClusteringIterationStats> iteration_stats;
    std::vector<float> gemm_pruning_rates;  // per iteration: pairs dropped at the d' test (0 at iteration 0)

    SuperKMeans(int d, int k, const SuperKMeansParameters& cp = SuperKMeansParameters());
    // n x d points (L2). NotSupported when n < k; InvalidArgument on NaN / inf.
    void train(idx_t n, const float* x);
};

}  // namespace nearly
