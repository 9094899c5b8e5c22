#include "nearly/flat_panorama.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <tuple>

#include "nearly/distance.h"
#include "nearly/distance_computer.h"
#include "nearly/flat.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

IndexFlatPanorama::IndexFlatPanorama(int d, MetricType metric, size_t n_levels, size_t batch_size)
    : Index(d, metric), pano_(size_t(d), n_levels), batch_(batch_size) {
    NEARLY_CHECK_ARG(batch_size > 0, "IndexFlatPanorama: batch_size must be > 0");
}

void IndexFlatPanorama::store_rows(const float* x, size_t n) {
    const size_t dd = size_t(d), w = pano_.width, L = pano_.n_levels, stride = L + 1;
    const size_t n0 = size_t(ntotal), n1 = n0 + n;
    const size_t batches = (n1 + batch_ - 1) / batch_;
    data_.resize(batches * L * batch_ * w, 0.f);  // the last batch whole, zeros where no row
    tails_.resize(batches * stride * batch_, 0.f);
    norms_.resize(metric_type == METRIC_L2 ? n1 : 0);
    parallel_for_blocks(n, 1024, [&](size_t i) {
        const float* v = x + i * dd;
        const size_t r = n0 + i, b = r / batch_, j = r % batch_;
        for (size_t l = 0; l < L; l++) {
            float* dst = data_.data() + (b * L + l) * batch_ * w + j * w;
            const size_t lb = pano_.level_begin(l), le = pano_.level_end(l);
            std::copy(v + lb, v + le, dst);
            std::fill(dst + (le - lb), dst + w, 0.f);
        }
        thread_local std::vector<float> t;
        t.resize(stride);
        pano_.tail_norms(v, t.data());
        for (size_t l = 0; l <= L; l++) tails_[(b * stride + l) * batch_ + j] = t[l];
        if (!norms_.empty()) {
            double s = 0;
            for (size_t t = 0; t < dd; t++) s += double(v[t]) * v[t];
            norms_[r] = float(s);
        }
    });
    ntotal = idx_t(n1);
}

void IndexFlatPanorama::clear_rows() {
    data_.clear();
    tails_.clear();
    norms_.clear();
    ntotal = 0;
}

void IndexFlatPanorama::copy_row(idx_t r, float* out) const {
    for (size_t l = 0; l < pano_.n_levels; l++) {
        const float* s = slice(r, l);
        std::copy(s, s + (pano_.level_end(l) - pano_.level_begin(l)), out + pano_.level_begin(l));
    }
}

std::vector<float> IndexFlatPanorama::rows_in_order(const idx_t* perm) const {
    std::vector<float> out(size_t(ntotal) * d);
    parallel_for_blocks(size_t(ntotal), 1024, [&](size_t i) { copy_row(perm ? perm[i] : idx_t(i), out.data() + i * d); });
    return out;
}

void IndexFlatPanorama::add(idx_t n, const float* x) {
    check_add_args(n, x);
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    store_rows(x, size_t(n));
}

void IndexFlatPanorama::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    check_row_range(i0, ni, ntotal);
    for (idx_t r = i0; r < i0 + ni; r++) copy_row(r, out + size_t(r - i0) * d);
}

std::unique_ptr<DistanceComputer> IndexFlatPanorama::get_distance_computer() const {
    return std::make_unique<ReconstructDistanceComputer>(*this);
}

std::vector<float> IndexFlatPanorama::tail_norms() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t stride = pano_.n_levels + 1;
    std::vector<float> out(size_t(ntotal) * stride);
    for (idx_t r = 0; r < ntotal; r++)
        for (size_t l = 0; l < stride; l++) out[size_t(r) * stride + l] = tail(r, l);
    return out;
}

template <class Sink>
void IndexFlatPanorama::score(const Panorama::Query& q, idx_t* rows, size_t m, long batch, float threshold,
                              float* scores, uint64_t* scanned, Sink&& sink) const {
    const bool l2 = metric_type == METRIC_L2;
    const float* norms = norms_.data();
    size_t kept;
    if (batch >= 0) {  // one batch: its blocks found once, no division per row
        const size_t w = pano_.width, B = batch_, first = size_t(batch) * B, stride = pano_.n_levels + 1;
        const float* data = data_.data() + size_t(batch) * pano_.n_levels * B * w;
        const float* tails = tails_.data() + size_t(batch) * stride * B;
        kept = pano_.filter(
            q, l2, [&](idx_t r, size_t l) { return data + (l * B + (size_t(r) - first)) * w; },
            [&](idx_t r, size_t l) { return tails[l * B + (size_t(r) - first)]; }, [&](idx_t r) { return norms[r]; },
            rows, m, threshold, scores, scanned);
    } else {
        kept = pano_.filter(
            q, l2, [&](idx_t r, size_t l) { return slice(r, l); }, [&](idx_t r, size_t l) { return tail(r, l); },
            [&](idx_t r) { return norms[r]; }, rows, m, threshold, scores, scanned);
    }
    for (size_t i = 0; i < kept; i++) sink(scores[i], rows[i]);
}

void IndexFlatPanorama::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                               const SearchParameters* params) const {
    check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    const size_t nb = size_t(ntotal), kk = size_t(k), dd = size_t(d), nq = size_t(n);
    const size_t nbatches = (nb + batch_ - 1) / batch_;
    // Queries in groups read each batch while it is in cache; few queries
    // split the batches into slices scanned apart (each with its own heap
    // and threshold), so that every thread has work. Many queries score
    // each batch by one matrix product for the whole group instead
    // (the batch put back into rows), as IndexFlat does: faster than
    // pruning one query at a time, and as exact.
    const size_t nthreads = size_t(get_num_threads());
    const bool products = nq >= kProductQueries;
    const size_t kGroup = products ? 256 : items_per_task(nq, 8);
    const size_t ngroups = (nq + kGroup - 1) / kGroup;
    const size_t slices = ngroups >= nthreads ? 1 : std::max<size_t>(1, std::min(nthreads / ngroups, nbatches / 4));
    std::vector<float> sD(slices > 1 ? nq * slices * kk : 0);
    std::vector<idx_t> sI(sD.size());
    InterruptPoll poll;
    parallel_for(ngroups * slices, [&](size_t t) {
        const size_t g = t / slices, s = t % slices;
        const size_t q0 = g * kGroup, q1 = std::min(nq, q0 + kGroup);
        // Query q's k best: its own (D, I) rows, or its slice's share of (sD, sI).
        auto heap = [&](size_t q) {
            const size_t at = slices > 1 ? (q * slices + s) * kk : q * kk;
            return std::make_pair((slices > 1 ? sD.data() : D) + at, (slices > 1 ? sI.data() : I) + at);
        };
        std::vector<Panorama::Query> pq;
        for (size_t q = q0; q < q1; q++) {
            if (!products) pq.push_back(pano_.query(x + q * dd));
            const auto [Dq, Iq] = heap(q);
            TopK::init(Dq, Iq, kk);
        }
        std::vector<idx_t> kept(batch_), rows(batch_);
        std::vector<float> scores(batch_), vecs(products ? batch_ * dd : 0), ip(products ? (q1 - q0) * batch_ : 0);
        std::vector<float> qnorm(products ? q1 - q0 : 0);
        if (products && metric_type == METRIC_L2) norms_L2sqr(x + q0 * dd, q1 - q0, dd, qnorm.data());
        uint64_t scanned = 0, total = 0;
        for (size_t b = nbatches * s / slices; b < nbatches * (s + 1) / slices; b++) {
            size_t m = 0;
            for (size_t j = b * batch_; j < std::min(nb, (b + 1) * batch_); j++)
                if (!sel || sel->is_member(idx_t(j))) kept[m++] = idx_t(j);
            if (products) {
                for (size_t i = 0; i < m; i++) copy_row(kept[i], vecs.data() + i * dd);
                gemm_ip(x + q0 * dd, q1 - q0, vecs.data(), m, dd, ip.data());
                for (size_t q = q0; q < q1; q++) {
                    const auto [Dq, Iq] = heap(q);
                    const float* p = ip.data() + (q - q0) * m;
                    for (size_t i = 0; i < m; i++) {
                        const float sc = metric_type == METRIC_L2
                                             ? std::max(qnorm[q - q0] + norms_[size_t(kept[i])] - 2 * p[i], 0.f)
                                             : -p[i];
                        if (sc <= Dq[0]) TopK::push(Dq, Iq, kk, sc, kept[i]);
                    }
                }
                scanned += (q1 - q0) * m * pano_.n_levels;
                total += (q1 - q0) * m * pano_.n_levels;
                poll();
                continue;
            }
            for (size_t q = q0; q < q1; q++) {
                float* Dq;
                idx_t* Iq;
                std::tie(Dq, Iq) = heap(q);  // (a lambda below uses them: no structured binding in C++17)
                std::copy(kept.begin(), kept.begin() + m, rows.begin());
                total += m * pano_.n_levels;
                score(pq[q - q0], rows.data(), m, long(b), Dq[0], scores.data(), &scanned,
                      [&](float sc, idx_t id) { TopK::push(Dq, Iq, kk, sc, id); });
            }
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
            for (size_t j = q * slices * kk; j < (q + 1) * slices * kk; j++)
                if (sI[j] >= 0) TopK::push(Dq, Iq, kk, sD[j], sI[j]);
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
    const size_t kPerTask = items_per_task(size_t(n), 16);
    parallel_for((size_t(n) + kPerTask - 1) / kPerTask, [&](size_t t) {
        std::vector<idx_t> rows(std::max<size_t>({batch_, 64, kk}));
        std::vector<float> scores(rows.size());
        uint64_t scanned = 0, total = 0;
        for (size_t q = t * kPerTask; q < std::min(size_t(n), (t + 1) * kPerTask); q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            const Panorama::Query pq = pano_.query(x + q * dd);
            const idx_t* cand = labels + q * kb;
            // The first k candidates (the base's best when it ranks them)
            // set the threshold; the rest go in chunks of at least 64, so
            // that the misses of scattered rows overlap.
            const size_t chunk = std::max<size_t>(batch_, 64);
            for (size_t j0 = 0, j1 = std::min(kb, kk); j0 < kb; j0 = j1, j1 = std::min(kb, j1 + chunk)) {
                size_t m = 0;
                for (size_t j = j0; j < j1; j++)
                    if (cand[j] >= 0) rows[m++] = cand[j];
                total += m * pano_.n_levels;
                score(pq, rows.data(), m, -1, Dq[0], scores.data(), &scanned,
                      [&](float sc, idx_t id) { TopK::push(Dq, Iq, kk, sc, id); });
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
            score(pq, rows.data(), m, long(j0 / batch_), threshold, scores.data(), &scanned,
                  [&](float sc, idx_t id) { hits[q].emplace_back(l2 ? sc : -sc, id); });
            poll();
        }
        panorama_stats.add(scanned, total);
    });
    result.set(hits);
}

size_t IndexFlatPanorama::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> rows = rows_in_order();
    const size_t dd = size_t(d);
    size_t j = 0;
    for (size_t i = 0; i < size_t(ntotal); i++) {
        if (sel.is_member(idx_t(i))) continue;
        if (i != j) std::copy_n(rows.data() + i * dd, dd, rows.data() + j * dd);
        j++;
    }
    const size_t removed = size_t(ntotal) - j;
    if (removed) {
        clear_rows();
        store_rows(rows.data(), j);
    }
    return removed;
}

void IndexFlatPanorama::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    clear_rows();
}

void IndexFlatPanorama::merge_from(Index& other, idx_t add_id) {
    check_writable();
    other.check_writable();
    NEARLY_CHECK_ARG(&other != this, "cannot merge an index into itself");
    if (add_id != 0) throw NotSupported("merge_from: add_id must be 0 for an index without ids");
    const bool flat = dynamic_cast<IndexFlat*>(&other) || dynamic_cast<IndexFlatPanorama*>(&other);
    if (!flat || other.d != d || other.metric_type != metric_type)
        throw NotSupported("merge_from: the other index must be an IndexFlatPanorama or IndexFlat with the same d "
                           "and metric");
    std::vector<float> rows(size_t(other.ntotal) * d);
    other.reconstruct_n(0, other.ntotal, rows.data());
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    store_rows(rows.data(), size_t(other.ntotal));
    other.reset();
}

void IndexFlatPanorama::permute_entries(const idx_t* perm) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    check_permutation(perm, ntotal);
    const std::vector<float> rows = rows_in_order(perm);
    const size_t n = size_t(ntotal);
    clear_rows();
    store_rows(rows.data(), n);
}

void IndexFlatPanorama::encode_standalone(idx_t n, const float* x, uint8_t* bytes) const {
    std::memcpy(bytes, x, size_t(n) * sa_code_size());
}

void IndexFlatPanorama::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    std::memcpy(x, bytes, size_t(n) * sa_code_size());
}

void IndexFlatPanorama::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint64_t>(pano_.n_levels);
    w.pod<uint64_t>(batch_);
    w.pod<int64_t>(ntotal);
    w.array(rows_in_order());  // one row after another: the layout is rebuilt on reading
}

std::unique_ptr<IndexFlatPanorama> IndexFlatPanorama::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const uint64_t n_levels = r.pod<uint64_t>(), batch = r.pod<uint64_t>();
    const int64_t n = r.pod<int64_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && n_levels >= 1 &&
                n_levels <= uint64_t(d) && batch >= 1 && batch <= (uint64_t(1) << 32) && n >= 0,
            "bad FlatPanorama header");
    std::vector<float> rows;
    r.array(rows);
    r.check(rows.size() == size_t(n) * size_t(d), "FlatPanorama vector count does not match ntotal");
    std::unique_ptr<IndexFlatPanorama> index;
    if (metric == METRIC_L2)
        index = std::make_unique<IndexFlatL2Panorama>(d, size_t(n_levels), size_t(batch));
    else
        index = std::make_unique<IndexFlatIPPanorama>(d, size_t(n_levels), size_t(batch));
    index->check_add_args(n, rows.data());  // what add() refuses (NaN)
    index->store_rows(rows.data(), size_t(n));
    return index;
}

}  // namespace nearly
