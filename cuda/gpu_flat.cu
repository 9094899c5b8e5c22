#include "gpu_flat.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "knn.h"
#include "select_k.cuh"
#include "vector_ops.h"

namespace nearly::gpu {

GpuIndexFlat::GpuIndexFlat(ResourcesPtr r, int d_, MetricType metric, bool fp16)
    : Index(d_, metric), res(std::move(r)), use_float16(fp16) {
    NEARLY_CHECK_ARG(res != nullptr, "GpuIndexFlat needs GPU resources");
}

void GpuIndexFlat::add(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be >= 0");
    if (n == 0) return;
    bool on_device = is_device_pointer(x);
    if (!on_device) check_add_args(n, x);
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    if (on_device) check_finite_device(*res, x, n * d, "x");
    add_locked(n, x);
}

void GpuIndexFlat::add_locked(idx_t n, const float* x) {
    cudaStream_t st = res->stream();
    const size_t off = size_t(ntotal) * d, cnt = size_t(n) * d;
    auto kind = cudaMemcpyDefault;  // unified addressing: host or device source
    if (use_float16) {
        Scratch<float> tmp(*res, cnt);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(tmp.get(), x, cnt * sizeof(float), kind, st));
        xb16_.resize(off + cnt, st);
        to_fp16(*res, tmp.get(), idx_t(cnt), xb16_.data() + off);
        norms_.resize(size_t(ntotal + n), st);
        row_norms_fp16(*res, xb16_.data() + off, n, d, norms_.data() + ntotal);
        res->synchronize();
    } else {
        xb_.resize(off + cnt, st);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(xb_.data() + off, x, cnt * sizeof(float), kind, st));
        norms_.resize(size_t(ntotal + n), st);
        row_norms(*res, xb_.data() + off, n, d, norms_.data() + ntotal);
        res->synchronize();
    }
    ntotal += n;
}

void GpuIndexFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    NEARLY_CHECK_ARG(k >= 1, "k must be >= 1 (got " + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(k <= kMaxSelectK, "k must be <= " + std::to_string(kMaxSelectK) +
                                           " on the GPU (faiss's limit too); got " + std::to_string(k));
    if (params && params->sel)
        throw NotSupported("GPU indexes do not filter with an IDSelector; search the CPU index for filtered queries");
    if (n <= 0) return;
    const bool x_dev = is_device_pointer(x);
    const bool out_dev = is_device_pointer(D) && is_device_pointer(I);
    if (!x_dev) check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    if (x_dev) check_finite_device(*res, x, n * d, "x");
    // Host queries travel in chunks of at most ~256 MB.
    const idx_t chunk = x_dev && out_dev ? n : std::max<idx_t>(1, std::min<idx_t>(n, (idx_t(256) << 20) / (4 * d)));
    Scratch<float> xq(*res, x_dev ? 0 : size_t(chunk) * d);
    Scratch<float> dd(*res, out_dev ? 0 : size_t(chunk) * k);
    Scratch<idx_t> ii(*res, out_dev ? 0 : size_t(chunk) * k);
    for (idx_t q0 = 0; q0 < n; q0 += chunk) {
        idx_t nq = std::min(chunk, n - q0);
        const float* q = x + q0 * d;
        if (!x_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(xq.get(), q, size_t(nq) * d * 4, cudaMemcpyHostToDevice, st));
            q = xq.get();
        }
        KnnArgs a;
        a.metric = metric_type;
        a.xq = q;
        a.nq = nq;
        a.xb = use_float16 ? static_cast<const void*>(xb16_.data()) : static_cast<const void*>(xb_.data());
        a.xb_fp16 = use_float16;
        a.xb_norms = norms_.data();
        a.nb = ntotal;
        a.d = d;
        a.k = int(k);
        a.tf32 = allow_tf32;
        a.D = out_dev ? D + q0 * k : dd.get();
        a.I = out_dev ? I + q0 * k : ii.get();
        knn_exact(*res, a);
        if (!out_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(D + q0 * k, dd.get(), size_t(nq) * k * 4, cudaMemcpyDeviceToHost, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(I + q0 * k, ii.get(), size_t(nq) * k * 8, cudaMemcpyDeviceToHost, st));
        }
    }
    res->synchronize();
}

void GpuIndexFlat::reconstruct(idx_t key, float* out) const {
    if (key < 0 || key >= ntotal)
        throw OutOfRange("reconstruct: key " + std::to_string(key) + " out of range (ntotal=" +
                         std::to_string(ntotal) + ")");
    reconstruct_n(key, 1, out);
}

void GpuIndexFlat::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    if (i0 < 0 || ni < 0 || i0 + ni > ntotal)
        throw OutOfRange("reconstruct_n: range [" + std::to_string(i0) + ", " + std::to_string(i0 + ni) +
                         ") outside the index (ntotal=" + std::to_string(ntotal) + ")");
    if (ni == 0) return;
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    size_t cnt = size_t(ni) * d;
    if (use_float16) {
        Scratch<float> tmp(*res, cnt);
        from_fp16(*res, xb16_.data() + size_t(i0) * d, idx_t(cnt), tmp.get());
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(out, tmp.get(), cnt * 4, cudaMemcpyDefault, st));
        res->synchronize();
    } else {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(out, xb_.data() + size_t(i0) * d, cnt * 4, cudaMemcpyDefault, st));
        res->synchronize();
    }
}

void GpuIndexFlat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    res->synchronize();
    xb_.clear();
    xb16_.clear();
    norms_.clear();
    ntotal = 0;
}

void GpuIndexFlat::write_body(Writer&) const {
    throw NotSupported("a GPU index cannot be serialized; convert it with index_gpu_to_cpu first (as in faiss)");
}

void GpuIndexFlat::copy_from(const IndexFlat& cpu) {
    NEARLY_CHECK_ARG(cpu.d == d, "copy_from: dimension mismatch");
    NEARLY_CHECK_ARG(cpu.metric_type == metric_type, "copy_from: metric mismatch");
    reset();
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    if (cpu.ntotal) add_locked(cpu.ntotal, cpu.vectors().data());
}

void GpuIndexFlat::copy_to(IndexFlat& cpu) const {
    NEARLY_CHECK_ARG(cpu.d == d, "copy_to: dimension mismatch");
    std::vector<float> v(size_t(ntotal) * d);
    reconstruct_n(0, ntotal, v.data());
    cpu.reset();
    if (ntotal) cpu.add(ntotal, v.data());
}

}  // namespace nearly::gpu

namespace nearly::gpu {

void brute_force_knn(GpuResources& res, MetricType metric, const float* xq, idx_t nq, const float* xb, idx_t nb, int d,
                     int k, float* D, idx_t* I, bool use_float16) {
    NEARLY_CHECK_ARG(d > 0, "d must be > 0");
    if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
        throw NotSupported("knn_gpu: metric " + std::to_string(int(metric)) +
                           " not implemented on the GPU (METRIC_L2 and METRIC_INNER_PRODUCT are; knn() takes the others)");
    NEARLY_CHECK_ARG(k >= 1 && k <= kMaxSelectK, "k must be between 1 and " + std::to_string(kMaxSelectK) +
                                                     " on the GPU (got " + std::to_string(k) + ")");
    if (nq <= 0) return;
    std::lock_guard<std::mutex> call(res.call_mutex());
    res.set_device();
    cudaStream_t st = res.stream();
    const bool q_dev = is_device_pointer(xq), b_dev = is_device_pointer(xb);
    const bool out_dev = is_device_pointer(D) && is_device_pointer(I);
    if (q_dev)
        check_finite_device(res, xq, nq * d, "xq");
    else
        check_finite(xq, size_t(nq) * d, "xq");
    if (b_dev)
        check_finite_device(res, xb, nb * d, "xb");
    else
        check_finite(xb, size_t(nb) * d, "xb");
    Scratch<float> qbuf(res, q_dev ? 0 : size_t(nq) * d), bbuf(res, b_dev && !use_float16 ? 0 : size_t(nb) * d);
    Scratch<uint16_t> b16(res, use_float16 ? size_t(nb) * d : 0);
    Scratch<float> norms(res, size_t(nb));
    Scratch<float> dd(res, out_dev ? 0 : size_t(nq) * k);
    Scratch<idx_t> ii(res, out_dev ? 0 : size_t(nq) * k);
    if (!q_dev) NEARLY_CUDA_CHECK(cudaMemcpyAsync(qbuf.get(), xq, size_t(nq) * d * 4, cudaMemcpyHostToDevice, st));
    const float* bsrc = xb;
    if (!b_dev || use_float16) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(bbuf.get(), xb, size_t(nb) * d * 4, cudaMemcpyDefault, st));
        bsrc = bbuf.get();
    }
    KnnArgs a;
    a.metric = metric;
    a.xq = q_dev ? xq : qbuf.get();
    a.nq = nq;
    if (use_float16) {
        to_fp16(res, bsrc, nb * d, b16.get());
        row_norms_fp16(res, b16.get(), nb, d, norms.get());
        a.xb = b16.get();
        a.xb_fp16 = true;
    } else {
        row_norms(res, bsrc, nb, d, norms.get());
        a.xb = bsrc;
    }
    a.xb_norms = norms.get();
    a.nb = nb;
    a.d = d;
    a.k = k;
    a.D = out_dev ? D : dd.get();
    a.I = out_dev ? I : ii.get();
    knn_exact(res, a);
    if (!out_dev) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(D, dd.get(), size_t(nq) * k * 4, cudaMemcpyDeviceToHost, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(I, ii.get(), size_t(nq) * k * 8, cudaMemcpyDeviceToHost, st));
    }
    res.synchronize();
}

}  // namespace nearly::gpu
