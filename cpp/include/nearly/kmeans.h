// k-means clustering with faiss's rules (faiss::Clustering), the trainer of
// every coarse quantizer and codebook: random initial centroids drawn from the
// data, Lloyd iterations, empty clusters split off big ones, subsampling to
// max_points_per_centroid * k. The random draws are faiss's (std::mt19937,
// the same seeds and permutations), so with the same data and parameters the
// run starts from the same centroids as faiss's.
#pragma once
#include <cstdint>
#include <vector>

#include "nearly/clustering_initialization.h"
#include "nearly/common.h"

namespace nearly {

struct ClusteringParameters {
    int niter = 25;
    int nredo = 1;  // runs from different seeds, the best objective is kept
    bool verbose = false;
    bool spherical = false;  // centroids renormalized to unit length after each update
    int min_points_per_centroid = 39;   // fewer training points: a warning
    int max_points_per_centroid = 256;  // more: a random subset is used
    int64_t seed = 1234;
    bool int_centroids = false;     // centroids rounded to integers after each update
    bool frozen_centroids = false;  // the initial centroids given stay where they are
    // Iterations stop once the objective moves by at most this fraction
    // between two of them; 0 (faiss's default) stops when it does not move.
    double early_stop_threshold = 0.0;
    // Where the iterations start (clustering_initialization.h): faiss's
    // random points by default, or k-means++ / AFK-MC2 seeding.
    ClusteringInitMethod init_method = ClusteringInitMethod::RANDOM;
    uint16_t afkmc2_chain_length = 50;
    // train_encoded: codes decoded this many at a time (faiss's default).
    size_t decode_block_size = 32768;
};

// faiss's imbalance factor of k cluster sizes summing to total:
// k * sum(size^2) / total^2, 1 when perfectly balanced (k-means, inverted lists).
template <class T>
double imbalance_factor(const T* sizes, size_t k, double total) {
    double squares = 0;
    for (size_t i = 0; i < k; i++) squares += double(sizes[i]) * double(sizes[i]);
    return squares * double(k) / (total * total);
}

struct ClusteringIterationStats {
    float obj;                // sum of distances (L2) or similarities (IP) of the assignment
    double time;              // seconds since the iterations started
    double time_search;       // of which spent assigning points
    double imbalance_factor;  // k * sum(size^2) / n^2; 1 = perfectly balanced
    int nsplit;               // empty clusters re-seeded in this iteration
};

// One Lloyd iteration done elsewhere (the GPU): assign every point to its
// nearest centroid and recompute the centroids as the means of their points.
// Everything around it (sampling, initialisation, empty-cluster splits,
// spherical normalisation, redos, statistics) stays faiss's rules in train().
struct KmeansStep {
    virtual ~KmeansStep() = default;
    // The (sub)sampled training points, once per train().
    virtual void set_points(size_t n, const float* x, size_t d) = 0;
    // centroids: k x d in, the updated means out (zero for empty clusters);
    // hassign: k counts out. Returns the objective (sum of the distances or
    // similarities of the assignment).
    virtual double assign_update(float* centroids, size_t k, MetricType metric, float* hassign) = 0;
};

// New centroids (k x d) = the means of their points (weighted when weights
// is not null); hassign: k sizes (sums of weights); empty clusters get zero
// centroids and size 0 (Clustering's split then re-seeds them).
void compute_centroids(size_t d, size_t k, size_t n, const float* x, const float* weights, const idx_t* assign,
                       std::vector<float>& hassign, float* centroids);

struct Index;

// faiss's Clustering::train(n, x, index): each iteration the centroids are
// put in `index` and every point takes its nearest by index.search (the
// index's metric and approximation: an HNSW or LSH index for many
// centroids, a GPU index); the means are computed here. IndexIVF's
// clustering_index trains through one.
class IndexAssignStep : public KmeansStep {
   public:
    explicit IndexAssignStep(Index& index) : index_(index) {}
    void set_points(size_t n, const float* x, size_t d) override;
    double assign_update(float* centroids, size_t k, MetricType metric, float* hassign) override;

   private:
    Index& index_;
    size_t n_ = 0, d_ = 0;
    const float* x_ = nullptr;
};

struct Clustering : ClusteringParameters {
    int d, k;
    std::vector<float> centroids;  // k * d after train
    // Accumulated over redos like faiss (the best run's stats when nredo > 1).
    std::vector<ClusteringIterationStats> iteration_stats;

    Clustering(int d, int k, const ClusteringParameters& params = ClusteringParameters());

    // Centroids set before train() (k x d) are the initial ones, as in faiss;
    // the rest are picked by init_method.
    // metric: how points are assigned (L2, or IP for spherical k-means and
    // inner-product quantizers). Throws NotSupported when n < k, with faiss's
    // text, and InvalidArgument on NaN / infinity.
    // step: where the Lloyd iterations run (null: here, on the CPU threads).
    // Under one of faiss's extra metrics (extra_distances.h, metric_arg for
    // Lp) points go to the centroid best by that metric, and centroids stay
    // means: faiss's Clustering with an IndexFlat of that metric.
    // weights (n, optional): faiss's weighted k-means; a centroid is the
    // weighted mean of its points (the objective stays the plain sum).
    void train(idx_t n, const float* x, MetricType metric = METRIC_L2, KmeansStep* step = nullptr,
               float metric_arg = 0, const float* weights = nullptr);

    // faiss's train_encoded: the n training points are codes of `codec`
    // (its sa_encode form, sa_code_size() bytes each), decoded
    // decode_block_size at a time whenever the iterations read them, so only
    // the codes and one block of floats are held (k-means++ and AFK-MC2
    // seeding decode them all, as in faiss). The centroids are bit for bit
    // those train() gives on the decoded points (blocks are rounded up to a
    // multiple of the exact assignment's 1,024 points for that).
    // metric / metric_arg: as train()'s; assign_index: as an IndexAssignStep's
    // index (null: the exact assignment).
    void train_encoded(idx_t n, const uint8_t* codes, const Index& codec, MetricType metric = METRIC_L2,
                       Index* assign_index = nullptr, float metric_arg = 0, const float* weights = nullptr);

    // Final objective: the last iteration's, 0 when there was none.
    float final_objective() const { return iteration_stats.empty() ? 0.f : iteration_stats.back().obj; }

   private:
    struct Codes {  // train_encoded's points
        const uint8_t* codes;
        const Index* codec;
        Index* index;
    };
    void train_points(idx_t n, const float* x, const Codes* enc, MetricType metric, KmeansStep* step,
                      float metric_arg, const float* weights);
};

}  // namespace nearly
