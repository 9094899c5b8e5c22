// A query against row j of a float matrix, smaller is better: squared L2,
// or minus the inner product (the graph builds and walks over plain float
// vectors: NSG, NN-descent). Private to cpp/src.
#pragma once
#include <cstddef>

#include "nearly/simd.h"

namespace nearly {

struct RowScorer {
    const float* xb;
    size_t d;
    bool ip;
    const SimdKernels& K = simd();
    float operator()(const float* q, size_t j) const {
        const float* v = xb + j * d;
        return ip ? -K.inner_product(q, v, d) : K.l2sqr(q, v, d);
    }
    float operator()(size_t i, size_t j) const { return (*this)(xb + i * d, j); }  // row to row
};

}  // namespace nearly
