#include "nearly/hnsw_pq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "hnsw_graph.h"
#include "nearly/io.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

using slot_t = HNSWGraph::slot_t;
using namespace hnsw_detail;

namespace {

size_t code_bytes(int d, int pq_m, int nbits) {
    NEARLY_CHECK_ARG(d > 0 && pq_m > 0 && d % pq_m == 0,
                     "IndexHNSWPQ: d (" + std::to_string(d) + ") must be a multiple of pq_m (" + std::to_string(pq_m) +
                         ")");
    NEARLY_CHECK_ARG(nbits > 0, "IndexHNSWPQ: pq_nbits must be positive");
    return (size_t(pq_m) * size_t(nbits) + 7) / 8;
}

// x's ADC table, smaller is better: squared L2 per centroid, or minus the
// inner product.
void query_table(const ProductQuantizer& pq, bool ip, const float* x, std::vector<float>& table) {
    table.resize(pq.M * pq.ksub);
    if (!ip) {
        pq.compute_distance_table(x, table.data());
        return;
    }
    pq.compute_inner_prod_table(x, table.data());
    for (float& v : table) v = -v;
}

// The node payload is its PQ code. A query is either a float vector's table
// (search, and a node being added: ADC) or another node's code (pruning: SDC).
struct PQSpace {
    const Storage& st;
    const ProductQuantizer& pq;
    bool ip;
    const float* batch;  // the vectors being added (insert_query), or null
    struct Query {
        const float* table;
        const uint8_t* code;
    };
    Query query_of(slot_t s) const { return {nullptr, st.payload(s)}; }
    Query insert_query(slot_t, size_t row, Scratch& sc) const {
        query_table(pq, ip, batch + row * pq.d, sc.table);
        return {sc.table.data(), nullptr};
    }
    // Four partial sums: a node's score is one chain of M dependent adds
    // otherwise, and the walk waits on it (the order differs from faiss's
    // by float rounding only).
    template <class Lookup>
    static float sum4(size_t M, const Lookup& at) {
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
        size_t m = 0;
        for (; m + 4 <= M; m += 4) {
            a0 += at(m);
            a1 += at(m + 1);
            a2 += at(m + 2);
            a3 += at(m + 3);
        }
        for (; m < M; m++) a0 += at(m);
        return (a0 + a1) + (a2 + a3);
    }
    // Code to code (SDC) from the centroids themselves rather than faiss's
    // M x ksub x ksub table: the centroids (d x ksub floats) stay in L2
    // cache where the table (64x larger at dsub 8) misses on every lookup,
    // and the pruning that calls this dominates a build.
    template <bool IP>
    float sdc_of(const uint8_t* a, const uint8_t* b) const {
        const size_t dsub = pq.dsub, ksub = pq.ksub;
        const float* C = pq.centroids.data();
        float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        float rest = 0.f;
        for (size_t m = 0; m < pq.M; m++) {
            const float* x = C + (m * ksub + pq.code_at(a, m)) * dsub;
            const float* y = C + (m * ksub + pq.code_at(b, m)) * dsub;
            size_t j = 0;
            for (; j + 8 <= dsub; j += 8)
                for (size_t l = 0; l < 8; l++) {
                    const float v = IP ? x[j + l] : x[j + l] - y[j + l];
                    lane[l] += v * (IP ? y[j + l] : v);
                }
            for (; j < dsub; j++) {
                const float v = IP ? x[j] : x[j] - y[j];
                rest += v * (IP ? y[j] : v);
            }
        }
        const float sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])) + rest;
        return IP ? -sum : sum;
    }
    float sdc(const uint8_t* a, const uint8_t* b) const {
        if (pq.nbits == 8) {  // the SIMD kernel (codes are centroid numbers)
            const float s = simd().pq_sdc8(pq.centroids.data(), pq.dsub, pq.M, a, b, ip);
            return ip ? -s : s;
        }
        return ip ? sdc_of<true>(a, b) : sdc_of<false>(a, b);
    }
    float score(const Query& q, slot_t s) const {
        const uint8_t* c = st.payload(s);
        if (!q.table) return sdc(q.code, c);
        if (pq.nbits == 8) return sum4(pq.M, [&](size_t m) { return q.table[m * 256 + c[m]]; });
        const size_t ksub = pq.ksub;
        return sum4(pq.M, [&](size_t m) { return q.table[m * ksub + pq.code_at(c, m)]; });
    }
};

}  // namespace

IndexHNSWPQ::IndexHNSWPQ(int d, int pq_m, int M, int pq_nbits, MetricType metric)
    : Index(d, metric),
      HNSWGraph(M, code_bytes(d, pq_m, pq_nbits), 0),
      pq(size_t(d), size_t(pq_m), size_t(pq_nbits)),
      graph_ip_(metric == METRIC_INNER_PRODUCT) {
    is_trained = false;
}

IndexHNSWPQ::~IndexHNSWPQ() = default;

void IndexHNSWPQ::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of training vectors must be non-negative");
    check_finite(x, size_t(n) * size_t(d), "the training vectors");
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    NEARLY_CHECK_ARG(ntotal == 0, "IndexHNSWPQ: train() on a filled index would leave its codes meaningless; reset() first");
    pq.verbose = verbose;
    pq.train(size_t(n), x);
    if (metric_type == METRIC_INNER_PRODUCT && n > 0) {
        std::vector<float> norms(static_cast<size_t>(n));
        parallel_for(size_t(n), [&](size_t i) {
            double s2 = 0;
            for (int j = 0; j < d; j++) s2 += double(x[i * size_t(d) + j]) * x[i * size_t(d) + j];
            norms[i] = float(std::sqrt(s2));
        });
        const auto [lo, hi] = std::minmax_element(norms.begin(), norms.end());
        graph_ip_ = *hi - *lo > 0.02f * *hi;
    }
    is_trained = true;
}

void IndexHNSWPQ::set_trained(bool trained) {
    if (trained) {
        set_centroids(pq.centroids);
        return;
    }
    NEARLY_CHECK_ARG(ntotal == 0 || !is_trained, "IndexHNSWPQ: is_trained = False on a filled index");
    is_trained = false;
}

void IndexHNSWPQ::set_centroids(const std::vector<float>& centroids) {
    check_writable();
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    NEARLY_CHECK_ARG(centroids.size() == pq.centroids.size(),
                     "centroids must hold M * ksub * dsub = " + std::to_string(pq.centroids.size()) + " floats");
    NEARLY_CHECK_ARG(ntotal == 0, "IndexHNSWPQ: new centroids on a filled index would leave its codes meaningless");
    check_finite(centroids.data(), centroids.size(), "the centroids");
    pq.centroids = centroids;
    pq.sync_transposed_centroids();
    is_trained = true;
}

void IndexHNSWPQ::add(idx_t n, const float* x) { add_impl(n, x, nullptr); }

void IndexHNSWPQ::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_impl(n, x, ids); }

void IndexHNSWPQ::add_impl(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    auto fill = [&](size_t i, slot_t s) { pq.compute_code(x + i * size_t(d), st_->payload(s)); };
    auto make_space = [&](const Storage& st) { return PQSpace{st, pq, graph_ip_, x}; };
    add_nodes(n, ids, make_space, fill, ntotal, verbose);
}

void IndexHNSWPQ::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const int ef = ef_of(*this, params);
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const PQSpace sp{*st_, pq, ip, nullptr};
    search_scored(sp, n, k, D, I, ip, missing_distance(metric_type), ef, params ? params->sel.get() : nullptr, ntotal,
                  [&](idx_t q, Scratch& sc, const auto& run) {
                      query_table(pq, ip, x + size_t(q) * size_t(d), sc.table);
                      run(PQSpace::Query{sc.table.data(), nullptr});
                  });
}

void IndexHNSWPQ::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                               const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    range_search_by_doubling_k(*this, ef_of(*this, params), n, x, radius, result, params);
}

void IndexHNSWPQ::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    pq.decode(st_->payload(slot_of(key)), out);
}

void IndexHNSWPQ::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, out + i * d);
}

size_t IndexHNSWPQ::remove_ids(const IDSelector& sel) {
    check_writable();
    return remove_nodes(sel, [&](const Storage& st) { return PQSpace{st, pq, graph_ip_, nullptr}; }, ntotal);
}

void IndexHNSWPQ::reset() {
    check_writable();
    reset_graph();
    ntotal = 0;
}

size_t IndexHNSWPQ::memory_bytes() const { return graph_memory_bytes() + pq.centroids.size() * sizeof(float); }

void IndexHNSWPQ::write_body(Writer& w) const {
    std::lock_guard<std::mutex> add_lk(add_mutex_);  // a consistent graph: no add half done
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint64_t>(pq.M);
    w.pod<uint64_t>(pq.nbits);
    w.pod<uint8_t>(is_trained);
    w.pod<uint8_t>(graph_ip_);
    w.vec(pq.centroids);
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    write_graph(w);
}

std::unique_ptr<IndexHNSWPQ> IndexHNSWPQ::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const uint64_t pq_m = r.pod<uint64_t>(), nbits = r.pod<uint64_t>();
    const uint8_t trained = r.pod<uint8_t>(), graph_ip = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && pq_m > 0 && pq_m <= uint64_t(d) &&
                d % pq_m == 0 && nbits >= 1 && nbits <= 16 && trained <= 1 &&
                graph_ip <= (metric == METRIC_INNER_PRODUCT ? 1 : 0),
            "bad HNSWPQ header");
    std::vector<float> centroids = r.vec<float>();
    r.check(centroids.size() == size_t(d) << nbits, "HNSWPQ centroids do not match d and nbits");
    const int M = r.pod<int32_t>(), efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    r.check(M >= 2 && M <= 256 && efc >= 1 && efs >= 1, "bad HNSWPQ graph header");
    auto index = std::make_unique<IndexHNSWPQ>(d, int(pq_m), M, int(nbits), MetricType(metric));
    for (float c : centroids) r.check(std::isfinite(c), "HNSWPQ centroids are not finite");
    if (trained) index->set_centroids(centroids);
    index->graph_ip_ = graph_ip;
    index->efConstruction = efc;
    index->efSearch = efs;
    index->read_graph(r, index->ntotal);
    r.check(trained || index->ntotal == 0, "HNSWPQ: codes in an untrained index");
    return index;
}

}  // namespace nearly
