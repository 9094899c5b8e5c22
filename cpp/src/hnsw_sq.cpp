#include "nearly/hnsw_sq.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "hnsw_graph.h"
#include "nearly/index_sq.h"
#include "nearly/io.h"
#include "nearly/sq_scan.h"
#include "nearly/topk.h"
#include "simd/sq_codes.h"

namespace nearly {

using slot_t = HNSWGraph::slot_t;
using namespace hnsw_detail;

namespace {

// The values c_j the kernels see in a code (integers, or the floats of
// fp16 / bf16 codes): a node query needs no decoder's division.
template <int Kind>
void code_values(const uint8_t* code, size_t d, float* out) {
    size_t j = 0;
    if constexpr (Kind == kSQ4) {
        for (; j + 2 <= d; j += 2) {
            const uint32_t b = code[j / 2];
            out[j] = float(b & 15);
            out[j + 1] = float(b >> 4);
        }
    } else if constexpr (Kind == kSQ6) {
        for (; j + 4 <= d; j += 4) {  // 6 | 2+4 | 4+2 | 6 bits, low bits first
            const uint8_t* g = code + j / 4 * 3;
            const uint32_t v = uint32_t(g[0]) | uint32_t(g[1]) << 8 | uint32_t(g[2]) << 16;
            out[j] = float(v & 63);
            out[j + 1] = float((v >> 6) & 63);
            out[j + 2] = float((v >> 12) & 63);
            out[j + 3] = float(v >> 18);
        }
    }
    for (; j < d; j++) out[j] = sq_value<Kind>(code, j);
}
void code_values(int kind, const uint8_t* code, size_t d, float* out) {
    switch (kind) {
        case kSQ4: return code_values<kSQ4>(code, d, out);
        case kSQ6: return code_values<kSQ6>(code, d, out);
        case kSQ8: return code_values<kSQ8>(code, d, out);
        case kSQbf16: return code_values<kSQbf16>(code, d, out);
        default: return code_values<kSQfp16>(code, d, out);
    }
}

// Buffers of node queries, reused: pruning makes one query per candidate.
std::vector<std::vector<float>>& free_buffers() {
    thread_local std::vector<std::vector<float>> pool;
    return pool;
}

// The node payload is its code. A query is either a float vector's scorer
// (search, and a node being added) or a stored node, decoded once into the
// kernels' query vectors (pruning scores it against many nodes; faiss
// decodes both codes of every pair).
struct SQSpace {
    const Storage& st;
    const ScalarQuantizer& sq;
    const SQScorer& affine;  // A, B and the code kind, or the codebook (no query set)
    bool ip;
    const float* batch;  // the vectors being added (insert_query), or null

    struct Query {
        const SQScorer* scorer = nullptr;
        // A node: the kernels' w (IP: x B; L2: B) and r (L2: x - A) over
        // the pooled buffer, and IP's constant sum x A.
        std::vector<float> buf;
        const float *w = nullptr, *r = nullptr;
        float c0 = 0.f;

        Query() = default;
        explicit Query(const SQScorer* s) : scorer(s) {}
        Query(Query&&) = default;
        Query& operator=(Query&&) = default;
        ~Query() {
            if (buf.capacity()) free_buffers().push_back(std::move(buf));
        }
    };

    Query query_of(slot_t s) const {
        Query q;
        auto& pool = free_buffers();
        if (!pool.empty()) {
            q.buf = std::move(pool.back());
            pool.pop_back();
        }
        const size_t d = sq.d;
        q.buf.resize(d);
        float* v = q.buf.data();
        if (sq.codebook()) {  // the node decoded: the codebook kernels take the query as is
            const float* centroid = sq.centroids();
            for (size_t j = 0; j < d; j++) v[j] = centroid[sq_codebook_index(st.payload(s), j, sq.bits)];
            q.w = q.r = v;
            return q;
        }
        code_values(affine.kind(), st.payload(s), d, v);
        const float* A = affine.offsets().data();
        const float* B = affine.scales().data();
        // The node is x = A + B c: L2 scores it with r = x - A = B c and
        // w = B, inner product with w = x B and the constant sum x A.
        if (ip) {
            float c0 = 0.f;
            for (size_t j = 0; j < d; j++) {
                const float x = A[j] + B[j] * v[j];
                c0 += x * A[j];
                v[j] = x * B[j];
            }
            q.c0 = c0;
            q.w = q.r = v;
        } else {
            for (size_t j = 0; j < d; j++) v[j] *= B[j];
            q.w = B;
            q.r = v;
        }
        return q;
    }
    // One insert at a time per thread: the thread's scorer outlives the
    // walk and pruning of the node being added. A copy of `affine` (its
    // vectors reused from the last insert), not a new scorer per node.
    Query insert_query(slot_t, size_t row, Scratch&) const {
        thread_local std::optional<SQScorer> scorer;
        if (scorer)
            *scorer = affine;
        else
            scorer.emplace(affine);
        scorer->set_query(batch + row * sq.d);
        return Query(&*scorer);
    }
    // A node's fresh neighbours, four codes side by side in the kernels.
    void score_batch(const Query& q, const slot_t* slots, size_t n, float* out) const {
        const uint8_t* codes[2 * 256 + 1];
        for (size_t i = 0; i < n; i++) codes[i] = st.payload(slots[i]);
        if (q.scorer) {
            q.scorer->scores_gather(codes, n, out);
        } else if (sq.codebook()) {
            sq_codebook_scores_gather(sq.bits, ip, codes, n, sq.d, q.w, affine.table(), out);
        } else {
            sq_scores_gather(affine.kind(), ip, codes, sq.code_size, n, sq.d, q.w, q.r, out);
            for (size_t i = 0; i < n; i++) out[i] += q.c0;
        }
        if (ip)
            for (size_t i = 0; i < n; i++) out[i] = -out[i];
    }
    float score(const Query& q, slot_t s) const {
        const uint8_t* c = st.payload(s);
        float v;
        if (q.scorer) {
            q.scorer->scores(c, 1, &v);
        } else if (sq.codebook()) {
            sq_codebook_scores(sq.bits, ip, c, sq.code_size, 1, sq.d, q.w, affine.table(), &v);
        } else {
            sq_scores(affine.kind(), ip, c, sq.code_size, 1, sq.d, q.w, q.r, &v);
            v += q.c0;
        }
        return ip ? -v : v;
    }
};

}  // namespace

IndexHNSWSQCodes::IndexHNSWSQCodes(int d, ScalarQuantizer::QuantizerType qtype, int M, MetricType metric)
    : Index(d, metric), HNSWGraph(M, ScalarQuantizer(size_t(std::max(d, 1)), qtype).code_size, 0), sq(size_t(d), qtype) {
    sq.check_standalone();
    if (sq.turboq())  // faiss's graph cannot score two such codes against each other either
        throw NotSupported("IndexHNSWSQ: TurboQuant's full types (QT_2bit_tq .. QT_5bit_tq) have no symmetric "
                           "distance for the graph's links; use QT_*bit_tqmse");
    if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
        throw NotSupported("IndexHNSWSQ: metric " + std::to_string(int(metric)) +
                           " not implemented in nearly (ScalarQuantizer codes are scored by L2 or inner product)");
    is_trained = sq.is_trained();  // fp16, bf16 and the direct types need no training
}

IndexHNSWSQCodes::~IndexHNSWSQCodes() = default;

void IndexHNSWSQCodes::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of training vectors must be non-negative");
    check_finite(x, size_t(n) * size_t(d), "the training vectors");
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    if (!sq.needs_training()) {
        is_trained = true;
        return;
    }
    NEARLY_CHECK_ARG(ntotal == 0, "IndexHNSWSQ: train() on a filled index would leave its codes meaningless; reset() first");
    NEARLY_CHECK_ARG(n > 0 || sq.codebook(), "IndexHNSWSQ: cannot train on 0 vectors");
    sq.train(size_t(n), x);
    is_trained = true;
}

void IndexHNSWSQCodes::add(idx_t n, const float* x) { add_impl(n, x, nullptr); }

void IndexHNSWSQCodes::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_impl(n, x, ids); }

void IndexHNSWSQCodes::add_impl(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    auto fill = [&](size_t i, slot_t s) { sq.encode(x + i * size_t(d), st_->payload(s)); };
    const SQScorer affine(sq, metric_type);
    auto make_space = [&](const Storage& st) { return SQSpace{st, sq, affine, ip, x}; };
    add_nodes(n, ids, make_space, fill, ntotal, verbose);
}

void IndexHNSWSQCodes::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                              const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const int ef = ef_of(*this, params);
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const SQScorer affine(sq, metric_type);
    const SQSpace sp{*st_, sq, affine, ip, nullptr};
    search_scored(sp, n, k, D, I, ip, missing_distance(metric_type), ef, params ? params->sel.get() : nullptr, ntotal,
                  [&](idx_t q, Scratch&, const auto& run) {
                      SQScorer scorer = affine;
                      scorer.set_query(x + size_t(q) * size_t(d));
                      run(SQSpace::Query(&scorer));
                  });
}

void IndexHNSWSQCodes::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                    const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    range_search_by_doubling_k(*this, ef_of(*this, params), n, x, radius, result, params);
}

void IndexHNSWSQCodes::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    sq.decode(st_->payload(slot_of(key)), out, 1);
}

void IndexHNSWSQCodes::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, out + i * d);
}

size_t IndexHNSWSQCodes::remove_ids(const IDSelector& sel) {
    check_writable();
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const SQScorer affine(sq, metric_type);
    return remove_nodes(sel, [&](const Storage& st) { return SQSpace{st, sq, affine, ip, nullptr}; }, ntotal);
}

void IndexHNSWSQCodes::reset() {
    check_writable();
    reset_graph();
    ntotal = 0;
}

size_t IndexHNSWSQCodes::memory_bytes() const { return graph_memory_bytes() + sq.trained.size() * sizeof(float); }

void IndexHNSWSQCodes::write_body(Writer& w) const {
    std::lock_guard<std::mutex> add_lk(add_mutex_);  // a consistent graph: no add half done
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint8_t>(is_trained);
    write_sq(w, sq);
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    write_graph(w);
}

std::unique_ptr<IndexHNSWSQCodes> IndexHNSWSQCodes::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && trained <= 1, "bad HNSWSQ header");
    ScalarQuantizer sq = read_sq(r, d, "HNSWSQ");
    r.check(!trained || sq.is_trained(), "HNSWSQ marked trained without ranges");
    for (float v : sq.trained) r.check(std::isfinite(v), "HNSWSQ ranges are not finite");
    const int M = r.pod<int32_t>(), efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    r.check(M >= 2 && M <= 256 && efc >= 1 && efs >= 1, "bad HNSWSQ graph header");
    auto index = std::make_unique<IndexHNSWSQCodes>(d, sq.qtype, M, MetricType(metric));
    index->sq = std::move(sq);
    index->is_trained = trained;
    index->efConstruction = efc;
    index->efSearch = efs;
    index->read_graph(r, index->ntotal);
    r.check(trained || index->ntotal == 0, "HNSWSQ: codes in an untrained index");
    return index;
}

}  // namespace nearly
