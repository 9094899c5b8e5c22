#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <mutex>
#include <string>
#include <vector>

#include "chamfer_gpu.h"
#include "nearly/ragged.h"
#include "vector_ops.h"

namespace nearly::gpu {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// Dynamic shared memory per block: below the 48 KiB every device grants
// without an opt-in, and small enough for several blocks per SM.
constexpr size_t kSharedBytes = 40 << 10;

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const __half* p) { return __half2float(*p); }

// Block (i, j): query set i against document cand[i * n_cand + j] (or j).
// REGS > 0: each lane keeps its REGS coordinates of the document vector in
// registers (d <= 32 * REGS); REGS == 0 reads them from global memory for
// every query vector (any d). Both add the products in the same order: lane
// l sums coordinates l, l + 32, ... with fused multiply-adds, then the lanes
// are combined by a fixed xor butterfly.
template <class T, int REGS>
__global__ void __launch_bounds__(kThreads)
    chamfer_kernel(const float* __restrict__ q, const int64_t* __restrict__ q_off, const T* __restrict__ x,
                   const int64_t* __restrict__ x_off, const int64_t* __restrict__ cand, int64_t n_cand, int d,
                   int q_chunk, float* __restrict__ scores) {
    extern __shared__ float smem[];
    float* qs = smem;                        // q_chunk x d query vectors
    float* best = smem + size_t(q_chunk) * d;  // kWarps x q_chunk maxima
    const int64_t i = blockIdx.x / n_cand, j = blockIdx.x % n_cand;
    const int64_t doc = cand ? cand[blockIdx.x] : j;
    if (doc < 0) {  // the same for the whole block: no barrier is skipped by some threads only
        if (threadIdx.x == 0) scores[blockIdx.x] = -FLT_MAX;
        return;
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t q0 = q_off[i], q1 = q_off[i + 1], t0 = x_off[doc], t1 = x_off[doc + 1];
    float sum = 0.f;  // thread 0's: the maxima in query-vector order, like the CPU
    for (int64_t a0 = q0; a0 < q1; a0 += q_chunk) {
        const int qc = q1 - a0 < q_chunk ? int(q1 - a0) : q_chunk;
        __syncthreads();  // the previous chunk is no longer read
        for (int e = threadIdx.x; e < qc * d; e += kThreads) qs[e] = q[a0 * d + e];
        for (int e = threadIdx.x; e < kWarps * qc; e += kThreads) best[e] = -FLT_MAX;
        __syncthreads();
        for (int64_t t = t0 + warp; t < t1; t += kWarps) {
            const T* xt = x + t * d;
            float xr[REGS > 0 ? REGS : 1];
            if (REGS > 0) {
#pragma unroll
                for (int r = 0; r < REGS; r++) {
                    const int c = lane + 32 * r;
                    xr[r] = c < d ? load(xt + c) : 0.f;
                }
            }
            for (int a = 0; a < qc; a++) {
                const float* qa = qs + a * d;
                float acc = 0.f;
                if (REGS > 0) {
#pragma unroll
                    for (int r = 0; r < REGS; r++) {
                        const int c = lane + 32 * r;
                        if (c < d) acc = __fmaf_rn(qa[c], xr[r], acc);
                    }
                } else {
                    for (int c = lane; c < d; c += 32) acc = __fmaf_rn(qa[c], load(xt + c), acc);
                }
                for (int o = 16; o > 0; o >>= 1) acc = __fadd_rn(acc, __shfl_xor_sync(0xffffffffu, acc, o));
                if (lane == 0) best[warp * qc + a] = fmaxf(best[warp * qc + a], acc);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int a = 0; a < qc; a++) {
                float m = best[a];
                for (int w = 1; w < kWarps; w++) m = fmaxf(m, best[w * qc + a]);
                sum = __fadd_rn(sum, m);
            }
        }
    }
    if (threadIdx.x == 0) scores[blockIdx.x] = sum;
}

template <class T>
void launch(GpuResources& res, const float* q, const int64_t* q_off, const T* x, const int64_t* x_off,
            const int64_t* cand, int64_t n_cand, int d, int q_chunk, int64_t blocks, float* scores) {
    const size_t smem = (size_t(q_chunk) * d + size_t(kWarps) * q_chunk) * sizeof(float);
    const unsigned g = unsigned(blocks);
    cudaStream_t st = res.stream();
    if (d <= 32 * 4)
        chamfer_kernel<T, 4><<<g, kThreads, smem, st>>>(q, q_off, x, x_off, cand, n_cand, d, q_chunk, scores);
    else if (d <= 32 * 16)
        chamfer_kernel<T, 16><<<g, kThreads, smem, st>>>(q, q_off, x, x_off, cand, n_cand, d, q_chunk, scores);
    else
        chamfer_kernel<T, 0><<<g, kThreads, smem, st>>>(q, q_off, x, x_off, cand, n_cand, d, q_chunk, scores);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

__global__ void bad_candidates_kernel(const int64_t* cand, int64_t n, int64_t n_docs, int* flag) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
        if (cand[e] < -1 || cand[e] >= n_docs) *flag = 1;
}

std::vector<int64_t> as_int64(const std::vector<size_t>& v) { return std::vector<int64_t>(v.begin(), v.end()); }

int64_t longest(const std::vector<size_t>& off) {
    int64_t m = 0;
    for (size_t s = 0; s + 1 < off.size(); s++) m = std::max(m, int64_t(off[s + 1] - off[s]));
    return m;
}

}  // namespace

void chamfer_scores_device(GpuResources& res, const float* q, const int64_t* q_offsets, int64_t nq,
                           const DeviceDocs& docs, const int64_t* cand, int64_t n_cand, int64_t max_query_len,
                           float* scores) {
    NEARLY_CHECK_ARG(docs.d > 0, "chamfer: the dimension must be positive");
    if (!cand) n_cand = docs.n_docs;
    if (nq <= 0 || n_cand <= 0) return;
    // Query vectors per shared-memory chunk: as many as fit, no more than the
    // longest set needs.
    const int64_t fit = int64_t(kSharedBytes / sizeof(float)) / (int64_t(docs.d) + kWarps);
    if (fit < 1)
        throw NotSupported("GPU Chamfer scores support d up to " +
                           std::to_string(kSharedBytes / sizeof(float) - kWarps) + " (got " +
                           std::to_string(docs.d) + ")");
    const int q_chunk = int(std::max<int64_t>(1, std::min(fit, max_query_len)));
    // One block per (query set, candidate); the grid is 1-D, so batches of
    // query sets keep the block count below 2^31.
    const int64_t per = std::max<int64_t>(1, (int64_t(1) << 30) / n_cand);
    for (int64_t i0 = 0; i0 < nq; i0 += per) {
        const int64_t nb = std::min(per, nq - i0);
        const int64_t* c = cand ? cand + i0 * n_cand : nullptr;
        float* s = scores + i0 * n_cand;
        if (docs.fp16)
            launch(res, q, q_offsets + i0, static_cast<const __half*>(docs.vectors), docs.offsets, c, n_cand, docs.d,
                   q_chunk, nb * n_cand, s);
        else
            launch(res, q, q_offsets + i0, static_cast<const float*>(docs.vectors), docs.offsets, c, n_cand, docs.d,
                   q_chunk, nb * n_cand, s);
    }
}

void chamfer_scores(GpuResources& res, const float* q, size_t n_query_vectors, const int64_t* query_lengths,
                    size_t nq, const float* docs, size_t n_doc_vectors, const int64_t* doc_lengths, size_t n_docs,
                    int d, const int64_t* cand, size_t n_cand, float* scores) {
    NEARLY_CHECK_ARG(d > 0, "chamfer: the dimension must be positive");
    const std::vector<size_t> qoff = ragged_offsets(query_lengths, nq, n_query_vectors, "chamfer queries");
    const std::vector<size_t> xoff = ragged_offsets(doc_lengths, n_docs, n_doc_vectors, "chamfer documents");
    const size_t cols = cand ? n_cand : n_docs;
    if (nq == 0 || cols == 0) return;
    std::lock_guard<std::mutex> call(res.call_mutex());
    res.set_device();
    cudaStream_t st = res.stream();
    const bool q_dev = is_device_pointer(q), x_dev = is_device_pointer(docs);
    const bool c_dev = cand && is_device_pointer(cand), s_dev = is_device_pointer(scores);
    const size_t qn = n_query_vectors * size_t(d), xn = n_doc_vectors * size_t(d);
    if (q_dev)
        check_finite_device(res, q, int64_t(qn), "the query vectors");
    else
        check_finite(q, qn, "the query vectors");
    if (x_dev)
        check_finite_device(res, docs, int64_t(xn), "the document vectors");
    else
        check_finite(docs, xn, "the document vectors");

    Scratch<float> qbuf(res, q_dev ? 0 : qn), xbuf(res, x_dev ? 0 : xn), sbuf(res, s_dev ? 0 : nq * cols);
    Scratch<int64_t> qoff_dev(res, nq + 1), xoff_dev(res, n_docs + 1), cbuf(res, cand && !c_dev ? nq * cols : 0);
    if (!q_dev) NEARLY_CUDA_CHECK(cudaMemcpyAsync(qbuf.get(), q, qn * 4, cudaMemcpyHostToDevice, st));
    if (!x_dev) NEARLY_CUDA_CHECK(cudaMemcpyAsync(xbuf.get(), docs, xn * 4, cudaMemcpyHostToDevice, st));
    const std::vector<int64_t> qo = as_int64(qoff), xo = as_int64(xoff);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(qoff_dev.get(), qo.data(), qo.size() * 8, cudaMemcpyHostToDevice, st));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(xoff_dev.get(), xo.data(), xo.size() * 8, cudaMemcpyHostToDevice, st));
    const int64_t* c = cand;
    if (cand && !c_dev) {
        for (size_t e = 0; e < nq * cols; e++)
            if (cand[e] < -1 || cand[e] >= int64_t(n_docs))
                throw InvalidArgument("chamfer: document id " + std::to_string(cand[e]) + " is not in [0, " +
                                      std::to_string(n_docs) + ") (use -1 for an empty slot)");
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(cbuf.get(), cand, nq * cols * 8, cudaMemcpyHostToDevice, st));
        c = cbuf.get();
    } else if (cand) {
        Scratch<int> flag(res, 1);
        NEARLY_CUDA_CHECK(cudaMemsetAsync(flag.get(), 0, sizeof(int), st));
        const int64_t n = int64_t(nq * cols);
        bad_candidates_kernel<<<unsigned(std::min<int64_t>((n + 255) / 256, 4096)), 256, 0, st>>>(
            cand, n, int64_t(n_docs), flag.get());
        NEARLY_CUDA_CHECK(cudaGetLastError());
        int h = 0;
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(&h, flag.get(), sizeof(int), cudaMemcpyDeviceToHost, st));
        res.synchronize();
        if (h)
            throw InvalidArgument("chamfer: a document id is not in [0, " + std::to_string(n_docs) +
                                  ") (use -1 for an empty slot)");
    }
    DeviceDocs dd;
    dd.vectors = x_dev ? static_cast<const void*>(docs) : xbuf.get();
    dd.offsets = xoff_dev.get();
    dd.n_docs = int64_t(n_docs);
    dd.d = d;
    float* out = s_dev ? scores : sbuf.get();
    chamfer_scores_device(res, q_dev ? q : qbuf.get(), qoff_dev.get(), int64_t(nq), dd, c, int64_t(cols),
                          longest(qoff), out);
    if (!s_dev) NEARLY_CUDA_CHECK(cudaMemcpyAsync(scores, out, nq * cols * 4, cudaMemcpyDeviceToHost, st));
    res.synchronize();
}

}  // namespace nearly::gpu
