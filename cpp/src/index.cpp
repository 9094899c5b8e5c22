#include "nearly/index.h"

#include <algorithm>
#include <cfloat>
#include <limits>

#include "nearly/distance_computer.h"
#include "nearly/extra_distances.h"
#include "nearly/parallel.h"

namespace nearly {

Index::Index(int d, MetricType metric, bool extra_metrics) : d(d), metric_type(checked_metric(metric)) {
    NEARLY_CHECK_ARG(d > 0, "the dimension d must be positive");
    if (is_extra_metric(metric) && !extra_metrics)
        throw NotSupported("metric " + std::to_string(int(metric)) +
                           " not implemented for this type of index in nearly (IndexFlat, IndexIDMap, "
                           "IndexPreTransform, knn and pairwise_distances take it)");
}

void Index::train(idx_t, const float*) {}

void Index::set_trained(bool trained) {
    if (trained != is_trained)
        throw NotSupported(type_name() + ": is_trained follows train() here; it cannot be set to " +
                           (trained ? "True" : "False"));
}

void Index::set_metric_type(MetricType m) {
    if (m != metric_type)
        throw NotSupported(type_name() + ": metric_type is fixed when the index is built in nearly; build it with "
                                         "metric " + std::to_string(int(m)));
}

void Index::add_with_ids(idx_t, const float*, const idx_t*) {
    throw NotSupported("add_with_ids not implemented for this type of index");
}

void Index::add_sa_codes(idx_t, const uint8_t*, const idx_t*) {
    throw NotSupported("add_sa_codes not implemented for this type of index (" + type_name() + ")");
}

void Index::range_search(idx_t, const float*, float, RangeSearchResult&, const SearchParameters*) const {
    throw NotSupported("range search not implemented for this type of index");
}

std::unique_ptr<DistanceComputer> Index::get_distance_computer() const {
    // faiss's default (GenericDistanceComputer): score the reconstructions,
    // for any index that reconstructs (IVF ones with a direct map).
    if (metric_type == METRIC_L2 || metric_type == METRIC_INNER_PRODUCT)
        return std::make_unique<ReconstructDistanceComputer>(*this);
    throw NotSupported("get_distance_computer not implemented for this type of index (" + type_name() + ") under metric " +
                       std::to_string(int(metric_type)));
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

void Index::reconstruct_batch(idx_t n, const idx_t* keys, float* out) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of keys must be non-negative");
    parallel_for_blocks(size_t(n), 256, [&](size_t i) { reconstruct(keys[i], out + i * size_t(d)); });
}

void Index::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                   const SearchParameters* params) const {
    search(n, x, k, D, I, params);
    parallel_for_blocks(size_t(n) * size_t(k), 256, [&](size_t j) {
        float* r = R + j * size_t(d);
        if (I[j] < 0)
            std::fill(r, r + d, std::numeric_limits<float>::quiet_NaN());
        else
            reconstruct(I[j], r);
    });
}

void RangeSearchResult::set(const Hits& hits) {
    lims.assign(hits.size() + 1, 0);
    for (size_t q = 0; q < hits.size(); q++) lims[q + 1] = lims[q] + hits[q].size();
    distances.resize(lims.back());
    labels.resize(lims.back());
    for (size_t q = 0; q < hits.size(); q++)
        for (size_t j = 0; j < hits[q].size(); j++) {
            distances[lims[q] + j] = hits[q][j].first;
            labels[lims[q] + j] = hits[q][j].second;
        }
}

size_t Index::sa_code_size() const {
    throw NotSupported("standalone codec not implemented for this type of index");
}

void Index::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    sa_code_size();  // an index without a codec says so before the input is looked at
    if (!is_trained) throw NotSupported("the index is not trained: call train() before sa_encode()");
    check_finite(x, size_t(n) * d, "the vectors to encode");
    encode_standalone(n, x, bytes);
}

void Index::encode_standalone(idx_t, const float*, uint8_t*) const {
    throw NotSupported("standalone codec not implemented for this type of index");
}

void Index::sa_decode(idx_t, const uint8_t*, float*) const {
    throw NotSupported("standalone codec not implemented for this type of index");
}

size_t Index::remove_ids(const IDSelector&) {
    throw NotSupported("remove_ids not implemented for this type of index");
}

void Index::merge_from(Index&, idx_t) { throw NotSupported("merge_from not implemented for this type of index"); }

void Index::check_search_args(idx_t n, const float* x, idx_t k) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of queries must be non-negative");
    NEARLY_CHECK_ARG(k > 0, "k must be positive (got " + std::to_string(k) + ")");
    if (!metric_accepts_nan(metric_type)) check_finite(x, size_t(n) * d, "the query array");
}

void Index::check_writable() const {
    if (read_only)
        throw NotSupported("this index was read with IO_FLAG_READ_ONLY or IO_FLAG_MMAP and cannot be modified");
}

void Index::check_add_args(idx_t n, const float* x) const {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    if (!is_trained) throw NotSupported("the index is not trained: call train() before add()");
    if (!metric_accepts_nan(metric_type)) check_finite(x, size_t(n) * d, "the vectors to add");
}

float missing_distance(MetricType metric) { return is_similarity_metric(metric) ? -FLT_MAX : FLT_MAX; }

void check_new_storage(const Index& graph, const Index* storage, const char* who) {
    const std::string w(who);
    NEARLY_CHECK_ARG(storage != nullptr, w + ": storage must be an index");
    NEARLY_CHECK_ARG(storage != &graph, w + ": an index cannot be its own storage");
    NEARLY_CHECK_ARG(storage->d == graph.d, w + ": the new storage has d = " + std::to_string(storage->d) +
                                                ", the index d = " + std::to_string(graph.d));
    NEARLY_CHECK_ARG(storage->metric_type == graph.metric_type, w + ": the new storage has another metric");
}

void check_row_range(idx_t i0, idx_t ni, idx_t ntotal) {
    NEARLY_CHECK_ARG(ni >= 0, "ni must be non-negative");
    if (i0 < 0 || i0 + ni > ntotal)
        throw OutOfRange("key " + std::to_string(i0) + (ni == 1 ? "" : " + " + std::to_string(ni)) +
                         " is out of range for an index of " + std::to_string(ntotal) + " vectors");
}

void check_permutation(const idx_t* perm, idx_t n) {
    std::vector<char> seen(size_t(n), 0);
    for (idx_t i = 0; i < n; i++) {
        NEARLY_CHECK_ARG(perm[i] >= 0 && perm[i] < n && !seen[size_t(perm[i])],
                         "permute_entries: perm must be a permutation of 0 .. ntotal - 1");
        seen[size_t(perm[i])] = 1;
    }
}

}  // namespace nearly
