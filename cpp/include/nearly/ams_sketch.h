// The sparse +-1 projection of the FDE encoder (an AMS sketch: every input
// coordinate added, with a random sign, to one output coordinate), applied
// to a block of points at once, one kernel per SIMD level.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nearly {

// Points per call, at most; a call takes np = a multiple of 8 up to this.
constexpr size_t kAmsMaxBlock = 32;

// points: m <= kAmsMaxBlock points of d coordinates, row-major (row stride
// d). t: scratch of d * np floats, np = m rounded up to a multiple of 8.
// For every output o < n_out and point p < m:
//   out[o * np + p] = (((+0 + s_e0 * x_p[i_e0]) + s_e1 * x_p[i_e1]) + ...)
// over e = start[o] .. start[o + 1] - 1 in that order, i_e = input[e],
// s_e = sign[e] in {+1, -1}. The products are exact (a sign change), so the
// sums are the same bits at every level whether the add is fused or not;
// the order is the reference's (its dense product adds the inputs of each
// output in increasing order). Columns p >= m of out hold garbage.
void ams_sketch_block(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                      const uint32_t* input, const float* sign, size_t n_out, float* out);

// Per level (cpp/src/simd/<isa>/ams_sketch.cpp); the scalar one is the reference.
void ams_sketch_block_scalar(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                             const uint32_t* input, const float* sign, size_t n_out, float* out);
void ams_sketch_block_avx2(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                           const uint32_t* input, const float* sign, size_t n_out, float* out);
void ams_sketch_block_avx512(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                             const uint32_t* input, const float* sign, size_t n_out, float* out);

}  // namespace nearly
