#include "nearly/polysemous.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

#include "nearly/parallel.h"

namespace nearly {

namespace {
// popcount of a centroid number (< 2^16) with shifts and masks only, so that
// the loops below vectorize on any x86-64.
inline uint32_t bit_count(uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    x += x >> 8;
    x += x >> 16;
    return x & 0x3fu;
}
}  // namespace

HammingReproduction::HammingReproduction(size_t nbits_, const float* dis, double dis_weight_factor)
    : nbits(nbits_), n(size_t(1) << nbits_), target(n * n), weight(n * n) {
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n * n; i++) {
        sum += dis[i];
        sum2 += double(dis[i]) * dis[i];
    }
    const double n2 = double(n * n), mean = sum / n2;
    const double sd = std::sqrt(std::max(sum2 / n2 - mean * mean, 0.0));
    // The distances' spread onto that of Hamming distances between random
    // nbits-bit words (binomial: mean nbits / 2, variance nbits / 4).
    const double scale = sd > 0 ? std::sqrt(double(nbits) / 4.0) / sd : 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            // from the upper triangle, so that both halves are bit-identical
            const double dij = dis[std::min(i, j) * n + std::max(i, j)];
            const double t = (dij - mean) * scale + double(nbits) / 2.0;
            target[i * n + j] = float(t);
            weight[i * n + j] = float(std::exp(-dis_weight_factor * t));
        }
}

double HammingReproduction::cost(const int* perm) const {
    double c = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            const double e = double(target[i * n + j]) - double(bit_count(uint32_t(perm[i] ^ perm[j])));
            c += double(weight[i * n + j]) * e * e;
        }
    return c;
}

// The annealing's inner loop (a million calls per subquantizer by default):
// compiled for AVX-512 and AVX2 beside the baseline, chosen when the library
// loads (the loop is plain C++; tests check it against cost()).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
double HammingReproduction::swap_delta(const int* perm, int a, int b) const {
    // Entry (a, j) goes from w (t - ha)^2 to w (t - hb)^2, entry (b, j) the
    // other way: (hb - ha) (w_a (ha + hb - 2 t_a) - w_b (ha + hb - 2 t_b)).
    // Pairs within {a, b} keep their distances.
    const uint32_t pa = uint32_t(perm[a]), pb = uint32_t(perm[b]);
    const float *ta = &target[size_t(a) * n], *tb = &target[size_t(b) * n];
    const float *wa = &weight[size_t(a) * n], *wb = &weight[size_t(b) * n];
    constexpr size_t kLanes = 16;  // independent sums: the loop vectorizes
    float acc[kLanes] = {};
    size_t j0 = 0;
    for (; j0 + kLanes <= n; j0 += kLanes)
        for (size_t l = 0; l < kLanes; l++) {
            const size_t j = j0 + l;
            const uint32_t pj = uint32_t(perm[j]);
            const float ha = float(bit_count(pa ^ pj)), hb = float(bit_count(pb ^ pj)), s = ha + hb;
            acc[l] += (hb - ha) * (wa[j] * (s - 2.f * ta[j]) - wb[j] * (s - 2.f * tb[j]));
        }
    for (size_t j = j0; j < n; j++) {
        const uint32_t pj = uint32_t(perm[j]);
        const float ha = float(bit_count(pa ^ pj)), hb = float(bit_count(pb ^ pj)), s = ha + hb;
        acc[0] += (hb - ha) * (wa[j] * (s - 2.f * ta[j]) - wb[j] * (s - 2.f * tb[j]));
    }
    double total = 0;
    for (float v : acc) total += v;
    // j = a and j = b were summed above although their entries do not change
    for (int j : {a, b}) {
        const uint32_t pj = uint32_t(perm[j]);
        const float ha = float(bit_count(pa ^ pj)), hb = float(bit_count(pb ^ pj)), s = ha + hb;
        total -= (hb - ha) * (wa[j] * (s - 2.f * ta[j]) - wb[j] * (s - 2.f * tb[j]));
    }
    return 2.0 * total;  // the columns a and b change as the rows do
}

double anneal_permutation(const HammingReproduction& obj, const SimulatedAnnealingParameters& p, int* best,
                          const std::function<bool()>& should_stop) {
    const int n = int(obj.n);
    std::mt19937 rng(uint32_t(p.seed));
    auto rand_int = [&](int m) { return int(rng() % uint32_t(m)); };
    auto rand_float = [&]() { return float(rng() >> 8) * (1.f / 16777216.f); };
    double best_cost = 0;
    std::vector<int> perm(size_t(n), 0);
    for (int run = 0; run < std::max(p.n_redo, 1); run++) {
        for (int i = 0; i < n; i++) perm[size_t(i)] = i;
        if (p.init_random)
            for (int i = 0; i + 1 < n; i++) std::swap(perm[size_t(i)], perm[size_t(i + rand_int(n - i))]);
        const double start = obj.cost(perm.data());
        double temperature = p.init_temperature;
        size_t swaps = 0;
        for (int it = 0; it < p.n_iter && n > 1; it++) {
            if ((it & 4095) == 0 && should_stop && should_stop()) break;
            temperature *= p.temperature_decay;
            int a = rand_int(n), b;
            if (p.only_bit_flips) {
                b = a ^ (1 << rand_int(int(obj.nbits)));
            } else {
                b = rand_int(n - 1);
                if (b >= a) b++;
            }
            const double delta = obj.swap_delta(perm.data(), a, b);
            if (delta < 0 || rand_float() < temperature) {
                std::swap(perm[size_t(a)], perm[size_t(b)]);
                swaps++;
            }
        }
        // the exact sum, not the running one: runs are compared on it
        const double c = obj.cost(perm.data());
        if (p.verbose > 1)
            std::printf("    annealing run %d: cost %g -> %g, %zu swaps%s\n", run, start, c, swaps,
                        run == 0 || c < best_cost ? " (kept)" : "");
        if (run == 0 || c < best_cost) {
            best_cost = c;
            std::copy(perm.begin(), perm.end(), best);
        }
    }
    return best_cost;
}

size_t PolysemousTraining::memory_usage_per_thread(const ProductQuantizer& pq) const {
    // the centroid distances, targets and weights: three n x n float tables
    return 3 * pq.ksub * pq.ksub * sizeof(float);
}

void PolysemousTraining::check(const ProductQuantizer& pq) const {
    if (optimization_type == OT_Ranking_weighted_diff)
        throw NotSupported("PolysemousTraining: OT_Ranking_weighted_diff is not implemented in nearly "
                           "(OT_ReproduceDistances_affine, faiss's default, is)");
    NEARLY_CHECK_ARG(optimization_type == OT_None || optimization_type == OT_ReproduceDistances_affine,
                     "PolysemousTraining: optimization_type must be OT_None, OT_ReproduceDistances_affine or "
                     "OT_Ranking_weighted_diff");
    NEARLY_CHECK_ARG(n_iter >= 0 && n_redo >= 0 && temperature_decay > 0 && temperature_decay <= 1,
                     "PolysemousTraining: n_iter and n_redo must be >= 0 and temperature_decay in (0, 1]");
    const size_t mem1 = memory_usage_per_thread(pq);
    if (optimization_type != OT_None && mem1 > max_memory)
        throw InvalidArgument("Polysemous training would use " + std::to_string(mem1) +
                              " bytes per thread, more than max_memory = " + std::to_string(max_memory) +
                              " (nbits = " + std::to_string(pq.nbits) + ")");
}

void PolysemousTraining::optimize_pq_for_hamming(ProductQuantizer& pq, size_t, const float*) const {
    check(pq);
    if (optimization_type == OT_None) return;
    const size_t mem1 = memory_usage_per_thread(pq);
    const size_t at_once = std::max<size_t>(1, std::min(size_t(get_num_threads()), max_memory / mem1));
    const size_t n = pq.ksub, dsub = pq.dsub;
    // Ctrl-C: the calling thread polls Python between annealing steps and
    // its answer stops every thread's run.
    InterruptPoll poll;
    std::atomic<bool> stop{false};
    auto should_stop = [&]() {
        if (stop.load(std::memory_order_relaxed)) return true;
        try {
            poll();
        } catch (const Interrupted&) {
            stop = true;
        }
        return stop.load(std::memory_order_relaxed);
    };
    std::vector<float> renumbered(pq.centroids.size());
    for (size_t m0 = 0; m0 < pq.M && !stop.load(); m0 += at_once) {
        parallel_for(std::min(at_once, pq.M - m0), [&](size_t t) {
            const size_t m = m0 + t;
            const float* c = pq.get_centroids(m, 0);
            std::vector<float> dis(n * n, 0.f);
            for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++) {
                    float s = 0;
                    for (size_t k = 0; k < dsub; k++) {
                        const float e = c[i * dsub + k] - c[j * dsub + k];
                        s += e * e;
                    }
                    dis[i * n + j] = dis[j * n + i] = s;
                }
            const HammingReproduction obj(pq.nbits, dis.data(), dis_weight_factor);
            dis = std::vector<float>();
            std::vector<int> perm(n);
            const double cost = anneal_permutation(obj, *this, perm.data(), should_stop);
            if (stop.load()) return;
            if (verbose > 0) {
                std::vector<int> identity(n);
                for (size_t i = 0; i < n; i++) identity[i] = int(i);
                std::printf("polysemous training, subquantizer %zu / %zu: cost %g -> %g\n", m + 1, pq.M,
                            obj.cost(identity.data()), cost);
                std::fflush(stdout);
            }
            for (size_t i = 0; i < n; i++)
                std::copy_n(c + i * dsub, dsub, &renumbered[(m * n + size_t(perm[i])) * dsub]);
        });
    }
    if (stop.load()) throw Interrupted();
    pq.centroids.swap(renumbered);
    pq.sync_transposed_centroids();
}

}  // namespace nearly
