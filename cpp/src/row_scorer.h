// A query against row j of a float matrix, smaller is better: squared L2,
// minus the inner product, or one of faiss's extra metrics as extra_score
// gives it (the graph builds and walks over plain float vectors: NSG,
// NN-descent). Private to cpp/src.
#pragma once
#include <cstddef>

#include "nearly/extra_distances.h"
#include "nearly/simd.h"

namespace nearly {

struct RowScorer {
    const float* xb;
    size_t d;
    MetricType metric;
    float metric_arg = 0.f;
    const SimdKernels& K = simd();
    float operator()(const float* q, size_t j) const {
        const float* v = xb + j * d;
        if (metric == METRIC_L2) return K.l2sqr(q, v, d);
        if (metric == METRIC_INNER_PRODUCT) return -K.inner_product(q, v, d);
        return extra_score(metric, metric_arg, q, v, d);
    }
    float operator()(size_t i, size_t j) const { return (*this)(xb + i * d, j); }  // row to row
};

}  // namespace nearly
