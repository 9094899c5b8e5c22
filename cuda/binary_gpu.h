// Binary codes on the GPU: Hamming k-NN (faiss's GpuIndexBinaryFlat) and the
// SDC scores of recurrent binary codes (BEBR), both as integer distances
// computed with popcounts over a (queries x codes) tile held in shared
// memory, then selected like exact float search.
#pragma once
#include <cstdint>

#include "gpu_resources.h"
#include "nearly/common.h"

namespace nearly::gpu {

struct GpuIndexBinaryFlat {
    ResourcesPtr res;
    const int d;  // bits
    const int code_size;
    idx_t ntotal = 0;

    GpuIndexBinaryFlat(ResourcesPtr res, int d_bits);
    // codes: n x code_size bytes, host or device.
    void add(idx_t n, const uint8_t* codes);
    // D: Hamming distances (int32), I: ids; missing: 2147483647 / -1 (faiss).
    void search(idx_t n, const uint8_t* queries, idx_t k, int32_t* D, idx_t* I) const;
    void reset();
    void reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const;

   private:
    int words_;  // 32-bit words per stored (zero-padded) code
    DeviceVector<uint32_t> xb_;
};

// SDC k-NN over canonical recurrent codes (m dims, nb bit planes, plane-major,
// m a multiple of 32): the k largest scores S = 2^(2u) <b_q, b_x> per query,
// as integers, with their row numbers. Host or device arrays.
void sdc_knn(GpuResources& res, const uint8_t* qcodes, idx_t nq, const uint8_t* xcodes, idx_t nx, int m, int nb,
             int k, int32_t* S, idx_t* I);

// Throws InvalidArgument unless the GPU SDC scan takes codes of this shape:
// 1 <= nb <= 4, m a multiple of 32, at most 256 bytes per code.
void sdc_check_gpu_shape(int m, int nb);

// The tile sdc_knn selects from: tile[r * cols + c] = -S(query r, code c) as
// a float (exact: |S| < 2^24), for rows queries and cols codes given as
// canonical codes in 32-bit words (m * nb / 32 per code) on the device.
// Queued on res's stream; the caller holds the call lock.
void sdc_tile(GpuResources& res, const uint32_t* q, int64_t rows, const uint32_t* x, int64_t cols, int m, int nb,
              float* tile);

}  // namespace nearly::gpu
