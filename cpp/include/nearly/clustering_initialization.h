// How k-means picks its starting centroids (faiss's ClusteringInitialization,
// the same names, defaults and random draws):
//   RANDOM            k distinct training points (faiss's rand_perm);
//   KMEANS_PLUS_PLUS  D^2 sampling (Arthur & Vassilvitskii, SODA 2007): each
//                     next centroid is a point drawn with probability
//                     proportional to its squared distance to the nearest
//                     centroid so far;
//   AFK_MC2           Bachem, Lucic, Hassani & Krause (NeurIPS 2016): the D^2
//                     draw approximated by a Metropolis-Hastings chain of
//                     afkmc2_chain_length steps whose proposal mixes D^2 to
//                     the first centroid with the uniform distribution; no
//                     pass over all points per centroid.
// The draws are faiss's (std::mt19937_64 and libstdc++'s distributions,
// written out in libstdcxx_random.h), so where the distances are computed
// exactly (integer data) the picks are faiss's picks; elsewhere they can part
// where a float sum rounds differently. Unlike faiss's, the passes over the
// points and the chain's distances run on every thread (the same picks for
// any thread count).
#pragma once
#include <cstddef>
#include <cstdint>

namespace nearly {

enum class ClusteringInitMethod : uint8_t { RANDOM = 0, KMEANS_PLUS_PLUS = 1, AFK_MC2 = 2 };

struct ClusteringInitialization {
    size_t d, k;
    ClusteringInitMethod method = ClusteringInitMethod::RANDOM;
    int64_t seed = 1234;                 // negative: from the clock, as faiss
    uint16_t afkmc2_chain_length = 50;   // AFK_MC2 only: longer is closer to k-means++

    ClusteringInitialization(size_t d, size_t k);

    // Writes k centroids (k x d) picked among the n points x (n x d). The
    // existing centroids (n_existing x d; k-means++ and AFK-MC2) count as
    // already chosen: the new ones are drawn away from them and none of them
    // is written. Throws InvalidArgument when n < k, on a null array, on
    // NaN or infinity in x or the existing centroids.
    void init_centroids(size_t n, const float* x, float* centroids, size_t n_existing = 0,
                        const float* existing = nullptr) const;
};

}  // namespace nearly
