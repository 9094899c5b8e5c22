// Top-k of each row of a device matrix (the GPU twin of the CPU heaps).
#pragma once
#include <cstdint>

#include "gpu_resources.h"

namespace nearly::gpu {

// in: rows x cols floats (device, row-major); in_ids: the same shape of ids
// or null (then the column number is the id). out / out_ids: rows x k,
// sorted best first; missing results are id -1 with FLT_MAX (-FLT_MAX when
// largest). Any k >= 1: k <= 2048 selects in shared memory in one pass over
// the data; larger k sorts each row (slower, but exact).
void select_k(GpuResources& res, const float* in, const int64_t* in_ids, int64_t rows, int64_t cols, int k,
              bool largest, float* out, int64_t* out_ids);

}  // namespace nearly::gpu
