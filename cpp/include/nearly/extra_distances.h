// faiss's metrics beyond squared L2 and inner product, with faiss's
// definitions value for value (faiss/utils/extra_distances-inl.h), for exact
// search: IndexFlat (through IndexIDMap and IndexPreTransform too), knn() and
// pairwise_distances(), IndexHNSWFlat's walk and IndexIVFFlat (clustering
// and list scans). The quantized indexes take L2 and inner product only.
//
//   L1             sum |x - y|
//   Linf           max |x - y|
//   Lp             sum |x - y|^p, p = metric_arg (no root, like faiss)
//   Canberra       sum |x - y| / (|x| + |y|)
//   BrayCurtis     sum |x - y| / sum |x + y|
//   JensenShannon  (KL(x || m) + KL(y || m)) / 2, m = (x + y) / 2
//   Jaccard        sum min(x, y) / sum max(x, y)   (a similarity: larger is better)
//   NaNEuclidean   squared L2 over the components present in both, times d / present
//   GOWER          mean over components of |x - y| (numeric, in [0, 1]) or x != y
//                  (categorical: negative integers); NaN components skipped
//
// Undefined cases give NaN as in faiss (a zero component under Canberra or
// JensenShannon, a pair with nothing in common under NaNEuclidean or GOWER),
// and a NaN score never enters a top-k.
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>

#include "nearly/common.h"
#include "nearly/index.h"
#include "nearly/selector.h"

namespace nearly {

bool is_extra_metric(MetricType m);       // one of the metrics above
bool is_similarity_metric(MetricType m);  // inner product, Jaccard
bool metric_accepts_nan(MetricType m);    // NaNEuclidean, GOWER: NaN marks a missing component
// A metric id from the caller: InvalidArgument unless it is one of faiss's.
MetricType checked_metric(int metric);

// One of the metrics above as a walk's score, smaller is better: a
// similarity negated, and an undefined (NaN) score +inf, never better than
// anything (a graph walk can still leave such a node; its results skip it).
float extra_score(MetricType m, float metric_arg, const float* q, const float* v, size_t d);
// The same from a metric value already computed (extra_distances_ny's).
inline float extra_score_of(MetricType m, float value) {
    if (std::isnan(value)) return std::numeric_limits<float>::infinity();
    return is_similarity_metric(m) ? -value : value;
}

// Scalar reference: out[j] = metric(q, x_j) for ny rows of x.
void extra_distances_ny(MetricType m, float metric_arg, const float* q, const float* x, size_t d, size_t ny,
                        float* out);

// k best rows of xb per query, best first (ascending, descending for a
// similarity), ties to the smaller id; missing results (FLT_MAX or -FLT_MAX, -1).
void knn_extra(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType m, float metric_arg,
               size_t k, float* D, idx_t* I, const IDSelector* sel = nullptr);
// Rows with a score below radius (above it for a similarity), in row order.
void range_extra(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType m, float metric_arg,
                 float radius, RangeSearchResult& result, const IDSelector* sel = nullptr);
void pairwise_extra(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType m,
                    float metric_arg, float* out);

}  // namespace nearly
