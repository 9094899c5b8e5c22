#include "nearly/index.h"

#include <cfloat>

namespace nearly {

Index::Index(int d, MetricType metric) : d(d), metric_type(metric) {
    NEARLY_CHECK_ARG(d > 0, "the dimension d must be positive");
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "metric must be METRIC_L2 or METRIC_INNER_PRODUCT");
}

void Index::train(idx_t, const float*) {}

void Index::add_with_ids(idx_t, const float*, const idx_t*) {
    throw NotSupported("add_with_ids not implemented for this type of index");
}

void Index::range_search(idx_t, const float*, float, RangeSearchResult&, const SearchParameters*) const {
    throw NotSupported("range search not implemented for this type of index");
}

void Index::reconstruct(idx_t, float*) const {
    throw NotSupported("reconstruct not implemented for this type of index");
}

void Index::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    NEARLY_CHECK_ARG(ni >= 0, "ni must be non-negative");
    if (i0 < 0 || i0 + ni > ntotal)
        throw OutOfRange("reconstruct_n: range [" + std::to_string(i0) + ", " + std::to_string(i0 + ni) +
                         ") is outside the index (ntotal=" + std::to_string(ntotal) + ")");
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, out + i * d);
}

size_t Index::remove_ids(const IDSelector&) {
    throw NotSupported("remove_ids not implemented for this type of index");
}

void Index::merge_from(Index&, idx_t) { throw NotSupported("merge_from not implemented for this type of index"); }

void Index::check_search_args(idx_t n, const float* x, idx_t k) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of queries must be non-negative");
    NEARLY_CHECK_ARG(k > 0, "k must be positive (got " + std::to_string(k) + ")");
    check_finite(x, size_t(n) * d, "the query array");
}

void Index::check_writable() const {
    if (read_only)
        throw NotSupported("this index was read with IO_FLAG_READ_ONLY or IO_FLAG_MMAP and cannot be modified");
}

void Index::check_add_args(idx_t n, const float* x) const {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    if (!is_trained) throw NotSupported("the index is not trained: call train() before add()");
    check_finite(x, size_t(n) * d, "the vectors to add");
}

float missing_distance(MetricType metric) { return metric == METRIC_L2 ? FLT_MAX : -FLT_MAX; }

}  // namespace nearly
