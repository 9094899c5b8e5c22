#include "nearly/nsg.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <random>

#include "nearly/distance.h"
#include "nearly/extra_distances.h"
#include "nearly/index_pq.h"
#include "nearly/index_sq.h"
#include "nearly/nn_descent.h"
#include "row_scorer.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"
#include "visited_set.h"

namespace nearly {

namespace {

struct Cand {
    float dist;  // smaller is better: squared L2, or minus the inner product
    int32_t id;
};
bool closer(const Cand& a, const Cand& b) { return a.dist < b.dist || (a.dist == b.dist && a.id < b.id); }
bool farther(const Cand& a, const Cand& b) { return closer(b, a); }

// The exact scorer over float rows (the build's, and IndexNSGFlat's search).
struct FlatScorer {
    RowScorer rs;
    float one(const float* q, int32_t id) const { return rs(q, size_t(id)); }
    void many(const float* q, const int32_t* ids, size_t m, float* out) const {
        for (size_t j = 0; j < m; j++) __builtin_prefetch(rs.xb + size_t(ids[j]) * rs.d);
        for (size_t j = 0; j < m; j++) out[j] = rs(q, size_t(ids[j]));
    }
};

// A storage index's DistanceComputer, its query set: a node's neighbours
// are scored in one call (one lock of the storage), smaller is better.
struct StorageScorer {
    DistanceComputer* dc;
    bool ip;
    mutable std::vector<idx_t> ids64;
    float one(const float*, int32_t id) const {
        const float s = (*dc)(idx_t(id));
        return ip ? -s : s;
    }
    void many(const float*, const int32_t* ids, size_t m, float* out) const {
        ids64.assign(ids, ids + m);
        dc->scores(ids64.data(), m, out);
        if (ip)
            for (size_t j = 0; j < m; j++) out[j] = -out[j];
    }
};

// Beam search of width L over `degree` links a row (-1 padded) from entry:
// `best` ends with the L closest nodes found, closest first. With `scored`,
// every node it scores is appended there (the build's candidates).
template <class Scorer>
void beam_search(const Scorer& sc, const float* q, const int32_t* links, size_t degree, size_t n, int32_t entry,
                 size_t L, VisitedSet& vis, std::vector<Cand>& best, std::vector<Cand>* scored) {
    vis.prepare(n);
    std::vector<Cand> frontier;  // min-heap on distance
    std::vector<int32_t> fresh(degree);
    std::vector<float> dist(degree);
    best.clear();
    const Cand e{sc.one(q, entry), entry};
    vis.visit(size_t(entry));
    frontier.push_back(e);
    best.push_back(e);  // max-heap of the L best
    if (scored) scored->push_back(e);
    while (!frontier.empty()) {
        const Cand c = frontier.front();
        if (best.size() >= L && farther(c, best.front())) break;
        std::pop_heap(frontier.begin(), frontier.end(), farther);
        frontier.pop_back();
        const int32_t* ll = links + size_t(c.id) * degree;
        size_t m = 0;
        for (size_t j = 0; j < degree && ll[j] >= 0; j++)
            if (!vis.visit(size_t(ll[j]))) fresh[m++] = ll[j];
        sc.many(q, fresh.data(), m, dist.data());
        for (size_t j = 0; j < m; j++) {
            const Cand nc{dist[j], fresh[j]};
            if (scored) scored->push_back(nc);
            if (best.size() < L || closer(nc, best.front())) {
                frontier.push_back(nc);
                std::push_heap(frontier.begin(), frontier.end(), farther);
                best.push_back(nc);
                std::push_heap(best.begin(), best.end(), closer);
                if (best.size() > L) {
                    std::pop_heap(best.begin(), best.end(), closer);
                    best.pop_back();
                }
            }
        }
    }
    std::sort(best.begin(), best.end(), closer);
}

// One query block's searches: the beam, then the selector's pass.
// undefined_inf: +inf is an extra metric's undefined (NaN) score, never a
// result.
template <class Scorer>
void search_block(const Scorer& sc, const float* xq, const int32_t* graph, size_t R, size_t nn, int32_t entry,
                  size_t k, size_t width, const IDSelector* sel, float* Dq, idx_t* Iq, VisitedSet& vis,
                  std::vector<Cand>& best, std::vector<Cand>& scored, bool undefined_inf = false) {
    constexpr float inf = std::numeric_limits<float>::infinity();
    scored.clear();
    beam_search(sc, xq, graph, R, nn, entry, width, vis, best, sel ? &scored : nullptr);
    size_t got = 0;
    for (const Cand& c : sel ? scored : best)
        if ((!sel || sel->is_member(c.id)) && !(undefined_inf && c.dist == inf)) {
            TopK::push(Dq, Iq, k, c.dist, c.id);
            got++;
        }
    // A selective filter can leave the walk with fewer than k passing
    // nodes: then every passing node is scored.
    if (sel && got < k) {
        TopK::init(Dq, Iq, k);
        for (size_t v = 0; v < nn; v++)
            if (sel->is_member(idx_t(v))) {
                const float s = sc.one(xq, int32_t(v));
                if (!(undefined_inf && s == inf)) TopK::push(Dq, Iq, k, s, idx_t(v));
            }
    }
}

// MRNG's rule (NSG's pruning): walking the candidates closest first (at
// most `consider` of them), keep one unless a neighbour already kept is at
// least as close to it as the node is; at most R. (faiss occludes only a
// strictly closer one, so copies of a vector at distance 0 all stay and
// fill a list with one point.) `cands` is sorted, duplicates and the node
// itself already out.
void mrng_prune(const RowScorer& sc, const std::vector<Cand>& cands, size_t R, size_t consider, std::vector<Cand>& out) {
    out.clear();
    for (size_t i = 0; i < cands.size() && i < consider && out.size() < R; i++) {
        const Cand& p = cands[i];
        const float* xp = sc.xb + size_t(p.id) * sc.d;
        bool occluded = false;
        for (const Cand& r : out)
            if (sc(xp, r.id) <= p.dist) {
                occluded = true;
                break;
            }
        if (!occluded) out.push_back(p);
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

IndexNSG::IndexNSG(int d, int R_, MetricType metric, bool extra_metrics)
    : Index(d, metric, extra_metrics), R(R_), L(R_ + 32), C(R_ + 100) {
    // Below 4 links a node, pruned graphs leave too little room to link the
    // nodes the pruning cut off (faiss loops forever looking for some).
    NEARLY_CHECK_ARG(R >= 4 && R <= 1024, "NSG: R must be between 4 and 1024 (got " + std::to_string(R) + ")");
}

// Every metric of IndexFlat (extra_distances.h): built and walked on exact scores.
IndexNSGFlat::IndexNSGFlat(int d, int R, MetricType metric) : IndexNSG(d, R, metric, true) {}

void IndexNSG::add(idx_t n, const float* x) {
    sync_trained();
    check_add_args(n, x);
    if (n == 0) return;
    NEARLY_CHECK_ARG(GK >= 1 && L >= 1 && C >= 1 && search_L >= 1, "NSG: GK, L, C and search_L must be positive");
    NEARLY_CHECK_ARG(build_type == 0 || build_type == 1, "NSG: build_type must be 0 (exact) or 1 (NN-descent)");
    NEARLY_CHECK_ARG(n < idx_t(std::numeric_limits<int32_t>::max()), "NSG: too many vectors for one index");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (ntotal > 0) throw NotSupported("NSG does not support incremental addition");
    check_store(n);
    const size_t nn = size_t(n), dd = size_t(d);
    const auto t0 = std::chrono::steady_clock::now();
    InterruptPoll poll;

    // 1. The k-NN graph (GK neighbours, the node itself left out): exact,
    // or by NN-descent.
    const size_t gk = std::min(size_t(GK), nn - 1), kq = gk + 1;
    std::vector<int32_t> knn(nn * std::max<size_t>(gk, 1), -1);
    if (build_type == 1 && gk > 0) {
        NNDescentParams p;
        p.K = int(gk);
        p.S = nndescent_S;
        p.R = nndescent_R;
        p.L = std::max(nndescent_L > 0 ? nndescent_L : GK + 50, int(gk));
        p.iter = nndescent_iter;
        knn = nn_descent(x, nn, dd, metric_type, metric_arg, p, verbose);
        if (verbose) std::printf("  NSG: k-NN graph by NN-descent (%zu neighbours) in %.1f s\n", gk, seconds_since(t0));
    } else {
        const size_t block = 4096;
        std::vector<float> D(block * kq);
        std::vector<idx_t> I(block * kq);
        for (size_t i0 = 0; i0 < nn && gk > 0; i0 += block) {
            const size_t m = std::min(block, nn - i0);
            if (is_extra_metric(metric_type))
                knn_extra(x + i0 * dd, m, x, nn, dd, metric_type, metric_arg, kq, D.data(), I.data());
            else
                knn_exhaustive(x + i0 * dd, m, x, nn, dd, metric_type, kq, D.data(), I.data());
            for (size_t i = 0; i < m; i++) {
                size_t c = 0;
                for (size_t j = 0; j < kq && c < gk; j++) {
                    const idx_t id = I[i * kq + j];
                    if (id >= 0 && size_t(id) != i0 + i) knn[(i0 + i) * gk + c++] = int32_t(id);
                }
            }
            poll();
        }
        if (verbose) std::printf("  NSG: k-NN graph (%zu neighbours) in %.1f s\n", gk, seconds_since(t0));
    }
    link_and_store(nn, x, knn, std::max<size_t>(gk, 1));
}

void IndexNSG::build(idx_t n, const float* x, const idx_t* knn_graph, int gk) {
    sync_trained();
    check_add_args(n, x);
    NEARLY_CHECK_ARG(gk >= 1, "NSG build: the k-NN graph needs at least one column (got " + std::to_string(gk) + ")");
    NEARLY_CHECK_ARG(n < idx_t(std::numeric_limits<int32_t>::max()), "NSG: too many vectors for one index");
    NEARLY_CHECK_ARG(L >= 1 && C >= 1 && search_L >= 1, "NSG: L, C and search_L must be positive");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (ntotal > 0) throw NotSupported("The IndexNSG is already built");
    if (n == 0) return;
    check_store(n);
    // Each row's valid neighbours in order, then -1: ids out of range, the
    // node itself and repeats are left out (faiss warns and goes on too),
    // but a graph with n / 10 invalid entries or more is refused as faiss
    // refuses it: that is a wrong graph, not a few holes.
    const size_t nn = size_t(n), kk = size_t(gk);
    std::vector<int32_t> knn(nn * kk, -1);
    std::atomic<size_t> dropped{0};
    parallel_for((nn + 1023) / 1024, [&](size_t t) {
        size_t bad = 0;
        for (size_t i = t * 1024; i < std::min(nn, t * 1024 + 1024); i++) {
            size_t c = 0;
            for (size_t j = 0; j < kk; j++) {
                const idx_t v = knn_graph[i * kk + j];
                bool ok = v >= 0 && v < n && size_t(v) != i;
                for (size_t q = 0; ok && q < c; q++) ok = knn[i * kk + q] != int32_t(v);
                if (ok)
                    knn[i * kk + c++] = int32_t(v);
                else
                    bad++;
            }
        }
        dropped += bad;
    });
    size_t invalid = 0;
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < kk; j++) {
            const idx_t v = knn_graph[i * kk + j];
            invalid += v < 0 || v >= n || size_t(v) == i;
        }
    if (invalid >= nn / 10)
        throw NotSupported("There are too many invalid entries in the knn graph (" + std::to_string(invalid) +
                           " of " + std::to_string(nn * kk) + "). It may be an invalid knn graph.");
    if (verbose && dropped > 0)
        std::printf("  NSG: %zu invalid or repeated entries of the k-NN graph left out\n", size_t(dropped));
    link_and_store(nn, x, knn, kk);
}

// Steps 2-5 over a k-NN graph (rows of kdeg ids, valid ones first, then -1),
// the lock held; then the vectors are stored and the graph committed.
void IndexNSG::link_and_store(size_t nn, const float* x, const std::vector<int32_t>& knn, size_t kdeg) {
    const size_t dd = size_t(d), RR = size_t(R);
    const RowScorer sc{x, dd, metric_type, metric_arg};
    const FlatScorer fs{sc};
    const auto t0 = std::chrono::steady_clock::now();
    InterruptPoll poll;

    // 2. The navigating node: the one a search from a random node finds
    // nearest the mean.
    std::vector<float> center(dd, 0.f);
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < dd; j++) center[j] += x[i * dd + j];
    for (float& c : center) c /= float(nn);
    VisitedSet vis;
    std::vector<Cand> best;
    std::mt19937 rng(0x1234);
    beam_search(fs, center.data(), knn.data(), kdeg, nn, int32_t(rng() % nn), size_t(L), vis, best, nullptr);
    const int32_t entry = best.front().id;

    // 3. Each node's links: MRNG over what a search for it visits plus its k-NN.
    std::vector<Cand> links(nn * RR, Cand{0.f, -1});
    parallel_for((nn + 63) / 64, [&](size_t t) {
        thread_local VisitedSet tv;
        std::vector<Cand> found, pool, kept;
        for (size_t i = t * 64; i < std::min(nn, t * 64 + 64); i++) {
            const float* xi = x + i * dd;
            pool.clear();
            beam_search(fs, xi, knn.data(), kdeg, nn, entry, size_t(L), tv, found, &pool);
            for (size_t j = 0; j < kdeg && knn[i * kdeg + j] >= 0; j++) {
                const int32_t v = knn[i * kdeg + j];
                if (!tv.visit(size_t(v))) pool.push_back({sc(xi, v), v});
            }
            pool.erase(std::remove_if(pool.begin(), pool.end(), [&](const Cand& c) { return size_t(c.id) == i; }),
                       pool.end());
            std::sort(pool.begin(), pool.end(), closer);
            mrng_prune(sc, pool, RR, size_t(C), kept);
            std::copy(kept.begin(), kept.end(), &links[i * RR]);
        }
        poll();
    });
    if (verbose) std::printf("  NSG: links pruned in %.1f s\n", seconds_since(t0));

    // 4. Reverse links, pruned by the same rule where a list overflows.
    {
        std::vector<std::mutex> locks(4096);
        parallel_for((nn + 63) / 64, [&](size_t t) {
            std::vector<Cand> cands, kept;
            for (size_t i = t * 64; i < std::min(nn, t * 64 + 64); i++) {
                for (size_t j = 0; j < RR; j++) {
                    Cand out;
                    {
                        std::lock_guard<std::mutex> g(locks[i % locks.size()]);
                        out = links[i * RR + j];
                    }
                    if (out.id < 0) break;
                    const size_t dst = size_t(out.id);
                    std::lock_guard<std::mutex> g(locks[dst % locks.size()]);
                    Cand* dl = &links[dst * RR];
                    size_t cnt = 0;
                    bool dup = false;
                    for (; cnt < RR && dl[cnt].id >= 0; cnt++) dup |= dl[cnt].id == int32_t(i);
                    if (dup) continue;
                    const Cand back{out.dist, int32_t(i)};  // d(dst, i) = d(i, dst)
                    if (cnt < RR) {
                        dl[cnt] = back;
                        continue;
                    }
                    cands.assign(dl, dl + RR);
                    cands.push_back(back);
                    std::sort(cands.begin(), cands.end(), closer);
                    mrng_prune(sc, cands, RR, cands.size(), kept);
                    for (size_t r = 0; r < RR; r++) dl[r] = r < kept.size() ? kept[r] : Cand{0.f, -1};
                }
            }
            poll();
        });
    }
    std::vector<int32_t> graph(nn * RR, -1);
    std::vector<int> degree(nn, 0);
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < RR && links[i * RR + j].id >= 0; j++) graph[i * RR + degree[i]++] = links[i * RR + j].id;
    if (verbose) std::printf("  NSG: reverse links in %.1f s\n", seconds_since(t0));

    // 5. Every node reachable from the navigating node: a depth-first pass,
    // and each node it misses linked from the nearest node with room.
    std::vector<uint8_t> reached(nn, 0);
    size_t nreached = 0;
    auto dfs = [&](int32_t root) {
        std::vector<int32_t> stack;
        if (!reached[size_t(root)]) reached[size_t(root)] = 1, nreached++, stack.push_back(root);
        while (!stack.empty()) {
            const int32_t u = stack.back();
            stack.pop_back();
            for (int j = 0; j < degree[size_t(u)]; j++) {
                const int32_t v = graph[size_t(u) * RR + size_t(j)];
                if (!reached[size_t(v)]) reached[size_t(v)] = 1, nreached++, stack.push_back(v);
            }
        }
    };
    dfs(entry);
    size_t attached = 0, next_unreached = 0;
    while (nreached < nn) {
        while (reached[next_unreached]) next_unreached++;
        const int32_t u = int32_t(next_unreached);
        std::vector<Cand> scored;
        beam_search(fs, x + size_t(u) * dd, graph.data(), RR, nn, entry, size_t(search_L), vis, best, &scored);
        std::sort(scored.begin(), scored.end(), closer);
        int32_t host = -1;
        for (const Cand& c : scored)
            if (c.id != u && reached[size_t(c.id)] && degree[size_t(c.id)] < R) {
                host = c.id;
                break;
            }
        for (size_t v = 0; host < 0 && v < nn; v++)  // none nearby has room: any reached node that has
            if (reached[v] && degree[v] < R) host = int32_t(v);
        const bool full = host < 0;
        if (full) {
            // Every reached node is full: the nearest whose last link's node
            // has another way in gives that link up.
            std::vector<uint32_t> indegree(nn, 0);
            for (int32_t v : graph)
                if (v >= 0) indegree[size_t(v)]++;
            host = scored.front().id;
            for (const Cand& c : scored)
                if (reached[size_t(c.id)] && indegree[size_t(graph[size_t(c.id) * RR + RR - 1])] >= 2) {
                    host = c.id;
                    break;
                }
        }
        const int slot = std::min(degree[size_t(host)], R - 1);
        graph[size_t(host) * RR + size_t(slot)] = u;
        degree[size_t(host)] = slot + 1;
        attached++;
        if (full) {  // the link given up may have been a node's only way in: count again
            std::fill(reached.begin(), reached.end(), uint8_t(0));
            nreached = next_unreached = 0;
            dfs(entry);
        } else {
            dfs(u);
        }
        if (attached > 4 * nn + 16) throw NotSupported("NSG: could not link every node to the graph (R too small?)");
        poll();
    }
    if (verbose)
        std::printf("  NSG: built in %.1f s (%zu nodes attached to make every node reachable)\n", seconds_since(t0),
                    attached);

    store(idx_t(nn), x);
    graph_ = std::move(graph);
    enterpoint_ = entry;
    ntotal = idx_t(nn);
}

void IndexNSG::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    int sl = search_L;
    if (auto* p = dynamic_cast<const SearchParametersNSG*>(params)) sl = p->search_L;
    NEARLY_CHECK_ARG(sl >= 1, "NSG: search_L must be at least 1 (got " + std::to_string(sl) + ")");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t kk = size_t(k);
    const bool negated = is_similarity_metric(metric_type);
    const float pad = missing_distance(metric_type);
    InterruptPoll poll;
    parallel_for((size_t(n) + 15) / 16, [&](size_t t) {
        const size_t q0 = t * 16, q1 = std::min(size_t(n), q0 + 16);
        for (size_t q = q0; q < q1; q++) TopK::init(D + q * kk, I + q * kk, kk);
        if (ntotal > 0) search_range(q0, q1, x, kk, std::max(size_t(sl), kk), sel, D, I);
        for (size_t q = q0; q < q1; q++) TopK::finish(D + q * kk, I + q * kk, kk, negated, pad);
        poll();
    });
}

void IndexNSGFlat::search_range(size_t q0, size_t q1, const float* x, size_t k, size_t width, const IDSelector* sel,
                                float* D, idx_t* I) const {
    thread_local VisitedSet vis;
    std::vector<Cand> best, scored;
    const size_t dd = size_t(d);
    const FlatScorer sc{RowScorer{xb_.data(), dd, metric_type, metric_arg}};
    for (size_t q = q0; q < q1; q++)
        search_block(sc, x + q * dd, graph_.data(), size_t(R), size_t(ntotal), enterpoint_, k, width, sel, D + q * k,
                     I + q * k, vis, best, scored, is_extra_metric(metric_type));
}

void IndexNSGFlat::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (key < 0 || key >= ntotal) throw OutOfRange("id " + std::to_string(key) + " is not in the index");
    std::copy(xb_.begin() + key * d, xb_.begin() + (key + 1) * d, out);
}

size_t IndexNSG::mark_reachable(int32_t root, uint8_t* visited) const {
    NEARLY_CHECK_ARG(root >= 0 && root < ntotal, "NSG: root must be a node id, 0 to ntotal - 1");
    size_t marked = 0;
    std::vector<int32_t> stack;
    if (!visited[root]) visited[root] = 1, marked++, stack.push_back(root);
    while (!stack.empty()) {
        const int32_t u = stack.back();
        stack.pop_back();
        for (size_t j = 0; j < size_t(R); j++) {
            const int32_t v = graph_[size_t(u) * size_t(R) + j];
            if (v < 0) break;
            if (!visited[v]) visited[v] = 1, marked++, stack.push_back(v);
        }
    }
    return marked;
}

void IndexNSG::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    clear_vectors();
    graph_.clear();
    enterpoint_ = -1;
    ntotal = 0;
}

void IndexNSG::write_header(Writer& w) const {
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    if (is_extra_metric(metric_type)) w.pod<float>(metric_arg);  // L2 / IP files unchanged
    w.pod<int32_t>(R);
    w.pod<int32_t>(L);
    w.pod<int32_t>(C);
    w.pod<int32_t>(search_L);
    w.pod<int32_t>(GK);
    w.pod<int64_t>(ntotal);
    w.pod<int32_t>(enterpoint_);
}

IndexNSG::Header IndexNSG::read_header(Reader& r) {
    Header h;
    h.d = r.pod<int32_t>(), h.metric = r.pod<int32_t>();
    const bool extra = is_extra_metric(MetricType(h.metric));
    h.metric_arg = extra ? r.pod<float>() : 0.f;
    h.R = r.pod<int32_t>();
    h.L = r.pod<int32_t>(), h.C = r.pod<int32_t>(), h.search_L = r.pod<int32_t>(), h.GK = r.pod<int32_t>();
    h.ntotal = r.pod<int64_t>();
    h.entry = r.pod<int32_t>();
    r.check(h.d > 0 && (h.metric == METRIC_L2 || h.metric == METRIC_INNER_PRODUCT || extra) &&
                std::isfinite(h.metric_arg) && h.R >= 4 && h.R <= 1024 &&
                h.L >= 1 && h.C >= 1 && h.search_L >= 1 && h.GK >= 1 && h.ntotal >= 0 &&
                h.ntotal < std::numeric_limits<int32_t>::max(),
            "bad NSG header");
    r.check(h.ntotal == 0 ? h.entry == -1 : (h.entry >= 0 && h.entry < h.ntotal), "bad NSG navigating node");
    return h;
}

void IndexNSG::read_graph(Reader& r, const Header& h) {
    L = h.L;
    C = h.C;
    search_L = h.search_L;
    GK = h.GK;
    graph_ = r.vec<int32_t>();
    r.check(graph_.size() == size_t(h.ntotal) * size_t(R), "NSG graph does not match ntotal");
    for (int32_t v : graph_) r.check(v >= -1 && v < h.ntotal, "bad NSG link");  // a forged file stays in bounds
    enterpoint_ = h.entry;
    ntotal = h.ntotal;
}

void IndexNSGFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.vec(xb_);
    w.vec(graph_);
}

std::unique_ptr<IndexNSGFlat> IndexNSGFlat::read_body(Reader& r) {
    const Header h = read_header(r);
    auto index = std::make_unique<IndexNSGFlat>(h.d, h.R, MetricType(h.metric));
    index->metric_arg = h.metric_arg;
    index->xb_ = r.vec<float>();
    r.check(index->xb_.size() == size_t(h.ntotal) * size_t(h.d), "NSG vectors do not match ntotal");
    if (!metric_accepts_nan(index->metric_type))
        for (float v : index->xb_) r.check(std::isfinite(v), "NSG vectors are not finite");
    index->read_graph(r, h);
    return index;
}

// ---- IndexNSGOnStorage --------------------------------------------------

IndexNSGOnStorage::IndexNSGOnStorage(IndexPtr storage, int R)
    : IndexNSGOnStorage(storage, storage ? storage->d : 1, storage ? storage->metric_type : METRIC_L2, R) {
    NEARLY_CHECK_ARG(storage_ != nullptr, "IndexNSG: a storage index is needed");
}

IndexNSGOnStorage::IndexNSGOnStorage(IndexPtr storage, int d, MetricType metric, int R)
    : IndexNSG(d, R, metric), storage_(std::move(storage)) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "IndexNSG: the storage's metric must be L2 or inner product");
    is_trained = storage_ && storage_->is_trained;
}

void IndexNSGOnStorage::check_storage_rows(const char* what) const {
    if (storage_->ntotal < ntotal)
        throw InvalidArgument(std::string("IndexNSG: ") + what + ": the storage holds " +
                              std::to_string(storage_->ntotal) + " vectors, fewer than the graph's " +
                              std::to_string(ntotal) + " (was it reset through another handle?)");
}

void IndexNSGOnStorage::set_storage(IndexPtr storage) {
    check_writable();
    check_new_storage(*this, storage.get(), "IndexNSG");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(storage->ntotal >= ntotal, "IndexNSG: the new storage holds " + std::to_string(storage->ntotal) +
                                                    " vectors, fewer than the graph's " + std::to_string(ntotal));
    storage_ = std::move(storage);
    is_trained = storage_->is_trained;
}

void IndexNSGOnStorage::train(idx_t n, const float* x) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    check_storage_rows("train");
    storage_->verbose = verbose;
    storage_->train(n, x);
    is_trained = storage_->is_trained;
}

void IndexNSGOnStorage::check_store(idx_t) const {
    check_storage_rows("add");
    if (!storage_->is_trained) throw NotSupported("Error: 'is_trained' failed (train the index first)");
    if (storage_->ntotal != 0)
        throw NotSupported("IndexNSG: the storage already holds " + std::to_string(storage_->ntotal) +
                           " vectors; the graph is built over an empty storage (node i is its row i)");
}

void IndexNSGOnStorage::store(idx_t n, const float* x) {
    storage_->verbose = verbose;
    storage_->add(n, x);
    NEARLY_CHECK_ARG(storage_->ntotal == n, "IndexNSG: the storage did not grow by the vectors added");
}

void IndexNSGOnStorage::clear_vectors() {
    if (storage_) storage_->reset();
}

void IndexNSGOnStorage::search_range(size_t q0, size_t q1, const float* x, size_t k, size_t width,
                                     const IDSelector* sel, float* D, idx_t* I) const {
    check_storage_rows("search");
    thread_local VisitedSet vis;
    std::vector<Cand> best, scored;
    const std::unique_ptr<DistanceComputer> dc = storage_->get_distance_computer();
    const StorageScorer sc{dc.get(), metric_type == METRIC_INNER_PRODUCT, {}};
    const size_t dd = size_t(d);
    for (size_t q = q0; q < q1; q++) {
        dc->set_query(x + q * dd);
        search_block(sc, x + q * dd, graph_.data(), size_t(R), size_t(ntotal), enterpoint_, k, width, sel, D + q * k,
                     I + q * k, vis, best, scored);
    }
}

void IndexNSGOnStorage::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    check_storage_rows("reconstruct");
    if (key < 0 || key >= ntotal) throw OutOfRange("id " + std::to_string(key) + " is not in the index");
    storage_->reconstruct(key, out);
}

std::unique_ptr<DistanceComputer> IndexNSGOnStorage::get_distance_computer() const {
    check_storage_rows("get_distance_computer");
    return storage_->get_distance_computer();
}

void IndexNSGOnStorage::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    write_index_payload(*storage_, w);  // always, as faiss (IO_FLAG_SKIP_STORAGE is HNSW's)
    w.vec(graph_);
}

template <class T>
std::unique_ptr<T> IndexNSGOnStorage::read_as(Reader& r) {
    const Header h = read_header(r);
    IndexPtr storage = read_index_payload(r);
    r.check(storage->d == h.d && storage->metric_type == h.metric, "NSG: the storage does not match");
    r.check(storage->ntotal >= h.ntotal, "NSG: the storage lacks rows the graph links");
    std::unique_ptr<T> index(new T(storage, h.d, MetricType(h.metric), h.R));
    index->read_graph(r, h);
    return index;
}

std::unique_ptr<IndexNSGOnStorage> IndexNSGOnStorage::read_body(Reader& r) { return read_as<IndexNSGOnStorage>(r); }

IndexNSGPQ::IndexNSGPQ(int d, int pq_m, int R, int pq_nbits, MetricType metric)
    : IndexNSGOnStorage(std::make_shared<IndexPQ>(d, size_t(pq_m), size_t(pq_nbits), metric), R) {}

std::unique_ptr<IndexNSGPQ> IndexNSGPQ::read_body(Reader& r) { return read_as<IndexNSGPQ>(r); }

IndexNSGSQ::IndexNSGSQ(int d, ScalarQuantizer::QuantizerType qtype, int R, MetricType metric)
    : IndexNSGOnStorage(std::make_shared<IndexScalarQuantizer>(d, qtype, metric), R) {}

std::unique_ptr<IndexNSGSQ> IndexNSGSQ::read_body(Reader& r) { return read_as<IndexNSGSQ>(r); }

}  // namespace nearly
