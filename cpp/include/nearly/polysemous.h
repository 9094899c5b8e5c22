// Polysemous codes (Douze, Jégou and Perronnin, ECCV 2016; faiss's
// PolysemousTraining): each PQ subquantizer's centroids are renumbered so
// that the Hamming distance between two centroid numbers follows the
// distance between the centroids. A code then serves twice: its Hamming
// distance to the query's code is a cheap filter, its PQ distance ranks what
// passes. PQ distances do not change (the same centroids, other numbers).
//
// The numbering is found per subquantizer by simulated annealing over
// permutations, two numbers swapped per step, minimising
//   sum_ij w_ij (t_ij - hamming(p_i, p_j))^2
// where t maps the centroid distances affinely onto the Hamming range
// (mean nbits / 2, spread sqrt(nbits / 4), as faiss) and w = exp(-f t)
// weighs the small distances, the ones a filter must keep, most.
#pragma once
#include <cmath>
#include <cstddef>
#include <functional>
#include <vector>

#include "nearly/pq.h"

namespace nearly {

// faiss's names and defaults.
struct SimulatedAnnealingParameters {
    double init_temperature = 0.7;       // probability of taking a worse swap at first
    double temperature_decay = 0.9997893011688015;  // per step: 0.9 every 500 steps
    int n_iter = 500000;                 // steps per run
    int n_redo = 2;                      // runs; the best one is kept
    int seed = 123;
    int verbose = 0;                     // 1: a line per subquantizer, 2: per run
    bool only_bit_flips = false;         // swap only numbers one bit apart
    bool init_random = false;            // start from a random permutation, not the identity
};

// One subquantizer's objective over the n = 2^nbits centroid numbers.
struct HammingReproduction {
    size_t nbits, n;
    std::vector<float> target, weight;  // n x n, symmetric

    // dis: the n x n (symmetric) distances between the centroids.
    HammingReproduction(size_t nbits, const float* dis, double dis_weight_factor);
    // The whole sum for perm (perm[i]: centroid i's number), in double: the
    // reference swap_delta is tested against.
    double cost(const int* perm) const;
    // cost(perm with perm[a] and perm[b] exchanged) - cost(perm), in O(n):
    // only rows and columns a and b change, and by symmetry the columns
    // change as the rows do.
    double swap_delta(const int* perm, int a, int b) const;
};

struct PolysemousTraining : SimulatedAnnealingParameters {
    enum OptimizationType { OT_None = 0, OT_ReproduceDistances_affine = 1, OT_Ranking_weighted_diff = 2 };
    int optimization_type = OT_ReproduceDistances_affine;
    // faiss holds back min(ntrain_permutation, n / 4) training vectors from
    // the PQ's k-means for the ranking objective; kept for its train().
    int ntrain_permutation = 0;
    double dis_weight_factor = std::log(2.0);
    size_t max_memory = size_t(20) << 30;  // refuse a training that would take more

    // Renumbers pq's centroids (faiss's optimize_pq_for_hamming); x (n
    // vectors) is what the ranking objective would use. Subquantizers run
    // in parallel, as many at once as max_memory allows.
    void optimize_pq_for_hamming(ProductQuantizer& pq, size_t n, const float* x) const;
    size_t memory_usage_per_thread(const ProductQuantizer& pq) const;
    // Throws unless the settings are valid and one subquantizer fits in
    // max_memory (trainings call it before their k-means).
    void check(const ProductQuantizer& pq) const;
};

// Simulated annealing (faiss's SimulatedAnnealingOptimizer): n_redo runs
// from the identity (or a random permutation), the lowest-cost one written
// to perm; returns its cost. should_stop is asked every 4,096 steps; a true
// ends the run early.
double anneal_permutation(const HammingReproduction& obj, const SimulatedAnnealingParameters& p, int* perm,
                          const std::function<bool()>& should_stop = nullptr);

}  // namespace nearly
