#include "nearly/index_rabitq.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
constexpr size_t kQueriesPerTask = 8;
constexpr size_t kCodeBlock = 2048;  // codes scored at a time, shared by the task's queries (stay in L2)
}  // namespace

IndexRaBitQ::IndexRaBitQ(int d, MetricType metric, int nb_bits)
    : IndexFlatCodes(d, metric), rabitq(size_t(std::max(d, 1)), metric, size_t(std::max(nb_bits, 0))) {
    is_trained = false;
}

void IndexRaBitQ::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    check_finite(x, size_t(n) * d, "training data");
    std::vector<float> c(d, 0.f);
    // faiss's order (float sums, vector by vector), so the centers agree.
    for (idx_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) c[j] += x[size_t(i) * d + j];
    if (n > 0)
        for (int j = 0; j < d; j++) c[j] /= float(n);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(ntotal == 0, "IndexRaBitQ: train() would change the center of the stored codes; reset() first");
    center = std::move(c);
    is_trained = true;
}

IndexRaBitQ::SearchSetup IndexRaBitQ::setup(idx_t n, const float* x, idx_t k, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    SearchSetup s{qb, centered, params ? params->sel.get() : nullptr};
    if (auto* p = dynamic_cast<const RaBitQSearchParameters*>(params)) {
        s.qb = p->qb;
        s.centered = p->centered;
    }
    NEARLY_CHECK_ARG(s.qb >= 0 && s.qb <= 8, "RaBitQ: qb must be in 0..8, got " + std::to_string(s.qb));
    return s;
}

void IndexRaBitQ::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    const SearchSetup su = setup(n, x, k, params);
    const IDSelector* sel = su.sel;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, kk = k, nb = size_t(ntotal), cs = rabitq.code_size;
    const bool ip = metric_type == METRIC_INNER_PRODUCT, multibit = rabitq.nb_bits > 1;
    const float pad = missing_distance(metric_type);
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, q1 = std::min(size_t(n), q0 + kQueriesPerTask);
        std::vector<RaBitQQuery> qs(q1 - q0);
        std::vector<float> est(kCodeBlock);
        for (size_t q = q0; q < q1; q++) {
            qs[q - q0].prepare(rabitq, x + q * dd, center.data(), su.qb, su.centered);
            TopK::init(D + q * kk, I + q * kk, kk);  // scores: L2, or the negated IP
        }
        for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) {
            const size_t m = std::min(kCodeBlock, nb - j0);
            const uint8_t* block = codes_.data() + j0 * cs;
            for (size_t q = q0; q < q1; q++) {
                const RaBitQQuery& rq = qs[q - q0];
                float* Dq = D + q * kk;
                idx_t* Iq = I + q * kk;
                rq.estimate(m, block, est.data());
                for (size_t j = 0; j < m; j++) {
                    float s = est[j];
                    const idx_t id = idx_t(j0 + j);
                    if (multibit) {
                        // Threshold in the metric's own sense: the k-th best so far.
                        const float thr = ip ? -Dq[0] : Dq[0];
                        if (!rq.may_beat(block + j * cs, s, thr) || (sel && !sel->is_member(id))) continue;
                        s = rq.full(block + j * cs);
                    }
                    if (ip) s = -s;
                    if (s > Dq[0] || (!multibit && sel && !sel->is_member(id))) continue;
                    TopK::push(Dq, Iq, kk, s, id);
                }
            }
        }
        for (size_t q = q0; q < q1; q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::finish(Dq, Iq, kk, ip, pad);
        }
        poll();
    });
}

void IndexRaBitQ::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                               const SearchParameters* params) const {
    const SearchSetup su = setup(n, x, 1, params);
    const IDSelector* sel = su.sel;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, nb = size_t(ntotal), cs = rabitq.code_size;
    const bool ip = metric_type == METRIC_INNER_PRODUCT, multibit = rabitq.nb_bits > 1;
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    InterruptPoll poll;
    parallel_for(size_t(n), [&](size_t q) {
        RaBitQQuery rq;
        rq.prepare(rabitq, x + q * dd, center.data(), su.qb, su.centered);
        std::vector<float> est(kCodeBlock);
        for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) {
            const size_t m = std::min(kCodeBlock, nb - j0);
            const uint8_t* block = codes_.data() + j0 * cs;
            rq.estimate(m, block, est.data());
            for (size_t j = 0; j < m; j++) {
                float s = est[j];
                if (multibit) {
                    if (!rq.may_beat(block + j * cs, s, radius)) continue;
                    s = rq.full(block + j * cs);
                }
                if ((ip ? s > radius : s < radius) && (!sel || sel->is_member(idx_t(j0 + j))))
                    hits[q].emplace_back(s, idx_t(j0 + j));
            }
        }
        poll();
    });
    result.set(hits);
}

void IndexRaBitQ::encode(size_t n, const float* x, uint8_t* codes) const {
    rabitq.encode(n, x, center.data(), codes);
}

void IndexRaBitQ::decode(const uint8_t* code, float* out) const { rabitq.decode(1, code, center.data(), out); }

void IndexRaBitQ::write_encoder_state(Writer& w) const {
    w.pod<uint64_t>(rabitq.nb_bits);
    w.vec(center);
}

void IndexRaBitQ::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<int32_t>(int32_t(rabitq.nb_bits));
    w.pod<int32_t>(qb);
    w.pod<uint8_t>(centered);
    w.pod<uint8_t>(is_trained);
    w.vec(center);
    w.pod<int64_t>(ntotal);
    w.vec(codes_);
}

std::unique_ptr<IndexRaBitQ> IndexRaBitQ::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>(), nb_bits = r.pod<int32_t>(), qb = r.pod<int32_t>();
    const uint8_t centered = r.pod<uint8_t>(), trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && nb_bits >= 1 && nb_bits <= 9 &&
                qb >= 0 && qb <= 8 && centered <= 1 && trained <= 1,
            "bad RaBitQ header");
    auto index = std::make_unique<IndexRaBitQ>(d, MetricType(metric), nb_bits);
    index->qb = qb;
    index->centered = centered;
    index->center = r.vec<float>();
    r.check(index->center.size() == (trained ? size_t(d) : 0), "RaBitQ center does not match d");
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    index->codes_ = r.vec<uint8_t>();
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->code_size(),
            "RaBitQ code count does not match ntotal");
    r.check(ntotal == 0 || trained, "RaBitQ holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

}  // namespace nearly
