#include "nearly/binary_hnsw.h"

#include "hnsw_graph.h"
#include "sdc_pair.h"
#include "nearly/distance.h"
#include "nearly/hamming.h"
#include "nearly/io.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

using slot_t = HNSWGraph::slot_t;
using namespace hnsw_detail;

namespace {

// 1-bit codes: the payload is the code, the score its Hamming distance
// (exact, so the walk's order is the result's order).
struct HammingSpace {
    const Storage& st;
    HammingNyFn ham;
    size_t cs;
    using Query = const uint8_t*;
    Query query_of(slot_t s) const { return st.payload(s); }
    float score(Query q, slot_t s) const {
        int32_t h;
        ham(q, st.payload(s), cs, 1, &h);
        return float(h);
    }
};

// Recurrent codes: the payload is
//     float term | canonical code (nb planes of m/8 bytes)
// with the per-vector centering term of IndexBinaryRecurrent (IP: <x, mean>;
// L2: |x|^2 - 2 <x, mean>), and the score is that index's estimate without
// its per-query constant: IP -(a S + t_q + t_x), L2 t_q + t_x - 2 a S, with S
// the exact SDC integer (sdc_pair.h).
struct SdcSpace {
    const Storage& st;
    HammingNyFn ham;
    int m, nb;
    float a;
    bool l2;
    struct Query {
        const uint8_t* code;
        float term;
    };
    static float& term(const Storage& st, slot_t s) { return *reinterpret_cast<float*>(st.payload(s)); }
    static uint8_t* code(const Storage& st, slot_t s) { return st.payload(s) + sizeof(float); }
    Query query_of(slot_t s) const { return {code(st, s), term(st, s)}; }
    float score(const Query& q, slot_t s) const {
        const float S = float(sdc_pair_popcount(ham, q.code, code(st, s), m, nb));
        const float t = q.term + term(st, s);
        return l2 ? t - 2.f * a * S : -(a * S + t);
    }
};

}  // namespace

// ---- IndexBinaryHNSW -----------------------------------------------------------

IndexBinaryHNSW::IndexBinaryHNSW(int d, int M) : IndexBinary(d), HNSWGraph(M, size_t(d) / 8, 0) {}

void IndexBinaryHNSW::add(idx_t n, const uint8_t* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    const size_t cs = size_t(code_size);
    auto fill = [&](size_t i, slot_t s) { std::memcpy(st_->payload(s), x + i * cs, cs); };
    auto make_space = [&](const Storage& st) { return HammingSpace{st, hamming_ny_kernel(), cs}; };
    add_nodes(n, nullptr, make_space, fill, ntotal, verbose);
}

void IndexBinaryHNSW::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                             const SearchParameters* params) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of queries must be non-negative");
    NEARLY_CHECK_ARG(k > 0, "k must be positive (got " + std::to_string(k) + ")");
    const int ef_param = ef_of(*this, params);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const Storage& st = *st_;
    const size_t kk = size_t(k), cs = size_t(code_size);
    const Top t0 = top();
    const FilterPlan plan = plan_filter(st, sel, std::max<size_t>(size_t(ef_param), kk), ntotal);
    const HammingSpace sp{st, hamming_ny_kernel(), cs};
    std::vector<slot_t> passing;
    if (plan.brute && t0.entry >= 0) passing = passing_slots(st, *sel);
    for_each_query(n, [&](idx_t q) {
        const uint8_t* xq = x + size_t(q) * cs;
        idx_t* Iq = I + q * kk;
        Scratch& sc = tls_scratch();
        sc.decoded.resize(kk);
        float* dq = sc.decoded.data();  // a float heap, int32 results
        TopK::init(dq, Iq, kk);
        if (plan.brute) {
            for (slot_t s : passing) TopK::push(dq, Iq, kk, sp.score(xq, s), st.labels[s]);
        } else if (t0.entry >= 0) {
            walk(sp, xq, t0.entry, t0.level, plan.ef, sel, sc);
            for (const Cand& c : sc.top) TopK::push(dq, Iq, kk, c.score, st.labels[c.id]);
        }
        TopK::sort(dq, Iq, kk);
        for (size_t i = 0; i < kk; i++) D[q * kk + i] = Iq[i] < 0 ? kHammingPad : int32_t(dq[i]);
    });
}

void IndexBinaryHNSW::reconstruct(idx_t key, uint8_t* out) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    slot_t s = slot_of(key);
    std::memcpy(out, st_->payload(s), size_t(code_size));
}

void IndexBinaryHNSW::reset() {
    check_writable();
    reset_graph();
    ntotal = 0;
}

void IndexBinaryHNSW::write_body(Writer& w) const {
    std::lock_guard<std::mutex> add_lk(add_mutex_);  // a consistent graph: no add half done
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    write_graph(w);
}

std::unique_ptr<IndexBinaryHNSW> IndexBinaryHNSW::read_body(Reader& r) {
    int d = r.pod<int32_t>(), M = r.pod<int32_t>();
    int efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    r.check(d > 0 && d % 8 == 0 && M >= 2 && M <= 256 && efc >= 1 && efs >= 1, "bad BHNSW header");
    auto index = std::make_unique<IndexBinaryHNSW>(d, M);
    index->efConstruction = efc;
    index->efSearch = efs;
    index->read_graph(r, index->ntotal);
    return index;
}

// ---- IndexBinaryRecurrentHNSW --------------------------------------------------

IndexBinaryRecurrentHNSW::IndexBinaryRecurrentHNSW(int d, int m, int nb, int M, MetricType metric)
    : Index(d, metric), HNSWGraph(M, sizeof(float) + sdc_code_size(m, nb), 0),
      encoder(std::make_shared<RecurrentEncoder>(d, m, nb)) {
    is_trained = false;
}

void IndexBinaryRecurrentHNSW::train(idx_t n, const float* x) {
    check_writable();
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    NEARLY_CHECK_ARG(n > 0, "IndexBinaryRecurrent: train needs at least one vector");
    check_finite(x, size_t(n) * d, "the training vectors");
    NEARLY_CHECK_ARG(ntotal == 0, "IndexBinaryRecurrentHNSW: train on an empty index (the stored codes would change)");
    encoder->train(n, x);
    is_trained = encoder->is_trained;
}

void IndexBinaryRecurrentHNSW::add(idx_t n, const float* x) { add_impl(n, x, nullptr); }

void IndexBinaryRecurrentHNSW::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_impl(n, x, ids); }

namespace {
SdcSpace sdc_space(const Storage& st, const RecurrentEncoder& enc, MetricType metric) {
    const float a = enc.alpha * enc.alpha * std::ldexp(1.f, -2 * (enc.nb - 1));
    return SdcSpace{st, hamming_ny_kernel(), enc.m, enc.nb, a, metric == METRIC_L2};
}

// The centering term of IndexBinaryRecurrent: IP <x, mean>, L2 |x|^2 - 2 <x, mean>.
float center_term(const SimdKernels& K, const float* x, const float* mean, int d, bool l2) {
    const float xm = K.inner_product(x, mean, d);
    return l2 ? K.inner_product(x, x, d) - 2 * xm : xm;
}
}  // namespace

void IndexBinaryRecurrentHNSW::add_impl(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    if (!is_trained) throw NotSupported("the index is not trained: call train() before add()");
    if (n == 0) return;
    const RecurrentEncoder& enc = *encoder;
    const size_t cs = enc.code_size();
    std::vector<uint8_t> codes(size_t(n) * cs);
    enc.encode(n, x, codes.data());
    const SimdKernels& K = simd();
    const bool l2 = metric_type == METRIC_L2;
    auto fill = [&](size_t i, slot_t s) {
        const Storage& st = *st_;
        SdcSpace::term(st, s) = center_term(K, x + i * size_t(d), enc.mean.data(), d, l2);
        std::memcpy(SdcSpace::code(st, s), codes.data() + i * cs, cs);
    };
    const MetricType metric = metric_type;
    add_nodes(n, ids, [&](const Storage& st) { return sdc_space(st, enc, metric); }, fill, ntotal, verbose);
}

void IndexBinaryRecurrentHNSW::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                      const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("the index is not trained: call train() before search()");
    const int ef_param = ef_of(*this, params);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const RecurrentEncoder& enc = *encoder;
    const Storage& st = *st_;
    const size_t kk = size_t(k), dd = size_t(d), cs = enc.code_size();
    const bool l2 = metric_type == METRIC_L2;
    const SimdKernels& K = simd();
    const float mm = K.inner_product(enc.mean.data(), enc.mean.data(), d);
    const float pad = missing_distance(metric_type);
    std::vector<uint8_t> qc(size_t(n) * cs);
    if (n > 0) enc.encode(n, x, qc.data());
    const Top t0 = top();
    const FilterPlan plan = plan_filter(st, sel, std::max<size_t>(size_t(ef_param), kk), ntotal);
    const SdcSpace sp = sdc_space(st, enc, metric_type);
    std::vector<slot_t> passing;
    if (plan.brute && t0.entry >= 0) passing = passing_slots(st, *sel);
    auto search_one = [&](idx_t q) {
        float* Dq = D + q * kk;
        idx_t* Iq = I + q * kk;
        TopK::init(Dq, Iq, kk);
        const SdcSpace::Query qq{qc.data() + size_t(q) * cs,
                                 center_term(K, x + size_t(q) * dd, enc.mean.data(), d, l2)};
        if (plan.brute) {
            for (slot_t s : passing) TopK::push(Dq, Iq, kk, sp.score(qq, s), st.labels[s]);
        } else if (t0.entry >= 0) {
            Scratch& sc = tls_scratch();
            walk(sp, qq, t0.entry, t0.level, plan.ef, sel, sc);
            for (const Cand& c : sc.top) TopK::push(Dq, Iq, kk, c.score, st.labels[c.id]);
        }
        TopK::sort(Dq, Iq, kk);
        // Back to IndexBinaryRecurrent's values: its per-query constant.
        for (size_t i = 0; i < kk; i++) Dq[i] = Iq[i] < 0 ? pad : (l2 ? Dq[i] + 2 * mm : -Dq[i] - mm);
    };
    for_each_query(n, search_one);
}

void IndexBinaryRecurrentHNSW::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    slot_t s = slot_of(key);
    encoder->decode(1, SdcSpace::code(*st_, s), out);
}

size_t IndexBinaryRecurrentHNSW::remove_ids(const IDSelector& sel) {
    check_writable();
    const RecurrentEncoder& enc = *encoder;
    const MetricType metric = metric_type;
    return remove_nodes(sel, [&](const Storage& st) { return sdc_space(st, enc, metric); }, ntotal);
}

void IndexBinaryRecurrentHNSW::reset() {
    check_writable();
    reset_graph();
    ntotal = 0;
}

void IndexBinaryRecurrentHNSW::write_body(Writer& w) const {
    std::lock_guard<std::mutex> add_lk(add_mutex_);
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    encoder->write(w);
    write_graph(w);
}

std::unique_ptr<IndexBinaryRecurrentHNSW> IndexBinaryRecurrentHNSW::read_body(Reader& r) {
    int d = r.pod<int32_t>(), metric = r.pod<int32_t>(), M = r.pod<int32_t>();
    int efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && M >= 2 && M <= 256 && efc >= 1 &&
                efs >= 1,
            "bad BinaryRecurrentHNSW header");
    auto enc = RecurrentEncoder::read(r);
    r.check(enc->d == d, "BinaryRecurrentHNSW encoder dimension does not match");
    auto index = std::make_unique<IndexBinaryRecurrentHNSW>(d, enc->m, enc->nb, M, MetricType(metric));
    index->encoder = enc;
    index->is_trained = enc->is_trained;
    index->efConstruction = efc;
    index->efSearch = efs;
    index->read_graph(r, index->ntotal);
    r.check(index->ntotal == 0 || enc->is_trained, "BinaryRecurrentHNSW holds codes but its encoder is not trained");
    return index;
}

}  // namespace nearly
