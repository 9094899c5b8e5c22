// Exact distance computations over plain float matrices (row-major, n x d):
// the engine of IndexFlat, knn() and pairwise_distances().
#pragma once
#include <cstddef>

#include "nearly/common.h"
#include "nearly/index.h"
#include "nearly/selector.h"

namespace nearly {

// k nearest rows of xb for each row of xq. D, I: nq x k, sorted best first,
// padded with (+-FLT_MAX, -1). xb_norms (squared L2 norms of xb) is optional
// and only used for METRIC_L2. Ties go to the smaller id.
void knn_exhaustive(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType metric,
                    size_t k, float* D, idx_t* I, const IDSelector* sel = nullptr,
                    const float* xb_norms = nullptr);

// All rows of xb within radius (L2: distance < radius, IP: product > radius),
// in database order for each query.
void range_exhaustive(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType metric,
                      float radius, RangeSearchResult& result, const IDSelector* sel = nullptr,
                      const float* xb_norms = nullptr);

// out[i * nb + j] = squared L2 distance or inner product of xq_i and xb_j.
void pairwise_distances(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType metric,
                        float* out);

// out[i * nx + j] = <q_i, x_j>, through the packed micro-kernel of the active
// SIMD level (what knn_exhaustive uses for batches).
void gemm_ip(const float* q, size_t nq, const float* x, size_t nx, size_t d, float* out);

void norms_L2sqr(const float* x, size_t n, size_t d, float* out);
void normalize_L2(float* x, size_t n, size_t d);  // zero rows stay zero

}  // namespace nearly
