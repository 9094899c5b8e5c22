#include "nearly/super_kmeans.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "nearly/distance.h"
#include "nearly/linear_transform.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

// The standard normal quantile: bisection on 0.5 erfc(-z / sqrt(2)) (called
// once per training, so plain and exact beats fast).
double normal_quantile(double a) {
    double lo = -40, hi = 40;
    for (int it = 0; it < 200; it++) {
        const double mid = 0.5 * (lo + hi);
        if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < a)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

// Wilson-Hilferty: (X / p)^(1/3) is close to normal with mean 1 - 2 / (9p)
// and variance 2 / (9p) for X chi-squared with p degrees of freedom.
double chi2_quantile(int p, double z) {
    const double v = 2.0 / (9.0 * p), c = 1.0 - v + z * std::sqrt(v);
    return p * c * c * c;
}

size_t initial_d_prime(const SuperKMeansParameters& cp, size_t d) {
    const size_t want = size_t(std::lround(double(d) * cp.d_prime_fraction));
    return std::min(std::max(want, size_t(std::max(cp.d_prime_min, 1))), d > 1 ? d - 1 : size_t(1));
}

// The pruned assignment as Clustering's step: the points rotated once, the
// centroids each iteration; means computed from the original points.
class PrunedAssignStep : public KmeansStep {
   public:
    explicit PrunedAssignStep(SuperKMeans& sk) : sk_(sk), rotation_(sk.d, sk.d) {
        rotation_.init(uint32_t(sk.cp.seed));
        coeff_ = precompute_ad_thresholds(sk.d, double(sk.cp.ad_epsilon_factor) / double(sk.d));
        d_prime_ = initial_d_prime(sk.cp, size_t(sk.d));
    }

    void set_points(size_t n, const float* x, size_t d) override {
        n_ = n;
        x_ = x;
        xr_.resize(n * d);
        gemm_ip(x, n, rotation_.A.data(), d, d, xr_.data());  // x R^T: rows of R are the new axes
        tau_.assign(n, 0.f);
        assign_.assign(n, 0);
        iter_ = 0;
    }

    double assign_update(float* centroids, size_t k, MetricType, float* hassign) override {
        const size_t d = size_t(sk_.d);
        yr_.resize(k * d);
        gemm_ip(centroids, k, rotation_.A.data(), d, d, yr_.data());
        float rate = 0.f;
        if (iter_ == 0 || d_prime_ >= d) {
            std::vector<float> D(n_);
            std::vector<idx_t> I(n_);
            knn_exhaustive(xr_.data(), n_, yr_.data(), k, d, METRIC_L2, 1, D.data(), I.data());
            for (size_t i = 0; i < n_; i++) {
                assign_[i] = int32_t(I[i]);
                tau_[i] = D[i];
            }
        } else {
            // tau: the exact distance to the centroid the point had, which moved.
            const auto& kern = simd();
            parallel_for_blocks(n_, 1024, [&](size_t i) {
                tau_[i] = kern.l2sqr(&xr_[i * d], &yr_[size_t(assign_[i]) * d], d);
            });
            int64_t total = 0, pruned = 0;
            super_kmeans_assign_iteration(xr_.data(), n_, d, yr_.data(), k, tau_.data(), assign_.data(), d_prime_,
                                          coeff_.data(), sk_.cp, &total, &pruned, &scratch_);
            rate = total ? float(double(pruned) / double(total)) : 0.f;
            adapt_d_prime(rate, d);
        }
        sk_.gemm_pruning_rates.push_back(rate);
        iter_++;
        double obj = 0;
        for (size_t i = 0; i < n_; i++) obj += tau_[i];
        std::vector<idx_t> assign(assign_.begin(), assign_.end());
        std::vector<float> sizes(k);
        compute_centroids(d, k, n_, x_, nullptr, assign.data(), sizes, centroids);
        std::copy(sizes.begin(), sizes.end(), hassign);
        return obj;
    }

   private:
    void adapt_d_prime(float rate, size_t d) {
        const SuperKMeansParameters& cp = sk_.cp;
        double next = double(d_prime_);
        if (rate > cp.pruning_target_high)
            next *= 1.0 - cp.d_prime_adjust;
        else if (rate < cp.pruning_target_low)
            next *= 1.0 + cp.d_prime_adjust;
        const size_t lo = std::min(size_t(std::max(cp.d_prime_min, 1)), d - 1);
        d_prime_ = std::min(std::max(size_t(std::lround(next)), lo), d - 1);
        if (sk_.cp.verbose) std::printf("  SuperKMeans: pruned %.3f of the pairs at d' = %zu\n", rate, d_prime_);
    }

    SuperKMeans& sk_;
    RandomRotationMatrix rotation_;
    std::vector<float> coeff_, xr_, yr_, tau_;
    std::vector<int32_t> assign_;
    SuperKMeansScratch scratch_;
    const float* x_ = nullptr;
    size_t n_ = 0, d_prime_ = 0;
    int iter_ = 0;
};

}  // namespace

std::vector<float> precompute_ad_thresholds(int d, double epsilon) {
    NEARLY_CHECK_ARG(d >= 1, "precompute_ad_thresholds: d must be positive");
    NEARLY_CHECK_ARG(epsilon > 0 && epsilon < 1, "precompute_ad_thresholds: epsilon must be in (0, 1)");
    const double z = normal_quantile(1.0 - epsilon);
    std::vector<float> coeff(size_t(d) + 1, 0.f);
    for (int p = 1; p <= d; p++) coeff[size_t(p)] = float(chi2_quantile(p, z) / double(d));
    return coeff;
}

void super_kmeans_assign_iteration(const float* X, size_t n, size_t d, const float* Y, size_t k, float* tau,
                                   int32_t* assign, size_t d_prime, const float* ad_coeff,
                                   const SuperKMeansParameters& cp, int64_t* total_pairs, int64_t* pruned_at_gemm,
                                   SuperKMeansScratch* scratch) {
    NEARLY_CHECK_ARG(d_prime >= 1 && d_prime < d, "super_kmeans_assign_iteration: d_prime must be in [1, d)");
    NEARLY_CHECK_ARG(cp.x_batch > 0 && cp.y_batch > 0 && cp.pdx_block_size > 0,
                     "super_kmeans_assign_iteration: x_batch, y_batch and pdx_block_size must be positive");
    for (size_t i = 0; i < n; i++)
        NEARLY_CHECK_ARG(assign[i] >= 0 && size_t(assign[i]) < k,
                         "super_kmeans_assign_iteration: assignment " + std::to_string(i) + " out of range");
    SuperKMeansScratch local;
    SuperKMeansScratch& s = scratch ? *scratch : local;
    const auto& kern = simd();
    // The first d' coordinates of every point and centroid, contiguous for the GEMM.
    s.xp.resize(n * d_prime);
    s.yp.resize(k * d_prime);
    s.xn.resize(n);
    s.yn.resize(k);
    parallel_for_blocks(n, 4096, [&](size_t i) { std::copy(X + i * d, X + i * d + d_prime, &s.xp[i * d_prime]); });
    for (size_t j = 0; j < k; j++) std::copy(Y + j * d, Y + j * d + d_prime, &s.yp[j * d_prime]);
    norms_L2sqr(s.xp.data(), n, d_prime, s.xn.data());
    norms_L2sqr(s.yp.data(), k, d_prime, s.yn.data());
    const size_t xb = size_t(cp.x_batch), yb = std::min(size_t(cp.y_batch), k), block = size_t(cp.pdx_block_size);
    constexpr size_t kRowsPerTask = 32;
    std::vector<int64_t> pruned((std::min(xb, n) + kRowsPerTask - 1) / kRowsPerTask + 1, 0);
    s.ip.resize(std::min(xb, n) * yb);
    InterruptPoll poll;
    for (size_t i0 = 0; i0 < n; i0 += xb) {
        const size_t nb = std::min(xb, n - i0);
        // Tile by tile, each point's survivors are finished at once, so the
        // distance a tile finds tightens the test for the next tiles.
        for (size_t j0 = 0; j0 < k; j0 += yb) {
            const size_t kb = std::min(yb, k - j0);
            gemm_ip(&s.xp[i0 * d_prime], nb, &s.yp[j0 * d_prime], kb, d_prime, s.ip.data());
            parallel_for((nb + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
                std::vector<int32_t> cand(kb + 16);  // select_within's room
                std::vector<float> part(kb + 16);
                int64_t dropped_here = 0;
                for (size_t r = t * kRowsPerTask; r < std::min(nb, (t + 1) * kRowsPerTask); r++) {
                    const size_t i = i0 + r;
                    const float limit = tau[i] * ad_coeff[d_prime], xni = s.xn[i];
                    const float* row = &s.ip[r * kb];
                    const float* yn = &s.yn[j0];
                    const size_t m = kern.select_within(row, yn, kb, xni, limit, cand.data(), part.data());
                    dropped_here += int64_t(kb - m);
                    // The nearest partial distance first: an early winner tightens tau for the rest.
                    size_t best = 0;
                    for (size_t c = 1; c < m; c++)
                        if (part[c] < part[best]) best = c;
                    if (m) {
                        std::swap(part[0], part[best]);
                        std::swap(cand[0], cand[best]);
                    }
                    const float* x = X + i * d;
                    for (size_t c = 0; c < m; c++) {
                        const int32_t j = int32_t(j0) + cand[c];
                        if (j == assign[i]) continue;
                        const float* y = Y + size_t(j) * d;
                        float dist = part[c];
                        if (dist > tau[i] * ad_coeff[d_prime]) continue;  // tau has tightened since
                        size_t p = d_prime;
                        while (p < d) {
                            const size_t len = std::min(block, d - p);
                            dist += kern.l2sqr(x + p, y + p, len);
                            p += len;
                            if (p < d && dist > tau[i] * ad_coeff[p]) break;
                        }
                        if (p < d || dist >= tau[i]) continue;
                        // A change: tau stays an exact distance.
                        const float exact = kern.l2sqr(x, y, d);
                        if (exact < tau[i]) {
                            tau[i] = exact;
                            assign[i] = j;
                        }
                    }
                }
                pruned[t] += dropped_here;
            });
        }
        poll();
    }
    int64_t pruned_total = 0;
    for (int64_t c : pruned) pruned_total += c;
    if (total_pairs) *total_pairs += int64_t(n) * int64_t(k);
    if (pruned_at_gemm) *pruned_at_gemm += pruned_total;
}

SuperKMeans::SuperKMeans(int d_, int k_, const SuperKMeansParameters& cp_) : cp(cp_), d(d_), k(k_) {
    NEARLY_CHECK_ARG(d >= 1 && k >= 1, "SuperKMeans: d and k must be positive");
    NEARLY_CHECK_ARG(cp.d_prime_fraction > 0 && cp.d_prime_fraction < 1,
                     "SuperKMeans: d_prime_fraction must be in (0, 1)");
    NEARLY_CHECK_ARG(cp.ad_epsilon_factor > 0 && cp.ad_epsilon_factor < float(d_),
                     "SuperKMeans: ad_epsilon_factor must be in (0, d)");
    NEARLY_CHECK_ARG(cp.pruning_target_low <= cp.pruning_target_high && cp.d_prime_adjust > 0 &&
                         cp.d_prime_adjust < 1,
                     "SuperKMeans: pruning targets low <= high and d_prime_adjust in (0, 1)");
    NEARLY_CHECK_ARG(cp.pdx_block_size > 0 && cp.x_batch > 0 && cp.y_batch > 0 && cp.d_prime_min >= 1,
                     "SuperKMeans: pdx_block_size, x_batch, y_batch and d_prime_min must be positive");
}

void SuperKMeans::train(idx_t n, const float* x) {
    gemm_pruning_rates.clear();
    ClusteringParameters params = cp;
    params.nredo = 1;  // the step keeps per-run state (faiss's SuperKMeans runs once too)
    Clustering clus(d, k, params);
    PrunedAssignStep step(*this);
    clus.train(n, x, METRIC_L2, &step);
    centroids = std::move(clus.centroids);
    iteration_stats = std::move(clus.iteration_stats);
}

}  // namespace nearly
