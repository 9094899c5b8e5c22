// The HNSW graph code, written once for every kind of node payload (private
// to cpp/src: included by hnsw.cpp and binary_hnsw.cpp).
//
// A "space" says how a query and a node are scored; the graph code only ever
// calls, on a `const Space& sp`:
//     typename Space::Query            what a walk compares against
//     sp.st                            the graph's Storage
//     sp.query_of(slot) -> Query       a stored node as a query (insertion, pruning)
//     sp.score(query, slot) -> float   smaller is better
// and, where a space has one, sp.insert_query(slot, row, scratch) -> Query:
// what a node being added is walked with, from row `row` of the batch being
// added (PQ storage walks with the float vector, not its code); without it,
// query_of(slot).
// Every call is inlined into the walk, so a space costs what its score costs
// (the float index's int8 space compiles to the code it had before).
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <shared_mutex>
#include <type_traits>
#include <utility>

#include "nearly/hnsw.h"
#include "visited_set.h"
#include "nearly/huge_pages.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {
namespace hnsw_detail {

using slot_t = HNSWGraph::slot_t;

constexpr int kMaxLevel = 30;
constexpr int8_t kReserved = -2;  // slot taken by an add still linking it in
constexpr size_t kLockStripes = 4096;

struct Cand {
    float score;  // smaller is better: squared L2, -inner product, Hamming, -SDC
    slot_t id;
};
inline bool max_first(const Cand& a, const Cand& b) { return a.score < b.score; }  // max-heap
inline bool min_first(const Cand& a, const Cand& b) { return a.score > b.score; }  // min-heap

// Link lists are read without locks while an add rewrites them (readers may
// see a mix of old and new ids, all valid nodes); relaxed atomics make that
// well-defined and cost nothing on x86 and ARM.
inline slot_t load_link(const slot_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
inline void store_link(slot_t* p, slot_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
inline slot_t load_count(const slot_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void store_count(slot_t* p, slot_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }


// Per-thread scratch, reused across searches (one per thread for all graphs).
struct Scratch {
    VisitedSet visited;
    std::vector<Cand> top, cand, sel_cands;
    std::vector<slot_t> picks;
    std::vector<int8_t> qcode;
    std::vector<uint8_t> qbytes;
    std::vector<float> decoded;
    std::vector<float> table;  // a query's distance table (PQ storage)
};
Scratch& tls_scratch();

template <class Space>
auto insert_query(const Space& sp, slot_t s, size_t row, Scratch& sc, int) -> decltype(sp.insert_query(s, row, sc)) {
    return sp.insert_query(s, row, sc);
}
template <class Space>
typename Space::Query insert_query(const Space& sp, slot_t s, size_t, Scratch&, long) {
    return sp.query_of(s);
}

// Whether a space scores a batch of nodes in one call,
// sp.score_batch(query, slots, n, out) (kernels that score several codes side
// by side); the walk then scores a node's fresh neighbours together.
template <class Space, class = void>
struct has_score_batch : std::false_type {};
template <class Space>
struct has_score_batch<Space, std::void_t<decltype(std::declval<const Space&>().score_batch(
                                  std::declval<const typename Space::Query&>(), (const slot_t*)nullptr, size_t(0),
                                  (float*)nullptr))>> : std::true_type {};

// search_one(q) for every query q < n, 16 queries to a pool task (a walk is
// short: fewer tasks would leave threads idle at the end), Ctrl-C checked
// after each task.
template <class SearchOne>
void for_each_query(idx_t n, const SearchOne& search_one) {
    constexpr size_t kPerTask = 16;
    InterruptPoll poll;
    parallel_for((size_t(n) + kPerTask - 1) / kPerTask, [&](size_t t) {
        for (size_t q = t * kPerTask; q < std::min(size_t(n), t * kPerTask + kPerTask); q++) search_one(idx_t(q));
        poll();
    });
}

// efSearch of a search: the params' when they are HNSW's, else the index's.
int ef_of(const HNSWGraph& g, const SearchParameters* params);

// range_search for a float HNSW index: graph searches of k = max(efSearch,
// 16), then 2k, 4k, ... for the queries whose k results all lie within
// radius, until one does not (or k reaches ntotal).
void range_search_by_doubling_k(const Index& index, int ef, idx_t n, const float* x, float radius,
                                RangeSearchResult& result, const SearchParameters* params);

}  // namespace hnsw_detail

struct HNSWGraph::Storage {
    size_t M, M0;
    size_t payload_bytes, side_bytes;
    size_t links_offset, block_bytes;
    size_t capacity = 0, nslots = 0;
    uint8_t* blocks = nullptr;
    LargeVector<uint8_t> side;   // side_bytes per slot
    std::vector<idx_t> labels;   // slot -> id
    std::vector<int8_t> levels;  // -1: free slot
    // Level-0 in-degree of each node: pruning never takes away a node's last
    // in-link, so no node becomes unreachable (plain HNSW can orphan a few,
    // more often when inserts run in parallel and miss each other).
    std::vector<uint32_t> indegree;
    std::vector<std::unique_ptr<slot_t[]>> upper;
    std::unique_ptr<std::mutex[]> locks{new std::mutex[hnsw_detail::kLockStripes]};
    // Read from a mapped file (IO_FLAG_MMAP): blocks and the side copies are
    // the file's pages, kept mapped by `mapping`; the index is read-only.
    std::shared_ptr<const void> mapping;
    const uint8_t* mapped_side = nullptr;

    Storage(size_t M, size_t payload_bytes, size_t side_bytes)
        : M(M), M0(2 * M), payload_bytes(payload_bytes), side_bytes(side_bytes) {
        links_offset = (payload_bytes + 3) / 4 * 4;
        block_bytes = (links_offset + (1 + M0) * sizeof(slot_t) + 63) / 64 * 64;
    }
    ~Storage() {
        if (!mapping) release_large(blocks, capacity * block_bytes);
    }

    uint8_t* block(slot_t s) const { return blocks + size_t(s) * block_bytes; }
    uint8_t* payload(slot_t s) const { return block(s); }
    uint8_t* side_of(slot_t s) const {
        return const_cast<uint8_t*>(mapped_side ? mapped_side : side.data()) + size_t(s) * side_bytes;
    }
    slot_t* links(slot_t s, int level) const {
        return level == 0 ? reinterpret_cast<slot_t*>(block(s) + links_offset) : upper[s].get() + (level - 1) * (1 + M);
    }
    size_t max_links(int level) const { return level == 0 ? M0 : M; }
    std::mutex& lock(slot_t s) const { return locks[s % hnsw_detail::kLockStripes]; }
    void in_link(slot_t s, int delta) const {
        __atomic_fetch_add(const_cast<uint32_t*>(&indegree[s]), uint32_t(delta), __ATOMIC_RELAXED);
    }
    uint32_t in_links(slot_t s) const { return __atomic_load_n(&indegree[s], __ATOMIC_RELAXED); }
    void recount_in_links() {
        std::fill(indegree.begin(), indegree.end(), 0);
        for (size_t s = 0; s < nslots; s++)
            if (levels[s] >= 0) {
                const slot_t* ll = links(slot_t(s), 0);
                for (slot_t i = 1; i <= ll[0]; i++) indegree[ll[i]]++;
            }
    }

    // Whether a scan over all slots (exact filtered search) may use slot s:
    // a linked node, not a free slot nor one an add is still writing.
    bool live(size_t s) const { return __atomic_load_n(&levels[s], __ATOMIC_ACQUIRE) >= 0; }
    void publish(slot_t s, int level) { __atomic_store_n(&levels[s], int8_t(level), __ATOMIC_RELEASE); }

    void prefetch(slot_t s) const {
        const uint8_t* b = block(s);
        for (size_t off = 0; off < links_offset; off += 64) __builtin_prefetch(b + off);
    }
    void prefetch_side(slot_t s) const {
        const uint8_t* v = side_of(s);
        for (size_t off = 0; off < side_bytes; off += 64) __builtin_prefetch(v + off);
    }

    // Only under the graph's exclusive lock: moves every array.
    void grow(size_t cap) {
        if (cap <= capacity) return;
        if (mapping) throw NotSupported("this index was read with IO_FLAG_MMAP and cannot be modified");
        // Huge pages: a search's hops land on random blocks (one TLB miss each with 4 KiB pages).
        uint8_t* nb = static_cast<uint8_t*>(allocate_large(cap * block_bytes));
        if (blocks) std::memcpy(nb, blocks, nslots * block_bytes);
        release_large(blocks, capacity * block_bytes);
        blocks = nb;
        side.resize(cap * side_bytes);
        labels.resize(cap, -1);
        indegree.resize(cap, 0);
        levels.resize(cap, -1);
        upper.resize(cap);
        capacity = cap;
    }
    // The slot arrays for n slots whose blocks (and side copies) are the
    // mapped file's.
    void use_mapped(size_t n, const uint8_t* mapped_blocks, std::shared_ptr<const void> keep) {
        blocks = const_cast<uint8_t*>(mapped_blocks);  // never written: the index is read-only
        mapping = std::move(keep);
        labels.assign(n, -1);
        indegree.assign(n, 0);
        levels.assign(n, -1);
        upper.resize(n);
        capacity = n;
    }
};

namespace hnsw_detail {

using Storage = HNSWGraph::Storage;

// A search's share of hnsw_stats, added once at its end.
inline void record_walk(const HNSWStats& c) {
    __atomic_fetch_add(&hnsw_stats.n1, c.n1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hnsw_stats.n2, c.n2, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hnsw_stats.ndis, c.ndis, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hnsw_stats.nhops, c.nhops, __ATOMIC_RELAXED);
}

// Greedy walk on an upper level: move to the best neighbour until none is better.
template <class Space>
void greedy(const Space& sp, const typename Space::Query& q, slot_t& cur, float& cur_score, int level,
            HNSWStats* counts = nullptr) {
    const Storage& st = sp.st;
    for (bool changed = true; changed;) {
        changed = false;
        const slot_t* ll = st.links(cur, level);
        slot_t cnt = load_count(ll);
        if (counts) {
            counts->nhops++;
            counts->ndis += cnt;
        }
        for (slot_t i = 1; i <= cnt; i++) st.prefetch(load_link(ll + i));
        for (slot_t i = 1; i <= cnt; i++) {
            slot_t v = load_link(ll + i);
            float s = sp.score(q, v);
            if (s < cur_score) {
                cur_score = s;
                cur = v;
                changed = true;
            }
        }
    }
}

// Beam search on one level. On return `top` holds up to ef results as a
// max-heap. With a selector, nodes that fail it are still walked through
// (so the graph stays connected) but never enter `top`.
template <class Space>
void search_layer(const Space& sp, const typename Space::Query& q, slot_t ep, float ep_score, int level, size_t ef,
                  const IDSelector* sel, Scratch& sc, HNSWStats* counts = nullptr) {
    const Storage& st = sp.st;
    auto& top = sc.top;
    auto& cand = sc.cand;
    top.clear();
    cand.clear();
    sc.visited.prepare(st.nslots);
    sc.visited.visit(ep);
    cand.push_back({ep_score, ep});
    if (!sel || sel->is_member(st.labels[ep])) top.push_back({ep_score, ep});
    slot_t fresh[2 * 256 + 1];
    while (!cand.empty()) {
        Cand c = cand.front();
        if (top.size() >= ef && c.score > top.front().score) break;
        std::pop_heap(cand.begin(), cand.end(), min_first);
        cand.pop_back();
        const slot_t* ll = st.links(c.id, level);
        slot_t cnt = std::min<slot_t>(load_count(ll), slot_t(st.max_links(level)));
        size_t nf = 0;
        for (slot_t i = 1; i <= cnt; i++) {
            slot_t v = load_link(ll + i);
            if (!sc.visited.visit(v)) {
                fresh[nf++] = v;
                st.prefetch(v);
            }
        }
        if (counts) {
            counts->nhops++;
            counts->ndis += nf;
        }
        float fresh_scores[has_score_batch<Space>::value ? 2 * 256 + 1 : 1];
        if constexpr (has_score_batch<Space>::value) sp.score_batch(q, fresh, nf, fresh_scores);
        for (size_t i = 0; i < nf; i++) {
            slot_t v = fresh[i];
            float s;
            if constexpr (has_score_batch<Space>::value)
                s = fresh_scores[i];
            else
                s = sp.score(q, v);
            if (top.size() < ef || s < top.front().score) {
                cand.push_back({s, v});
                std::push_heap(cand.begin(), cand.end(), min_first);
                if (!sel || sel->is_member(st.labels[v])) {
                    top.push_back({s, v});
                    std::push_heap(top.begin(), top.end(), max_first);
                    if (top.size() > ef) {
                        std::pop_heap(top.begin(), top.end(), max_first);
                        top.pop_back();
                    }
                }
            }
        }
    }
}

// From the entry point down to level 0: on return sc.top holds up to ef
// candidates as a max-heap (empty when the graph is).
template <class Space>
void walk(const Space& sp, const typename Space::Query& q, int64_t entry, int top_level, size_t ef,
          const IDSelector* sel, Scratch& sc) {
    sc.top.clear();
    if (entry < 0) return;
    slot_t cur = slot_t(entry);
    float cur_score = sp.score(q, cur);
    HNSWStats counts;
    for (int l = top_level; l > 0; l--) greedy(sp, q, cur, cur_score, l, &counts);
    search_layer(sp, q, cur, cur_score, 0, ef, sel, sc, &counts);
    counts.n1 = 1;
    counts.n2 = sc.cand.empty();
    record_walk(counts);
}

// hnswlib's / faiss's neighbour heuristic: keep a candidate only if it is
// closer to the base node than to every neighbour already kept, which spreads
// links over directions. `cands` must be sorted best first.
template <class Space>
void select_neighbors(const Space& sp, const std::vector<Cand>& cands, size_t m, std::vector<slot_t>& out) {
    out.clear();
    for (const Cand& c : cands) {
        if (out.size() >= m) break;
        if (out.empty()) {  // nothing to compare with: no query to build
            out.push_back(c.id);
            continue;
        }
        typename Space::Query qc = sp.query_of(c.id);
        bool good = true;
        if constexpr (has_score_batch<Space>::value) {
            // All at once (the kernels score codes side by side), in
            // batches of 8 so that a rejection early on stops the scoring.
            float scores[8];
            for (size_t i = 0; i < out.size() && good; i += 8) {
                const size_t nb = std::min<size_t>(8, out.size() - i);
                sp.score_batch(qc, out.data() + i, nb, scores);
                for (size_t b = 0; b < nb; b++) good = good && !(scores[b] < c.score);
            }
        } else {
            for (slot_t r : out)
                if (sp.score(qc, r) < c.score) {
                    good = false;
                    break;
                }
        }
        if (good) out.push_back(c.id);
    }
}

// keep_max_size_level0: fills picks up to cap with the nearest candidates
// the heuristic dropped (cands best first).
inline void fill_with_dropped(const std::vector<Cand>& cands, size_t cap, std::vector<slot_t>& picks) {
    for (const Cand& c : cands) {
        if (picks.size() >= cap) break;
        if (std::find(picks.begin(), picks.end(), c.id) == picks.end()) picks.push_back(c.id);
    }
}

inline void write_links(slot_t* ll, const std::vector<slot_t>& ids) {
    for (size_t i = 0; i < ids.size(); i++) store_link(ll + 1 + i, ids[i]);
    store_count(ll, slot_t(ids.size()));
}

// Adds s to p's list at `level`, pruning p's list with the heuristic when full.
template <class Space>
void connect(const Space& sp, slot_t p, slot_t s, int level, Scratch& sc, bool keep_max_size = false) {
    const Storage& st = sp.st;
    std::lock_guard<std::mutex> lk(st.lock(p));
    slot_t* ll = st.links(p, level);
    slot_t cnt = ll[0];
    for (slot_t i = 1; i <= cnt; i++)
        if (ll[i] == s) return;
    if (cnt < st.max_links(level)) {
        store_link(ll + 1 + cnt, s);
        store_count(ll, cnt + 1);
        if (level == 0) st.in_link(s, +1);
        return;
    }
    typename Space::Query qp = sp.query_of(p);
    auto& cands = sc.sel_cands;
    cands.clear();
    if constexpr (has_score_batch<Space>::value) {
        slot_t nodes[2 * 256 + 1];
        float scores[2 * 256 + 1];
        for (slot_t i = 1; i <= cnt; i++) nodes[i - 1] = ll[i];
        nodes[cnt] = s;
        sp.score_batch(qp, nodes, size_t(cnt) + 1, scores);
        for (slot_t i = 0; i <= cnt; i++) cands.push_back({scores[i], nodes[i]});
    } else {
        for (slot_t i = 1; i <= cnt; i++) cands.push_back({sp.score(qp, ll[i]), ll[i]});
        cands.push_back({sp.score(qp, s), s});
    }
    std::sort(cands.begin(), cands.end(), max_first);
    std::vector<slot_t> picks;
    select_neighbors(sp, cands, st.max_links(level), picks);
    if (level == 0) {
        // Keep any node this list is the only way into, in the room the
        // heuristic left.
        for (const Cand& c : cands) {
            if (picks.size() >= st.max_links(0)) break;
            if (std::find(picks.begin(), picks.end(), c.id) != picks.end()) continue;
            if (st.in_links(c.id) <= (c.id != s ? 1u : 0u)) picks.push_back(c.id);
        }
        if (keep_max_size) fill_with_dropped(cands, st.max_links(0), picks);
        for (slot_t i = 1; i <= cnt; i++)
            if (std::find(picks.begin(), picks.end(), ll[i]) == picks.end()) st.in_link(ll[i], -1);
        if (std::find(picks.begin(), picks.end(), s) != picks.end()) st.in_link(s, +1);
    }
    write_links(ll, picks);
}

// A selective filter leaves too few passing nodes for the graph walk to find
// k of them: the caller then scans the passing nodes exactly (brute). The
// share of passing nodes is estimated on a fixed sample of slots; otherwise
// ef grows with the share filtered out.
struct FilterPlan {
    bool brute = false;
    size_t ef;
};
inline FilterPlan plan_filter(const Storage& st, const IDSelector* sel, size_t ef, idx_t ntotal) {
    FilterPlan p{false, ef};
    if (!sel) return p;
    size_t live = 0, pass = 0, step = std::max<size_t>(1, st.nslots / 1024);
    for (size_t s = 0; s < st.nslots; s += step) {
        if (!st.live(s)) continue;
        live++;
        pass += sel->is_member(st.labels[s]);
    }
    double frac = live ? double(pass) / live : 0.0;
    double npass = frac * double(ntotal);
    if (frac < 0.15 || npass < 4096)
        p.brute = true;
    else
        p.ef = std::min<size_t>(size_t(double(ef) / frac) + 1, std::max<size_t>(ef, size_t(ntotal)));
    return p;
}

inline std::vector<slot_t> passing_slots(const Storage& st, const IDSelector& sel) {
    std::vector<slot_t> passing;
    for (size_t s = 0; s < st.nslots; s++)
        if (st.live(s) && sel.is_member(st.labels[s])) passing.push_back(slot_t(s));
    return passing;
}

}  // namespace hnsw_detail

template <class Space>
void HNSWGraph::insert(const Space& sp, slot_t s, int level, size_t row) {
    using namespace hnsw_detail;
    const Storage& st = sp.st;
    Scratch& sc = tls_scratch();
    std::unique_lock<std::mutex> top_lock(entry_mutex_, std::defer_lock);
    if (level > top().level) top_lock.lock();
    Top t = top();
    if (t.entry < 0) {
        if (!top_lock.owns_lock()) top_lock.lock();
        t = top();
        if (t.entry < 0) {
            set_top({s, level});
            return;
        }
    }
    const typename Space::Query q = insert_query(sp, s, row, sc, 0);
    slot_t cur = slot_t(t.entry);
    float cur_score = sp.score(q, cur);
    for (int l = t.level; l > level; l--) greedy(sp, q, cur, cur_score, l);
    // First s's own lists on every level, top down; only then the links to s,
    // bottom up. Until then nothing links to s, so no search (nor another
    // insert) can reach s while any of its lists is still empty.
    const int top_level = std::min(level, t.level);
    std::vector<std::vector<slot_t>> picks(top_level + 1);
    for (int l = top_level; l >= 0; l--) {
        search_layer(sp, q, cur, cur_score, l, size_t(std::max(efConstruction, M)), nullptr, sc);
        std::vector<Cand> found(sc.top.begin(), sc.top.end());
        std::sort(found.begin(), found.end(), max_first);
        found.erase(std::remove_if(found.begin(), found.end(), [s](const Cand& c) { return c.id == s; }), found.end());
        // faiss's rule: up to the list's capacity (2M on level 0), and no
        // pruning when fewer candidates than that were found (small
        // efConstruction), so the same parameters give faiss's recall.
        const size_t cap = st.max_links(l);
        if (found.size() <= cap) {
            picks[l].clear();
            for (const Cand& c : found) picks[l].push_back(c.id);
        } else {
            select_neighbors(sp, found, cap, picks[l]);
            if (l == 0 && keep_max_size_level0) fill_with_dropped(found, cap, picks[0]);
        }
        {
            std::lock_guard<std::mutex> lk(st.lock(s));
            write_links(st.links(s, l), picks[l]);
        }
        if (l == 0)
            for (slot_t p : picks[0]) st.in_link(p, +1);
        if (!found.empty()) {
            cur = found[0].id;
            cur_score = found[0].score;
        }
    }
    for (int l = 0; l <= top_level; l++)
        for (slot_t p : picks[l]) connect(sp, p, s, l, sc, l == 0 && keep_max_size_level0);
    if (level > t.level) set_top({s, level});
}

template <class Space, class WithQuery>
void HNSWGraph::search_scored(const Space& sp, idx_t n, idx_t k, float* D, idx_t* I, bool ip, float pad, int ef,
                              const IDSelector* sel, idx_t ntotal, const WithQuery& with_query) const {
    using namespace hnsw_detail;
    const Storage& st = sp.st;
    const size_t kk = size_t(k);
    const Top t0 = top();
    const FilterPlan plan = plan_filter(st, sel, std::max<size_t>(size_t(ef), kk), ntotal);
    std::vector<slot_t> passing;
    if (plan.brute && t0.entry >= 0) passing = passing_slots(st, *sel);
    auto search_one = [&](idx_t q) {
        float* Dq = D + q * kk;
        idx_t* Iq = I + q * kk;
        TopK::init(Dq, Iq, kk);
        if (t0.entry >= 0) {
            Scratch& sc = tls_scratch();
            with_query(q, sc, [&](const typename Space::Query& query) {
                if (plan.brute) {
                    for (slot_t s : passing) TopK::push(Dq, Iq, kk, sp.score(query, s), st.labels[s]);
                } else {
                    walk(sp, query, t0.entry, t0.level, plan.ef, sel, sc);
                    for (const Cand& c : sc.top) TopK::push(Dq, Iq, kk, c.score, st.labels[c.id]);
                }
            });
        }
        TopK::finish(Dq, Iq, kk, ip, pad);
    };
    for_each_query(n, search_one);
}

template <class MakeSpace, class Fill>
void HNSWGraph::add_nodes(idx_t n, const idx_t* ids, const MakeSpace& make_space, const Fill& fill, idx_t& ntotal,
                          bool verbose) {
    using namespace hnsw_detail;
    NEARLY_CHECK_ARG(efConstruction >= 1, "HNSW: efConstruction must be at least 1");
    if (n == 0) return;
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    Storage& st = *st_;
    if (ids) {
        std::unordered_map<idx_t, int> seen;
        for (idx_t i = 0; i < n; i++) {
            if (slot_of_label_.count(ids[i]) || !seen.emplace(ids[i], 0).second)
                throw InvalidArgument("HNSW: id " + std::to_string(ids[i]) + " is already in the index (ids must be unique)");
            if (ids[i] < 0) throw InvalidArgument("HNSW: ids must be non-negative");
        }
    }
    NEARLY_CHECK_ARG(st.nslots - free_slots_.size() + size_t(n) < size_t(std::numeric_limits<slot_t>::max()),
                     "HNSW: too many vectors for one index");

    // Phase 1, exclusive: reserve slots (reusing freed ones), grow storage.
    std::vector<slot_t> slots(n);
    std::vector<int> lv(n);
    {
        std::unique_lock<SharedMutex> lk(graph_mutex_);
        size_t reuse = std::min(free_slots_.size(), size_t(n));
        size_t fresh = size_t(n) - reuse;
        if (st.nslots + fresh > st.capacity) st.grow(std::max(st.nslots + fresh, st.capacity * 2));
        for (size_t i = 0; i < reuse; i++) {
            slots[i] = free_slots_.back();
            free_slots_.pop_back();
        }
        for (size_t i = reuse; i < size_t(n); i++) slots[i] = slot_t(st.nslots++);
        for (idx_t i = 0; i < n; i++) {
            slot_t s = slots[i];
            idx_t label = ids ? ids[i] : next_label_ + i;
            lv[i] = random_level();
            st.labels[s] = label;
            st.levels[s] = kReserved;  // the real level is published once linked
            slot_of_label_[label] = s;
            st.upper[s].reset(lv[i] > 0 ? new slot_t[size_t(lv[i]) * (1 + M)]() : nullptr);
            *st.links(s, 0) = 0;
            st.indegree[s] = 0;
        }
        if (ids) {
            for (idx_t i = 0; i < n; i++) next_label_ = std::max(next_label_, ids[i] + 1);
        } else {
            next_label_ += n;
        }
    }

    // Phase 2, shared: searches go on while the new nodes are linked in. The
    // new slots are reachable only once linked, so writing them needs no lock.
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    parallel_for((size_t(n) + 255) / 256, [&](size_t t) {
        for (size_t i = t * 256; i < std::min(size_t(n), t * 256 + 256); i++) fill(i, slots[i]);
    });
    const auto sp = make_space(st);

    InterruptPoll poll;
    size_t done = 0;
    const size_t chunk = 4096;
    auto t0 = std::chrono::steady_clock::now();
    try {
        // init_level0 false: level-0 nodes are stored, not linked (faiss's rule).
        const bool link_all = init_level0;
        auto linked = [&](size_t i) { return link_all || lv[i] > 0; };
        while (done < size_t(n)) {
            size_t end = std::min(size_t(n), done + chunk);
            while (top().entry < 0 && done < end) {  // the first linked node, alone
                if (linked(done)) insert(sp, slots[done], lv[done], done);
                st.publish(slots[done], lv[done]);
                done++;
            }
            size_t begin = done;
            parallel_for((end - begin + 15) / 16, [&](size_t t) {
                for (size_t i = begin + t * 16; i < std::min(end, begin + t * 16 + 16); i++) {
                    if (linked(i)) insert(sp, slots[i], lv[i], i);
                    st.publish(slots[i], lv[i]);
                }
            });
            done = end;
            if (verbose) {
                double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                std::printf("  HNSW add: %zu / %lld vectors (%.1f%%) in %.1f s\n", done, (long long)n,
                            100.0 * done / n, secs);
                std::fflush(stdout);
            }
            ntotal = idx_t(st.nslots - free_slots_.size() - (size_t(n) - done));
            poll();
        }
    } catch (const Interrupted&) {
        // The inserted prefix stays; the rest of the batch is given back.
        lk.unlock();
        std::unique_lock<SharedMutex> ex(graph_mutex_);
        for (size_t i = done; i < size_t(n); i++) {
            slot_t s = slots[i];
            slot_of_label_.erase(st.labels[s]);
            st.labels[s] = -1;
            st.levels[s] = -1;
            st.upper[s].reset();
            free_slots_.push_back(s);
        }
        if (!ids) next_label_ -= idx_t(size_t(n) - done);
        ntotal = idx_t(st.nslots - free_slots_.size());
        throw;
    }
    ntotal = idx_t(st.nslots - free_slots_.size());
}

template <class Fill>
void HNSWGraph::add_linked_nodes(const HNSWLayers& g, const Fill& fill, idx_t& ntotal) {
    using namespace hnsw_detail;
    g.check(M);
    const size_t n = g.levels.size();
    if (n == 0) return;
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    Storage& st = *st_;
    NEARLY_CHECK_ARG(st.nslots == 0 && free_slots_.empty(), "HNSW: add_graph needs an empty index");
    NEARLY_CHECK_ARG(n < size_t(std::numeric_limits<slot_t>::max()), "HNSW: too many vectors for one index");
    st.grow(n);
    st.nslots = n;
    // Row r goes to slot r; each level's table is read through the rows' positions in it.
    for (size_t r = 0; r < n; r++) {
        const int lv = g.levels[r];
        st.labels[r] = next_label_ + idx_t(r);
        slot_of_label_[st.labels[r]] = slot_t(r);
        st.upper[r].reset(lv > 0 ? new slot_t[size_t(lv) * (1 + M)]() : nullptr);
    }
    for (int l = 0; l <= g.max_level(); l++) {
        const size_t cap = st.max_links(l);
        const std::vector<int32_t>& nodes = g.nodes[size_t(l)];
        const int32_t* links = g.links[size_t(l)].data();
        parallel_for((nodes.size() + 1023) / 1024, [&](size_t t) {
            for (size_t i = t * 1024; i < std::min(nodes.size(), t * 1024 + 1024); i++) {
                slot_t* ll = st.links(slot_t(nodes[i]), l);
                slot_t cnt = 0;
                for (size_t j = 0; j < cap && links[i * cap + j] >= 0; j++) ll[1 + cnt++] = slot_t(links[i * cap + j]);
                ll[0] = cnt;
            }
        });
    }
    parallel_for((n + 255) / 256, [&](size_t t) {
        for (size_t i = t * 256; i < std::min(n, t * 256 + 256); i++) fill(i, slot_t(i));
    });
    st.recount_in_links();
    for (size_t r = 0; r < n; r++) st.publish(slot_t(r), g.levels[r]);
    next_label_ += idx_t(n);
    set_top({int64_t(g.entry), g.max_level()});
    ntotal = idx_t(n);
}

template <class MakeSpace>
void HNSWGraph::set_level0_from_knn(idx_t n, int k, const idx_t* I, const MakeSpace& make_space) {
    using namespace hnsw_detail;
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    require_vectors("init_level_0_from_knngraph");
    Storage& st = *st_;
    const idx_t live = idx_t(st.nslots - free_slots_.size());
    NEARLY_CHECK_ARG(n == live, "init_level_0_from_knngraph: " + std::to_string(n) + " rows for an index of " +
                                    std::to_string(live) + " vectors");
    NEARLY_CHECK_ARG(k >= 0, "init_level_0_from_knngraph: k must be non-negative");
    std::vector<slot_t> slot(static_cast<size_t>(n));
    for (idx_t r = 0; r < n; r++) {
        auto it = slot_of_label_.find(r);
        NEARLY_CHECK_ARG(it != slot_of_label_.end(),
                         "init_level_0_from_knngraph: the rows are the ids, which must be 0 .. ntotal-1 (id " +
                             std::to_string(r) + " is not in the index)");
        slot[size_t(r)] = it->second;
    }
    for (size_t i = 0; i < size_t(n) * size_t(k); i++)
        NEARLY_CHECK_ARG(I[i] >= -1 && I[i] < n, "init_level_0_from_knngraph: neighbour " + std::to_string(I[i]) +
                                                    " is not an id of the index nor -1");
    const auto sp = make_space(st);
    const size_t cap = st.max_links(0);
    const bool fill_up = keep_max_size_level0;
    parallel_for((size_t(n) + 255) / 256, [&](size_t t) {
        std::vector<Cand> cands;
        std::vector<slot_t> picks;
        for (size_t r = t * 256; r < std::min(size_t(n), t * 256 + 256); r++) {
            const slot_t s = slot[r];
            const auto q = sp.query_of(s);
            cands.clear();
            for (int j = 0; j < k; j++) {
                const idx_t v = I[r * size_t(k) + size_t(j)];
                if (v < 0) break;
                if (size_t(v) == r) continue;
                const slot_t sv = slot[size_t(v)];
                cands.push_back({sp.score(q, sv), sv});
            }
            std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
                return a.score < b.score || (a.score == b.score && a.id < b.id);
            });
            cands.erase(std::unique(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.id == b.id; }),
                        cands.end());
            picks.clear();
            if (cands.size() <= cap) {
                for (const Cand& c : cands) picks.push_back(c.id);
            } else {
                select_neighbors(sp, cands, cap, picks);
                if (fill_up) fill_with_dropped(cands, cap, picks);
            }
            write_links(st.links(s, 0), picks);
        }
    });
    st.recount_in_links();
}

template <class MakeSpace>
void HNSWGraph::sort_level0_links(const MakeSpace& make_space) {
    using namespace hnsw_detail;
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    require_vectors("reorder_links");
    Storage& st = *st_;
    const auto sp = make_space(st);
    parallel_for((st.nslots + 255) / 256, [&](size_t t) {
        std::vector<Cand> cands;
        std::vector<slot_t> picks;
        for (size_t s = t * 256; s < std::min(st.nslots, t * 256 + 256); s++) {
            if (!st.live(s)) continue;
            const auto q = sp.query_of(slot_t(s));
            slot_t* ll = st.links(slot_t(s), 0);
            cands.clear();
            for (slot_t i = 1; i <= ll[0]; i++) cands.push_back({sp.score(q, ll[i]), ll[i]});
            std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.score < b.score; });
            picks.clear();
            for (const Cand& c : cands) picks.push_back(c.id);
            write_links(ll, picks);
        }
    });
}

template <class MakeSpace>
size_t HNSWGraph::remove_nodes(const IDSelector& sel, const MakeSpace& make_space, idx_t& ntotal) {
    using namespace hnsw_detail;
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    Storage& st = *st_;
    const auto sp = make_space(st);
    std::vector<uint8_t> gone(st.nslots, 0);
    size_t removed = 0;
    for (size_t s = 0; s < st.nslots; s++)
        if (st.levels[s] >= 0 && sel.is_member(st.labels[s])) {
            gone[s] = 1;
            removed++;
        }
    if (removed == 0) return 0;

    // Repair: every live node that linked to a removed one chooses new links
    // among its surviving links and the removed nodes' links (two hops), with
    // the same heuristic as insertion. Only the node's own lists are written.
    parallel_for((st.nslots + 63) / 64, [&](size_t t) {
        std::vector<Cand> cands;
        std::vector<slot_t> picks;
        for (size_t s = t * 64; s < std::min(st.nslots, t * 64 + 64); s++) {
            if (st.levels[s] < 0 || gone[s]) continue;
            const auto qs = sp.query_of(slot_t(s));
            for (int l = 0; l <= st.levels[s]; l++) {
                slot_t* ll = st.links(slot_t(s), l);
                slot_t cnt = ll[0];
                bool touched = false;
                for (slot_t i = 1; i <= cnt; i++) touched |= gone[ll[i]] != 0;
                if (!touched) continue;
                // Surviving links stay; each lost one is replaced from the
                // removed nodes' links (two hops), diverse ones first (the
                // insertion heuristic), then the nearest, so the degree and
                // the recall of the repaired graph hold.
                picks.clear();
                for (slot_t i = 1; i <= cnt; i++)
                    if (!gone[ll[i]]) picks.push_back(ll[i]);
                cands.clear();
                auto consider = [&](slot_t v) {
                    if (v == s || gone[v]) return;
                    if (std::find(picks.begin(), picks.end(), v) != picks.end()) return;
                    for (const Cand& c : cands)
                        if (c.id == v) return;
                    cands.push_back({sp.score(qs, v), v});
                };
                for (slot_t i = 1; i <= cnt; i++) {
                    slot_t v = ll[i];
                    if (gone[v] && st.levels[v] >= l) {
                        const slot_t* vl = st.links(v, l);
                        for (slot_t j = 1; j <= vl[0]; j++) consider(vl[j]);
                    }
                }
                std::sort(cands.begin(), cands.end(), max_first);
                const size_t target = cnt;
                std::vector<uint8_t> used(cands.size(), 0);
                for (size_t c = 0; c < cands.size() && picks.size() < target; c++) {
                    const auto qc = sp.query_of(cands[c].id);
                    bool good = true;
                    for (slot_t r : picks)
                        if (sp.score(qc, r) < cands[c].score) {
                            good = false;
                            break;
                        }
                    if (good) {
                        picks.push_back(cands[c].id);
                        used[c] = 1;
                    }
                }
                for (size_t c = 0; c < cands.size() && picks.size() < target; c++)
                    if (!used[c]) picks.push_back(cands[c].id);
                write_links(ll, picks);
            }
        }
    });

    for (size_t s = 0; s < st.nslots; s++) {
        if (!gone[s]) continue;
        slot_of_label_.erase(st.labels[s]);
        st.labels[s] = -1;
        st.levels[s] = -1;
        st.upper[s].reset();
        free_slots_.push_back(slot_t(s));
    }
    // A new entry point: a surviving node on the highest level.
    int64_t best = -1;
    int best_level = -1;
    for (size_t s = 0; s < st.nslots; s++)
        if (st.levels[s] > best_level) {
            best_level = st.levels[s];
            best = int64_t(s);
        }
    Top t = top();
    if (t.entry < 0 || gone[t.entry] || best_level < t.level) set_top({best, best_level});
    st.recount_in_links();
    ntotal -= idx_t(removed);
    return removed;
}

}  // namespace nearly
