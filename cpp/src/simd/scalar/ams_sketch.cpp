// Scalar reference of ams_sketch_block (see ams_sketch.h); compiled with
// -ffp-contract=off.
#include <algorithm>

#include "nearly/ams_sketch.h"

namespace nearly {

void ams_sketch_block_scalar(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                             const uint32_t* input, const float* sign, size_t n_out, float* out) {
    const size_t np = (m + 7) / 8 * 8;
    for (size_t i = 0; i < d; i++)
        for (size_t p = 0; p < np; p++) t[i * np + p] = p < m ? points[p * d + i] : 0.f;
    for (size_t o = 0; o < n_out; o++) {
        float* __restrict acc = out + o * np;
        std::fill(acc, acc + np, 0.f);
        for (uint32_t e = start[o]; e < start[o + 1]; e++) {
            const float s = sign[e];
            const float* __restrict row = t + size_t(input[e]) * np;
            for (size_t p = 0; p < np; p++) acc[p] += s * row[p];
        }
    }
}

}  // namespace nearly
