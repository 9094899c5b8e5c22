// What every GPU call needs: the device, one stream, a cuBLAS handle and a
// caching allocator for scratch memory (faiss's StandardGpuResources).
// Plain C++: the bindings include it; device code lives in the .cu files.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "nearly/common.h"

namespace nearly::gpu {

// Turns a failed CUDA call into the core's exceptions: std::bad_alloc for
// out-of-memory (MemoryError in Python), NotSupported for the rest.
void cuda_check(cudaError_t e, const char* what);
#define NEARLY_CUDA_CHECK(call) ::nearly::gpu::cuda_check((call), #call)

int device_count();
// True when p is memory the GPU can address directly (device or managed).
bool is_device_pointer(const void* p);

class GpuResources {
   public:
    explicit GpuResources(int device = 0);
    ~GpuResources();
    GpuResources(const GpuResources&) = delete;
    GpuResources& operator=(const GpuResources&) = delete;

    int device() const { return device_; }
    // Makes this resource's device current on the calling thread.
    void set_device() const;
    cudaStream_t stream() const { return stream_; }
    void* cublas();  // cublasHandle_t, created on first use
    void synchronize() const;

    // Scratch budget: bounds the size of the tiles a search works on and the
    // bytes the cache keeps (faiss's setTempMemory).
    void set_temp_memory(size_t bytes);
    size_t temp_memory() const { return temp_bytes_; }

    // Stream-ordered scratch memory: a block released here is reused by later
    // work on the same stream without a synchronisation.
    void* allocate(size_t bytes);
    void release(void* p, size_t bytes);
    void free_cache();
    size_t cached_bytes() const;

    // GPU calls through one resources object run one at a time (one stream,
    // one cuBLAS handle); searches from many threads queue here.
    std::mutex& call_mutex() const { return call_mutex_; }

   private:
    int device_;
    cudaStream_t stream_ = nullptr;
    void* cublas_ = nullptr;
    size_t temp_bytes_;
    mutable std::mutex alloc_mutex_;
    mutable std::mutex call_mutex_;
    std::multimap<size_t, void*> free_;  // size class -> block
    size_t cached_ = 0;
};

using ResourcesPtr = std::shared_ptr<GpuResources>;

// Scratch array from the resources' cache, given back when it goes out of scope.
template <class T>
class Scratch {
   public:
    Scratch(GpuResources& res, size_t n) : res_(&res), bytes_(n * sizeof(T)) {
        ptr_ = static_cast<T*>(bytes_ ? res.allocate(bytes_) : nullptr);
    }
    ~Scratch() {
        if (ptr_) res_->release(ptr_, bytes_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    T* get() const { return ptr_; }

   private:
    GpuResources* res_;
    size_t bytes_;
    T* ptr_ = nullptr;
};

// Long-lived device storage (an index's vectors): grows geometrically.
template <class T>
class DeviceVector {
   public:
    DeviceVector() = default;
    ~DeviceVector() { cudaFree(ptr_); }
    DeviceVector(const DeviceVector&) = delete;
    DeviceVector& operator=(const DeviceVector&) = delete;
    T* data() { return ptr_; }
    const T* data() const { return ptr_; }
    size_t size() const { return size_; }
    // Grows to n elements, keeping the first size() (copied on the stream).
    void resize(size_t n, cudaStream_t stream) {
        if (n > capacity_) {
            size_t cap = capacity_ ? capacity_ : 1024;
            while (cap < n) cap += cap / 2 + 1;
            T* p = nullptr;
            NEARLY_CUDA_CHECK(cudaMalloc(&p, cap * sizeof(T)));
            if (size_) {
                cudaError_t e = cudaMemcpyAsync(p, ptr_, size_ * sizeof(T), cudaMemcpyDeviceToDevice, stream);
                if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
                if (e != cudaSuccess) {
                    cudaFree(p);
                    cuda_check(e, "DeviceVector::resize");
                }
            }
            cudaFree(ptr_);
            ptr_ = p;
            capacity_ = cap;
        }
        size_ = n;
    }
    void swap(DeviceVector& o) {
        std::swap(ptr_, o.ptr_);
        std::swap(size_, o.size_);
        std::swap(capacity_, o.capacity_);
    }
    void clear() {
        cudaFree(ptr_);
        ptr_ = nullptr;
        size_ = capacity_ = 0;
    }

   private:
    T* ptr_ = nullptr;
    size_t size_ = 0, capacity_ = 0;
};

}  // namespace nearly::gpu
