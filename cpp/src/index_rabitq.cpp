#include "nearly/index_rabitq.h"

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <limits>
#include <mutex>

#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
constexpr size_t kQueriesPerTask = 8;

// Float p..p+3 of code j of a block in the fast-scan layout (byte p of the
// block's 32 codes side by side).
float transposed_f32(const uint8_t* block, size_t p, size_t j) {
    const uint32_t u = uint32_t(block[p * kPQ4Block + j]) | uint32_t(block[(p + 1) * kPQ4Block + j]) << 8 |
                       uint32_t(block[(p + 2) * kPQ4Block + j]) << 16 | uint32_t(block[(p + 3) * kPQ4Block + j]) << 24;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
}  // namespace

IndexRaBitQ::IndexRaBitQ(int d, MetricType metric, int nb_bits)
    : IndexFlatCodes(d, metric), rabitq(size_t(std::max(d, 1)), metric, size_t(std::max(nb_bits, 0))) {
    is_trained = false;
    code_block_ = kPQ4Block;  // stored in the 4-bit fast-scan layout: the sign bytes are its nibble codes
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
    const size_t dd = d, kk = k, nb = size_t(ntotal), cs = rabitq.code_size, nbytes = rabitq.sign_bytes();
    const size_t M = 2 * nbytes;  // 4-dimension groups: one nibble of the sign bytes each
    const bool ip = metric_type == METRIC_INNER_PRODUCT, multibit = rabitq.nb_bits > 1;
    const float pad = missing_distance(metric_type);
    const CodeLayout lay = layout();
    const size_t nblocks = (nb + kPQ4Block - 1) / kPQ4Block;
    // The codes' popcounts come out of the same scan, as one more table.
    PQ4Table pop_table;
    {
        std::vector<uint8_t> e(M * 16);
        for (size_t i = 0; i < e.size(); i++) e[i] = uint8_t(__builtin_popcount(unsigned(i % 16)));
        pop_table.set_exact(e.data(), M);
    }
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, q1 = std::min(size_t(n), q0 + kQueriesPerTask), nq = q1 - q0;
        std::vector<RaBitQQuery> qs(nq);
        for (size_t q = q0; q < q1; q++) {
            qs[q - q0].prepare(rabitq, x + q * dd, center.data(), su.qb, su.centered);
            TopK::init(D + q * kk, I + q * kk, kk);  // scores: L2, or the negated IP
        }
        // The bit dot products are sums of exact byte tables over 4
        // dimensions (one or two per query): the fast-scan kernel computes
        // them for 32 codes per load, for all the task's tables and the
        // popcount table at once.
        const int parts = qs[0].nibble_parts();
        const bool tables = parts > 0;
        const size_t ntab = nq * size_t(parts) + 1;
        std::vector<PQ4Table> tabs(ntab - 1);
        std::vector<const uint8_t*> packed(ntab, pop_table.packed());
        std::vector<uint8_t> e(M * 16);
        for (size_t i = 0; i < tabs.size(); i++) {
            qs[i / parts].nibble_tables(int(i % parts), e.data());
            tabs[i].set_exact(e.data(), M);
            packed[i] = tabs[i].packed();
        }
        std::vector<uint16_t> sums(kPQ4Block * ntab), thr(ntab, 0xFFFF);
        std::vector<uint32_t> masks(ntab);
        std::vector<uint8_t> plain(kPQ4Block * cs);  // a block's codes one after the other
        float est[kPQ4Block], or_c[kPQ4Block], dp[kPQ4Block], f_error[kPQ4Block];
        for (size_t b = 0; b < nblocks; b++) {
            const uint8_t* block = codes_.data() + b * kPQ4Block * cs;
            const size_t j0 = b * kPQ4Block, m = std::min(kPQ4Block, nb - j0);
            if (tables) {
                for (size_t j = 0; j < m; j++) {
                    or_c[j] = transposed_f32(block, nbytes, j);
                    dp[j] = transposed_f32(block, nbytes + 4, j);
                    if (multibit) f_error[j] = transposed_f32(block, nbytes + 8, j);
                }
                simd().pq4_scan_block(block, nbytes, packed.data(), ntab, thr.data(), sums.data(), masks.data(), PQ4Tail{});
            } else {
                for (size_t j = 0; j < m; j++) lay.get(codes_.data(), j0 + j, &plain[j * cs]);
            }
            const uint16_t* pops = &sums[(ntab - 1) * kPQ4Block];
            for (size_t q = q0; q < q1; q++) {
                const RaBitQQuery& rq = qs[q - q0];
                float* Dq = D + q * kk;
                idx_t* Iq = I + q * kk;
                if (parts == 1) {
                    const uint16_t* dots = &sums[(q - q0) * kPQ4Block];
                    for (size_t j = 0; j < m; j++) est[j] = rq.from_ints(dots[j], pops[j], or_c[j], dp[j]);
                } else if (parts == 2) {
                    const uint16_t* lo = &sums[2 * (q - q0) * kPQ4Block];
                    const uint16_t* hi = lo + kPQ4Block;
                    for (size_t j = 0; j < m; j++)
                        est[j] = rq.from_ints(uint32_t(lo[j]) + (uint32_t(hi[j]) << 4), pops[j], or_c[j], dp[j]);
                } else {
                    rq.estimate(m, plain.data(), est);
                }
                for (size_t j = 0; j < m; j++) {
                    float s = est[j];
                    const idx_t id = idx_t(j0 + j);
                    if (multibit) {
                        // Threshold in the metric's own sense: the k-th best so far.
                        const float th = ip ? -Dq[0] : Dq[0];
                        const bool pass = tables ? rq.may_beat(f_error[j], s, th) : rq.may_beat(&plain[j * cs], s, th);
                        if (!pass || (sel && !sel->is_member(id))) continue;
                        if (tables) lay.get(codes_.data(), j0 + j, &plain[j * cs]);
                        s = rq.full(&plain[j * cs]);
                    }
                    if (ip) s = -s;
                    if (s > Dq[0] || (!multibit && sel && !sel->is_member(id))) continue;
                    TopK::push(Dq, Iq, kk, s, id);
                }
            }
        }
        for (size_t q = q0; q < q1; q++) TopK::finish(D + q * kk, I + q * kk, kk, ip, pad);
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
    const CodeLayout lay = layout();
    parallel_for(size_t(n), [&](size_t q) {
        RaBitQQuery rq;
        rq.prepare(rabitq, x + q * dd, center.data(), su.qb, su.centered);
        float est[kPQ4Block];
        std::vector<uint8_t> plain(kPQ4Block * cs);  // a block's codes one after the other
        const uint8_t* block = plain.data();
        for (size_t j0 = 0; j0 < nb; j0 += kPQ4Block) {
            const size_t m = std::min(kPQ4Block, nb - j0);
            for (size_t j = 0; j < m; j++) lay.get(codes_.data(), j0 + j, &plain[j * cs]);
            rq.estimate(m, block, est);
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

namespace {
// A query prepared with the index's qb and centered, scoring one code as
// search reports it: the 1-bit estimate, or the full one of multi-bit codes.
struct RaBitQScorer {
    const IndexRaBitQ& index;
    RaBitQQuery rq;
    void set_query(const float* q) { rq.prepare(index.rabitq, q, index.center.data(), index.qb, index.centered); }
    void scores(const uint8_t* codes, size_t n, float* out) const {
        const size_t cs = index.rabitq.code_size;
        if (index.rabitq.nb_bits == 1) return rq.estimate(n, codes, out);
        for (size_t j = 0; j < n; j++) out[j] = rq.full(codes + j * cs);
    }
};
}  // namespace

std::unique_ptr<DistanceComputer> IndexRaBitQ::get_distance_computer() const {
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    return std::make_unique<CodeDistanceComputer<IndexRaBitQ, RaBitQScorer>>(*this, RaBitQScorer{*this, {}});
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
    w.vec(codes_in_order());  // whatever the layout in memory
}

template <class T>
std::unique_ptr<T> IndexRaBitQ::read_as(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>(), nb_bits = r.pod<int32_t>(), qb = r.pod<int32_t>();
    const uint8_t centered = r.pod<uint8_t>(), trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && nb_bits >= 1 && nb_bits <= 9 &&
                qb >= 0 && qb <= 8 && centered <= 1 && trained <= 1,
            "bad RaBitQ header");
    auto index = std::make_unique<T>(d, MetricType(metric), nb_bits);
    index->qb = qb;
    index->centered = centered;
    index->center = r.vec<float>();
    r.check(index->center.size() == (trained ? size_t(d) : 0), "RaBitQ center does not match d");
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    const std::vector<uint8_t> codes = r.vec<uint8_t>();
    const size_t cs = index->code_size();
    r.check(ntotal >= 0 && codes.size() == size_t(ntotal) * cs, "RaBitQ code count does not match ntotal");
    r.check(ntotal == 0 || trained, "RaBitQ holds codes but is not trained");
    index->set_codes_in_order(codes, size_t(ntotal));
    index->ntotal = ntotal;
    return index;
}

template std::unique_ptr<IndexRaBitQ> IndexRaBitQ::read_as<IndexRaBitQ>(Reader&);
template std::unique_ptr<IndexRaBitQFastScan> IndexRaBitQ::read_as<IndexRaBitQFastScan>(Reader&);

}  // namespace nearly
