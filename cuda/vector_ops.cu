#include <cub/device/device_radix_sort.cuh>
#include <cuda_fp16.h>

#include "vector_ops.h"

namespace nearly::gpu {

namespace {

template <class T>
__device__ float as_float(T v);
template <>
__device__ float as_float<float>(float v) { return v; }
template <>
__device__ float as_float<__half>(__half v) { return __half2float(v); }

// One warp per row.
template <class T>
__global__ void row_norms_kernel(const T* x, int64_t n, int d, float* out) {
    int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (row >= n) return;
    const T* r = x + row * d;
    float s = 0.f;
    for (int j = lane; j < d; j += 32) {
        float v = as_float(r[j]);
        s = fmaf(v, v, s);
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) out[row] = s;
}

__global__ void to_fp16_kernel(const float* x, int64_t n, __half* out) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) out[i] = __float2half_rn(x[i]);
}

__global__ void from_fp16_kernel(const __half* x, int64_t n, float* out) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) out[i] = __half2float(x[i]);
}

__global__ void nonfinite_kernel(const float* x, int64_t n, int* flag) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        if (!isfinite(x[i])) {
            *flag = 1;
            return;
        }
}

__global__ void gather_rows_kernel(const float* src, const int64_t* rows, int64_t n, int d, float* dst) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n * d) dst[i] = src[rows[i / d] * d + i % d];
}

unsigned blocks_for(int64_t n, int per) { return unsigned((n + per - 1) / per); }

}  // namespace

void row_norms(GpuResources& res, const float* x, int64_t n, int d, float* out) {
    if (n == 0) return;
    row_norms_kernel<float><<<blocks_for(n * 32, 256), 256, 0, res.stream()>>>(x, n, d, out);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void row_norms_fp16(GpuResources& res, const uint16_t* x, int64_t n, int d, float* out) {
    if (n == 0) return;
    row_norms_kernel<__half><<<blocks_for(n * 32, 256), 256, 0, res.stream()>>>(
        reinterpret_cast<const __half*>(x), n, d, out);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void to_fp16(GpuResources& res, const float* x, int64_t n, uint16_t* out) {
    if (n == 0) return;
    to_fp16_kernel<<<blocks_for(n, 256), 256, 0, res.stream()>>>(x, n, reinterpret_cast<__half*>(out));
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void from_fp16(GpuResources& res, const uint16_t* x, int64_t n, float* out) {
    if (n == 0) return;
    from_fp16_kernel<<<blocks_for(n, 256), 256, 0, res.stream()>>>(reinterpret_cast<const __half*>(x), n, out);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void sort_pairs_by_key(GpuResources& res, const int32_t* keys_in, int32_t* keys_out, const int32_t* vals_in,
                       int32_t* vals_out, int64_t n, int bits) {
    NEARLY_CHECK_ARG(n < (int64_t(1) << 31), "sort_pairs_by_key: fewer than 2^31 pairs");
    if (n == 0) return;
    size_t temp = 0;
    NEARLY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp, keys_in, keys_out, vals_in, vals_out, int(n), 0,
                                                      bits, res.stream()));
    Scratch<char> tmp(res, temp);
    NEARLY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp.get(), temp, keys_in, keys_out, vals_in, vals_out, int(n), 0,
                                                      bits, res.stream()));
}

void gather_rows(GpuResources& res, const float* src, const int64_t* rows, int64_t n, int d, float* dst) {
    if (n == 0) return;
    gather_rows_kernel<<<blocks_for(n * d, 256), 256, 0, res.stream()>>>(src, rows, n, d, dst);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void check_finite_device(GpuResources& res, const float* x, int64_t n, const char* what) {
    if (n == 0) return;
    Scratch<int> flag(res, 1);
    NEARLY_CUDA_CHECK(cudaMemsetAsync(flag.get(), 0, sizeof(int), res.stream()));
    unsigned blocks = std::min<unsigned>(blocks_for(n, 256), 4096);
    nonfinite_kernel<<<blocks, 256, 0, res.stream()>>>(x, n, flag.get());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    int h = 0;
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(&h, flag.get(), sizeof(int), cudaMemcpyDeviceToHost, res.stream()));
    res.synchronize();
    if (h) throw InvalidArgument(std::string(what) + " contains NaN or infinite values");
}

}  // namespace nearly::gpu
