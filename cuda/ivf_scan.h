// The list-scanning and encoding kernels of the GPU IVF indexes.
#pragma once
#include <cstdint>

#include "gpu_resources.h"

namespace nearly::gpu {

// One block per (query, probe): the k best of the probed list as keys where
// smaller is better (L2 distance, or minus the inner product), written to
// cand / cand_ids at ((q * np) + p) * k; missing as FLT_MAX / -1.
void ivf_flat_scan(GpuResources& res, const float* xq, int64_t nq, int d, const int64_t* coarse_i, int np,
                   const float* vectors, const int64_t* ids, const int64_t* offsets, bool l2, int k, float* cand,
                   int64_t* cand_ids);

// qtab: nq x (M * 256) inner products <q_m, C_m[j]>; list_tab (L2 only):
// nlist x (M * 256); coarse_d: the query's distance (L2) or inner product
// (IP) to the probed list's centroid.
void ivfpq_scan(GpuResources& res, const float* qtab, const float* list_tab, const float* coarse_d,
                const int64_t* coarse_i, int64_t nq, int np, int M, const uint8_t* codes, const int64_t* ids,
                const int64_t* offsets, bool l2, int k, float* cand, int64_t* cand_ids, bool fp16_tables = false);

// Inner product only: one block per (query, group of kIpProbesPerBlock
// probes), one table per block; candidates at ((q * groups) + g) * k.
constexpr int kIpProbesPerBlock = 8;
int ivfpq_ip_groups(int np);
void ivfpq_scan_ip(GpuResources& res, const float* qtab, const float* coarse_d, const int64_t* coarse_i, int64_t nq,
                   int np, int M, const uint8_t* codes, const int64_t* ids, const int64_t* offsets, int k,
                   float* cand, int64_t* cand_ids, bool fp16_tables = false);

// codes[i * M + m] = nearest codeword of sub-quantizer m to the residual
// x_i - centroids[assign_i] (or x_i itself when centroids is null).
void pq_encode(GpuResources& res, const float* x, const int64_t* assign, const float* centroids, int64_t n, int d,
               int M, int dsub, const float* pq, uint8_t* codes);

// out = x - centroids[assign] row by row.
void residuals(GpuResources& res, const float* x, const int64_t* assign, const float* centroids, int64_t n, int d,
               float* out);

// dst[dest[i]] = src[i], rows of `bytes` bytes (ids: 8-byte rows).
void scatter_rows(GpuResources& res, const uint8_t* src, const int64_t* dest, int64_t n, size_t bytes, uint8_t* dst);

// y = -x in place (inner-product results come out of the selection negated).
void negate(GpuResources& res, float* x, int64_t n);

}  // namespace nearly::gpu
