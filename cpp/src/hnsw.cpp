#include "nearly/hnsw.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <shared_mutex>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/scalar_quantizer.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

using slot_t = IndexHNSWFlat::slot_t;

namespace {

constexpr int kMaxLevel = 30;
constexpr int8_t kReserved = -2;  // slot taken by an add still linking it in
constexpr size_t kLockStripes = 4096;

struct Cand {
    float score;  // smaller is better: squared L2, or -inner product
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

// Visited marks that are reset by bumping a generation, not by clearing.
struct VisitedSet {
    std::vector<uint16_t> tag;
    uint16_t cur = 0;
    void prepare(size_t n) {
        if (tag.size() < n) tag.resize(n, 0);
        if (++cur == 0) {
            std::fill(tag.begin(), tag.end(), 0);
            cur = 1;
        }
    }
    bool visit(slot_t s) {
        if (tag[s] == cur) return true;
        tag[s] = cur;
        return false;
    }
};

// Per-thread scratch, reused across searches.
struct Scratch {
    VisitedSet visited;
    std::vector<Cand> top, cand, sel_cands;
    std::vector<slot_t> picks;
    std::vector<int8_t> qcode;
    std::vector<float> decoded;
};
thread_local Scratch tls_scratch;

// Symmetric per-vector int8 quantization: x ~= scale * code, code in [-127, 127].
float quantize(const float* x, size_t d, int8_t* code) {
    float amax = 0.f;
    for (size_t i = 0; i < d; i++) amax = std::max(amax, std::fabs(x[i]));
    if (amax == 0.f) {
        std::memset(code, 0, d);
        return 0.f;
    }
    float inv = 127.f / amax;
    for (size_t i = 0; i < d; i++) code[i] = int8_t(std::lrintf(x[i] * inv));
    return amax / 127.f;
}

// float <-> half: float_to_half / half_to_float (nearly/scalar_quantizer.h).

}  // namespace

// Level-0 block of a node, 64-byte aligned:
//   float scale | float squared norm | int8 code[d] (padded to 4) | u32 count | u32 links[2M]
// Upper levels (few nodes) live in a separate array per node.
struct IndexHNSWFlat::Storage {
    HNSWStorage kind;
    size_t d, M, M0;
    size_t links_offset, block_bytes;
    size_t capacity = 0, nslots = 0;
    uint8_t* blocks = nullptr;
    // The copy results are scored on (re-ranking, reconstruct): float32 for
    // Flat, fp16 for FP16; SQ8 keeps only the int8 codes of the blocks.
    std::vector<float> vectors;
    std::vector<uint16_t> halves;
    std::vector<idx_t> labels;   // slot -> id
    std::vector<int8_t> levels;  // -1: free slot
    // Level-0 in-degree of each node: pruning never takes away a node's last
    // in-link, so no node becomes unreachable (plain HNSW can orphan a few,
    // more often when inserts run in parallel and miss each other).
    std::vector<uint32_t> indegree;
    std::vector<std::unique_ptr<slot_t[]>> upper;
    std::unique_ptr<std::mutex[]> locks{new std::mutex[kLockStripes]};

    Storage(size_t d, size_t M, HNSWStorage kind) : kind(kind), d(d), M(M), M0(2 * M) {
        links_offset = 8 + (d + 3) / 4 * 4;
        block_bytes = (links_offset + (1 + M0) * sizeof(slot_t) + 63) / 64 * 64;
    }
    ~Storage() { std::free(blocks); }

    uint8_t* block(slot_t s) const { return blocks + size_t(s) * block_bytes; }
    float& scale(slot_t s) const { return reinterpret_cast<float*>(block(s))[0]; }
    float& norm(slot_t s) const { return reinterpret_cast<float*>(block(s))[1]; }
    int8_t* code(slot_t s) const { return reinterpret_cast<int8_t*>(block(s) + 8); }
    slot_t* links(slot_t s, int level) const {
        return level == 0 ? reinterpret_cast<slot_t*>(block(s) + links_offset) : upper[s].get() + (level - 1) * (1 + M);
    }
    size_t max_links(int level) const { return level == 0 ? M0 : M; }
    const float* vec(slot_t s) const { return vectors.data() + size_t(s) * d; }
    std::mutex& lock(slot_t s) const { return locks[s % kLockStripes]; }
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

    void prefetch_vector(slot_t s) const {
        const char* v = kind == HNSWStorage::Flat ? reinterpret_cast<const char*>(vec(s))
                        : kind == HNSWStorage::FP16 ? reinterpret_cast<const char*>(halves.data() + size_t(s) * d)
                                                    : reinterpret_cast<const char*>(code(s));
        size_t bytes = kind == HNSWStorage::Flat ? d * 4 : kind == HNSWStorage::FP16 ? d * 2 : d;
        for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(v + off);
    }

    void store_vector(slot_t s, const float* x) {
        if (kind == HNSWStorage::Flat) std::copy(x, x + d, vectors.begin() + size_t(s) * d);
        if (kind == HNSWStorage::FP16)
            for (size_t i = 0; i < d; i++) halves[size_t(s) * d + i] = float_to_half(x[i]);
    }

    void decode(slot_t s, float* out) const {
        if (kind == HNSWStorage::Flat) {
            std::copy(vec(s), vec(s) + d, out);
        } else if (kind == HNSWStorage::FP16) {
            for (size_t i = 0; i < d; i++) out[i] = half_to_float(halves[size_t(s) * d + i]);
        } else {
            const float sc = scale(s);
            const int8_t* c = code(s);
            for (size_t i = 0; i < d; i++) out[i] = sc * float(c[i]);
        }
    }

    // The score results report: exact on float32, on the decoded vector
    // otherwise (the float query against the stored copy).
    float score(const SimdKernels& K, MetricType metric, const float* q, slot_t s, float* tmp) const {
        const float* v = vec_or_decode(s, tmp);
        return metric == METRIC_L2 ? K.l2sqr(q, v, d) : -K.inner_product(q, v, d);
    }
    const float* vec_or_decode(slot_t s, float* tmp) const {
        if (kind == HNSWStorage::Flat) return vec(s);
        decode(s, tmp);
        return tmp;
    }

    void prefetch(slot_t s) const {
        const uint8_t* b = block(s);
        for (size_t off = 0; off < links_offset; off += 64) __builtin_prefetch(b + off);
    }

    // Only under the index's exclusive lock: moves every array.
    void grow(size_t cap) {
        if (cap <= capacity) return;
        uint8_t* nb = static_cast<uint8_t*>(std::aligned_alloc(64, cap * block_bytes));
        if (!nb) throw std::bad_alloc();
        if (blocks) std::memcpy(nb, blocks, nslots * block_bytes);
        std::free(blocks);
        blocks = nb;
        if (kind == HNSWStorage::Flat) vectors.resize(cap * d);
        if (kind == HNSWStorage::FP16) halves.resize(cap * d);
        labels.resize(cap, -1);
        indegree.resize(cap, 0);
        levels.resize(cap, -1);
        upper.resize(cap);
        capacity = cap;
    }

    // Scores between the code of a query (or node) and node s.
    struct Query {
        const int8_t* code;
        float scale, norm;
    };
    Query query_of(slot_t s) const { return {code(s), scale(s), norm(s)}; }
};

namespace {

using Storage = IndexHNSWFlat::Storage;

inline float approx_score(const Storage& st, const SimdKernels& K, MetricType metric, const Storage::Query& q,
                          slot_t s) {
    float ip = q.scale * st.scale(s) * float(K.dot_i8(q.code, st.code(s), st.d));
    return metric == METRIC_L2 ? q.norm + st.norm(s) - 2.f * ip : -ip;
}

// Greedy walk on an upper level: move to the best neighbour until none is better.
void greedy(const Storage& st, const SimdKernels& K, MetricType metric, const Storage::Query& q, slot_t& cur,
            float& cur_score, int level) {
    for (bool changed = true; changed;) {
        changed = false;
        const slot_t* ll = st.links(cur, level);
        slot_t cnt = load_count(ll);
        for (slot_t i = 1; i <= cnt; i++) st.prefetch(load_link(ll + i));
        for (slot_t i = 1; i <= cnt; i++) {
            slot_t v = load_link(ll + i);
            float s = approx_score(st, K, metric, q, v);
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
void search_layer(const Storage& st, const SimdKernels& K, MetricType metric, const Storage::Query& q, slot_t ep,
                  float ep_score, int level, size_t ef, const IDSelector* sel, Scratch& sc) {
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
        for (size_t i = 0; i < nf; i++) {
            slot_t v = fresh[i];
            float s = approx_score(st, K, metric, q, v);
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

// hnswlib's / faiss's neighbour heuristic: keep a candidate only if it is
// closer to the base node than to every neighbour already kept, which spreads
// links over directions. `cands` must be sorted best first.
void select_neighbors(const Storage& st, const SimdKernels& K, MetricType metric, const std::vector<Cand>& cands,
                      size_t m, std::vector<slot_t>& out) {
    out.clear();
    for (const Cand& c : cands) {
        if (out.size() >= m) break;
        Storage::Query qc = st.query_of(c.id);
        bool good = true;
        for (slot_t r : out)
            if (approx_score(st, K, metric, qc, r) < c.score) {
                good = false;
                break;
            }
        if (good) out.push_back(c.id);
    }
}

void write_links(slot_t* ll, const std::vector<slot_t>& ids) {
    for (size_t i = 0; i < ids.size(); i++) store_link(ll + 1 + i, ids[i]);
    store_count(ll, slot_t(ids.size()));
}

// Adds s to p's list at `level`, pruning p's list with the heuristic when full.
void connect(const Storage& st, const SimdKernels& K, MetricType metric, slot_t p, slot_t s, int level, Scratch& sc) {
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
    Storage::Query qp = st.query_of(p);
    auto& cands = sc.sel_cands;
    cands.clear();
    for (slot_t i = 1; i <= cnt; i++) cands.push_back({approx_score(st, K, metric, qp, ll[i]), ll[i]});
    cands.push_back({approx_score(st, K, metric, qp, s), s});
    std::sort(cands.begin(), cands.end(), max_first);
    std::vector<slot_t> picks;
    select_neighbors(st, K, metric, cands, st.max_links(level), picks);
    if (level == 0) {
        // Keep any node this list is the only way into, in the room the
        // heuristic left.
        for (const Cand& c : cands) {
            if (picks.size() >= st.max_links(0)) break;
            if (std::find(picks.begin(), picks.end(), c.id) != picks.end()) continue;
            if (st.in_links(c.id) <= (c.id != s ? 1u : 0u)) picks.push_back(c.id);
        }
        for (slot_t i = 1; i <= cnt; i++)
            if (std::find(picks.begin(), picks.end(), ll[i]) == picks.end()) st.in_link(ll[i], -1);
        if (std::find(picks.begin(), picks.end(), s) != picks.end()) st.in_link(s, +1);
    }
    write_links(ll, picks);
}

}  // namespace

IndexHNSWFlat::IndexHNSWFlat(int d, int M, MetricType metric, HNSWStorage storage)
    : Index(d, metric), M(M), storage(storage) {
    NEARLY_CHECK_ARG(M >= 2 && M <= 256, "HNSW: M must be between 2 and 256 (got " + std::to_string(M) + ")");
    st_ = std::make_unique<Storage>(d, M, storage);
    level_mult_ = 1.0 / std::log(double(M));
}

IndexHNSWFlat::~IndexHNSWFlat() = default;

int IndexHNSWFlat::random_level() {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double r = -std::log(std::max(u(level_rng_), 1e-300)) * level_mult_;
    return std::min(int(r), kMaxLevel);
}

idx_t IndexHNSWFlat::entry_point() const {
    int64_t e = top().entry;
    return e < 0 ? -1 : st_->labels[e];
}

IndexHNSWFlat::slot_t IndexHNSWFlat::slot_of(idx_t label) const {
    auto it = slot_of_label_.find(label);
    if (it == slot_of_label_.end()) throw OutOfRange("id " + std::to_string(label) + " is not in the index");
    return it->second;
}

void IndexHNSWFlat::insert(slot_t s, int level) {
    Storage& st = *st_;
    const SimdKernels& K = simd();
    Scratch& sc = tls_scratch;
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
    Storage::Query q = st.query_of(s);
    slot_t cur = slot_t(t.entry);
    float cur_score = approx_score(st, K, metric_type, q, cur);
    for (int l = t.level; l > level; l--) greedy(st, K, metric_type, q, cur, cur_score, l);
    // First s's own lists on every level, top down; only then the links to s,
    // bottom up. Until then nothing links to s, so no search (nor another
    // insert) can reach s while any of its lists is still empty.
    const int top_level = std::min(level, t.level);
    std::vector<std::vector<slot_t>> picks(top_level + 1);
    for (int l = top_level; l >= 0; l--) {
        search_layer(st, K, metric_type, q, cur, cur_score, l, size_t(std::max(efConstruction, M)), nullptr, sc);
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
            select_neighbors(st, K, metric_type, found, cap, picks[l]);
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
        for (slot_t p : picks[l]) connect(st, K, metric_type, p, s, l, sc);
    if (level > t.level) set_top({s, level});
}

void IndexHNSWFlat::add(idx_t n, const float* x) { add_impl(n, x, nullptr); }

void IndexHNSWFlat::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_impl(n, x, ids); }

void IndexHNSWFlat::add_impl(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
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
        std::unique_lock<SharedMutex> lk(rw_mutex_);
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
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = size_t(d);
    parallel_for((size_t(n) + 255) / 256, [&](size_t t) {
        for (size_t i = t * 256; i < std::min(size_t(n), t * 256 + 256); i++) {
            slot_t s = slots[i];
            const float* xi = x + i * dd;
            st.store_vector(s, xi);
            st.scale(s) = quantize(xi, dd, st.code(s));
            float nrm = 0.f;
            for (size_t j = 0; j < dd; j++) nrm += xi[j] * xi[j];
            st.norm(s) = nrm;
        }
    });

    InterruptPoll poll;
    size_t done = 0;
    const size_t chunk = 4096;
    auto t0 = std::chrono::steady_clock::now();
    try {
        while (done < size_t(n)) {
            size_t end = std::min(size_t(n), done + chunk);
            if (top().entry < 0) {  // the first node, alone
                insert(slots[done], lv[done]);
                st.publish(slots[done], lv[done]);
                done++;
            }
            size_t begin = done;
            parallel_for((end - begin + 15) / 16, [&](size_t t) {
                for (size_t i = begin + t * 16; i < std::min(end, begin + t * 16 + 16); i++) {
                    insert(slots[i], lv[i]);
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
        std::unique_lock<SharedMutex> ex(rw_mutex_);
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

void IndexHNSWFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    int ef_param = efSearch;
    if (auto* hp = dynamic_cast<const SearchParametersHNSW*>(params)) ef_param = hp->efSearch;
    NEARLY_CHECK_ARG(ef_param >= 1, "HNSW: efSearch must be at least 1 (got " + std::to_string(ef_param) + ")");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const Storage& st = *st_;
    const size_t kk = size_t(k), dd = size_t(d);
    for (idx_t q = 0; q < n; q++) TopK::init(D + q * kk, I + q * kk, kk);
    const Top t0 = top();
    const int64_t ep = t0.entry;
    const float pad = missing_distance(metric_type);
    auto finish = [&](idx_t q) {
        TopK::sort(D + q * kk, I + q * kk, kk);
        for (size_t i = 0; i < kk; i++) {
            size_t o = q * kk + i;
            D[o] = I[o] < 0 ? pad : (metric_type == METRIC_L2 ? D[o] : -D[o]);
        }
    };
    if (ep < 0 || n == 0) {
        for (idx_t q = 0; q < n; q++) finish(q);
        return;
    }

    // A selective filter leaves too few passing nodes for the graph walk to
    // find k of them: scan the passing nodes exactly instead. The share of
    // passing nodes is estimated on a fixed sample of slots.
    size_t ef = std::max<size_t>(size_t(ef_param), kk);
    bool brute = false;
    if (sel) {
        size_t live = 0, pass = 0, step = std::max<size_t>(1, st.nslots / 1024);
        for (size_t s = 0; s < st.nslots; s += step) {
            if (!st.live(s)) continue;
            live++;
            pass += sel->is_member(st.labels[s]);
        }
        double frac = live ? double(pass) / live : 0.0;
        double npass = frac * double(ntotal);
        if (frac < 0.15 || npass < 4096) {
            brute = true;
        } else {
            ef = std::min<size_t>(size_t(double(ef) / frac) + 1, std::max<size_t>(ef, size_t(ntotal)));
        }
    }

    const SimdKernels& K = simd();
    if (brute) {
        std::vector<slot_t> passing;
        for (size_t s = 0; s < st.nslots; s++)
            if (st.live(s) && sel->is_member(st.labels[s])) passing.push_back(slot_t(s));
        size_t ntasks = (size_t(n) * passing.size() * dd > (1u << 20)) ? size_t(n) : 1;
        parallel_for(ntasks, [&](size_t t) {
            idx_t q0 = ntasks == 1 ? 0 : idx_t(t), q1 = ntasks == 1 ? n : idx_t(t) + 1;
            std::vector<float> tmp(dd);
            for (idx_t q = q0; q < q1; q++) {
                const float* xq = x + q * dd;
                for (slot_t s : passing) {
                    float sc = st.score(K, metric_type, xq, s, tmp.data());
                    TopK::push(D + q * kk, I + q * kk, kk, sc, st.labels[s]);
                }
                finish(q);
            }
        });
        return;
    }

    auto search_one = [&](idx_t q) {
        Scratch& sc = tls_scratch;
        const float* xq = x + q * dd;
        sc.qcode.resize(dd);
        sc.decoded.resize(dd);
        Storage::Query qc{sc.qcode.data(), quantize(xq, dd, sc.qcode.data()), 0.f};
        if (metric_type == METRIC_L2) qc.norm = K.inner_product(xq, xq, dd);
        slot_t cur = slot_t(ep);
        float cur_score = approx_score(st, K, metric_type, qc, cur);
        for (int l = t0.level; l > 0; l--) greedy(st, K, metric_type, qc, cur, cur_score, l);
        search_layer(st, K, metric_type, qc, cur, cur_score, 0, ef, sel, sc);
        // Re-rank the best 2k + 8 on the stored copy: exact distances and
        // order for Flat. (On the real embeddings, re-ranking all ef
        // candidates gives the same recall@10 and costs ~10% more: each is a
        // random 1.5 KB read.)
        size_t nr = std::min(sc.top.size(), 2 * kk + 8);
        std::sort(sc.top.begin(), sc.top.end(), max_first);
        sc.top.resize(nr);
        for (const Cand& c : sc.top) st.prefetch_vector(c.id);
        for (const Cand& c : sc.top) {
            float s = st.score(K, metric_type, xq, c.id, sc.decoded.data());
            TopK::push(D + q * kk, I + q * kk, kk, s, st.labels[c.id]);
        }
        finish(q);
    };
    InterruptPoll poll;
    const size_t per_task = 16;
    parallel_for((size_t(n) + per_task - 1) / per_task, [&](size_t t) {
        for (size_t q = t * per_task; q < std::min(size_t(n), t * per_task + per_task); q++) search_one(idx_t(q));
        poll();
    });
}

void IndexHNSWFlat::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    slot_t s = slot_of(key);
    st_->decode(s, out);
}

void IndexHNSWFlat::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, out + i * d);
}

size_t IndexHNSWFlat::remove_ids(const IDSelector& sel) {
    check_writable();
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    Storage& st = *st_;
    const SimdKernels& K = simd();
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
        std::vector<uint8_t> seen;
        for (size_t s = t * 64; s < std::min(st.nslots, t * 64 + 64); s++) {
            if (st.levels[s] < 0 || gone[s]) continue;
            Storage::Query qs = st.query_of(slot_t(s));
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
                    cands.push_back({approx_score(st, K, metric_type, qs, v), v});
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
                    Storage::Query qc = st.query_of(cands[c].id);
                    bool good = true;
                    for (slot_t r : picks)
                        if (approx_score(st, K, metric_type, qc, r) < cands[c].score) {
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

void IndexHNSWFlat::reset() {
    check_writable();
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    st_ = std::make_unique<Storage>(d, M, storage);
    slot_of_label_.clear();
    free_slots_.clear();
    next_label_ = 0;
    set_top({-1, -1});
    ntotal = 0;
}

std::vector<int> IndexHNSWFlat::levels() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<int> out(st_->nslots);
    for (size_t s = 0; s < st_->nslots; s++) out[s] = st_->live(s) ? st_->levels[s] : -1;
    return out;
}

std::vector<idx_t> IndexHNSWFlat::neighbors(idx_t id, int level) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    slot_t s = slot_of(id);
    NEARLY_CHECK_ARG(level >= 0 && level <= st_->levels[s], "HNSW: the node has no such level");
    const slot_t* ll = st_->links(s, level);
    std::vector<idx_t> out;
    for (slot_t i = 1; i <= ll[0]; i++) out.push_back(st_->labels[ll[i]]);
    return out;
}

IndexHNSWFlat::BaseGraph IndexHNSWFlat::base_graph() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const Storage& st = *st_;
    BaseGraph g;
    g.degree = int(st.M0);
    std::vector<int32_t> row_of(st.nslots, -1);
    std::vector<slot_t> slot_of_row;
    for (size_t s = 0; s < st.nslots; s++)
        if (st.live(s)) {
            row_of[s] = int32_t(g.ids.size());
            g.ids.push_back(st.labels[s]);
            slot_of_row.push_back(slot_t(s));
        }
    const size_t n = g.ids.size();
    g.vectors.resize(n * st.d);
    g.neighbors.assign(n * st.M0, -1);
    parallel_for((n + 1023) / 1024, [&](size_t t) {
        for (size_t row = t * 1024; row < std::min(n, t * 1024 + 1024); row++) {
            const slot_t s = slot_of_row[row];
            st.decode(s, &g.vectors[row * st.d]);
            const slot_t* ll = st.links(s, 0);
            int32_t* out = &g.neighbors[row * st.M0];
            size_t m = 0;
            for (slot_t i = 1; i <= ll[0]; i++)
                if (row_of[ll[i]] >= 0) out[m++] = row_of[ll[i]];
        }
    });
    const Top t = top();
    g.entry = t.entry >= 0 ? row_of[size_t(t.entry)] : -1;
    return g;
}

std::vector<idx_t> IndexHNSWFlat::ids() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<idx_t> out;
    for (size_t s = 0; s < st_->nslots; s++)
        if (st_->live(s)) out.push_back(st_->labels[s]);
    return out;
}

size_t IndexHNSWFlat::memory_bytes() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const Storage& st = *st_;
    size_t copy_bytes = storage == HNSWStorage::Flat ? st.d * 4 : storage == HNSWStorage::FP16 ? st.d * 2 : 0;
    size_t bytes = st.capacity * (st.block_bytes + copy_bytes + sizeof(idx_t) + 1 + sizeof(void*));
    for (size_t s = 0; s < st.nslots; s++)
        if (st.levels[s] > 0) bytes += size_t(st.levels[s]) * (1 + st.M) * sizeof(slot_t);
    // unordered_map: a node (key, value, next pointer, hash) plus a bucket pointer
    bytes += slot_of_label_.size() * (sizeof(idx_t) + sizeof(slot_t) + 2 * sizeof(void*)) +
             slot_of_label_.bucket_count() * sizeof(void*);
    return bytes;
}

void IndexHNSWFlat::write_body(Writer& w) const {
    std::lock_guard<std::mutex> add_lk(add_mutex_);  // a consistent graph: no add half done
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const Storage& st = *st_;
    if (storage != HNSWStorage::Flat) w.pod<int32_t>(int(storage));  // read by io.cpp before the body
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    w.pod<int64_t>(next_label_);
    w.pod<int64_t>(top().entry);
    w.pod<int32_t>(top().level);
    w.pod<uint64_t>(st.nslots);
    w.pod<uint64_t>(st.block_bytes);
    w.vec(std::vector<idx_t>(st.labels.begin(), st.labels.begin() + st.nslots));
    w.vec(std::vector<int8_t>(st.levels.begin(), st.levels.begin() + st.nslots));
    w.bytes(st.blocks, st.nslots * st.block_bytes);
    if (storage == HNSWStorage::Flat) w.bytes(st.vectors.data(), st.nslots * st.d * sizeof(float));
    if (storage == HNSWStorage::FP16) w.bytes(st.halves.data(), st.nslots * st.d * sizeof(uint16_t));
    for (size_t s = 0; s < st.nslots; s++)
        if (st.levels[s] > 0) w.bytes(st.upper[s].get(), size_t(st.levels[s]) * (1 + st.M) * sizeof(slot_t));
    w.vec(free_slots_);
}

std::unique_ptr<IndexHNSWFlat> IndexHNSWFlat::read_body(Reader& r, HNSWStorage storage) {
    int d = r.pod<int32_t>(), metric = r.pod<int32_t>(), M = r.pod<int32_t>();
    int efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    idx_t next_label = r.pod<int64_t>();
    int64_t entry = r.pod<int64_t>();
    int max_level = r.pod<int32_t>();
    uint64_t nslots = r.pod<uint64_t>(), block_bytes = r.pod<uint64_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && M >= 2 && M <= 256 && efc >= 1 &&
                efs >= 1 && nslots < (uint64_t(1) << 32),
            "bad HNSW header");
    std::unique_ptr<IndexHNSWFlat> index;
    if (storage == HNSWStorage::Flat)
        index = std::make_unique<IndexHNSWFlat>(d, M, MetricType(metric));
    else
        index = std::make_unique<IndexHNSWSQ>(d, storage, M, MetricType(metric));
    index->efConstruction = efc;
    index->efSearch = efs;
    Storage& st = *index->st_;
    r.check(block_bytes == st.block_bytes, "HNSW block size does not match");
    std::vector<idx_t> labels = r.vec<idx_t>();
    std::vector<int8_t> levels = r.vec<int8_t>();
    r.check(labels.size() == nslots && levels.size() == nslots, "HNSW slot arrays do not match");
    const size_t copy_bytes = storage == HNSWStorage::Flat ? size_t(d) * 4 : storage == HNSWStorage::FP16 ? size_t(d) * 2 : 0;
    r.check(nslots * (block_bytes + copy_bytes) <= r.remaining(), "truncated HNSW data");
    st.grow(std::max<size_t>(nslots, 16));
    st.nslots = nslots;
    r.bytes(st.blocks, nslots * block_bytes);
    if (storage == HNSWStorage::Flat) r.bytes(st.vectors.data(), nslots * size_t(d) * sizeof(float));
    if (storage == HNSWStorage::FP16) r.bytes(st.halves.data(), nslots * size_t(d) * sizeof(uint16_t));
    std::copy(labels.begin(), labels.end(), st.labels.begin());
    std::copy(levels.begin(), levels.end(), st.levels.begin());
    size_t live = 0;
    int top = -1;
    for (size_t s = 0; s < nslots; s++) {
        int l = levels[s];
        r.check(l >= -1 && l <= kMaxLevel, "bad HNSW level");
        if (l < 0) continue;
        live++;
        top = std::max(top, l);
        r.check(labels[s] >= 0 && labels[s] < next_label && index->slot_of_label_.emplace(labels[s], slot_t(s)).second,
                "bad or duplicate HNSW id");
        if (l > 0) {
            st.upper[s].reset(new slot_t[size_t(l) * (1 + M)]);
            r.bytes(st.upper[s].get(), size_t(l) * (1 + M) * sizeof(slot_t));
        }
    }
    // Every link must name a live node: a forged file must not send a search
    // out of bounds.
    for (size_t s = 0; s < nslots; s++)
        for (int l = 0; l <= levels[s]; l++) {
            const slot_t* ll = st.links(slot_t(s), l);
            r.check(ll[0] <= st.max_links(l), "bad HNSW link count");
            for (slot_t i = 1; i <= ll[0]; i++)
                r.check(ll[i] < nslots && levels[ll[i]] >= l, "bad HNSW link");
        }
    r.check(live == 0 ? entry == -1 : (entry >= 0 && uint64_t(entry) < nslots && levels[entry] == max_level &&
                                       max_level == top),
            "bad HNSW entry point");
    index->free_slots_ = r.vec<slot_t>();
    r.check(index->free_slots_.size() == nslots - live, "bad HNSW free list");
    for (slot_t s : index->free_slots_) r.check(s < nslots && levels[s] < 0, "bad HNSW free slot");
    index->next_label_ = next_label;
    index->set_top({entry, max_level});
    st.recount_in_links();
    index->ntotal = idx_t(live);
    return index;
}

}  // namespace nearly
