// Small elementwise and per-row kernels the indexes share.
#pragma once
#include <cstdint>

#include "gpu_resources.h"

namespace nearly::gpu {

// out[i] = squared L2 norm of row i of x (n x d, row-major; float or half).
void row_norms(GpuResources& res, const float* x, int64_t n, int d, float* out);
void row_norms_fp16(GpuResources& res, const uint16_t* x, int64_t n, int d, float* out);
// float32 -> float16 (round to nearest), and back.
void to_fp16(GpuResources& res, const float* x, int64_t n, uint16_t* out);
void from_fp16(GpuResources& res, const uint16_t* x, int64_t n, float* out);
// dst[i] = src[rows[i]] for rows of d floats.
void gather_rows(GpuResources& res, const float* src, const int64_t* rows, int64_t n, int d, float* dst);
// Sorts n (key, value) pairs by the key's low `bits` bits; stable, so equal
// keys keep their order (a radix sort: the result does not vary from run to run).
void sort_pairs_by_key(GpuResources& res, const int32_t* keys_in, int32_t* keys_out, const int32_t* vals_in,
                       int32_t* vals_out, int64_t n, int bits);
// Throws InvalidArgument naming `what` when x (device) holds a NaN or an infinity.
void check_finite_device(GpuResources& res, const float* x, int64_t n, const char* what);

}  // namespace nearly::gpu
