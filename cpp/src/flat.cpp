#include "nearly/flat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/extra_distances.h"
#include "nearly/io.h"

namespace nearly {

IndexFlat::IndexFlat(int d, MetricType metric) : Index(d, metric, true) {}

void IndexFlat::add(idx_t n, const float* x) {
    check_add_args(n, x);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    xb_.append(x, x + size_t(n) * d);
    if (metric_type == METRIC_L2) {
        norms_.resize(ntotal + n);
        norms_L2sqr(x, n, d, &norms_[ntotal]);
    }
    ntotal += n;
}

void IndexFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (is_extra_metric(metric_type))
        return knn_extra(x, n, xb_.data(), ntotal, d, metric_type, metric_arg, k, D, I,
                         params ? params->sel.get() : nullptr);
    knn_exhaustive(x, n, xb_.data(), ntotal, d, metric_type, k, D, I, params ? params->sel.get() : nullptr,
                   norms_.empty() ? nullptr : norms_.data());
}

void IndexFlat::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                             const SearchParameters* params) const {
    check_search_args(n, x, 1);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (is_extra_metric(metric_type))
        return range_extra(x, n, xb_.data(), ntotal, d, metric_type, metric_arg, radius, result,
                           params ? params->sel.get() : nullptr);
    range_exhaustive(x, n, xb_.data(), ntotal, d, metric_type, radius, result, params ? params->sel.get() : nullptr,
                     norms_.empty() ? nullptr : norms_.data());
}

void IndexFlat::encode_standalone(idx_t n, const float* x, uint8_t* bytes) const {
    std::memcpy(bytes, x, size_t(n) * sa_code_size());
}

void IndexFlat::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    std::memcpy(x, bytes, size_t(n) * sa_code_size());
}

void IndexFlat::reconstruct(idx_t key, float* out) const { reconstruct_n(key, 1, out); }

void IndexFlat::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    check_row_range(i0, ni, ntotal);
    std::copy(xb_.begin() + i0 * d, xb_.begin() + (i0 + ni) * d, out);
}

size_t IndexFlat::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    float* xb = xb_.data();  // the vectors' own copy (not a mapped file)
    idx_t j = 0;
    for (idx_t i = 0; i < ntotal; i++) {
        if (sel.is_member(i)) continue;
        if (i != j) {
            std::copy(xb + i * d, xb + (i + 1) * d, xb + j * d);
            if (!norms_.empty()) norms_[j] = norms_[i];
        }
        j++;
    }
    size_t removed = ntotal - j;
    ntotal = j;
    xb_.resize(size_t(j) * d);
    if (!norms_.empty() || metric_type == METRIC_L2) norms_.resize(j);
    return removed;
}

void IndexFlat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    xb_.clear();
    norms_.clear();
    ntotal = 0;
}

void IndexFlat::merge_from(Index& other_base, idx_t add_id) {
    check_writable();
    other_base.check_writable();
    NEARLY_CHECK_ARG(&other_base != this, "cannot merge an index into itself");
    if (add_id != 0) throw NotSupported("merge_from: add_id must be 0 for an index without ids");
    auto* other = dynamic_cast<IndexFlat*>(&other_base);
    if (!other || other->d != d || other->metric_type != metric_type)
        throw NotSupported("merge_from: the other index must be an IndexFlat with the same d and metric");
    std::scoped_lock lk(rw_mutex_, other->rw_mutex_);
    xb_.append(other->xb_.begin(), other->xb_.end());
    norms_.insert(norms_.end(), other->norms_.begin(), other->norms_.end());
    ntotal += other->ntotal;
    other->xb_.clear();
    other->norms_.clear();
    other->ntotal = 0;
}

void IndexFlat::permute_entries(const idx_t* perm) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    check_permutation(perm, ntotal);
    const size_t dd = size_t(d);
    std::vector<float> old(xb_.begin(), xb_.end());
    float* xb = xb_.data();
    for (idx_t i = 0; i < ntotal; i++) std::copy_n(old.data() + size_t(perm[i]) * dd, dd, xb + size_t(i) * dd);
    if (!norms_.empty()) {
        std::vector<float> on(norms_);
        for (idx_t i = 0; i < ntotal; i++) norms_[size_t(i)] = on[size_t(perm[i])];
    }
}

void IndexFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    if (is_extra_metric(metric_type)) w.pod<float>(metric_arg);  // files of L2 / IP indexes are unchanged
    w.pod<int64_t>(ntotal);
    w.array(xb_);
}

std::unique_ptr<IndexFlat> IndexFlat::read_body(Reader& r) {
    int d = r.pod<int32_t>();
    int metric = r.pod<int32_t>();
    const bool extra = is_extra_metric(MetricType(metric));
    const float metric_arg = extra ? r.pod<float>() : 0.f;
    idx_t n = r.pod<int64_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT || extra) && n >= 0 &&
                std::isfinite(metric_arg),
            "bad Flat header");
    std::unique_ptr<IndexFlat> index;
    if (metric == METRIC_L2)
        index = std::make_unique<IndexFlatL2>(d);
    else if (metric == METRIC_INNER_PRODUCT)
        index = std::make_unique<IndexFlatIP>(d);
    else
        index = std::make_unique<IndexFlat>(d, MetricType(metric));
    index->metric_arg = metric_arg;
    // Straight into the index's storage: an index read is never held twice.
    r.array(index->xb_);
    const auto& xb = index->xb_;  // const: a mapped file is read in place, never copied
    r.check(size_t(n) <= xb.size() / size_t(d) && xb.size() == size_t(n) * d, "Flat vector count does not match ntotal");
    index->check_add_args(n, xb.data());  // what add() refuses (NaN)
    if (metric == METRIC_L2) {
        index->norms_.resize(size_t(n));
        norms_L2sqr(xb.data(), n, d, index->norms_.data());
    }
    index->ntotal = n;
    return index;
}

}  // namespace nearly
