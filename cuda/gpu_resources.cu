#include "gpu_resources.h"

#include <new>

#include "cublas_loader.h"

namespace nearly::gpu {

void cuda_check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();  // clear the sticky-free error state where possible
    if (e == cudaErrorMemoryAllocation) throw std::bad_alloc();
    throw NotSupported(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

bool is_device_pointer(const void* p) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

GpuResources::GpuResources(int device) : device_(device), temp_bytes_(size_t(1) << 30) {
    int n = device_count();
    if (n == 0) throw NotSupported("no CUDA GPU is available (get_num_gpus() == 0)");
    NEARLY_CHECK_ARG(device >= 0 && device < n,
                     "GPU device " + std::to_string(device) + " does not exist (" + std::to_string(n) + " GPUs)");
    set_device();
    // A blocking stream: work that cupy or torch queued on the legacy
    // default stream finishes before ours starts.
    NEARLY_CUDA_CHECK(cudaStreamCreate(&stream_));
}

GpuResources::~GpuResources() {
    set_device();
    if (stream_) cudaStreamSynchronize(stream_);
    free_cache();
    if (cublas_) gpu::cublas().destroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
}

void GpuResources::set_device() const { NEARLY_CUDA_CHECK(cudaSetDevice(device_)); }

void* GpuResources::cublas() {
    if (!cublas_) {
        const Cublas& c = gpu::cublas();
        set_device();
        void* h = nullptr;
        if (c.create(&h) != 0) throw NotSupported("cublasCreate failed (loaded from " + c.path + ")");
        c.set_stream(h, stream_);
        cublas_ = h;
    }
    return cublas_;
}

void GpuResources::synchronize() const { NEARLY_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void GpuResources::set_temp_memory(size_t bytes) {
    std::lock_guard<std::mutex> g(alloc_mutex_);
    temp_bytes_ = bytes;
}

namespace {
// Size classes: small blocks to 4 KiB, large ones to 2 MiB, so that the
// tiles of successive searches land in the same class.
size_t size_class(size_t bytes) {
    size_t q = bytes < (size_t(1) << 22) ? 4096 : (size_t(1) << 21);
    return (bytes + q - 1) / q * q;
}
}  // namespace

void* GpuResources::allocate(size_t bytes) {
    size_t cls = size_class(bytes);
    {
        std::lock_guard<std::mutex> g(alloc_mutex_);
        auto it = free_.find(cls);
        if (it != free_.end()) {
            void* p = it->second;
            free_.erase(it);
            cached_ -= cls;
            return p;
        }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        synchronize();  // blocks in the cache may still be in use by queued work
        free_cache();
        e = cudaMalloc(&p, cls);
    }
    cuda_check(e, "cudaMalloc (scratch)");
    return p;
}

void GpuResources::release(void* p, size_t bytes) {
    size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> g(alloc_mutex_);
    if (cached_ + cls > temp_bytes_ + (size_t(256) << 20)) {
        // Over budget: give it back (cudaFree waits for the device).
        cudaFree(p);
        return;
    }
    free_.emplace(cls, p);
    cached_ += cls;
}

void GpuResources::free_cache() {
    std::lock_guard<std::mutex> g(alloc_mutex_);
    for (auto& kv : free_) cudaFree(kv.second);
    free_.clear();
    cached_ = 0;
}

size_t GpuResources::cached_bytes() const {
    std::lock_guard<std::mutex> g(alloc_mutex_);
    return cached_;
}

}  // namespace nearly::gpu
