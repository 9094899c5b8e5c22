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

// Beam search of width L over `degree` links a row (-1 padded) from entry:
// `best` ends with the L closest nodes found, closest first. With `scored`,
// every node it scores is appended there (the build's candidates).
void beam_search(const RowScorer& sc, const float* q, const int32_t* links, size_t degree, size_t n, int32_t entry,
                 size_t L, VisitedSet& vis, std::vector<Cand>& best, std::vector<Cand>* scored) {
    vis.prepare(n);
    std::vector<Cand> frontier;  // min-heap on distance
    best.clear();
    const Cand e{sc(q, entry), entry};
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
        for (size_t j = 0; j < degree && ll[j] >= 0; j++) __builtin_prefetch(sc.xb + size_t(ll[j]) * sc.d);
        for (size_t j = 0; j < degree && ll[j] >= 0; j++) {
            const int32_t v = ll[j];
            if (vis.visit(size_t(v))) continue;
            const Cand nc{sc(q, v), v};
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

IndexNSGFlat::IndexNSGFlat(int d, int R_, MetricType metric) : Index(d, metric), R(R_), L(R_ + 32), C(R_ + 100) {
    // Below 4 links a node, pruned graphs leave too little room to link the
    // nodes the pruning cut off (faiss loops forever looking for some).
    NEARLY_CHECK_ARG(R >= 4 && R <= 1024, "NSG: R must be between 4 and 1024 (got " + std::to_string(R) + ")");
}

void IndexNSGFlat::add(idx_t n, const float* x) {
    check_add_args(n, x);
    if (n == 0) return;
    NEARLY_CHECK_ARG(GK >= 1 && L >= 1 && C >= 1 && search_L >= 1, "NSG: GK, L, C and search_L must be positive");
    NEARLY_CHECK_ARG(build_type == 0 || build_type == 1, "NSG: build_type must be 0 (exact) or 1 (NN-descent)");
    NEARLY_CHECK_ARG(n < idx_t(std::numeric_limits<int32_t>::max()), "NSG: too many vectors for one index");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (ntotal > 0) throw NotSupported("NSG does not support incremental addition");
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
        knn = nn_descent(x, nn, dd, metric_type, p, verbose);
        if (verbose) std::printf("  NSG: k-NN graph by NN-descent (%zu neighbours) in %.1f s\n", gk, seconds_since(t0));
    } else {
        const size_t block = 4096;
        std::vector<float> D(block * kq);
        std::vector<idx_t> I(block * kq);
        for (size_t i0 = 0; i0 < nn && gk > 0; i0 += block) {
            const size_t m = std::min(block, nn - i0);
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
    link(nn, x, knn, std::max<size_t>(gk, 1));
}

void IndexNSGFlat::build(idx_t n, const float* x, const idx_t* knn_graph, int gk) {
    check_add_args(n, x);
    NEARLY_CHECK_ARG(gk >= 1, "NSG build: the k-NN graph needs at least one column (got " + std::to_string(gk) + ")");
    NEARLY_CHECK_ARG(n < idx_t(std::numeric_limits<int32_t>::max()), "NSG: too many vectors for one index");
    NEARLY_CHECK_ARG(L >= 1 && C >= 1 && search_L >= 1, "NSG: L, C and search_L must be positive");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (ntotal > 0) throw NotSupported("The IndexNSG is already built");
    if (n == 0) return;
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
    link(nn, x, knn, kk);
}

// Steps 2-5 over a k-NN graph (rows of kdeg ids, valid ones first, then -1),
// the lock held.
void IndexNSGFlat::link(size_t nn, const float* x, const std::vector<int32_t>& knn, size_t kdeg) {
    const size_t dd = size_t(d), RR = size_t(R);
    const RowScorer sc{x, dd, metric_type == METRIC_INNER_PRODUCT};
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
    beam_search(sc, center.data(), knn.data(), kdeg, nn, int32_t(rng() % nn), size_t(L), vis, best, nullptr);
    const int32_t entry = best.front().id;

    // 3. Each node's links: MRNG over what a search for it visits plus its k-NN.
    std::vector<Cand> links(nn * RR, Cand{0.f, -1});
    parallel_for((nn + 63) / 64, [&](size_t t) {
        thread_local VisitedSet tv;
        std::vector<Cand> found, pool, kept;
        for (size_t i = t * 64; i < std::min(nn, t * 64 + 64); i++) {
            const float* xi = x + i * dd;
            pool.clear();
            beam_search(sc, xi, knn.data(), kdeg, nn, entry, size_t(L), tv, found, &pool);
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
        beam_search(sc, x + size_t(u) * dd, graph.data(), RR, nn, entry, size_t(search_L), vis, best, &scored);
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

    xb_.assign(x, x + nn * dd);
    graph_ = std::move(graph);
    enterpoint_ = entry;
    ntotal = idx_t(nn);
}

void IndexNSGFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    int sl = search_L;
    if (auto* p = dynamic_cast<const SearchParametersNSG*>(params)) sl = p->search_L;
    NEARLY_CHECK_ARG(sl >= 1, "NSG: search_L must be at least 1 (got " + std::to_string(sl) + ")");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t kk = size_t(k), dd = size_t(d), nn = size_t(ntotal);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    const RowScorer sc{xb_.data(), dd, ip};
    InterruptPoll poll;
    parallel_for((size_t(n) + 15) / 16, [&](size_t t) {
        thread_local VisitedSet vis;
        std::vector<Cand> best, scored;
        for (size_t q = t * 16; q < std::min(size_t(n), t * 16 + 16); q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            const float* xq = x + q * dd;
            if (nn > 0) {
                scored.clear();
                beam_search(sc, xq, graph_.data(), size_t(R), nn, enterpoint_, std::max(size_t(sl), kk), vis, best,
                            sel ? &scored : nullptr);
                size_t got = 0;
                for (const Cand& c : sel ? scored : best)
                    if (!sel || sel->is_member(c.id)) {
                        TopK::push(Dq, Iq, kk, c.dist, c.id);
                        got++;
                    }
                // A selective filter can leave the walk with fewer than k
                // passing nodes: then every passing node is scored.
                if (sel && got < kk) {
                    TopK::init(Dq, Iq, kk);
                    for (size_t v = 0; v < nn; v++)
                        if (sel->is_member(idx_t(v))) TopK::push(Dq, Iq, kk, sc(xq, int32_t(v)), idx_t(v));
                }
            }
            TopK::finish(Dq, Iq, kk, ip, pad);
        }
        poll();
    });
}

void IndexNSGFlat::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (key < 0 || key >= ntotal) throw OutOfRange("id " + std::to_string(key) + " is not in the index");
    std::copy(xb_.begin() + key * d, xb_.begin() + (key + 1) * d, out);
}

size_t IndexNSGFlat::mark_reachable(int32_t root, uint8_t* visited) const {
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

void IndexNSGFlat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    xb_.clear();
    graph_.clear();
    enterpoint_ = -1;
    ntotal = 0;
}

void IndexNSGFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<int32_t>(R);
    w.pod<int32_t>(L);
    w.pod<int32_t>(C);
    w.pod<int32_t>(search_L);
    w.pod<int32_t>(GK);
    w.pod<int64_t>(ntotal);
    w.pod<int32_t>(enterpoint_);
    w.vec(xb_);
    w.vec(graph_);
}

std::unique_ptr<IndexNSGFlat> IndexNSGFlat::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>(), R = r.pod<int32_t>();
    const int L = r.pod<int32_t>(), C = r.pod<int32_t>(), search_L = r.pod<int32_t>(), GK = r.pod<int32_t>();
    const idx_t ntotal = r.pod<int64_t>();
    const int32_t entry = r.pod<int32_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && R >= 4 && R <= 1024 && L >= 1 &&
                C >= 1 && search_L >= 1 && GK >= 1 && ntotal >= 0 && ntotal < std::numeric_limits<int32_t>::max(),
            "bad NSG header");
    auto index = std::make_unique<IndexNSGFlat>(d, R, MetricType(metric));
    index->L = L;
    index->C = C;
    index->search_L = search_L;
    index->GK = GK;
    index->xb_ = r.vec<float>();
    index->graph_ = r.vec<int32_t>();
    r.check(index->xb_.size() == size_t(ntotal) * size_t(d) && index->graph_.size() == size_t(ntotal) * size_t(R),
            "NSG vectors or graph do not match ntotal");
    r.check(ntotal == 0 ? entry == -1 : (entry >= 0 && entry < ntotal), "bad NSG navigating node");
    for (int32_t v : index->graph_) r.check(v >= -1 && v < ntotal, "bad NSG link");  // a forged file stays in bounds
    for (float v : index->xb_) r.check(std::isfinite(v), "NSG vectors are not finite");
    index->enterpoint_ = entry;
    index->ntotal = ntotal;
    return index;
}

}  // namespace nearly
