#include "nearly/nn_descent.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <random>
#include <shared_mutex>

#include "nearly/extra_distances.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"
#include "row_scorer.h"
#include "visited_set.h"

namespace nearly {

namespace {

struct Candidate {
    float dist;
    int32_t id;
    bool fresh;  // not yet joined from this node's side
};
inline bool farther(const Candidate& a, const Candidate& b) { return a.dist < b.dist; }  // max-heap: worst on top

constexpr size_t kLockStripes = 1 << 12;

// Every node's candidate pool (a max-heap of at most L), each guarded by a
// striped lock: local joins offer candidates to any node from any thread.
// Most offers lose to the pool's worst, so each pool also publishes its worst
// (once full; it only ever falls) for a check without the lock: taking the
// lock for every offer was 30% of the build.
struct Pools {
    size_t L;
    std::vector<std::vector<Candidate>> pool;
    std::unique_ptr<std::atomic<float>[]> worst;
    std::unique_ptr<std::mutex[]> locks{new std::mutex[kLockStripes]};

    Pools(size_t n, size_t L) : L(L), pool(n), worst(new std::atomic<float>[n]) {
        for (size_t i = 0; i < n; i++) worst[i].store(std::numeric_limits<float>::infinity(), std::memory_order_relaxed);
    }
    std::mutex& lock(size_t i) { return locks[i % kLockStripes]; }
    // Publishes pool i's worst (called with the pool a heap and not shared).
    void publish(size_t i) {
        if (pool[i].size() == L) worst[i].store(pool[i].front().dist, std::memory_order_relaxed);
    }
    // Offers j at distance dist to node i; true when the pool took it.
    bool offer(size_t i, int32_t j, float dist) {
        if (dist >= worst[i].load(std::memory_order_relaxed)) return false;
        std::lock_guard<std::mutex> lk(lock(i));
        auto& p = pool[i];
        if (p.size() == L && dist >= p.front().dist) return false;
        for (const Candidate& c : p)
            if (c.id == j) return false;
        if (p.size() == L) {
            std::pop_heap(p.begin(), p.end(), farther);
            p.back() = {dist, j, true};
        } else {
            p.push_back({dist, j, true});
        }
        std::push_heap(p.begin(), p.end(), farther);
        publish(i);
        return true;
    }
};

// The scores of a local join, blocked: the node's new and old neighbours are
// copied into one contiguous panel (new first), and four new rows at a time
// are scored against every later row, so each row read serves four sums
// (faster than pair by pair, with the vectors scattered in memory).
struct JoinScorer {
    size_t d;
    MetricType metric;
    float metric_arg;
    const SimdKernels& K = simd();
    std::vector<float> panel, out;

    // Calls f(a, b, score) for every new row a and every row b > a of the
    // panel (nw new rows, then the old ones).
    template <class F>
    void run(const float* x, const std::vector<int32_t>& nw, const std::vector<int32_t>& od, F&& f) {
        const size_t rows = nw.size() + od.size();
        panel.resize(rows * d);
        for (size_t r = 0; r < rows; r++) {
            const int32_t id = r < nw.size() ? nw[r] : od[r - nw.size()];
            std::copy(x + size_t(id) * d, x + size_t(id) * d + d, panel.data() + r * d);
        }
        out.resize(4 * rows);
        const bool ip = metric == METRIC_INNER_PRODUCT;
        if (is_extra_metric(metric)) {  // one new row against every later row (L1, Linf: SIMD kernels)
            for (size_t a = 0; a < nw.size(); a++) {
                const size_t ny = rows - a - 1;
                extra_distances_ny(metric, metric_arg, panel.data() + a * d, panel.data() + (a + 1) * d, d, ny,
                                   out.data());
                for (size_t j = 0; j < ny; j++) f(a, a + 1 + j, extra_score_of(metric, out[j]));
            }
            return;
        }
        for (size_t a0 = 0; a0 < nw.size(); a0 += 4) {
            const size_t ny = rows - a0 - 1, block = std::min<size_t>(4, nw.size() - a0);
            const float* q = panel.data() + a0 * d;
            const float* y = panel.data() + (a0 + 1) * d;
            if (block == 4) {
                (ip ? K.ip_4q : K.l2sqr_4q)(q, y, d, ny, out.data(), ny);
            } else {
                for (size_t r = 0; r < block; r++) (ip ? K.inner_products_ny : K.l2sqr_ny)(q + r * d, y, d, ny, out.data() + r * ny);
            }
            for (size_t r = 0; r < block; r++)
                for (size_t j = r; j < ny; j++) f(a0 + r, a0 + 1 + j, ip ? -out[r * ny + j] : out[r * ny + j]);
        }
    }
};

// Keeps at most cap entries of v, a random choice (rng: the node's own).
void sample_down(std::vector<int32_t>& v, size_t cap, std::mt19937_64& rng) {
    if (v.size() <= cap) return;
    for (size_t i = 0; i < cap; i++) std::swap(v[i], v[i + rng() % (v.size() - i)]);
    v.resize(cap);
}

}  // namespace

std::vector<int32_t> nn_descent(const float* x, size_t n, size_t d, MetricType metric, float metric_arg,
                                const NNDescentParams& p, bool verbose) {
    metric = checked_metric(metric);
    NEARLY_CHECK_ARG(p.K >= 1 && p.S >= 1 && p.R >= 0 && p.iter >= 0, "NNDescent: K and S must be positive, R and "
                                                                      "iter non-negative");
    NEARLY_CHECK_ARG(p.L >= p.K, "NNDescent: L must be at least K (L = " + std::to_string(p.L) + ", K = " +
                                     std::to_string(p.K) + ")");
    NEARLY_CHECK_ARG(n < size_t(std::numeric_limits<int32_t>::max()), "NNDescent: too many vectors");
    const size_t K = size_t(p.K), L = std::min(size_t(p.L), n > 0 ? n - 1 : 0);
    std::vector<int32_t> graph(n * K, -1);
    if (n <= 1) return graph;
    const RowScorer score{x, d, metric, metric_arg};
    const auto t0 = std::chrono::steady_clock::now();
    InterruptPoll poll;

    // Random pools: L distinct other nodes each (a node's own generator, so
    // the start does not depend on the threads).
    Pools pools(n, L);
    parallel_for((n + 255) / 256, [&](size_t t) {
        for (size_t i = t * 256; i < std::min(n, t * 256 + 256); i++) {
            std::mt19937_64 rng(uint64_t(p.random_seed) * 0x9E3779B97F4A7C15ull + i);
            auto& pool = pools.pool[i];
            pool.reserve(L);
            while (pool.size() < L) {
                const int32_t j = int32_t(rng() % n);
                if (size_t(j) == i || std::any_of(pool.begin(), pool.end(), [j](const Candidate& c) { return c.id == j; }))
                    continue;
                pool.push_back({score(i, size_t(j)), j, true});
            }
            std::make_heap(pool.begin(), pool.end(), farther);
            pools.publish(i);
        }
        poll();
    });

    std::vector<std::vector<int32_t>> fresh(n), old(n), rfresh(n), rold(n);
    for (int round = 0; round < p.iter; round++) {
        // 1. Each node walks its pool nearest first until it has taken S
        // fresh candidates: those become its new neighbours (no longer
        // fresh), the joined ones passed on the way its old neighbours.
        // Farther candidates wait for a later round.
        std::vector<float> worst(n, std::numeric_limits<float>::infinity());
        parallel_for((n + 255) / 256, [&](size_t t) {
            for (size_t i = t * 256; i < std::min(n, t * 256 + 256); i++) {
                auto& pool = pools.pool[i];
                std::sort(pool.begin(), pool.end(), [](const Candidate& a, const Candidate& b) { return a.dist < b.dist; });
                if (pool.size() == L) worst[i] = pool.back().dist;
                fresh[i].clear();
                old[i].clear();
                for (size_t c = 0, taken = 0; c < pool.size() && taken < size_t(p.S); c++) {
                    if (pool[c].fresh) {
                        pool[c].fresh = false;
                        fresh[i].push_back(pool[c].id);
                        taken++;
                    } else {
                        old[i].push_back(pool[c].id);
                    }
                }
            }
        });
        // 2. Reverse neighbours: i joins j's side when j's pool could not
        // hold i (i is farther than j's worst), at most R of each kind.
        for (size_t i = 0; i < n; i++) {
            rfresh[i].clear();
            rold[i].clear();
        }
        if (p.R > 0) {
            for (size_t i = 0; i < n; i++) {
                const auto& pool = pools.pool[i];
                size_t f = 0, o = 0;
                for (size_t c = 0; c < pool.size() && (f < fresh[i].size() || o < old[i].size()); c++) {
                    const int32_t j = pool[c].id;
                    const bool is_new = f < fresh[i].size() && fresh[i][f] == j;
                    const bool is_old = !is_new && o < old[i].size() && old[i][o] == j;
                    if (!is_new && !is_old) continue;
                    (is_new ? f : o)++;
                    if (pool[c].dist > worst[size_t(j)]) (is_new ? rfresh : rold)[size_t(j)].push_back(int32_t(i));
                }
            }
            parallel_for((n + 255) / 256, [&](size_t t) {
                for (size_t i = t * 256; i < std::min(n, t * 256 + 256); i++) {
                    std::mt19937_64 rng(uint64_t(p.random_seed) + 7919 * uint64_t(round) + i);
                    sample_down(rfresh[i], size_t(p.R), rng);
                    sample_down(rold[i], size_t(p.R), rng);
                }
            });
        }
        parallel_for((n + 255) / 256, [&](size_t t) {
            for (size_t i = t * 256; i < std::min(n, t * 256 + 256); i++)
                std::make_heap(pools.pool[i].begin(), pools.pool[i].end(), farther);
        });
        // 3. Local joins: new with new, new with old, each pair offered to
        // both of its nodes.
        std::vector<size_t> updates_of_task((n + 63) / 64, 0);
        parallel_for((n + 63) / 64, [&](size_t t) {
            std::vector<int32_t> nw, od;
            JoinScorer join{d, metric, metric_arg};
            size_t updates = 0;
            for (size_t i = t * 64; i < std::min(n, t * 64 + 64); i++) {
                nw = fresh[i];
                nw.insert(nw.end(), rfresh[i].begin(), rfresh[i].end());
                std::sort(nw.begin(), nw.end());
                nw.erase(std::unique(nw.begin(), nw.end()), nw.end());
                od = old[i];
                od.insert(od.end(), rold[i].begin(), rold[i].end());
                std::sort(od.begin(), od.end());
                od.erase(std::unique(od.begin(), od.end()), od.end());
                join.run(x, nw, od, [&](size_t a, size_t b, float s) {
                    const int32_t u = nw[a], v = b < nw.size() ? nw[b] : od[b - nw.size()];
                    if (u != v) updates += pools.offer(size_t(u), v, s) + pools.offer(size_t(v), u, s);
                });
            }
            updates_of_task[t] = updates;
            poll();
        });
        size_t updates = 0;
        for (size_t u : updates_of_task) updates += u;
        if (verbose)
            std::printf("  NNDescent round %d: %zu updates (%.3f per node) in %.1f s\n", round + 1, updates,
                        double(updates) / double(n),
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (updates == 0) break;  // converged: the next rounds would find nothing either
    }

    parallel_for((n + 255) / 256, [&](size_t t) {
        for (size_t i = t * 256; i < std::min(n, t * 256 + 256); i++) {
            auto& pool = pools.pool[i];
            std::sort(pool.begin(), pool.end(), [](const Candidate& a, const Candidate& b) {
                return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
            });
            for (size_t j = 0; j < std::min(K, pool.size()); j++) graph[i * K + j] = pool[j].id;
        }
    });
    return graph;
}

// ---- IndexNNDescentFlat ----------------------------------------------------

// Every metric of IndexFlat (extra_distances.h): the graph is built and
// walked on exact scores.
IndexNNDescentFlat::IndexNNDescentFlat(int d, int K, MetricType metric) : Index(d, metric, true) {
    NEARLY_CHECK_ARG(K >= 1 && K <= 4096, "NNDescent: K must be between 1 and 4096 (got " + std::to_string(K) + ")");
    nndescent.K = K;
    nndescent.L = K + 50;
}

void IndexNNDescentFlat::add(idx_t n, const float* x) {
    check_add_args(n, x);
    if (n == 0) return;
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(size_t(ntotal + n) < size_t(std::numeric_limits<int32_t>::max()),
                     "NNDescent: too many vectors for one index");
    if (ntotal > 0 && verbose)
        std::fprintf(stderr, "WARNING NNDescent does not support dynamic insertions: the graph is rebuilt\n");
    const size_t before = xb_.size();
    xb_.insert(xb_.end(), x, x + size_t(n) * size_t(d));
    try {
        graph_ = nn_descent(xb_.data(), size_t(ntotal + n), size_t(d), metric_type, metric_arg, nndescent, verbose);
    } catch (...) {
        xb_.resize(before);  // a refused build (bad parameters, Ctrl-C) leaves the index as it was
        throw;
    }
    ntotal += n;
    built_ = true;
}

void IndexNNDescentFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                const SearchParameters* params) const {
    check_search_args(n, x, k);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t nn = size_t(ntotal), kk = size_t(k), K = size_t(nndescent.K), dd = size_t(d);
    const bool negated = is_similarity_metric(metric_type);
    // An extra metric's undefined (NaN) scores are +inf in the walk and never a result.
    const bool skip_inf = is_extra_metric(metric_type);
    const float pad = missing_distance(metric_type);
    const RowScorer score{xb_.data(), dd, metric_type, metric_arg};
    const size_t width = std::min(nn, std::max(size_t(std::max(search_L, 0)), kk));
    // The start: the same random nodes for every query (faiss's seed).
    std::vector<int32_t> start;
    {
        std::mt19937 rng(uint32_t(nndescent.random_seed));
        std::vector<int32_t> all(nn);
        for (size_t i = 0; i < nn; i++) all[i] = int32_t(i);
        for (size_t i = 0; i < width; i++) std::swap(all[i], all[i + rng() % (nn - i)]);
        start.assign(all.begin(), all.begin() + width);
    }
    InterruptPoll poll;
    parallel_for((size_t(n) + 15) / 16, [&](size_t t) {
        thread_local VisitedSet visited;
        struct Entry {
            float dist;
            int32_t id;
            bool expanded;
        };
        std::vector<Entry> pool;
        std::vector<int32_t> fresh;
        for (size_t q = t * 16; q < std::min(size_t(n), t * 16 + 16); q++) {
            const float* xq = x + q * dd;
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            if (nn > 0) {
                visited.prepare(nn);
                pool.clear();
                for (int32_t s : start) {
                    visited.visit(size_t(s));
                    const float ds = score(xq, size_t(s));
                    pool.push_back({ds, s, false});
                    if (sel && sel->is_member(s) && !(skip_inf && std::isinf(ds))) TopK::push(Dq, Iq, kk, ds, s);
                }
                std::sort(pool.begin(), pool.end(), [](const Entry& a, const Entry& b) { return a.dist < b.dist; });
                // Expand the best unexpanded entry until none is left; new
                // nodes enter the sorted pool of fixed width.
                for (size_t c = 0; c < pool.size();) {
                    if (pool[c].expanded) {
                        c++;
                        continue;
                    }
                    pool[c].expanded = true;
                    const int32_t* nb = &graph_[size_t(pool[c].id) * K];
                    size_t lowest = pool.size();
                    // The unvisited neighbours' vectors start coming from
                    // memory before the first is scored.
                    fresh.clear();
                    for (size_t m = 0; m < K && nb[m] >= 0; m++)
                        if (!visited.visit(size_t(nb[m]))) {
                            fresh.push_back(nb[m]);
                            const char* v = reinterpret_cast<const char*>(xb_.data() + size_t(nb[m]) * dd);
                            for (size_t b = 0; b < std::min<size_t>(dd * sizeof(float), 256); b += 64)
                                __builtin_prefetch(v + b);
                        }
                    for (const int32_t f : fresh) {
                        const size_t v = size_t(f);
                        const float dv = score(xq, v);
                        if (sel && sel->is_member(idx_t(v)) && !(skip_inf && std::isinf(dv)))
                            TopK::push(Dq, Iq, kk, dv, idx_t(v));
                        if (dv >= pool.back().dist) continue;
                        auto at = std::upper_bound(pool.begin(), pool.end(), dv,
                                                   [](float a, const Entry& e) { return a < e.dist; });
                        const size_t pos = size_t(at - pool.begin());
                        pool.insert(at, {dv, int32_t(v), false});
                        pool.pop_back();
                        lowest = std::min(lowest, pos);
                    }
                    c = lowest <= c ? lowest : c + 1;
                }
                // Without a selector the pool's head is the answer: the best
                // of every node scored.
                if (!sel)
                    for (size_t j = 0; j < std::min(kk, pool.size()); j++)
                        if (!(skip_inf && std::isinf(pool[j].dist))) TopK::push(Dq, Iq, kk, pool[j].dist, pool[j].id);
            }
            TopK::finish(Dq, Iq, kk, negated, pad);
        }
        poll();
    });
}

void IndexNNDescentFlat::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(key >= 0 && key < ntotal, "reconstruct: key " + std::to_string(key) + " out of range");
    std::copy(xb_.begin() + key * d, xb_.begin() + (key + 1) * d, out);
}

void IndexNNDescentFlat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    xb_.clear();
    graph_.clear();
    ntotal = 0;
    built_ = false;
}

void IndexNNDescentFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    if (is_extra_metric(metric_type)) w.pod<float>(metric_arg);  // L2 / IP files unchanged
    for (int v : {nndescent.K, nndescent.S, nndescent.R, nndescent.L, nndescent.iter, nndescent.random_seed, search_L})
        w.pod<int32_t>(v);
    w.pod<uint8_t>(built_);
    w.pod<int64_t>(ntotal);
    w.array(xb_);
    w.array(graph_);
}

std::unique_ptr<IndexNNDescentFlat> IndexNNDescentFlat::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const bool extra = is_extra_metric(MetricType(metric));
    const float arg = extra ? r.pod<float>() : 0.f;
    int v[7];
    for (int& x : v) x = r.pod<int32_t>();
    const uint8_t built = r.pod<uint8_t>();
    const int64_t ntotal = r.pod<int64_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT || extra) && std::isfinite(arg) &&
                v[0] >= 1 && v[0] <= 4096 && v[1] >= 1 && v[2] >= 0 && v[3] >= v[0] && v[4] >= 0 && built <= 1 && ntotal >= 0 &&
                ntotal < std::numeric_limits<int32_t>::max(),
            "bad NNDescentFlat header");
    auto index = std::make_unique<IndexNNDescentFlat>(d, v[0], MetricType(metric));
    index->metric_arg = arg;
    index->nndescent = {v[0], v[1], v[2], v[3], v[4], v[5]};
    index->search_L = v[6];
    r.array(index->xb_);
    r.array(index->graph_);
    r.check(index->xb_.size() == size_t(ntotal) * size_t(d) && index->graph_.size() == size_t(ntotal) * size_t(v[0]),
            "NNDescentFlat arrays do not match ntotal");
    r.check(built || ntotal == 0, "NNDescentFlat: vectors without a graph");
    for (int32_t g : index->graph_) r.check(g >= -1 && g < ntotal, "NNDescentFlat: a link out of range");
    index->check_add_args(0, nullptr);
    if (!metric_accepts_nan(index->metric_type))
        check_finite(index->xb_.data(), index->xb_.size(), "the stored vectors");
    index->ntotal = ntotal;
    index->built_ = built;
    return index;
}

}  // namespace nearly
