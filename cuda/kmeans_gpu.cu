#include "kmeans_gpu.h"

#include "knn.h"
#include "vector_ops.h"

namespace nearly::gpu {

namespace {

// Sums of the points of each cluster. Float atomics: the order of the adds
// varies from run to run, so centroids agree with the CPU's to float rounding.
__global__ void accumulate_kernel(const float* x, const int64_t* assign, int64_t n, int d, float* sums, float* counts) {
    int64_t i = blockIdx.x;
    if (i >= n) return;
    int64_t c = assign[i];
    if (c < 0) return;
    for (int j = threadIdx.x; j < d; j += blockDim.x) atomicAdd(&sums[c * d + j], x[i * d + j]);
    if (threadIdx.x == 0) atomicAdd(&counts[c], 1.f);
}

__global__ void divide_kernel(float* sums, const float* counts, int64_t k, int d) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= k * d) return;
    float c = counts[i / d];
    sums[i] = c > 0 ? sums[i] / c : 0.f;
}

__global__ void sum_kernel(const float* v, int64_t n, double* out) {
    double s = 0;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        s += v[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x % 32 == 0) atomicAdd(out, s);
}

}  // namespace

void gpu_assign(GpuResources& res, const float* x, idx_t n, const float* centroids, const float* centroid_norms,
                idx_t k, int d, MetricType metric, int64_t* assign, float* dis) {
    Scratch<float> d_tmp(res, dis ? 0 : size_t(n));
    knn_exact(res, float_knn(metric, x, n, centroids, centroid_norms, k, d, 1, false, dis ? dis : d_tmp.get(), assign));
}

void GpuKmeansStep::set_points(size_t n, const float* x, size_t d) {
    n_ = n;
    d_ = d;
    if (dev_x_ && dev_n_ == n) return;
    dev_x_ = nullptr;
    x_.resize(n * d, res_.stream());
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(x_.data(), x, n * d * 4, cudaMemcpyDefault, res_.stream()));
}

double GpuKmeansStep::assign_update(float* centroids, size_t k, MetricType metric, float* hassign) {
    cudaStream_t st = res_.stream();
    const int d = int(d_);
    Scratch<float> c(res_, k * d_), norms(res_, k), dis(res_, n_), sums(res_, k * d_), counts(res_, k);
    Scratch<int64_t> assign(res_, n_);
    Scratch<double> obj(res_, 1);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(c.get(), centroids, k * d_ * 4, cudaMemcpyHostToDevice, st));
    row_norms(res_, c.get(), idx_t(k), d, norms.get());
    gpu_assign(res_, points(), idx_t(n_), c.get(), norms.get(), idx_t(k), d, metric, assign.get(), dis.get());
    NEARLY_CUDA_CHECK(cudaMemsetAsync(sums.get(), 0, k * d_ * 4, st));
    NEARLY_CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, k * 4, st));
    NEARLY_CUDA_CHECK(cudaMemsetAsync(obj.get(), 0, 8, st));
    accumulate_kernel<<<unsigned(n_), 128, 0, st>>>(points(), assign.get(), idx_t(n_), d, sums.get(), counts.get());
    divide_kernel<<<unsigned((k * d_ + 255) / 256), 256, 0, st>>>(sums.get(), counts.get(), idx_t(k), d);
    sum_kernel<<<std::min<unsigned>(1024, unsigned((n_ + 255) / 256)), 256, 0, st>>>(dis.get(), idx_t(n_), obj.get());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    double h_obj = 0;
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(centroids, sums.get(), k * d_ * 4, cudaMemcpyDeviceToHost, st));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(hassign, counts.get(), k * 4, cudaMemcpyDeviceToHost, st));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(&h_obj, obj.get(), 8, cudaMemcpyDeviceToHost, st));
    res_.synchronize();
    return h_obj;
}

std::vector<float> gpu_kmeans(GpuResources& res, const ClusteringParameters& cp, int d, int k, idx_t n, const float* x,
                              MetricType metric, float* obj, const float* x_dev) {
    Clustering clus(d, k, cp);
    GpuKmeansStep step(res);
    // Only when Clustering will not subsample: then it trains on exactly x.
    if (x_dev && (cp.max_points_per_centroid <= 0 || n <= idx_t(k) * cp.max_points_per_centroid))
        step.use_device_points(x_dev, size_t(n));
    clus.train(n, x, metric, &step);
    if (obj) *obj = clus.final_objective();
    return std::move(clus.centroids);
}

}  // namespace nearly::gpu
