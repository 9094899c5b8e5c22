#include <cuda_fp16.h>

#include "ivf_scan.h"
#include "warp_score.cuh"
#include "select_k.cuh"

namespace nearly::gpu {

namespace {

// PQ tables in shared memory as float32, or float16 (half the memory, more
// blocks per multiprocessor; faiss's useFloat16LookupTables).
__device__ inline void put(float* t, int i, float v) { t[i] = v; }
__device__ inline void put(__half* t, int i, float v) { t[i] = __float2half_rn(v); }
__device__ inline float get(const float* t, int i) { return t[i]; }
__device__ inline float get(const __half* t, int i) { return __half2float(t[i]); }

template <class Sel>
__device__ void write_candidates(Sel& sel, int k, int64_t list_begin, const int64_t* ids, float* cand,
                                 int64_t* cand_ids) {
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        int32_t p = sel.pos[i];
        cand[i] = p < 0 ? FLT_MAX : sel.key[i];
        cand_ids[i] = p < 0 ? -1 : ids[list_begin + p];
    }
}

// A warp per vector: lanes read consecutive floats (coalesced), then reduce.
template <int BLOCK, int S, int R, int VPW>
__global__ void __launch_bounds__(BLOCK) ivf_flat_scan_kernel(const float* xq, int d, const int64_t* coarse_i, int np,
                                                              const float* vecs, const int64_t* ids,
                                                              const int64_t* offsets, bool l2, int k, float* cand,
                                                              int64_t* cand_ids) {
    extern __shared__ float q[];
    __shared__ BlockSelect<BLOCK, S, R> sel;
    const int p = blockIdx.x;
    const int64_t qi = blockIdx.y;
    for (int j = threadIdx.x; j < d; j += BLOCK) q[j] = xq[qi * d + j];
    const int64_t l = coarse_i[qi * np + p];
    const int64_t b = l >= 0 ? offsets[l] : 0, e = l >= 0 ? offsets[l + 1] : 0;
    sel.init(k);
    constexpr int kWarps = BLOCK / 32;
    const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
    SelectRound s;
    for (int64_t base = b; base < e; base += kWarps * VPW) {
        sel.begin_round(s, kWarps * VPW);
        for (int v = 0; v < VPW; v++) {
            int64_t idx = base + v * kWarps + w;
            if (idx >= e) break;
            const float sc = warp_score(q, vecs + idx * d, d, l2, lane);
            if (lane == 0) sel.offer(s, sc, int32_t(idx - b));
        }
        sel.end_round(s);
    }
    sel.finish(s);
    int64_t o = (qi * np + p) * k;
    write_candidates(sel, k, b, ids, cand + o, cand_ids + o);
}

template <int BLOCK, int S, int R, class LutT>
__global__ void __launch_bounds__(BLOCK) ivfpq_scan_kernel(const float* qtab, const float* list_tab,
                                                           const float* coarse_d, const int64_t* coarse_i, int np,
                                                           int M, const uint8_t* codes, const int64_t* ids,
                                                           const int64_t* offsets, bool l2, int k, float* cand,
                                                           int64_t* cand_ids) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    LutT* lut = reinterpret_cast<LutT*>(smem_raw);  // M x 256
    __shared__ BlockSelect<BLOCK, S, R> sel;
    const int p = blockIdx.x;
    const int64_t qi = blockIdx.y;
    const int64_t l = coarse_i[qi * np + p];
    const int64_t b = l >= 0 ? offsets[l] : 0, e = l >= 0 ? offsets[l + 1] : 0;
    const int T = M * 256;
    if (l >= 0) {
        const float* qt = qtab + qi * T;
        if (l2) {
            const float* lt = list_tab + l * T;
            for (int i = threadIdx.x; i < T; i += BLOCK) put(lut, i, lt[i] - 2.f * qt[i]);
        } else {
            for (int i = threadIdx.x; i < T; i += BLOCK) put(lut, i, qt[i]);
        }
    }
    const float base_term = l >= 0 ? coarse_d[qi * np + p] : 0.f;
    sel.init(k);  // its barrier also publishes the table
    SelectRound s;
    const bool words = M % 4 == 0;
    for (int64_t base = b; base < e; base += BLOCK * R) {
        sel.begin_round(s, BLOCK * R);
#pragma unroll
        for (int r = 0; r < R; r++) {
            int64_t idx = base + r * BLOCK + threadIdx.x;
            if (idx >= e) break;
            const uint8_t* c = codes + idx * M;
            float acc = base_term;
            if (words) {
                const uint32_t* cw = reinterpret_cast<const uint32_t*>(c);
                for (int m4 = 0; m4 < M / 4; m4++) {
                    uint32_t v = cw[m4];
                    const LutT* t = lut + m4 * 1024;
                    acc += get(t, v & 255) + get(t, 256 + ((v >> 8) & 255)) + get(t, 512 + ((v >> 16) & 255)) +
                           get(t, 768 + (v >> 24));
                }
            } else {
                for (int m = 0; m < M; m++) acc += get(lut, m * 256 + c[m]);
            }
            sel.offer(s, l2 ? acc : -acc, int32_t(idx - b));
        }
        sel.end_round(s);
    }
    sel.finish(s);
    int64_t o = (qi * np + p) * k;
    write_candidates(sel, k, b, ids, cand + o, cand_ids + o);
}

// Inner product: the table <q_m, C_m[j]> does not depend on the list, so one
// block builds it once and scans a group of G probed lists with it.
template <int BLOCK, int S, int R, class LutT>
__global__ void __launch_bounds__(BLOCK) ivfpq_scan_ip_kernel(const float* qtab, const float* coarse_d,
                                                              const int64_t* coarse_i, int np, int G, int M,
                                                              const uint8_t* codes, const int64_t* ids,
                                                              const int64_t* offsets, int k, float* cand,
                                                              int64_t* cand_ids) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    LutT* lut = reinterpret_cast<LutT*>(smem_raw);  // M x 256
    __shared__ BlockSelect<BLOCK, S, R> sel;
    const int g = blockIdx.x;
    const int64_t qi = blockIdx.y;
    const int T = M * 256;
    const float* qt = qtab + qi * T;
    for (int i = threadIdx.x; i < T; i += BLOCK) put(lut, i, qt[i]);
    sel.init(k);
    SelectRound s;
    const bool words = M % 4 == 0;
    for (int p = g * G; p < np && p < (g + 1) * G; p++) {
        const int64_t l = coarse_i[qi * np + p];
        if (l < 0) continue;
        const int64_t b = offsets[l], e = offsets[l + 1];
        const float base_term = coarse_d[qi * np + p];
        for (int64_t base = b; base < e; base += BLOCK * R) {
            sel.begin_round(s, BLOCK * R);
#pragma unroll
            for (int r = 0; r < R; r++) {
                int64_t idx = base + r * BLOCK + threadIdx.x;
                if (idx >= e) break;
                const uint8_t* c = codes + idx * M;
                float acc = base_term;
                if (words) {
                    const uint32_t* cw = reinterpret_cast<const uint32_t*>(c);
                    for (int m4 = 0; m4 < M / 4; m4++) {
                        uint32_t v = cw[m4];
                        const LutT* t = lut + m4 * 1024;
                        acc += get(t, v & 255) + get(t, 256 + ((v >> 8) & 255)) + get(t, 512 + ((v >> 16) & 255)) +
                               get(t, 768 + (v >> 24));
                    }
                } else {
                    for (int m = 0; m < M; m++) acc += get(lut, m * 256 + c[m]);
                }
                // The position is the entry's global index: ids[] is read directly.
                sel.offer(s, -acc, int32_t(idx));
            }
            sel.end_round(s);
        }
    }
    sel.finish(s);
    int64_t o = (qi * ((np + G - 1) / G) + g) * k;
    write_candidates(sel, k, 0, ids, cand + o, cand_ids + o);
}

__global__ void pq_encode_kernel(const float* x, const int64_t* assign, const float* centroids, int64_t n, int d,
                                 int M, int dsub, const float* pq, uint8_t* codes) {
    extern __shared__ float cb[];  // 256 x dsub: this block's sub-quantizer
    const int m = blockIdx.y;
    for (int i = threadIdx.x; i < 256 * dsub; i += blockDim.x) cb[i] = pq[size_t(m) * 256 * dsub + i];
    __syncthreads();
    int64_t v = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (v >= n) return;
    float r[64];
    const float* xv = x + v * d + m * dsub;
    const float* cv = centroids ? centroids + assign[v] * d + m * dsub : nullptr;
    for (int j = 0; j < dsub; j++) r[j] = xv[j] - (cv ? cv[j] : 0.f);
    float best = FLT_MAX;
    int arg = 0;
    for (int c = 0; c < 256; c++) {
        const float* y = cb + c * dsub;
        float dd = 0.f;
        for (int j = 0; j < dsub; j++) {
            float t = r[j] - y[j];
            dd = fmaf(t, t, dd);
        }
        if (dd < best) {
            best = dd;
            arg = c;
        }
    }
    codes[v * M + m] = uint8_t(arg);
}

__global__ void residuals_kernel(const float* x, const int64_t* assign, const float* centroids, int64_t n, int d,
                                 float* out) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= n * d) return;
    int64_t v = i / d;
    out[i] = x[i] - centroids[assign[v] * d + (i % d)];
}

__global__ void scatter_kernel(const uint8_t* src, const int64_t* dest, int64_t n, size_t bytes, uint8_t* dst) {
    int64_t i = blockIdx.x;
    if (i >= n) return;
    const uint8_t* s = src + i * bytes;
    uint8_t* t = dst + dest[i] * bytes;
    if (bytes % 4 == 0) {
        for (size_t j = threadIdx.x; j < bytes / 4; j += blockDim.x)
            reinterpret_cast<uint32_t*>(t)[j] = reinterpret_cast<const uint32_t*>(s)[j];
    } else {
        for (size_t j = threadIdx.x; j < bytes; j += blockDim.x) t[j] = s[j];
    }
}

__global__ void negate_kernel(float* x, int64_t n) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) x[i] = -x[i];
}

// Dynamic shared memory beyond the default 48 KB (static included) must be
// opted into per kernel.
template <class Kernel>
void allow_shared(Kernel kernel, size_t bytes) {
    NEARLY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace

void ivf_flat_scan(GpuResources& res, const float* xq, int64_t nq, int d, const int64_t* coarse_i, int np,
                   const float* vectors, const int64_t* ids, const int64_t* offsets, bool l2, int k, float* cand,
                   int64_t* cand_ids) {
    if (nq == 0) return;
    size_t smem = size_t(d) * 4;
    with_select_config(k, [&](auto cfg) {
        using C = decltype(cfg);
        auto kern = ivf_flat_scan_kernel<C::kBlock, C::kSlots, C::kItems, 8>;
        allow_shared(kern, smem);
        kern<<<dim3(np, unsigned(nq)), C::kBlock, smem, res.stream()>>>(xq, d, coarse_i, np, vectors, ids, offsets, l2,
                                                                         k, cand, cand_ids);
    });
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void ivfpq_scan(GpuResources& res, const float* qtab, const float* list_tab, const float* coarse_d,
                const int64_t* coarse_i, int64_t nq, int np, int M, const uint8_t* codes, const int64_t* ids,
                const int64_t* offsets, bool l2, int k, float* cand, int64_t* cand_ids, bool fp16_tables) {
    if (nq == 0) return;
    size_t smem = size_t(M) * 256 * (fp16_tables ? 2 : 4);
    with_select_config(k, [&](auto cfg) {
        using C = decltype(cfg);
        auto run = [&](auto kern) {
            allow_shared(kern, smem);
            kern<<<dim3(np, unsigned(nq)), C::kBlock, smem, res.stream()>>>(qtab, list_tab, coarse_d, coarse_i, np, M,
                                                                             codes, ids, offsets, l2, k, cand, cand_ids);
        };
        if (fp16_tables)
            run(ivfpq_scan_kernel<C::kBlock, C::kSlots, C::kItems, __half>);
        else
            run(ivfpq_scan_kernel<C::kBlock, C::kSlots, C::kItems, float>);
    });
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

int ivfpq_ip_groups(int np) { return (np + kIpProbesPerBlock - 1) / kIpProbesPerBlock; }

void ivfpq_scan_ip(GpuResources& res, const float* qtab, const float* coarse_d, const int64_t* coarse_i, int64_t nq,
                   int np, int M, const uint8_t* codes, const int64_t* ids, const int64_t* offsets, int k,
                   float* cand, int64_t* cand_ids, bool fp16_tables) {
    if (nq == 0) return;
    size_t smem = size_t(M) * 256 * (fp16_tables ? 2 : 4);
    const int groups = ivfpq_ip_groups(np);
    with_select_config(k, [&](auto cfg) {
        using C = decltype(cfg);
        auto run = [&](auto kern) {
            allow_shared(kern, smem);
            kern<<<dim3(groups, unsigned(nq)), C::kBlock, smem, res.stream()>>>(
                qtab, coarse_d, coarse_i, np, kIpProbesPerBlock, M, codes, ids, offsets, k, cand, cand_ids);
        };
        if (fp16_tables)
            run(ivfpq_scan_ip_kernel<C::kBlock, C::kSlots, C::kItems, __half>);
        else
            run(ivfpq_scan_ip_kernel<C::kBlock, C::kSlots, C::kItems, float>);
    });
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void pq_encode(GpuResources& res, const float* x, const int64_t* assign, const float* centroids, int64_t n, int d,
               int M, int dsub, const float* pq, uint8_t* codes) {
    if (n == 0) return;
    NEARLY_CHECK_ARG(dsub <= 64, "GPU PQ encoding supports at most 64 dimensions per sub-quantizer");
    size_t smem = size_t(256) * dsub * 4;
    allow_shared(pq_encode_kernel, smem);
    pq_encode_kernel<<<dim3(unsigned((n + 127) / 128), M), 128, smem, res.stream()>>>(x, assign, centroids, n, d, M,
                                                                                      dsub, pq, codes);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void residuals(GpuResources& res, const float* x, const int64_t* assign, const float* centroids, int64_t n, int d,
               float* out) {
    if (n == 0) return;
    residuals_kernel<<<unsigned((n * d + 255) / 256), 256, 0, res.stream()>>>(x, assign, centroids, n, d, out);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void scatter_rows(GpuResources& res, const uint8_t* src, const int64_t* dest, int64_t n, size_t bytes, uint8_t* dst) {
    if (n == 0) return;
    scatter_kernel<<<unsigned(n), 64, 0, res.stream()>>>(src, dest, n, bytes, dst);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void negate(GpuResources& res, float* x, int64_t n) {
    if (n == 0) return;
    negate_kernel<<<unsigned((n + 255) / 256), 256, 0, res.stream()>>>(x, n);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace nearly::gpu
