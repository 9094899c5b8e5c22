#include "nearly/hnsw.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "hnsw_graph.h"
#include "nearly/distance.h"
#include "nearly/extra_distances.h"
#include "nearly/io.h"
#include "nearly/scalar_quantizer.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

HNSWStats hnsw_stats;

using slot_t = HNSWGraph::slot_t;
using namespace hnsw_detail;

namespace hnsw_detail {
Scratch& tls_scratch() {
    thread_local Scratch s;
    return s;
}

int ef_of(const HNSWGraph& g, const SearchParameters* params) {
    int ef = g.efSearch;
    if (auto* hp = dynamic_cast<const SearchParametersHNSW*>(params)) ef = hp->efSearch;
    NEARLY_CHECK_ARG(ef >= 1, "HNSW: efSearch must be at least 1 (got " + std::to_string(ef) + ")");
    return ef;
}

void range_search_by_doubling_k(const Index& index, int ef, idx_t n, const float* x, float radius,
                                RangeSearchResult& result, const SearchParameters* params) {
    SearchParametersHNSW p;
    p.sel = params ? params->sel : nullptr;
    const bool ip = is_similarity_metric(index.metric_type);
    const size_t dd = size_t(index.d);
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    std::vector<idx_t> open(static_cast<size_t>(n));
    for (idx_t q = 0; q < n; q++) open[size_t(q)] = q;
    const idx_t most = std::max<idx_t>(index.ntotal, 1);
    idx_t k = std::min<idx_t>(std::max(ef, 16), most);
    std::vector<float> xs, D;
    std::vector<idx_t> I;
    while (!open.empty()) {
        const size_t m = open.size(), kk = size_t(k);
        xs.resize(m * dd);
        for (size_t i = 0; i < m; i++) std::copy(x + open[i] * dd, x + (open[i] + 1) * dd, &xs[i * dd]);
        D.resize(m * kk);
        I.resize(m * kk);
        p.efSearch = int(std::min<idx_t>(std::max<idx_t>(k, ef), std::numeric_limits<int>::max()));
        index.search(idx_t(m), xs.data(), k, D.data(), I.data(), &p);
        std::vector<idx_t> again;
        for (size_t i = 0; i < m; i++) {
            const float* Di = &D[i * kk];
            const idx_t* Ii = &I[i * kk];
            size_t in = 0;
            while (in < kk && Ii[in] >= 0 && (ip ? Di[in] > radius : Di[in] < radius)) in++;
            if (in == kk && k < most) {
                again.push_back(open[i]);  // all k inside: the range may hold more
                continue;
            }
            for (size_t j = 0; j < in; j++) hits[size_t(open[i])].emplace_back(Di[j], Ii[j]);
        }
        open.swap(again);
        k = std::min<idx_t>(2 * k, most);
    }
    result.set(hits);
}

}  // namespace hnsw_detail

namespace {

// Where a base-level search starts (IndexHNSWCagra): the best of `count`
// live nodes drawn at random, the draw seeded by the query's bytes so that a
// query starts from the same nodes in any batch; -1 if no draw hits a live
// node (a graph mostly of removed slots).
template <class Score>
int64_t random_entry(const Storage& st, const float* xq, size_t d, int count, const Score& score) {
    auto mix = [](uint64_t z) {  // splitmix64's finalizer
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t j = 0; j < d; j++) {
        uint32_t u;
        std::memcpy(&u, xq + j, 4);
        h = mix(h ^ u);
    }
    const size_t nslots = st.levels.size();
    int64_t best = -1;
    float best_score = 0.f;
    for (int tries = 0, drawn = 0; tries < 4 * count && drawn < count && nslots > 0; tries++) {
        h = mix(h + 0x9e3779b97f4a7c15ull);
        const size_t s = size_t(h % nslots);
        if (!st.live(s)) continue;
        drawn++;
        const float sc = score(slot_t(s));
        if (best < 0 || sc < best_score) best = int64_t(s), best_score = sc;
    }
    return best;
}

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

// The float index's walk: the payload of a node is
//     float scale | float squared norm | int8 code[d]
// and scores are the int8 estimate of squared L2 or -inner product.
struct Int8Space {
    const Storage& st;
    const SimdKernels& K;
    MetricType metric;
    size_t d;
    struct Query {
        const int8_t* code;
        float scale, norm;
    };
    static float& scale(const Storage& st, slot_t s) { return reinterpret_cast<float*>(st.payload(s))[0]; }
    static float& norm(const Storage& st, slot_t s) { return reinterpret_cast<float*>(st.payload(s))[1]; }
    static int8_t* code(const Storage& st, slot_t s) { return reinterpret_cast<int8_t*>(st.payload(s) + 8); }
    Query query_of(slot_t s) const { return {code(st, s), scale(st, s), norm(st, s)}; }
    float score(const Query& q, slot_t s) const {
        float ip = q.scale * scale(st, s) * float(K.dot_i8(q.code, code(st, s), d));
        return metric == METRIC_L2 ? q.norm + norm(st, s) - 2.f * ip : -ip;
    }
};

// The walk under an extra metric: exact scores on the float vectors (the
// int8 estimate serves L2 and inner product only; such an index has no
// int8 payload).
struct ExtraMetricSpace {
    const Storage& st;
    MetricType metric;
    float arg;
    size_t d;
    using Query = const float*;
    Query query_of(slot_t s) const { return reinterpret_cast<const float*>(st.side_of(s)); }
    float score(Query q, slot_t s) const { return extra_score(metric, arg, q, query_of(s), d); }
};

size_t side_bytes_of(HNSWStorage kind, int d) {
    return kind == HNSWStorage::Flat ? size_t(d) * 4
           : kind == HNSWStorage::FP16 || kind == HNSWStorage::BF16 ? size_t(d) * 2
                                                                     : 0;
}

// The copy results are scored on (re-ranking, reconstruct): float32 for
// Flat, fp16 / bf16 for FP16 / BF16 (the side copies); SQ8 keeps only the
// int8 codes.
struct Copies {
    const Storage& st;
    HNSWStorage kind;
    size_t d;
    const float* vec(slot_t s) const { return reinterpret_cast<const float*>(st.side_of(s)); }
    void prefetch(slot_t s) const {
        if (kind == HNSWStorage::SQ8) {
            const char* v = reinterpret_cast<const char*>(Int8Space::code(st, s));
            for (size_t off = 0; off < d; off += 64) __builtin_prefetch(v + off);
        } else {
            st.prefetch_side(s);
        }
    }
    void store(slot_t s, const float* x) const {
        if (kind == HNSWStorage::Flat) std::memcpy(st.side_of(s), x, d * sizeof(float));
        if (kind == HNSWStorage::FP16) {
            uint16_t* h = reinterpret_cast<uint16_t*>(st.side_of(s));
            for (size_t i = 0; i < d; i++) h[i] = float_to_half(x[i]);
        }
        if (kind == HNSWStorage::BF16) {
            uint16_t* h = reinterpret_cast<uint16_t*>(st.side_of(s));
            for (size_t i = 0; i < d; i++) h[i] = float_to_bf16(x[i]);
        }
    }
    void decode(slot_t s, float* out) const {
        if (kind == HNSWStorage::Flat) {
            std::copy(vec(s), vec(s) + d, out);
        } else if (kind == HNSWStorage::FP16) {
            const uint16_t* h = reinterpret_cast<const uint16_t*>(st.side_of(s));
            for (size_t i = 0; i < d; i++) out[i] = half_to_float(h[i]);
        } else if (kind == HNSWStorage::BF16) {
            const uint16_t* h = reinterpret_cast<const uint16_t*>(st.side_of(s));
            for (size_t i = 0; i < d; i++) out[i] = bf16_to_float(h[i]);
        } else {
            const float sc = Int8Space::scale(st, s);
            const int8_t* c = Int8Space::code(st, s);
            for (size_t i = 0; i < d; i++) out[i] = sc * float(c[i]);
        }
    }
    const float* vec_or_decode(slot_t s, float* tmp) const {
        if (kind == HNSWStorage::Flat) return vec(s);
        decode(s, tmp);
        return tmp;
    }
    // The score results report, smaller is better: exact on float32, on the
    // decoded vector otherwise (the float query against the stored copy).
    float score(const SimdKernels& K, MetricType metric, float arg, const float* q, slot_t s, float* tmp) const {
        const float* v = vec_or_decode(s, tmp);
        if (metric == METRIC_L2) return K.l2sqr(q, v, d);
        if (metric == METRIC_INNER_PRODUCT) return -K.inner_product(q, v, d);
        return extra_score(metric, arg, q, v, d);
    }
};

// Writes vector xi into slot s: its stored copy (and Panorama's tail norms
// after it), int8 code, scale and norm (the copy alone where there is no
// int8 payload: extra metrics).
void store_node(const Storage& st, HNSWStorage kind, size_t dd, slot_t s, const float* xi, const Panorama& pano) {
    Copies{st, kind, dd}.store(s, xi);
    if (pano.n_levels) pano.tail_norms(xi, reinterpret_cast<float*>(st.side_of(s)) + dd);
    if (st.payload_bytes == 0) return;
    Int8Space::scale(st, s) = quantize(xi, dd, Int8Space::code(st, s));
    float nrm = 0.f;
    for (size_t j = 0; j < dd; j++) nrm += xi[j] * xi[j];
    Int8Space::norm(st, s) = nrm;
}

}  // namespace

// ---- HNSWGraph: what does not depend on the space ----------------------------

HNSWGraph::HNSWGraph(int M_, size_t payload_bytes, size_t side_bytes)
    : M(M_), payload_bytes_(payload_bytes), side_bytes_(side_bytes) {
    NEARLY_CHECK_ARG(M >= 2 && M <= 256, "HNSW: M must be between 2 and 256 (got " + std::to_string(M) + ")");
    st_ = std::make_unique<Storage>(size_t(M), payload_bytes, side_bytes);
    level_mult_ = 1.0 / std::log(double(M));
}

HNSWGraph::~HNSWGraph() = default;

int HNSWGraph::random_level() {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double r = -std::log(std::max(u(level_rng_), 1e-300)) * level_mult_;
    return std::min(int(r), kMaxLevel);
}

void HNSWLayers::check(int M) const {
    const size_t n = levels.size();
    NEARLY_CHECK_ARG(n < size_t(INT32_MAX), "HNSW graph: too many rows");
    if (n == 0) {
        NEARLY_CHECK_ARG(nodes.empty() && links.empty() && entry == -1, "HNSW graph: no rows but links or an entry");
        return;
    }
    int top = 0;
    for (int8_t lv : levels) {
        NEARLY_CHECK_ARG(lv >= 0 && lv <= hnsw_detail::kMaxLevel, "HNSW graph: a level out of range");
        top = std::max<int>(top, lv);
    }
    NEARLY_CHECK_ARG(int(nodes.size()) == top + 1 && links.size() == nodes.size(),
                     "HNSW graph: one node list and one link table per level are needed");
    NEARLY_CHECK_ARG(entry >= 0 && size_t(entry) < n && levels[size_t(entry)] == top,
                     "HNSW graph: the entry must be a row on the top level");
    for (int l = 0; l <= top; l++) {
        const auto& nl = nodes[size_t(l)];
        const size_t cap = l == 0 ? size_t(2 * M) : size_t(M);
        size_t expected = 0;
        for (int8_t lv : levels) expected += lv >= l;
        NEARLY_CHECK_ARG(nl.size() == expected && links[size_t(l)].size() == nl.size() * cap,
                         "HNSW graph: level " + std::to_string(l) + " must list its " + std::to_string(expected) +
                             " rows with " + std::to_string(cap) + " links each");
        for (size_t i = 0; i < nl.size(); i++) {
            const int32_t r = nl[i];
            NEARLY_CHECK_ARG(r >= 0 && size_t(r) < n && levels[size_t(r)] >= l && (i == 0 || nl[i - 1] < r),
                             "HNSW graph: level " + std::to_string(l) + " lists a row not on it, or out of order");
            bool pad = false;
            for (size_t j = 0; j < cap; j++) {
                const int32_t v = links[size_t(l)][i * cap + j];
                if (v < 0) {
                    NEARLY_CHECK_ARG(v == -1, "HNSW graph: links are rows or -1");
                    pad = true;
                    continue;
                }
                NEARLY_CHECK_ARG(!pad && size_t(v) < n && v != r && levels[size_t(v)] >= l,
                                 "HNSW graph: row " + std::to_string(r) + " has a bad link on level " +
                                     std::to_string(l) + " (out of range, to itself, off the level, or after padding)");
            }
        }
    }
}

idx_t HNSWGraph::entry_point() const {
    int64_t e = top().entry;
    return e < 0 ? -1 : st_->labels[e];
}

HNSWGraph::slot_t HNSWGraph::slot_of(idx_t label) const {
    auto it = slot_of_label_.find(label);
    if (it == slot_of_label_.end()) throw OutOfRange("id " + std::to_string(label) + " is not in the index");
    return it->second;
}

void HNSWGraph::require_vectors(const char* what) const {
    if (!has_vectors())
        throw NotSupported(std::string(what) + ": this HNSW index was read without its vectors (written with "
                           "IO_FLAG_SKIP_STORAGE); give them back first (index.storage = an index holding them)");
}

void HNSWGraph::reset_graph() {
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    vectors_missing_.store(false, std::memory_order_release);
    st_ = std::make_unique<Storage>(size_t(M), payload_bytes_, side_bytes_);
    slot_of_label_.clear();
    free_slots_.clear();
    next_label_ = 0;
    set_top({-1, -1});
}

void HNSWGraph::permute_slots(const idx_t* perm, idx_t ntotal) {
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    Storage& st = *st_;
    const size_t n = st.nslots;
    bool ids_are_slots = size_t(ntotal) == n && free_slots_.empty();
    for (size_t s = 0; s < n && ids_are_slots; s++) ids_are_slots = st.labels[s] == idx_t(s) && st.live(s);
    if (!ids_are_slots)
        throw NotSupported("permute_entries: needs ids 0 .. ntotal-1 as added (no removal, no add_with_ids)");
    check_permutation(perm, idx_t(n));
    if (n == 0) return;
    std::vector<slot_t> new_of(n);
    for (size_t i = 0; i < n; i++) new_of[size_t(perm[i])] = slot_t(i);
    // Blocks (payload and level-0 links) and side copies move together;
    // every link is renumbered.
    const std::vector<uint8_t> blocks(st.blocks, st.blocks + n * st.block_bytes);
    const std::vector<uint8_t> side(st.side_of(0), st.side_of(0) + n * st.side_bytes);
    std::vector<int8_t> levels(n);
    std::vector<std::unique_ptr<slot_t[]>> upper(n);
    for (size_t i = 0; i < n; i++) {
        const size_t from = size_t(perm[i]);
        std::memcpy(st.block(slot_t(i)), blocks.data() + from * st.block_bytes, st.block_bytes);
        std::memcpy(st.side_of(slot_t(i)), side.data() + from * st.side_bytes, st.side_bytes);
        levels[i] = st.levels[from];
        upper[i] = std::move(st.upper[from]);
    }
    for (size_t i = 0; i < n; i++) {
        st.levels[i] = levels[i];
        st.upper[i] = std::move(upper[i]);
        for (int l = 0; l <= levels[i]; l++) {
            slot_t* ll = st.links(slot_t(i), l);
            for (slot_t j = 1; j <= ll[0]; j++) ll[j] = new_of[ll[j]];
        }
    }
    st.recount_in_links();
    const Top t = top();
    set_top({int64_t(new_of[size_t(t.entry)]), t.level});
}

std::vector<int> HNSWGraph::levels() const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    std::vector<int> out(st_->nslots);
    for (size_t s = 0; s < st_->nslots; s++) out[s] = st_->live(s) ? st_->levels[s] : -1;
    return out;
}

std::vector<idx_t> HNSWGraph::neighbors(idx_t id, int level) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    slot_t s = slot_of(id);
    NEARLY_CHECK_ARG(level >= 0 && level <= st_->levels[s], "HNSW: the node has no such level");
    const slot_t* ll = st_->links(s, level);
    std::vector<idx_t> out;
    for (slot_t i = 1; i <= ll[0]; i++) out.push_back(st_->labels[ll[i]]);
    return out;
}

std::vector<idx_t> HNSWGraph::ids() const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    std::vector<idx_t> out;
    for (size_t s = 0; s < st_->nslots; s++)
        if (st_->live(s)) out.push_back(st_->labels[s]);
    return out;
}

void HNSWGraph::flat_links(std::vector<uint64_t>& offsets, std::vector<int32_t>* neighbors) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const Storage& st = *st_;
    offsets.assign(st.nslots + 1, 0);
    for (size_t s = 0; s < st.nslots; s++) {
        const int top = st.live(s) ? st.levels[s] : -1;
        offsets[s + 1] = offsets[s] + (top < 0 ? 0 : size_t(2 * M + top * M));
    }
    if (!neighbors) return;
    neighbors->assign(offsets[st.nslots], -1);
    for (size_t s = 0; s < st.nslots; s++) {
        if (!st.live(s)) continue;
        int32_t* out = neighbors->data() + offsets[s];
        for (int l = 0; l <= st.levels[s]; l++) {
            const slot_t* ll = st.links(slot_t(s), l);
            // an add may be linking nodes in: counts and links are read as searches read them
            const slot_t cnt = std::min<slot_t>(hnsw_detail::load_count(ll), slot_t(st.max_links(l)));
            for (slot_t i = 1; i <= cnt; i++) out[i - 1] = int32_t(hnsw_detail::load_link(ll + i));
            out += st.max_links(l);
        }
    }
}

size_t HNSWGraph::graph_memory_bytes() const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const Storage& st = *st_;
    size_t bytes = st.capacity * (st.block_bytes + st.side_bytes + sizeof(idx_t) + 1 + sizeof(void*));
    for (size_t s = 0; s < st.nslots; s++)
        if (st.levels[s] > 0) bytes += size_t(st.levels[s]) * (1 + st.M) * sizeof(slot_t);
    // unordered_map: a node (key, value, next pointer, hash) plus a bucket pointer
    bytes += slot_of_label_.size() * (sizeof(idx_t) + sizeof(slot_t) + 2 * sizeof(void*)) +
             slot_of_label_.bucket_count() * sizeof(void*);
    return bytes;
}

// Node blocks are multiples of a cache line; so is where they start in a file.
constexpr size_t kBlockAlignment = 64;

void HNSWGraph::write_graph(Writer& w, bool can_skip_vectors) const {
    const Storage& st = *st_;
    const bool links_only = w.skip_storage || !has_vectors();
    if (links_only && !can_skip_vectors)
        throw NotSupported("IO_FLAG_SKIP_STORAGE: an index of this kind cannot be written without its vectors "
                           "(IndexHNSWFlat, IndexHNSWSQ with QT_8bit / QT_fp16 / QT_bf16, IndexHNSWCagra and "
                           "IndexHNSWFlatPanorama can)");
    w.pod<int64_t>(next_label_);
    w.pod<int64_t>(top().entry);
    w.pod<int32_t>(top().level);
    w.pod<uint64_t>(st.nslots);
    w.pod<uint64_t>(links_only ? 0 : st.block_bytes);  // 0: the level-0 lists alone, no vectors
    w.vec(std::vector<idx_t>(st.labels.begin(), st.labels.begin() + st.nslots));
    w.vec(std::vector<int8_t>(st.levels.begin(), st.levels.begin() + st.nslots));
    if (links_only) {
        for (size_t s = 0; s < st.nslots; s++) w.bytes(st.links(slot_t(s), 0), (1 + st.M0) * sizeof(slot_t));
    } else {
        w.align(kBlockAlignment);  // format 3: a mapped file's blocks are used in place
        w.bytes(st.blocks, st.nslots * st.block_bytes);
        if (st.side_bytes) {
            w.align(kBlockAlignment);
            w.bytes(st.side_of(0), st.nslots * st.side_bytes);
        }
    }
    for (size_t s = 0; s < st.nslots; s++)
        if (st.levels[s] > 0) w.bytes(st.upper[s].get(), size_t(st.levels[s]) * (1 + st.M) * sizeof(slot_t));
    w.vec(free_slots_);
}

void HNSWGraph::read_graph(Reader& r, idx_t& ntotal, bool can_lack_vectors) {
    idx_t next_label = r.pod<int64_t>();
    int64_t entry = r.pod<int64_t>();
    int max_level = r.pod<int32_t>();
    uint64_t nslots = r.pod<uint64_t>(), block_bytes = r.pod<uint64_t>();
    r.check(nslots < (uint64_t(1) << 32), "bad HNSW header");
    Storage& st = *st_;
    const bool links_only = block_bytes == 0;
    r.check(links_only ? can_lack_vectors : block_bytes == st.block_bytes, "HNSW block size does not match");
    std::vector<idx_t> labels = r.vec<idx_t>();
    std::vector<int8_t> levels = r.vec<int8_t>();
    r.check(labels.size() == nslots && levels.size() == nslots, "HNSW slot arrays do not match");
    const size_t level0_bytes = (1 + st.M0) * sizeof(slot_t);
    r.check(nslots * (links_only ? level0_bytes : block_bytes + st.side_bytes) <= r.remaining(),
            "truncated HNSW data");
    const bool aligned = r.version() >= 3;
    std::shared_ptr<const void> keep;
    const uint8_t* mapped_blocks = nullptr;
    if (links_only) {  // the level-0 lists into zeroed blocks: no vectors until set_vectors
        st.grow(std::max<size_t>(nslots, 16));
        std::memset(st.blocks, 0, nslots * st.block_bytes);
        for (size_t s = 0; s < nslots; s++) r.bytes(st.links(slot_t(s), 0), level0_bytes);
    } else {
        if (aligned) r.align(kBlockAlignment);
        mapped_blocks = aligned ? r.view_bytes(nslots * block_bytes, &keep) : nullptr;
        if (mapped_blocks) {
            st.use_mapped(nslots, mapped_blocks, keep);
        } else {
            st.grow(std::max<size_t>(nslots, 16));
            r.bytes(st.blocks, nslots * block_bytes);
        }
    }
    st.nslots = nslots;
    vectors_missing_.store(links_only, std::memory_order_release);
    if (st.side_bytes && !links_only) {
        if (aligned) r.align(kBlockAlignment);
        if (mapped_blocks)
            st.mapped_side = r.view_bytes(nslots * st.side_bytes, &keep);
        else
            r.bytes(st.side.data(), nslots * st.side_bytes);
    }
    std::copy(labels.begin(), labels.end(), st.labels.begin());
    std::copy(levels.begin(), levels.end(), st.levels.begin());
    size_t live = 0;
    int top_level = -1;
    for (size_t s = 0; s < nslots; s++) {
        int l = levels[s];
        r.check(l >= -1 && l <= kMaxLevel, "bad HNSW level");
        if (l < 0) continue;
        live++;
        top_level = std::max(top_level, l);
        r.check(labels[s] >= 0 && labels[s] < next_label && slot_of_label_.emplace(labels[s], slot_t(s)).second,
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
                                       max_level == top_level),
            "bad HNSW entry point");
    free_slots_ = r.vec<slot_t>();
    r.check(free_slots_.size() == nslots - live, "bad HNSW free list");
    for (slot_t s : free_slots_) r.check(s < nslots && levels[s] < 0, "bad HNSW free slot");
    next_label_ = next_label;
    set_top({entry, max_level});
    st.recount_in_links();
    ntotal = idx_t(live);
}

// ---- IndexHNSWFlat -------------------------------------------------------------

// Extra metrics: Flat storage only (as faiss: its SQ storage takes L2 and
// inner product), walked on the float copies, so no int8 payload.
IndexHNSWFlat::IndexHNSWFlat(int d, int M, MetricType metric, HNSWStorage storage)
    : Index(d, metric, storage == HNSWStorage::Flat),
      HNSWGraph(M, is_extra_metric(metric) ? 0 : 8 + size_t(d), side_bytes_of(storage, d)),
      storage(storage) {}

IndexHNSWFlat::IndexHNSWFlat(int d, int M, MetricType metric, const Panorama& pano)
    : Index(d, metric),
      // Rounded up to whole cache lines: each vector starts on one, as in
      // IndexHNSWFlat (d = 384: 1,536 + 36 bytes would straddle one more).
      HNSWGraph(M, 8 + size_t(d), ((size_t(d) + pano.n_levels + 1) * sizeof(float) + 63) / 64 * 64),
      storage(HNSWStorage::Flat),
      pano_(pano) {}

const float* IndexHNSWFlat::tail_norms(slot_t s) const {
    return reinterpret_cast<const float*>(st_->side_of(s)) + d;
}

IndexHNSWFlat::~IndexHNSWFlat() = default;

void IndexHNSWFlat::add(idx_t n, const float* x) { add_impl(n, x, nullptr); }

void IndexHNSWFlat::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_impl(n, x, ids); }

void IndexHNSWFlat::add_impl(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    require_vectors("add");
    const size_t dd = size_t(d);
    const MetricType metric = metric_type;
    const HNSWStorage kind = storage;
    auto fill = [&](size_t i, slot_t s) { store_node(*st_, kind, dd, s, x + i * dd, pano_); };
    if (is_extra_metric(metric)) {
        const float arg = metric_arg;
        auto make_space = [&](const Storage& st) { return ExtraMetricSpace{st, metric, arg, dd}; };
        add_nodes(n, ids, make_space, fill, ntotal, verbose);
        return;
    }
    auto make_space = [&](const Storage& st) { return Int8Space{st, simd(), metric, dd}; };
    add_nodes(n, ids, make_space, fill, ntotal, verbose);
}

void IndexHNSWFlat::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                 const SearchParameters* params) const {
    check_search_args(n, x, 1);
    range_search_by_doubling_k(*this, ef_of(*this, params), n, x, radius, result, params);
}

void IndexHNSWFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    const int ef_param = ef_of(*this, params);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    require_vectors("search");
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
            D[o] = I[o] < 0 ? pad : (is_similarity_metric(metric_type) ? -D[o] : D[o]);
        }
    };
    if (ep < 0 || n == 0) {
        for (idx_t q = 0; q < n; q++) finish(q);
        return;
    }

    const FilterPlan plan = plan_filter(st, sel, std::max<size_t>(size_t(ef_param), kk), ntotal);
    const size_t ef = plan.ef;
    const SimdKernels& K = simd();
    const Copies copies{st, storage, dd};
    if (plan.brute) {
        const std::vector<slot_t> passing = passing_slots(st, *sel);
        size_t ntasks = (size_t(n) * passing.size() * dd > (1u << 20)) ? size_t(n) : 1;
        parallel_for(ntasks, [&](size_t t) {
            idx_t q0 = ntasks == 1 ? 0 : idx_t(t), q1 = ntasks == 1 ? n : idx_t(t) + 1;
            std::vector<float> tmp(dd);
            for (idx_t q = q0; q < q1; q++) {
                const float* xq = x + q * dd;
                for (slot_t s : passing) {
                    float sc = copies.score(K, metric_type, metric_arg, xq, s, tmp.data());
                    TopK::push(D + q * kk, I + q * kk, kk, sc, st.labels[s]);
                }
                finish(q);
            }
        });
        return;
    }

    // Where each walk starts: the entry node on the top level, or (base-level
    // search) the best of a random draw on level 0.
    const int draws = random_entry_points();
    auto walk_from = [&](const auto& sp, const auto& query, const float* xq, Scratch& sc) {
        int64_t start = ep;
        int level = t0.level;
        if (draws > 0) {
            const int64_t r = random_entry(st, xq, dd, draws, [&](slot_t s) { return sp.score(query, s); });
            if (r >= 0) start = r, level = 0;
        }
        walk(sp, query, start, level, ef, sel, sc);
    };
    if (is_extra_metric(metric_type)) {  // exact scores all the way: nothing to re-rank
        const ExtraMetricSpace sp{st, metric_type, metric_arg, dd};
        for_each_query(n, [&](idx_t q) {
            Scratch& sc = tls_scratch();
            walk_from(sp, x + q * dd, x + q * dd, sc);
            for (const Cand& c : sc.top)
                if (c.score != std::numeric_limits<float>::infinity())
                    TopK::push(D + q * kk, I + q * kk, kk, c.score, st.labels[c.id]);
            finish(q);
        });
        return;
    }
    // Panorama: the walk's best k candidates, scored whole (nothing could
    // prune them), give the k-th best; the others are read a level at a
    // time against it (a candidate is dropped once its bound shows it cannot
    // enter the k best).
    auto rerank_panorama = [&](idx_t q, const std::vector<Cand>& cands) {
        const float* xq = x + q * dd;
        float* Dq = D + q * kk;
        idx_t* Iq = I + q * kk;
        const size_t first = std::min(cands.size(), kk);
        for (size_t i = 0; i < first; i++)
            TopK::push(Dq, Iq, kk, copies.score(K, metric_type, metric_arg, xq, cands[i].id, nullptr),
                       st.labels[cands[i].id]);
        uint64_t scanned = first * pano_.n_levels;
        if (first == cands.size()) {
            panorama_stats.add(scanned, scanned);
            return;
        }
        thread_local Panorama::Query pq;
        pano_.set_query(pq, xq);
        thread_local std::vector<idx_t> rows;
        thread_local std::vector<float> scores;
        rows.resize(cands.size() - first);
        scores.resize(rows.size());
        for (size_t i = 0; i < rows.size(); i++) rows[i] = idx_t(cands[first + i].id);
        const auto slice = [&](idx_t r, size_t l) { return copies.vec(slot_t(r)) + pano_.level_begin(l); };
        const auto tail = [&](idx_t r, size_t l) { return tail_norms(slot_t(r))[l]; };
        const auto norm2 = [&](idx_t r) {
            const float t = tail_norms(slot_t(r))[0];
            return t * t;
        };
        const size_t kept = pano_.filter(pq, metric_type == METRIC_L2, slice, tail, norm2, rows.data(), rows.size(),
                                         Dq[0], scores.data(), &scanned);
        for (size_t i = 0; i < kept; i++) TopK::push(Dq, Iq, kk, scores[i], st.labels[size_t(rows[i])]);
        panorama_stats.add(scanned, uint64_t(cands.size()) * pano_.n_levels);
    };
    const Int8Space sp{st, K, metric_type, dd};
    auto search_one = [&](idx_t q) {
        Scratch& sc = tls_scratch();
        const float* xq = x + q * dd;
        sc.qcode.resize(dd);
        sc.decoded.resize(dd);
        Int8Space::Query qc{sc.qcode.data(), quantize(xq, dd, sc.qcode.data()), 0.f};
        if (metric_type == METRIC_L2) qc.norm = K.inner_product(xq, xq, dd);
        walk_from(sp, qc, xq, sc);
        // Re-rank the best 2k + 8 on the stored copy: exact distances and
        // order for Flat. (On the real embeddings, re-ranking all ef
        // candidates gives the same recall@10 and costs ~10% more: each is a
        // random 1.5 KB read.)
        size_t nr = std::min(sc.top.size(), 2 * kk + 8);
        std::sort(sc.top.begin(), sc.top.end(), max_first);
        sc.top.resize(nr);
        for (const Cand& c : sc.top) copies.prefetch(c.id);
        if (pano_.n_levels) {
            rerank_panorama(q, sc.top);
            finish(q);
            return;
        }
        for (const Cand& c : sc.top) {
            float s = copies.score(K, metric_type, metric_arg, xq, c.id, sc.decoded.data());
            TopK::push(D + q * kk, I + q * kk, kk, s, st.labels[c.id]);
        }
        finish(q);
    };
    for_each_query(n, search_one);
}

void IndexHNSWFlat::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    require_vectors("reconstruct");
    slot_t s = slot_of(key);
    Copies{*st_, storage, size_t(d)}.decode(s, out);
}

void IndexHNSWFlat::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, out + i * d);
}

size_t IndexHNSWFlat::remove_ids(const IDSelector& sel) {
    check_writable();
    require_vectors("remove_ids");
    const MetricType metric = metric_type;
    const size_t dd = size_t(d);
    if (is_extra_metric(metric)) {
        const float arg = metric_arg;
        return remove_nodes(sel, [&](const Storage& st) { return ExtraMetricSpace{st, metric, arg, dd}; }, ntotal);
    }
    return remove_nodes(sel, [&](const Storage& st) { return Int8Space{st, simd(), metric, dd}; }, ntotal);
}

void IndexHNSWFlat::reset() {
    check_writable();
    reset_graph();
    ntotal = 0;
}

void IndexHNSWFlat::add_graph(idx_t n, const float* x, const HNSWLayers& graph) {
    NEARLY_CHECK_ARG(idx_t(graph.levels.size()) == n, "add_graph: the graph has " +
                                                          std::to_string(graph.levels.size()) + " rows for " +
                                                          std::to_string(n) + " vectors");
    check_add_args(n, x);
    require_vectors("add_graph");
    const size_t dd = size_t(d);
    const HNSWStorage kind = storage;
    auto fill = [&](size_t i, slot_t s) { store_node(*st_, kind, dd, s, x + i * dd, pano_); };
    add_linked_nodes(graph, fill, ntotal);
}

void IndexHNSWFlat::set_vectors(idx_t n, const float* x) {
    check_add_args(n, x);
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    Storage& st = *st_;
    std::vector<slot_t> slots;
    for (size_t s = 0; s < st.nslots; s++)
        if (st.live(s)) slots.push_back(slot_t(s));
    NEARLY_CHECK_ARG(size_t(n) == slots.size(), "the storage holds " + std::to_string(n) +
                                                    " vectors; this HNSW index has " + std::to_string(slots.size()) +
                                                    " nodes (one vector per node, in slot order)");
    const size_t dd = size_t(d);
    const HNSWStorage kind = storage;
    parallel_for((slots.size() + 255) / 256, [&](size_t t) {
        for (size_t i = t * 256; i < std::min(slots.size(), t * 256 + 256); i++)
            store_node(st, kind, dd, slots[i], x + i * dd, pano_);
    });
    vectors_missing_.store(false, std::memory_order_release);
}

void IndexHNSWFlat::init_level_0_from_knngraph(int k, const float* D, const idx_t* I) {
    (void)D;  // the scores are taken again from the stored vectors (as the walks score them)
    check_writable();
    const MetricType metric = metric_type;
    const size_t dd = size_t(d);
    if (is_extra_metric(metric)) {
        const float arg = metric_arg;
        set_level0_from_knn(ntotal, k, I, [&](const Storage& st) { return ExtraMetricSpace{st, metric, arg, dd}; });
        return;
    }
    set_level0_from_knn(ntotal, k, I, [&](const Storage& st) { return Int8Space{st, simd(), metric, dd}; });
}

void IndexHNSWFlat::reorder_links() {
    check_writable();
    const MetricType metric = metric_type;
    const size_t dd = size_t(d);
    if (is_extra_metric(metric)) {
        const float arg = metric_arg;
        sort_level0_links([&](const Storage& st) { return ExtraMetricSpace{st, metric, arg, dd}; });
        return;
    }
    sort_level0_links([&](const Storage& st) { return Int8Space{st, simd(), metric, dd}; });
}

IndexHNSWFlat::BaseGraph IndexHNSWFlat::base_graph() const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    require_vectors("base_graph");
    const Storage& st = *st_;
    const size_t dd = size_t(d);
    const Copies copies{st, storage, dd};
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
    g.vectors.resize(n * dd);
    g.neighbors.assign(n * st.M0, -1);
    parallel_for((n + 1023) / 1024, [&](size_t t) {
        for (size_t row = t * 1024; row < std::min(n, t * 1024 + 1024); row++) {
            const slot_t s = slot_of_row[row];
            copies.decode(s, &g.vectors[row * dd]);
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

size_t IndexHNSWFlat::memory_bytes() const { return graph_memory_bytes(); }

void IndexHNSWFlat::permute_entries(const idx_t* perm) {
    check_writable();
    permute_slots(perm, ntotal);
}

// ---- IndexHNSWFlatPanorama -------------------------------------------------

namespace {
Panorama checked_panorama(int d, size_t n_levels, MetricType metric) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "IndexHNSWFlatPanorama: the metric must be L2 or inner product");
    NEARLY_CHECK_ARG(d > 0, "IndexHNSWFlatPanorama: d must be positive");
    return Panorama(size_t(d), n_levels);
}
}  // namespace

IndexHNSWFlatPanorama::IndexHNSWFlatPanorama(int d, int M, size_t n_levels, MetricType metric)
    : IndexHNSWFlat(d, M, metric, checked_panorama(d, n_levels, metric)), num_panorama_levels(n_levels) {}

std::vector<float> IndexHNSWFlatPanorama::cum_sums() const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const size_t stride = pano_.n_levels + 1;
    std::vector<float> out;
    out.reserve(size_t(ntotal) * stride);
    for (size_t s = 0; s < st_->nslots; s++)
        if (st_->live(s)) out.insert(out.end(), tail_norms(slot_t(s)), tail_norms(slot_t(s)) + stride);
    return out;
}

void IndexHNSWFlatPanorama::write_body(Writer& w) const {
    w.pod<uint64_t>(num_panorama_levels);
    IndexHNSWFlat::write_body(w);
}

std::unique_ptr<IndexHNSWFlatPanorama> IndexHNSWFlatPanorama::read_body(Reader& r) {
    const uint64_t n_levels = r.pod<uint64_t>();
    r.check(n_levels >= 1 && n_levels <= (uint64_t(1) << 20), "bad HNSWFlatPanorama level count");
    std::unique_ptr<IndexHNSWFlatPanorama> index(
        static_cast<IndexHNSWFlatPanorama*>(IndexHNSWFlat::read_body(r, HNSWStorage::Flat, n_levels).release()));
    // The bounds trust the stored tail norms: a file whose norms are not its
    // vectors' would drop true neighbours without a sign.
    const Storage& st = *index->st_;
    const size_t stride = index->pano_.n_levels + 1;
    std::atomic<bool> bad{false};
    parallel_for((st.nslots + 1023) / 1024, [&](size_t t) {
        std::vector<float> tails(stride);
        for (size_t s = t * 1024; s < std::min(st.nslots, t * 1024 + 1024); s++) {
            if (!st.live(s)) continue;
            index->pano_.tail_norms(reinterpret_cast<const float*>(st.side_of(slot_t(s))), tails.data());
            if (std::memcmp(tails.data(), index->tail_norms(slot_t(s)), stride * sizeof(float)) != 0) bad = true;
        }
    });
    r.check(!bad, "HNSWFlatPanorama: stored tail norms do not match the vectors");
    return index;
}

void IndexHNSWFlat::write_body(Writer& w) const {
    std::lock_guard<std::mutex> add_lk(add_mutex_);  // a consistent graph: no add half done
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    if (storage != HNSWStorage::Flat) w.pod<int32_t>(int(storage));  // read by io.cpp before the body
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    if (is_extra_metric(metric_type)) w.pod<float>(metric_arg);  // L2 / IP files unchanged
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    write_graph(w, true);
}

std::unique_ptr<IndexHNSWFlat> IndexHNSWFlat::read_body(Reader& r, HNSWStorage storage, size_t panorama_levels,
                                                        bool cagra) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const bool extra = storage == HNSWStorage::Flat && !panorama_levels && is_extra_metric(MetricType(metric));
    const float arg = extra ? r.pod<float>() : 0.f;
    const int M = r.pod<int32_t>(), efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT || extra) && std::isfinite(arg) &&
                M >= 2 && M <= 256 && efc >= 1 && efs >= 1,
            "bad HNSW header");
    r.check(panorama_levels <= size_t(d), "bad HNSWFlatPanorama level count");
    std::unique_ptr<IndexHNSWFlat> index;
    if (panorama_levels)
        index = std::make_unique<IndexHNSWFlatPanorama>(d, M, panorama_levels, MetricType(metric));
    else if (cagra)
        index = std::make_unique<IndexHNSWCagra>(d, M, MetricType(metric));
    else if (storage == HNSWStorage::Flat)
        index = std::make_unique<IndexHNSWFlat>(d, M, MetricType(metric));
    else
        index = std::make_unique<IndexHNSWSQ>(d, storage, M, MetricType(metric));
    index->metric_arg = arg;
    index->efConstruction = efc;
    index->efSearch = efs;
    index->read_graph(r, index->ntotal, true);
    return index;
}

void IndexHNSWCagra::add(idx_t n, const float* x) {
    if (base_level_only) throw NotSupported("IndexHNSWCagra: cannot add vectors while base_level_only is set");
    IndexHNSWFlat::add(n, x);
}

void IndexHNSWCagra::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    if (base_level_only) throw NotSupported("IndexHNSWCagra: cannot add vectors while base_level_only is set");
    IndexHNSWFlat::add_with_ids(n, x, ids);
}

void IndexHNSWCagra::write_body(Writer& w) const {
    IndexHNSWFlat::write_body(w);
    w.pod<uint8_t>(base_level_only);
    w.pod<int32_t>(num_base_level_search_entrypoints);
}

std::unique_ptr<IndexHNSWCagra> IndexHNSWCagra::read_body(Reader& r) {
    std::unique_ptr<IndexHNSWCagra> index(static_cast<IndexHNSWCagra*>(
        IndexHNSWFlat::read_body(r, HNSWStorage::Flat, 0, true).release()));
    index->base_level_only = r.pod<uint8_t>() != 0;
    index->num_base_level_search_entrypoints = r.pod<int32_t>();
    r.check(index->num_base_level_search_entrypoints >= 1, "bad IndexHNSWCagra entry point count");
    return index;
}

}  // namespace nearly
