// k-means Lloyd iterations on the GPU, plugged into the CPU Clustering so
// that sampling, initialisation and empty-cluster splits follow faiss's rules
// exactly; only the assignment (exact k-NN, k = 1) and the centroid sums run
// on the device.
#pragma once
#include <vector>

#include "gpu_resources.h"
#include "nearly/kmeans.h"

namespace nearly::gpu {

class GpuKmeansStep : public KmeansStep {
   public:
    explicit GpuKmeansStep(GpuResources& res) : res_(res) {}
    // The points already on the device (the same rows set_points will be
    // given on the host): no second upload.
    void use_device_points(const float* x, size_t n) {
        dev_x_ = x;
        dev_n_ = n;
    }
    void set_points(size_t n, const float* x, size_t d) override;
    double assign_update(float* centroids, size_t k, MetricType metric, float* hassign) override;

   private:
    GpuResources& res_;
    size_t n_ = 0, d_ = 0;
    DeviceVector<float> x_;
    const float* dev_x_ = nullptr;
    size_t dev_n_ = 0;
    const float* points() const { return dev_x_ ? dev_x_ : x_.data(); }
};

// Trains k centroids of x (host, n x d) with faiss's rules and GPU iterations.
// x_dev: the same n points on the device, when the caller has them there.
std::vector<float> gpu_kmeans(GpuResources& res, const ClusteringParameters& cp, int d, int k, idx_t n, const float* x,
                              MetricType metric, float* obj = nullptr, const float* x_dev = nullptr);

// Nearest centroid of each point (device arrays): assign[i], and its distance
// or similarity in dis (may be null).
void gpu_assign(GpuResources& res, const float* x, idx_t n, const float* centroids, const float* centroid_norms,
                idx_t k, int d, MetricType metric, int64_t* assign, float* dis);

}  // namespace nearly::gpu
