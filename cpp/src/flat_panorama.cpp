#include "nearly/flat_panorama.h"

#include <algorithm>
#include <mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

IndexFlatPanorama::IndexFlatPanorama(int d, MetricType metric, size_t n_levels, size_t batch_size)
    : IndexFlat(d, metric), pano_(size_t(d), n_levels), batch_(batch_size) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "IndexFlatPanorama: the metric must be L2 or inner product");
    NEARLY_CHECK_ARG(batch_size > 0, "IndexFlatPanorama: batch_size must be > 0");
}

void IndexFlatPanorama::rows_changed(idx_t first) {
    const size_t stride = pano_.n_levels + 1, dd = size_t(d);
    tails_.resize(size_t(ntotal) * stride);
    const float* xb = vectors().data();
    parallel_for_blocks(size_t(ntotal - std::min(first, ntotal)), 1024, [&](size_t i) {
        const size_t r = size_t(first) + i;
        pano_.tail_norms(xb + r * dd, tails_.data() + r * stride);
    });
}

std::vector<float> IndexFlatPanorama::tail_norms() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return tails_;
}

void IndexFlatPanorama::score_batch(const Panorama::Query& q, idx_t* rows, size_t m, size_t k, float* D, idx_t* I,
                                    float* scores, uint64_t* scanned) const {
    const size_t kept = pano_.filter(q, metric_type == METRIC_L2, vectors().data(), tails_.data(), norms2(), rows, m,
                                     D[0], scores, scanned);
    for (size_t i = 0; i < kept; i++) TopK::push(D, I, k, scores[i], rows[i]);
}

void IndexFlatPanorama::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                               const SearchParameters* params) const {
    check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    const size_t nb = size_t(ntotal), kk = size_t(k), dd = size_t(d), nq = size_t(n);
    // Few queries: each one's rows are split into slices scanned apart (each
    // with its own heap and threshold), so that every thread has work.
    const size_t nthreads = size_t(get_num_threads());
    const size_t slices = nq >= nthreads ? 1 : std::max<size_t>(1, std::min(nthreads / nq, nb / (4 * batch_ + 1)));
    std::vector<float> sD(slices > 1 ? nq * slices * kk : 0);
    std::vector<idx_t> sI(sD.size());
    InterruptPoll poll;
    parallel_for(nq * slices, [&](size_t t) {
        const size_t q = t / slices, s = t % slices;
        float* Dq = slices > 1 ? sD.data() + t * kk : D + q * kk;
        idx_t* Iq = slices > 1 ? sI.data() + t * kk : I + q * kk;
        TopK::init(Dq, Iq, kk);
        const Panorama::Query pq = pano_.query(x + q * dd);
        std::vector<idx_t> rows(batch_);
        std::vector<float> scores(batch_);
        uint64_t scanned = 0, total = 0;
        const size_t j1 = nb * (s + 1) / slices;
        for (size_t j0 = nb * s / slices; j0 < j1; j0 += batch_) {
            size_t m = 0;
            for (size_t j = j0; j < std::min(j1, j0 + batch_); j++)
                if (!sel || sel->is_member(idx_t(j))) rows[m++] = idx_t(j);
            total += m * pano_.n_levels;
            score_batch(pq, rows.data(), m, kk, Dq, Iq, scores.data(), &scanned);
            poll();
        }
        panorama_stats.add(scanned, total);
    });
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    for (size_t q = 0; q < nq; q++) {
        float* Dq = D + q * kk;
        idx_t* Iq = I + q * kk;
        if (slices > 1) {
            TopK::init(Dq, Iq, kk);
            for (size_t j = 0; j < slices * kk; j++) {
                const size_t o = q * slices * kk + j;
                if (sI[o] >= 0) TopK::push(Dq, Iq, kk, sD[o], sI[o]);
            }
        }
        TopK::finish(Dq, Iq, kk, ip, pad);
    }
}

void IndexFlatPanorama::search_subset(idx_t n, const float* x, idx_t k_base, const idx_t* labels, idx_t k, float* D,
                                      idx_t* I) const {
    check_search_args(n, x, k);
    NEARLY_CHECK_ARG(k_base >= 0, "search_subset: k_base must be non-negative");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t kk = size_t(k), kb = size_t(k_base), dd = size_t(d);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    for (size_t i = 0; i < size_t(n) * kb; i++)
        if (labels[i] < -1 || labels[i] >= ntotal)
            throw OutOfRange("search_subset: label " + std::to_string(labels[i]) + " is out of range for an index of " +
                             std::to_string(ntotal) + " vectors");
    constexpr size_t kPerTask = 16;
    parallel_for((size_t(n) + kPerTask - 1) / kPerTask, [&](size_t t) {
        std::vector<idx_t> rows(batch_);
        std::vector<float> scores(batch_);
        uint64_t scanned = 0, total = 0;
        for (size_t q = t * kPerTask; q < std::min(size_t(n), (t + 1) * kPerTask); q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            const Panorama::Query pq = pano_.query(x + q * dd);
            const idx_t* cand = labels + q * kb;
            for (size_t j0 = 0; j0 < kb; j0 += batch_) {
                size_t m = 0;
                for (size_t j = j0; j < std::min(kb, j0 + batch_); j++)
                    if (cand[j] >= 0) rows[m++] = cand[j];
                total += m * pano_.n_levels;
                score_batch(pq, rows.data(), m, kk, Dq, Iq, scores.data(), &scanned);
            }
            TopK::finish(Dq, Iq, kk, ip, pad);
        }
        panorama_stats.add(scanned, total);
    });
}

void IndexFlatPanorama::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                     const SearchParameters* params) const {
    check_search_args(n, x, 1);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    const size_t nb = size_t(ntotal), dd = size_t(d);
    const bool l2 = metric_type == METRIC_L2;
    // Scores are smaller-is-better: L2 keeps d < radius, inner product ip > radius.
    const float threshold = l2 ? radius : -radius;
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    InterruptPoll poll;
    parallel_for(size_t(n), [&](size_t q) {
        const Panorama::Query pq = pano_.query(x + q * dd);
        std::vector<idx_t> rows(batch_);
        std::vector<float> scores(batch_);
        uint64_t scanned = 0, total = 0;
        for (size_t j0 = 0; j0 < nb; j0 += batch_) {
            size_t m = 0;
            for (size_t j = j0; j < std::min(nb, j0 + batch_); j++)
                if (!sel || sel->is_member(idx_t(j))) rows[m++] = idx_t(j);
            total += m * pano_.n_levels;
            const size_t kept =
                pano_.filter(pq, l2, vectors().data(), tails_.data(), norms2(), rows.data(), m, threshold,
                             scores.data(), &scanned);
            for (size_t i = 0; i < kept; i++) hits[q].emplace_back(l2 ? scores[i] : -scores[i], rows[i]);
            poll();
        }
        panorama_stats.add(scanned, total);
    });
    result.set(hits);
}

void IndexFlatPanorama::write_body(Writer& w) const {
    w.pod<uint64_t>(pano_.n_levels);
    w.pod<uint64_t>(batch_);
    IndexFlat::write_body(w);
}

std::unique_ptr<IndexFlatPanorama> IndexFlatPanorama::read_body(Reader& r) {
    const uint64_t n_levels = r.pod<uint64_t>(), batch = r.pod<uint64_t>();
    auto flat = IndexFlat::read_body(r);
    r.check(n_levels >= 1 && n_levels <= uint64_t(flat->d) && batch >= 1 && batch <= (uint64_t(1) << 32) &&
                (flat->metric_type == METRIC_L2 || flat->metric_type == METRIC_INNER_PRODUCT),
            "bad FlatPanorama header");
    std::unique_ptr<IndexFlatPanorama> index;
    if (flat->metric_type == METRIC_L2)
        index = std::make_unique<IndexFlatL2Panorama>(flat->d, size_t(n_levels), size_t(batch));
    else
        index = std::make_unique<IndexFlatIPPanorama>(flat->d, size_t(n_levels), size_t(batch));
    index->take_vectors(std::move(*flat));
    return index;
}

}  // namespace nearly
