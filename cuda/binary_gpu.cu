#include "binary_gpu.h"

#include <climits>
#include <mutex>
#include <vector>

#include "knn.h"
#include "select_k.cuh"

namespace nearly::gpu {

namespace {

constexpr int kTQ = 16, kTX = 128, kThreads = 256, kMaxWords = 64;

// Tile of keys (smaller is better): Hamming distance, or minus the SDC score.
// Block: kTQ queries x kTX codes with both sets of codes in shared memory,
// kMaxWords words at a time (SDC codes fit in one piece).
__global__ void __launch_bounds__(kThreads) popcount_tile_kernel(const uint32_t* q, int64_t nq, const uint32_t* x,
                                                                 int64_t nx, int W, int sdc_m, int sdc_nb,
                                                                 float* tile) {
    __shared__ uint32_t sq[kTQ][kMaxWords];
    __shared__ uint32_t sx[kTX][kMaxWords + 1];
    const int64_t q0 = int64_t(blockIdx.y) * kTQ, x0 = int64_t(blockIdx.x) * kTX;
    const int qi = threadIdx.x / 16, xj = threadIdx.x % 16;
    int acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const bool sdc = sdc_nb > 0;
    for (int w0 = 0; w0 < W; w0 += kMaxWords) {
        const int ww = min(kMaxWords, W - w0);
        for (int t = threadIdx.x; t < kTQ * ww; t += kThreads) {
            int r = t / ww, c = t % ww;
            sq[r][c] = q0 + r < nq ? q[(q0 + r) * W + w0 + c] : 0u;
        }
        for (int t = threadIdx.x; t < kTX * ww; t += kThreads) {
            int r = t / ww, c = t % ww;
            sx[r][c] = x0 + r < nx ? x[(x0 + r) * W + w0 + c] : 0u;
        }
        __syncthreads();
        if (!sdc) {
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const uint32_t* a = sq[qi];
                const uint32_t* b = sx[xj + 16 * t];
                int s = 0;
                for (int w = 0; w < ww; w++) s += __popc(a[w] ^ b[w]);
                acc[t] += s;
            }
        } else {
            // S = sum_ij 2^(u-i) 2^(u-j) (m - 2 popcount(q_i ^ x_j)).
            const int wp = sdc_m / 32, u = sdc_nb - 1;
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const uint32_t* a = sq[qi];
                const uint32_t* b = sx[xj + 16 * t];
                int s = 0;
                for (int i = 0; i < sdc_nb; i++)
                    for (int j = 0; j < sdc_nb; j++) {
                        int p = 0;
                        for (int w = 0; w < wp; w++) p += __popc(a[i * wp + w] ^ b[j * wp + w]);
                        s += (1 << (2 * u - i - j)) * (sdc_m - 2 * p);
                    }
                acc[t] = s;
            }
        }
        __syncthreads();
    }
    if (q0 + qi >= nq) return;
#pragma unroll
    for (int t = 0; t < 8; t++) {
        int64_t c = x0 + xj + 16 * t;
        if (c < nx) tile[(q0 + qi) * nx + c] = sdc ? -float(acc[t]) : float(acc[t]);
    }
}

__global__ void to_int_kernel(const float* D, int64_t n, bool negate, int32_t pad, int32_t* out) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    float v = D[i];
    out[i] = v == FLT_MAX ? pad : int32_t(negate ? -v : v);
}

// Codes padded to whole 32-bit words, on the device.
void upload_words(GpuResources& res, const uint8_t* codes, idx_t n, int code_size, int words, uint32_t* dst) {
    cudaStream_t st = res.stream();
    if (code_size == words * 4) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(dst, codes, size_t(n) * code_size, cudaMemcpyDefault, st));
        return;
    }
    NEARLY_CUDA_CHECK(cudaMemsetAsync(dst, 0, size_t(n) * words * 4, st));
    NEARLY_CUDA_CHECK(cudaMemcpy2DAsync(dst, size_t(words) * 4, codes, code_size, code_size, n, cudaMemcpyDefault, st));
}

void launch_popcount_tile(GpuResources& res, const uint32_t* q, int64_t rows, const uint32_t* x, int64_t cols, int W,
                          int sdc_m, int sdc_nb, float* tile) {
    dim3 grid(unsigned((cols + kTX - 1) / kTX), unsigned((rows + kTQ - 1) / kTQ));
    popcount_tile_kernel<<<grid, kThreads, 0, res.stream()>>>(q, rows, x, cols, W, sdc_m, sdc_nb, tile);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

// Runs the k-NN pipeline with popcount tiles; D (keys) and I on the device.
void popcount_knn(GpuResources& res, const uint32_t* q, idx_t nq, const uint32_t* x, idx_t nx, int W, int sdc_m,
                  int sdc_nb, int k, float* D, idx_t* I) {
    KnnArgs a;
    a.nq = nq;
    a.nb = nx;
    a.k = k;
    a.D = D;
    a.I = I;
    a.tile_fn = [&](int64_t q0, int64_t rows, int64_t j0, int64_t cols, float* tile) {
        launch_popcount_tile(res, q + q0 * W, rows, x + j0 * W, cols, W, sdc_m, sdc_nb, tile);
    };
    knn_exact(res, a);
}

}  // namespace

GpuIndexBinaryFlat::GpuIndexBinaryFlat(ResourcesPtr r, int d_bits) : res(std::move(r)), d(d_bits), code_size(d_bits / 8) {
    NEARLY_CHECK_ARG(res != nullptr, "GpuIndexBinaryFlat needs GPU resources");
    NEARLY_CHECK_ARG(d_bits > 0 && d_bits % 8 == 0, "the number of bits d must be a positive multiple of 8");
    words_ = (code_size + 3) / 4;
}

void GpuIndexBinaryFlat::add(idx_t n, const uint8_t* codes) {
    NEARLY_CHECK_ARG(n >= 0, "n must be >= 0");
    if (n == 0) return;
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    xb_.resize(size_t(ntotal + n) * words_, res->stream());
    upload_words(*res, codes, n, code_size, words_, xb_.data() + size_t(ntotal) * words_);
    res->synchronize();
    ntotal += n;
}

void GpuIndexBinaryFlat::search(idx_t n, const uint8_t* queries, idx_t k, int32_t* D, idx_t* I) const {
    NEARLY_CHECK_ARG(k >= 1 && k <= kMaxSelectK, "k must be between 1 and " + std::to_string(kMaxSelectK) +
                                                     " on the GPU (got " + std::to_string(k) + ")");
    if (n <= 0) return;
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    const bool out_dev = is_device_pointer(D) && is_device_pointer(I);
    Scratch<uint32_t> q(*res, size_t(n) * words_);
    upload_words(*res, queries, n, code_size, words_, q.get());
    Scratch<float> dk(*res, size_t(n) * k);
    Scratch<idx_t> ik(*res, out_dev ? 0 : size_t(n) * k);
    Scratch<int32_t> di(*res, out_dev ? 0 : size_t(n) * k);
    idx_t* Iq = out_dev ? I : ik.get();
    int32_t* Dq = out_dev ? D : di.get();
    popcount_knn(*res, q.get(), n, xb_.data(), ntotal, words_, 0, 0, int(k), dk.get(), Iq);
    to_int_kernel<<<unsigned((n * k + 255) / 256), 256, 0, st>>>(dk.get(), n * k, false, INT_MAX, Dq);
    NEARLY_CUDA_CHECK(cudaGetLastError());
    if (!out_dev) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(D, Dq, size_t(n) * k * 4, cudaMemcpyDeviceToHost, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(I, Iq, size_t(n) * k * 8, cudaMemcpyDeviceToHost, st));
    }
    res->synchronize();
}

void GpuIndexBinaryFlat::reset() {
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    res->synchronize();
    xb_.clear();
    ntotal = 0;
}

void GpuIndexBinaryFlat::reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const {
    if (i0 < 0 || ni < 0 || i0 + ni > ntotal) throw OutOfRange("reconstruct_n: range outside the index");
    if (ni == 0) return;
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    NEARLY_CUDA_CHECK(cudaMemcpy2DAsync(out, code_size, xb_.data() + size_t(i0) * words_, size_t(words_) * 4, code_size,
                                        ni, cudaMemcpyDefault, res->stream()));
    res->synchronize();
}

void sdc_check_gpu_shape(int m, int nb) {
    NEARLY_CHECK_ARG(nb >= 1 && nb <= 4, "bits_per_dim must be between 1 and 4");
    NEARLY_CHECK_ARG(m > 0 && m % 32 == 0, "GPU SDC needs m, the code dimension, to be a multiple of 32");
    NEARLY_CHECK_ARG(m * nb / 32 <= kMaxWords, "GPU SDC: codes of at most " + std::to_string(kMaxWords * 4) + " bytes");
}

void sdc_tile(GpuResources& res, const uint32_t* q, int64_t rows, const uint32_t* x, int64_t cols, int m, int nb,
              float* tile) {
    launch_popcount_tile(res, q, rows, x, cols, m * nb / 32, m, nb, tile);
}

void sdc_knn(GpuResources& res, const uint8_t* qcodes, idx_t nq, const uint8_t* xcodes, idx_t nx, int m, int nb, int k,
             int32_t* S, idx_t* I) {
    sdc_check_gpu_shape(m, nb);
    NEARLY_CHECK_ARG(k >= 1 && k <= kMaxSelectK, "k must be between 1 and " + std::to_string(kMaxSelectK));
    if (nq <= 0) return;
    std::lock_guard<std::mutex> call(res.call_mutex());
    res.set_device();
    cudaStream_t st = res.stream();
    const int W = m * nb / 32, cs = W * 4;
    const bool out_dev = is_device_pointer(S) && is_device_pointer(I);
    Scratch<uint32_t> q(res, size_t(nq) * W), x(res, size_t(nx) * W);
    upload_words(res, qcodes, nq, cs, W, q.get());
    upload_words(res, xcodes, nx, cs, W, x.get());
    Scratch<float> dk(res, size_t(nq) * k);
    Scratch<idx_t> ik(res, out_dev ? 0 : size_t(nq) * k);
    Scratch<int32_t> si(res, out_dev ? 0 : size_t(nq) * k);
    idx_t* Iq = out_dev ? I : ik.get();
    int32_t* Sq = out_dev ? S : si.get();
    popcount_knn(res, q.get(), nq, x.get(), nx, W, m, nb, k, dk.get(), Iq);
    to_int_kernel<<<unsigned((nq * k + 255) / 256), 256, 0, st>>>(dk.get(), nq * k, true, INT_MIN, Sq);
    NEARLY_CUDA_CHECK(cudaGetLastError());
    if (!out_dev) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(S, Sq, size_t(nq) * k * 4, cudaMemcpyDeviceToHost, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(I, Iq, size_t(nq) * k * 8, cudaMemcpyDeviceToHost, st));
    }
    res.synchronize();
}

}  // namespace nearly::gpu
