#include "nearly/clustering_initialization.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <climits>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "nearly/common.h"
#include "nearly/libstdcxx_random.h"
#include "nearly/parallel.h"
#include "nearly/random.h"
#include "nearly/scalar_quantizer.h"
#include "nearly/simd.h"
#include "nearly/sq_scan.h"

namespace nearly {

namespace {

uint64_t actual_seed(int64_t seed) {
    if (seed >= 0) return uint64_t(seed);
    return uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
}

// Rows of x per task in the passes over all points: a block of distances
// stays on the stack and a task is worth its scheduling.
constexpr size_t kBlock = 1024;

// k-means++ lowers every point's distance to its nearest centroid by each new
// centroid: a pass over all n x d floats per centroid, bound by memory
// bandwidth, not arithmetic (faiss's takes 10 ms per centroid over 100k x 384
// here, one thread or many). An 8-bit copy of the points (a quarter of the
// bytes) bounds each distance from below,
//     ||x - c|| >= ||x~ - c|| - ||x - x~||,
// and a point is read in full only where the bound leaves the new centroid
// a chance to be its nearest. A skipped point's distance could not have
// dropped (the bound keeps a margin far above float rounding), so the picks
// are those of the full pass. The copy costs a quarter of the points' memory
// while the seeding runs, and about three passes to make: it is made only
// for many passes over much data.
// dist[i] = min(dist[i], ||x_i - c||^2) for every point, reading every
// point; each entry written by one task (the same for any thread count).
void lower_all(const float* x, size_t n, size_t d, const float* c, double* dist) {
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t b) {
        float block[kBlock];
        const size_t i0 = b * kBlock, len = std::min(kBlock, n - i0);
        simd().l2sqr_ny(c, x + i0 * d, d, len, block);
        for (size_t j = 0; j < len; j++) dist[i0 + j] = std::min(dist[i0 + j], double(block[j]));
    });
}

class DistanceLowering {
   public:
    DistanceLowering(const float* x, size_t n, size_t d, size_t passes)
        : x_(x), n_(n), d_(d), sq_(d, ScalarQuantizer::QT_8bit) {
        if (n * d < (size_t(1) << 20) || d < 8 || passes < 16) return;
        sq_.train(n, x);
        codes_.resize(n * d);
        error_.resize(n);
        parallel_for((n + kBlock - 1) / kBlock, [&](size_t b) {
            const size_t i0 = b * kBlock, len = std::min(kBlock, n - i0);
            sq_.compute_codes(x + i0 * d, codes_.data() + i0 * d, len);
            std::vector<float> decoded(len * d);
            sq_.decode(codes_.data() + i0 * d, decoded.data(), len);
            for (size_t j = 0; j < len; j++) {
                const float* xi = x + (i0 + j) * d;
                double e = 0, norm = 0;
                for (size_t t = 0; t < d; t++) {
                    const double diff = double(xi[t]) - decoded[j * d + t];
                    e += diff * diff;
                    norm += double(xi[t]) * xi[t];
                }
                // Rounded up past the scorer's float rounding of x~.
                error_[i0 + j] = float(std::sqrt(e) * 1.001 + 1e-6 * (std::sqrt(norm) + 1));
            }
        });
        scorer_.reset(new SQScorer(sq_, METRIC_L2));
    }

    // lower_all's result, most points skipped.
    void lower_to(const float* c, double* dist) {
        if (!scorer_) return lower_all(x_, n_, d_, c, dist);
        scorer_->set_query(c);
        parallel_for((n_ + kBlock - 1) / kBlock, [&](size_t b) {
            float block[kBlock];
            const size_t i0 = b * kBlock, len = std::min(kBlock, n_ - i0);
            scorer_->scores(codes_.data() + i0 * d_, len, block);
            const SimdKernels& K = simd();
            for (size_t j = 0; j < len; j++) {
                const size_t i = i0 + j;
                const double reach = std::sqrt(double(block[j])) - error_[i];
                if (reach > 0 && reach * reach > dist[i] * (1 + 1e-4)) continue;
                dist[i] = std::min(dist[i], double(K.l2sqr(x_ + i * d_, c, d_)));
            }
        });
    }

   private:
    const float* x_;
    size_t n_, d_;
    ScalarQuantizer sq_;
    std::vector<uint8_t> codes_;
    std::vector<float> error_;
    std::unique_ptr<SQScorer> scorer_;
};

// Squared distance of point p to the nearest of na centroids, in float as
// faiss's (which starts from FLT_MAX).
float nearest_distance(const float* p, size_t d, const float* a, size_t na, std::vector<float>& scratch) {
    scratch.resize(na);
    float best = std::numeric_limits<float>::max();
    simd().l2sqr_ny(p, a, d, na, scratch.data());
    for (size_t j = 0; j < na; j++) best = std::min(best, scratch[j]);
    return best;
}

// The same for m points at once (the states of a Markov chain, rows of p)
// against two centroid sets: the centroids go in blocks, one block per task,
// and each block, kept in cache, is read once for four points at a time.
void nearest_distances(const float* p, size_t m, size_t d, const float* a, size_t na, const float* b, size_t nb,
                       float* out) {
    constexpr size_t kRows = 64;
    struct Block {
        const float* rows;
        size_t len;
    };
    std::vector<Block> blocks;
    for (size_t i = 0; i < na; i += kRows) blocks.push_back({a + i * d, std::min(kRows, na - i)});
    for (size_t i = 0; i < nb; i += kRows) blocks.push_back({b + i * d, std::min(kRows, nb - i)});
    std::vector<float> part(blocks.size() * m);
    auto run = [&](size_t t) {
        const SimdKernels& K = simd();
        float dist[4 * kRows];
        const Block& blk = blocks[t];
        for (size_t g = 0; g < m; g += 4) {
            const size_t nq = std::min<size_t>(4, m - g);
            if (nq == 4)
                K.l2sqr_4q(p + g * d, blk.rows, d, blk.len, dist, blk.len);
            else
                for (size_t q = 0; q < nq; q++) K.l2sqr_ny(p + (g + q) * d, blk.rows, d, blk.len, dist + q * blk.len);
            for (size_t q = 0; q < nq; q++)
                part[t * m + g + q] = *std::min_element(dist + q * blk.len, dist + (q + 1) * blk.len);
        }
    };
    if (blocks.size() * m * d >= (size_t(1) << 16))
        parallel_for(blocks.size(), run);
    else
        for (size_t t = 0; t < blocks.size(); t++) run(t);
    for (size_t j = 0; j < m; j++) {
        float best = std::numeric_limits<float>::max();
        for (size_t t = 0; t < blocks.size(); t++) best = std::min(best, part[t * m + j]);
        out[j] = best;
    }
}

// faiss's draw from a distribution given by its running sum: the first index
// whose running sum reaches u * total; uniform when every weight is zero.
size_t sample_from_cumsum(const std::vector<double>& cumsum, Mt19937_64& rng) {
    const size_t n = cumsum.size();
    const double total = cumsum[n - 1];
    if (total <= 0) return size_t(uniform_below(rng, n));
    const double r = canonical_double(rng) * total;
    const size_t idx = size_t(std::lower_bound(cumsum.begin(), cumsum.end(), r) - cumsum.begin());
    return std::min(idx, n - 1);
}

// The running sum in index order (faiss's loop: the same bits).
void running_sum(const std::vector<double>& w, std::vector<double>& cumsum) {
    double s = 0;
    for (size_t i = 0; i < w.size(); i++) cumsum[i] = s += w[i];
}

// Where D^2 sampling starts (faiss's init_distances_for_d2_sampling): with
// existing centroids, every point's distance to the nearest of them and the
// first new centroid is still to be drawn (returns 0); otherwise a uniform
// point is the first centroid and the distances are to it (returns 1).
size_t start_d2(const float* x, size_t n, size_t d, float* centroids, size_t n_existing, const float* existing,
                std::vector<double>& dist, double& sum, size_t& first, Mt19937_64& rng) {
    if (n_existing > 0) {
        parallel_for((n + kBlock - 1) / kBlock, [&](size_t b) {
            std::vector<float> scratch;
            for (size_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); i++)
                dist[i] = nearest_distance(x + i * d, d, existing, n_existing, scratch);
        });
    } else {
        first = size_t(uniform_below(rng, n));
        std::memcpy(centroids, x + first * d, d * sizeof(float));
        std::fill(dist.begin(), dist.end(), std::numeric_limits<double>::infinity());
        lower_all(x, n, d, centroids, dist.data());
    }
    sum = 0;
    for (size_t i = 0; i < n; i++) sum += dist[i];  // in order, as faiss
    return n_existing > 0 ? 0 : 1;
}

void init_kmeans_plus_plus(const ClusteringInitialization& p, size_t n, const float* x, float* centroids,
                           size_t n_existing, const float* existing) {
    const size_t d = p.d, k = p.k;
    Mt19937_64 rng(actual_seed(p.seed));
    std::vector<double> dist(n), cumsum(n);
    double sum;
    size_t first = 0;
    const size_t c0 = start_d2(x, n, d, centroids, n_existing, existing, dist, sum, first, rng);
    if (c0 >= k) return;
    DistanceLowering lowering(x, n, d, k - c0 - 1);
    InterruptPoll poll;
    for (size_t c = c0; c < k; c++) {
        running_sum(dist, cumsum);
        const size_t next = sample_from_cumsum(cumsum, rng);
        float* centroid = centroids + c * d;
        std::memcpy(centroid, x + next * d, d * sizeof(float));
        if (c + 1 < k) lowering.lower_to(centroid, dist.data());
        poll();
    }
}

void init_afkmc2(const ClusteringInitialization& p, size_t n, const float* x, float* centroids, size_t n_existing,
                 const float* existing) {
    const size_t d = p.d, k = p.k;
    Mt19937_64 rng(actual_seed(p.seed));
    std::vector<double> dist(n);
    double sum;
    size_t first = 0;
    const size_t c0 = start_d2(x, n, d, centroids, n_existing, existing, dist, sum, first, rng);
    std::vector<uint8_t> selected(n, 0);
    if (c0 == 1) selected[first] = 1;

    // The proposal: half D^2 to the start, half uniform (so no point has
    // zero probability, which the chain's guarantee needs).
    std::vector<double> q(n), q_cumsum(n);
    const double uniform_term = 0.5 / double(n);
    for (size_t i = 0; i < n; i++) q[i] = (sum > 0 ? 0.5 * dist[i] / sum : 0.0) + uniform_term;
    running_sum(q, q_cumsum);

    // A chain's draws do not depend on its distances (a proposal already
    // chosen is skipped before its acceptance draw), so they are taken first,
    // in faiss's order, and the distances of all its states computed at once.
    std::vector<size_t> states;
    std::vector<double> accept_draw;
    std::vector<float> state_rows, state_dist;
    InterruptPoll poll;
    for (size_t c = c0; c < k; c++) {
        states.clear();
        accept_draw.clear();
        size_t start;
        do start = sample_from_cumsum(q_cumsum, rng);
        while (selected[start]);
        states.push_back(start);
        for (size_t m = 0; m < p.afkmc2_chain_length; m++) {
            const size_t proposed = sample_from_cumsum(q_cumsum, rng);
            if (selected[proposed]) continue;
            states.push_back(proposed);
            accept_draw.push_back(canonical_double(rng));
        }
        state_rows.resize(states.size() * d);
        for (size_t i = 0; i < states.size(); i++)
            std::memcpy(&state_rows[i * d], x + states[i] * d, d * sizeof(float));
        state_dist.resize(states.size());
        nearest_distances(state_rows.data(), states.size(), d, centroids, c, existing, n_existing, state_dist.data());

        // Metropolis-Hastings: move to y with probability
        // min(1, d(y)^2 q(x) / (d(x)^2 q(y))); a state at distance 0 is a
        // centroid already and is never left.
        size_t current = states[0];
        double current_dist = state_dist[0], current_q = q[current];
        for (size_t s = 1; s < states.size(); s++) {
            const size_t proposed = states[s];
            const double proposed_dist = state_dist[s], proposed_q = q[proposed];
            double accept = 0;
            if (current_dist > 0 && proposed_q > 0)
                accept = std::min(1.0, proposed_dist * current_q / (current_dist * proposed_q));
            if (accept_draw[s - 1] < accept) {
                current = proposed;
                current_dist = proposed_dist;
                current_q = proposed_q;
            }
        }
        selected[current] = 1;
        std::memcpy(centroids + c * d, x + current * d, d * sizeof(float));
        poll();
    }
}

}  // namespace

ClusteringInitialization::ClusteringInitialization(size_t d_in, size_t k_in) : d(d_in), k(k_in) {}

void ClusteringInitialization::init_centroids(size_t n, const float* x, float* centroids, size_t n_existing,
                                              const float* existing) const {
    NEARLY_CHECK_ARG(d > 0, "ClusteringInitialization: d must be positive");
    NEARLY_CHECK_ARG(n >= k, "ClusteringInitialization: number of points (" + std::to_string(n) +
                                 ") must be >= number of centroids (" + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(n <= size_t(INT_MAX), "ClusteringInitialization: at most 2^31 - 1 points");
    NEARLY_CHECK_ARG(x != nullptr && centroids != nullptr, "ClusteringInitialization: null points or centroids");
    NEARLY_CHECK_ARG(n_existing == 0 || existing != nullptr,
                     "ClusteringInitialization: n_existing_centroids > 0 needs the existing centroids");
    if (k == 0) return;
    if (method == ClusteringInitMethod::RANDOM) {
        // faiss's: the first k of a seeded permutation (existing ones ignored).
        std::vector<int> perm(n);
        rand_perm(perm.data(), n, seed);
        for (size_t i = 0; i < k; i++) {
            check_finite(x + size_t(perm[i]) * d, d, "points");
            std::memcpy(centroids + i * d, x + size_t(perm[i]) * d, d * sizeof(float));
        }
        return;
    }
    check_finite(x, n * d, "points");
    if (n_existing) check_finite(existing, n_existing * d, "existing centroids");
    if (method == ClusteringInitMethod::KMEANS_PLUS_PLUS)
        init_kmeans_plus_plus(*this, n, x, centroids, n_existing, existing);
    else if (method == ClusteringInitMethod::AFK_MC2)
        init_afkmc2(*this, n, x, centroids, n_existing, existing);
    else
        throw InvalidArgument("ClusteringInitialization: unknown method " + std::to_string(int(method)));
}

}  // namespace nearly
