#include "nearly/kmeans.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <string>

#include "nearly/distance.h"
#include "nearly/extra_distances.h"
#include "nearly/index.h"
#include "nearly/libstdcxx_random.h"
#include "nearly/parallel.h"
#include "nearly/random.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// faiss's RandomGenerator::rand_float: a draw divided by float(2^32 - 1),
// which rounds to 2^32 (so 1.0 is possible, as in faiss).
float rand_float(Mt19937& mt) { return float(mt()) / float(0xffffffffu); }

}  // namespace

// Points are bucketed by centroid first, so each centroid sums its own
// points in data order: the result does not depend on the number of
// threads. Sums are kept in double.
void compute_centroids(size_t d, size_t k, size_t n, const float* x, const float* weights, const idx_t* assign,
                       std::vector<float>& hassign, float* centroids) {
    std::vector<size_t> start(k + 1, 0);
    for (size_t i = 0; i < n; i++) start[assign[i] + 1]++;
    for (size_t c = 0; c < k; c++) start[c + 1] += start[c];
    std::vector<size_t> members(n), fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n; i++) members[fill[assign[i]]++] = i;

    const size_t per_task = std::max<size_t>(1, k / (8 * size_t(get_num_threads())));
    parallel_for((k + per_task - 1) / per_task, [&](size_t t) {
        std::vector<double> acc(d);
        for (size_t c = t * per_task; c < std::min(k, (t + 1) * per_task); c++) {
            float* out = centroids + c * d;
            // With weights a centroid is the weighted mean and its "size" the
            // sum of its weights (what faiss's split rule then uses).
            double mass = 0;
            std::fill(acc.begin(), acc.end(), 0.0);
            for (size_t m = start[c]; m < start[c + 1]; m++) {
                const float* xi = x + members[m] * d;
                const double w = weights ? double(weights[members[m]]) : 1.0;
                for (size_t j = 0; j < d; j++) acc[j] += w * xi[j];
                mass += w;
            }
            hassign[c] = float(mass);
            if (start[c + 1] == start[c] || mass == 0) {
                std::fill(out, out + d, 0.f);  // split_clusters re-seeds it
                hassign[c] = 0;
                continue;
            }
            const double inv = 1.0 / mass;
            for (size_t j = 0; j < d; j++) out[j] = float(acc[j] * inv);
        }
    });
}

namespace {

// faiss's rule for empty clusters: walk the clusters from 0, picking cluster
// cj with probability (size - 1) / (n - k), so big clusters are split more
// often; the empty one takes cj's centroid and the two are pushed apart by a
// relative 1/1024 (a bit above float16's epsilon) in opposite directions.
// Same generator and seed as faiss, so the same clusters are split.
// With weights the sizes are masses, and a donor may never pass the draw
// (every mass below 1): after 10 k draws the biggest cluster is split.
int split_clusters(size_t d, size_t k, size_t n, float* hassign, float* centroids) {
    constexpr double kEps = 1 / 1024.;
    int nsplit = 0;
    Mt19937 mt(1234);
    for (size_t ci = 0; ci < k; ci++) {
        if (hassign[ci] != 0) continue;
        size_t cj = 0;
        bool found = false;
        for (size_t tries = 0; tries < 10 * k; tries++, cj = (cj + 1) % k) {
            float p = float((hassign[cj] - 1.0) / float(n - k));
            if (rand_float(mt) < p) {
                found = true;
                break;
            }
        }
        if (!found) cj = size_t(std::max_element(hassign, hassign + k) - hassign);
        std::copy(centroids + cj * d, centroids + (cj + 1) * d, centroids + ci * d);
        for (size_t j = 0; j < d; j++) {
            const bool even = j % 2 == 0;
            centroids[ci * d + j] *= float(even ? 1 + kEps : 1 - kEps);
            centroids[cj * d + j] *= float(even ? 1 - kEps : 1 + kEps);
        }
        hassign[ci] = hassign[cj] / 2;
        hassign[cj] -= hassign[ci];
        nsplit++;
    }
    return nsplit;
}

// Nearest centroid of every point, through the exact-search engine. Points go
// in blocks, one block per task: k-means has many points and few centroids,
// and a block keeps the packed points small (in cache) while every task
// shares the work evenly.
// Few dimensions (PQ subspaces: 8 for 384-d data cut in 48): the blocked
// GEMM spends its time on tile overhead, not on the d multiply-adds. Each
// point instead takes one vector-matrix product with the transposed
// centroids (d x k, k outputs wide) and an argmin of ||c||^2 - 2 <x, c>
// (L2) or -<x, c> (IP).
constexpr size_t kSmallD = 16;

void assign_nearest_small_d(const float* x, size_t n, const float* centroids, size_t k, size_t d, MetricType metric,
                            float* dis, idx_t* assign) {
    const SimdKernels& K = simd();
    const bool l2 = metric == METRIC_L2;
    // Transposed in column blocks of at most kColumns centroids (block b is
    // d x width(b) at b * d * kColumns): a block (12 KiB at d = 12) stays in
    // L1 while a tile of points is scored against it. 1,024 centroids
    // transposed whole (48 KiB) were read from L2 for every point.
    constexpr size_t kColumns = 256, kTile = 32;
    auto width = [&](size_t b) { return std::min(kColumns, k - b * kColumns); };
    const size_t nblocks = (k + kColumns - 1) / kColumns;
    std::vector<float> ct(d * k), norms(k, 0.f);  // IP: zero norms, the largest product wins
    for (size_t c = 0; c < k; c++) {
        const size_t b = c / kColumns, w = width(b);
        for (size_t j = 0; j < d; j++) {
            ct[b * d * kColumns + j * w + c % kColumns] = centroids[c * d + j];
            if (l2) norms[c] += centroids[c * d + j] * centroids[c * d + j];
        }
    }
    constexpr size_t kBlock = 1024;
    InterruptPoll poll;
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
        poll();
        float best_s[kTile];
        for (size_t i0 = t * kBlock; i0 < std::min(n, (t + 1) * kBlock); i0 += kTile) {
            const size_t i1 = std::min({n, (t + 1) * kBlock, i0 + kTile});
            // Block by block, the first minimum kept (strict <, blocks in
            // order): the unblocked answer.
            for (size_t b = 0; b < nblocks; b++)
                for (size_t i = i0; i < i1; i++) {
                    float s;
                    const size_t c = b * kColumns + K.nearest_transposed(x + i * d, d, ct.data() + b * d * kColumns,
                                                                         norms.data() + b * kColumns, width(b), &s);
                    if (b == 0 || s < best_s[i - i0]) {
                        best_s[i - i0] = s;
                        assign[i] = idx_t(c);
                    }
                }
            for (size_t i = i0; i < i1; i++) {
                const float* xi = x + i * d;
                const float s = best_s[i - i0];
                if (l2) {
                    float xn = 0.f;
                    for (size_t j = 0; j < d; j++) xn += xi[j] * xi[j];
                    dis[i] = std::max(0.f, xn + s);
                } else {
                    dis[i] = -0.5f * s;  // s = -2 <x, c>
                }
            }
        }
    });
}

void assign_nearest(const float* x, size_t n, const float* centroids, size_t k, size_t d, MetricType metric,
                    float metric_arg, float* dis, idx_t* assign) {
    if (is_extra_metric(metric)) {
        knn_extra(x, n, centroids, k, d, metric, metric_arg, 1, dis, assign);
        for (size_t i = 0; i < n; i++)
            if (assign[i] < 0) {  // undefined against every centroid (a NaN score): the first takes it
                assign[i] = 0;
                dis[i] = 0.f;
            }
        return;
    }
    if (d <= kSmallD) {
        assign_nearest_small_d(x, n, centroids, k, d, metric, dis, assign);
        return;
    }
    constexpr size_t kBlock = 1024;
    std::vector<float> norms;  // centroid norms once, not once per block
    if (metric == METRIC_L2) {
        norms.resize(k);
        norms_L2sqr(centroids, k, d, norms.data());
    }
    InterruptPoll poll;  // checks only on the calling thread, between its blocks
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
        poll();
        const size_t i0 = t * kBlock, m = std::min(kBlock, n - i0);
        knn_exhaustive(x + i0 * d, m, centroids, k, d, metric, 1, dis + i0, assign + i0, nullptr,
                       norms.empty() ? nullptr : norms.data());
    });
}

// One Lloyd iteration over codes (train_encoded): each block is decoded
// once, for its assignment and its share of the sums. Every centroid still
// sums its points in data order, in double, so the new centroids are the
// bits compute_centroids gives on the decoded points. Returns the objective.
double encoded_iteration(const uint8_t* codes, const Index& codec, size_t n, size_t d, size_t k, size_t block,
                         MetricType metric, float metric_arg, Index* assign_index, const float* weights,
                         idx_t* assign, float* dis, std::vector<float>& hassign, float* centroids) {
    const size_t cs = codec.sa_code_size();
    std::vector<float> buf(std::min(block, n) * d);
    std::vector<double> acc(k * d, 0.0), mass(k, 0.0);
    std::vector<size_t> count(k, 0), start(k + 1), members(std::min(block, n)), fill(k);
    if (assign_index) {
        assign_index->reset();
        assign_index->add(idx_t(k), centroids);
    }
    InterruptPoll poll;
    for (size_t i0 = 0; i0 < n; i0 += block) {
        const size_t m = std::min(block, n - i0);
        codec.sa_decode(idx_t(m), codes + i0 * cs, buf.data());
        if (assign_index) {
            assign_index->search(idx_t(m), buf.data(), 1, dis + i0, assign + i0);
            for (size_t i = i0; i < i0 + m; i++)
                if (assign[i] < 0 || size_t(assign[i]) >= k)
                    throw InvalidArgument("clustering index returned no centroid for training point " +
                                          std::to_string(i));
        } else {
            assign_nearest(buf.data(), m, centroids, k, d, metric, metric_arg, dis + i0, assign + i0);
        }
        std::fill(start.begin(), start.end(), 0);
        for (size_t i = 0; i < m; i++) start[size_t(assign[i0 + i]) + 1]++;
        for (size_t c = 0; c < k; c++) start[c + 1] += start[c];
        std::copy(start.begin(), start.end() - 1, fill.begin());
        for (size_t i = 0; i < m; i++) members[fill[size_t(assign[i0 + i])]++] = i;
        const size_t per_task = std::max<size_t>(1, k / (8 * size_t(get_num_threads())));
        parallel_for((k + per_task - 1) / per_task, [&](size_t t) {
            for (size_t c = t * per_task; c < std::min(k, (t + 1) * per_task); c++) {
                double* a = &acc[c * d];
                for (size_t mm = start[c]; mm < start[c + 1]; mm++) {
                    const size_t i = members[mm];
                    const float* xi = &buf[i * d];
                    const double w = weights ? double(weights[i0 + i]) : 1.0;
                    for (size_t j = 0; j < d; j++) a[j] += w * xi[j];
                    mass[c] += w;
                }
                count[c] += start[c + 1] - start[c];
            }
        });
        poll();
    }
    for (size_t c = 0; c < k; c++) {  // as compute_centroids
        float* out = centroids + c * d;
        hassign[c] = float(mass[c]);
        if (count[c] == 0 || mass[c] == 0) {
            std::fill(out, out + d, 0.f);
            hassign[c] = 0;
            continue;
        }
        const double inv = 1.0 / mass[c];
        for (size_t j = 0; j < d; j++) out[j] = float(acc[c * d + j] * inv);
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += dis[i];
    return sum;
}

}  // namespace

Clustering::Clustering(int d, int k, const ClusteringParameters& params) : ClusteringParameters(params), d(d), k(k) {
    NEARLY_CHECK_ARG(d > 0, "Clustering: d must be positive");
    NEARLY_CHECK_ARG(k > 0, "Clustering: k must be positive");
}

void IndexAssignStep::set_points(size_t n, const float* x, size_t d) {
    NEARLY_CHECK_ARG(size_t(index_.d) == d, "clustering index has d=" + std::to_string(index_.d) +
                                                ", the points have " + std::to_string(d));
    n_ = n, x_ = x, d_ = d;
}

double IndexAssignStep::assign_update(float* centroids, size_t k, MetricType, float* hassign) {
    index_.reset();
    index_.add(idx_t(k), centroids);
    std::vector<float> dis(n_);
    std::vector<idx_t> assign(n_);
    index_.search(idx_t(n_), x_, 1, dis.data(), assign.data());
    double sum = 0;
    for (size_t i = 0; i < n_; i++) {
        // An approximate index may find nothing for a point: faiss would
        // index out of bounds; here it is an error.
        if (assign[i] < 0 || size_t(assign[i]) >= k)
            throw InvalidArgument("clustering index returned no centroid for training point " + std::to_string(i));
        sum += dis[i];
    }
    std::vector<float> sizes(k);
    compute_centroids(d_, k, n_, x_, nullptr, assign.data(), sizes, centroids);
    std::copy(sizes.begin(), sizes.end(), hassign);
    return sum;
}

void Clustering::train(idx_t nx, const float* x_in, MetricType metric, KmeansStep* step, float metric_arg,
                       const float* weights_in) {
    train_points(nx, x_in, nullptr, metric, step, metric_arg, weights_in);
}

void Clustering::train_encoded(idx_t nx, const uint8_t* codes, const Index& codec, MetricType metric,
                               Index* assign_index, float metric_arg, const float* weights) {
    NEARLY_CHECK_ARG(codec.d == d, "Clustering.train_encoded: the codec has d = " + std::to_string(codec.d) +
                                       ", the clustering d = " + std::to_string(d));
    if (!codec.is_trained) throw NotSupported("Clustering.train_encoded: the codec is not trained");
    NEARLY_CHECK_ARG(decode_block_size > 0, "Clustering: decode_block_size must be positive");
    NEARLY_CHECK_ARG(!assign_index || assign_index->d == d, "Clustering.train_encoded: the index has d = " +
                                                                 std::to_string(assign_index ? assign_index->d : 0));
    const Codes enc{codes, &codec, assign_index};
    train_points(nx, nullptr, &enc, metric, nullptr, metric_arg, weights);
}

void Clustering::train_points(idx_t nx, const float* x_in, const Codes* enc, MetricType metric, KmeansStep* step,
                              float metric_arg, const float* weights_in) {
    NEARLY_CHECK_ARG(nx >= 0, "Clustering: n must be non-negative");
    if (nx < k)
        throw NotSupported("Number of training points (" + std::to_string(nx) +
                           ") should be at least as large as number of clusters (" + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(nx <= INT_MAX, "Clustering: at most 2^31 - 1 training points");
    NEARLY_CHECK_ARG(niter >= 0 && nredo >= 1, "Clustering: niter must be >= 0 and nredo >= 1");
    if (!enc) check_finite(x_in, size_t(nx) * d, "training data");  // codes decode to finite values
    if (weights_in) {
        check_finite(weights_in, size_t(nx), "weights");
        for (idx_t i = 0; i < nx; i++)
            NEARLY_CHECK_ARG(weights_in[i] >= 0, "Clustering: weights must be non-negative");
        step = nullptr;  // the GPU step computes plain means; weighted runs stay here
    }
    InterruptPoll poll;
    auto t_start = Clock::now();
    const size_t dd = d, kk = k;

    // Subsample like faiss: the first k * max_points_per_centroid points of a
    // seeded permutation.
    // The points are rows of `line` bytes: floats, or codes.
    const size_t line = enc ? enc->codec->sa_code_size() : dd * sizeof(float);
    const uint8_t* xb = enc ? enc->codes : reinterpret_cast<const uint8_t*>(x_in);
    const float* weights = weights_in;
    std::vector<uint8_t> sample;
    std::vector<float> sample_weights;
    size_t n = size_t(nx);
    if (max_points_per_centroid > 0 && n > kk * size_t(max_points_per_centroid)) {
        const size_t ns = kk * size_t(max_points_per_centroid);
        if (verbose) std::printf("Sampling a subset of %zu / %zu for training\n", ns, n);
        std::vector<int> perm(n);
        rand_perm(perm.data(), n, seed);
        sample.resize(ns * line);
        parallel_for((ns + 1023) / 1024, [&](size_t t) {
            for (size_t i = t * 1024; i < std::min(ns, t * 1024 + 1024); i++)
                std::copy(xb + size_t(perm[i]) * line, xb + size_t(perm[i] + 1) * line, &sample[i * line]);
        });
        xb = sample.data();
        if (weights_in) {
            sample_weights.resize(ns);
            for (size_t i = 0; i < ns; i++) sample_weights[i] = weights_in[perm[i]];
            weights = sample_weights.data();
        }
        n = ns;
    } else if (n < kk * size_t(std::max(0, min_points_per_centroid))) {
        std::fprintf(stderr, "WARNING clustering %zu points to %d centroids: please provide at least %zu training points\n",
                     n, k, kk * size_t(min_points_per_centroid));
    }

    const float* x = enc ? nullptr : reinterpret_cast<const float*>(xb);
    if (verbose && enc) std::printf("Input data encoded in %zu bytes per vector\n", line);

    // Centroids already there are where the iterations start (faiss's hot
    // start: OPQ retrains its codebooks a few iterations at a time).
    // Fewer than k of them: the rest start at random points (faiss); with
    // frozen_centroids the given ones never move.
    std::vector<float> input_centroids;
    if (!centroids.empty()) {
        NEARLY_CHECK_ARG(centroids.size() % dd == 0 && centroids.size() <= kk * dd,
                         "Clustering: initial centroids must be at most k x d floats, a whole number of rows");
        input_centroids = centroids;
    }
    const size_t n_input = input_centroids.size() / dd;
    const size_t k_frozen = frozen_centroids ? n_input : 0;
    if (k_frozen > 0) step = nullptr;  // the GPU step moves every centroid

    iteration_stats.clear();
    auto post_process = [&] {
        if (spherical) normalize_L2(centroids.data(), kk, dd);
        if (int_centroids)
            for (float& v : centroids) v = std::round(v);
    };

    if (n == kk) {  // nothing to optimize: the points are the centroids
        if (verbose) std::printf("Number of training points (%zu) same as number of clusters, just copying\n", n);
        centroids.resize(kk * dd);
        if (enc)
            enc->codec->sa_decode(idx_t(kk), xb, centroids.data());
        else
            std::copy(x, x + kk * dd, centroids.begin());
        iteration_stats.push_back({0.f, 0.0, 0.0, 1.0, 0});
        return;
    }

    if (verbose) {
        std::printf("Clustering %zu points in %dD to %d clusters, redo %d times, %d iterations\n", n, d, k, nredo, niter);
        std::printf("  Preprocessing in %.2f s\n", seconds_since(t_start));
    }
    std::fflush(stdout);

    // Encoded points: decoded a block at a time, the blocks a multiple of the
    // exact assignment's (so its scores, and the centroids, are train()'s).
    const size_t block = enc ? (std::max<size_t>(decode_block_size, 1) + 1023) / 1024 * 1024 : 0;
    std::vector<float> decoded_all;  // k-means++ / AFK-MC2 seeding reads every point
    std::vector<idx_t> assign(step ? 0 : n);
    std::vector<float> dis(step ? 0 : n), hassign(kk);
    if (step) step->set_points(n, x, dd);
    const bool lower_is_better = !is_similarity_metric(metric);
    float best_obj = lower_is_better ? HUGE_VALF : -HUGE_VALF;
    std::vector<float> best_centroids;
    std::vector<ClusteringIterationStats> best_stats;
    auto t0 = Clock::now();
    double t_search = 0;

    for (int redo = 0; redo < nredo; redo++) {
        if (verbose && nredo > 1) std::printf("Outer iteration %d / %d\n", redo, nredo);
        // Initial centroids: the given ones, then training points picked by
        // init_method (faiss's seeds for each redo).
        centroids = input_centroids;
        centroids.resize(kk * dd);
        const int64_t redo_seed = seed + 1 + redo * 15486557LL;
        auto t_init = Clock::now();
        if (n_input < kk && init_method == ClusteringInitMethod::RANDOM) {
            std::vector<int> perm(n);
            rand_perm(perm.data(), n, redo_seed);
            for (size_t c = n_input; c < kk; c++)
                if (enc)
                    enc->codec->sa_decode(1, xb + size_t(perm[c]) * line, &centroids[c * dd]);
                else
                    std::copy(x + size_t(perm[c]) * dd, x + size_t(perm[c] + 1) * dd, &centroids[c * dd]);
        } else if (n_input < kk) {
            if (enc && decoded_all.empty()) {
                decoded_all.resize(n * dd);
                enc->codec->sa_decode(idx_t(n), xb, decoded_all.data());
            }
            ClusteringInitialization init(dd, kk - n_input);
            init.method = init_method;
            init.seed = redo_seed;
            init.afkmc2_chain_length = afkmc2_chain_length;
            init.init_centroids(n, enc ? decoded_all.data() : x, &centroids[n_input * dd], n_input,
                                n_input ? centroids.data() : nullptr);
            if (verbose)
                std::printf("  %s initialization in %.2f s\n",
                            init_method == ClusteringInitMethod::AFK_MC2 ? "AFK-MC2" : "k-means++",
                            seconds_since(t_init));
        }
        post_process();

        float obj = 0;
        for (int it = 0; it < niter; it++) {
            auto ts = Clock::now();
            if (step) {
                obj = float(step->assign_update(centroids.data(), kk, metric, hassign.data()));
                t_search += seconds_since(ts);
                poll();
            } else if (enc) {
                std::vector<float> frozen(centroids.begin(), centroids.begin() + k_frozen * dd);
                obj = float(encoded_iteration(xb, *enc->codec, n, dd, kk, block, metric, metric_arg, enc->index,
                                              weights, assign.data(), dis.data(), hassign, centroids.data()));
                t_search += seconds_since(ts);
                std::copy(frozen.begin(), frozen.end(), centroids.begin());
            } else {
                assign_nearest(x, n, centroids.data(), kk, dd, metric, metric_arg, dis.data(), assign.data());
                t_search += seconds_since(ts);
                poll();
                double sum = 0;
                for (size_t i = 0; i < n; i++) sum += dis[i];
                obj = float(sum);
                std::vector<float> frozen(centroids.begin(), centroids.begin() + k_frozen * dd);
                compute_centroids(dd, kk, n, x, weights, assign.data(), hassign, centroids.data());
                std::copy(frozen.begin(), frozen.end(), centroids.begin());
            }
            // faiss measures balance by point counts, weighted or not.
            std::vector<float> counts;
            if (weights) {
                counts.assign(kk, 0.f);
                for (size_t i = 0; i < n; i++) counts[assign[i]] += 1;
            }
            const std::vector<float>& sizes = weights ? counts : hassign;
            const double imbalance = imbalance_factor(sizes.data(), sizes.size(), double(n));
            const int nsplit = split_clusters(dd, kk - k_frozen, n, hassign.data() + k_frozen,
                                              centroids.data() + k_frozen * dd);
            iteration_stats.push_back({obj, seconds_since(t0), t_search, imbalance, nsplit});
            if (verbose) {
                std::printf("  Iteration %d (%.2f s, search %.2f s): objective=%g imbalance=%.3f nsplit=%d       \r",
                            it, iteration_stats.back().time, t_search, obj, imbalance, nsplit);
                std::fflush(stdout);
            }
            post_process();
            poll();
            // faiss's early stop: the objective moved by at most this fraction
            // (0: did not move at all).
            if (it > 0) {
                const float prev = iteration_stats[iteration_stats.size() - 2].obj;
                const double change = prev == 0 ? HUGE_VAL : std::abs(double(prev) - obj) / std::abs(double(prev));
                if (change <= early_stop_threshold) {
                    if (verbose) std::printf("\n  Converged at iteration %d: objective did not change\n", it);
                    break;
                }
            }
        }
        if (verbose) std::printf("\n");
        if (nredo > 1 && (lower_is_better ? obj < best_obj : obj > best_obj)) {
            if (verbose) std::printf("Objective improved: keep new clusters\n");
            best_centroids = centroids;
            best_stats = iteration_stats;
            best_obj = obj;
        }
    }
    if (nredo > 1 && !best_centroids.empty()) {
        centroids = std::move(best_centroids);
        iteration_stats = std::move(best_stats);
    }
    std::fflush(stdout);
}

}  // namespace nearly
