#include "gpu_graph.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "select_k.cuh"
#include "vector_ops.h"

namespace nearly::gpu {

GpuIndexHNSW::GpuIndexHNSW(ResourcesPtr r, const IndexHNSWFlat& cpu) : Index(cpu.d, cpu.metric_type), res(std::move(r)) {
    NEARLY_CHECK_ARG(res != nullptr, "GpuIndexHNSW needs GPU resources");
    efSearch = std::max(cpu.efSearch, 16);
    IndexHNSWFlat::BaseGraph g = cpu.base_graph();
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    const size_t n = g.ids.size();
    degree_ = g.degree;
    entry_ = g.entry;
    vectors_.resize(std::max<size_t>(n * d, 1), st);
    graph_.resize(std::max<size_t>(n * size_t(degree_), 1), st);
    labels_.resize(std::max<size_t>(n, 1), st);
    if (n) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(vectors_.data(), g.vectors.data(), n * d * 4, cudaMemcpyHostToDevice, st));
        NEARLY_CUDA_CHECK(
            cudaMemcpyAsync(graph_.data(), g.neighbors.data(), g.neighbors.size() * 4, cudaMemcpyHostToDevice, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(labels_.data(), g.ids.data(), n * 8, cudaMemcpyHostToDevice, st));
    }
    res->synchronize();  // the host copies are freed on return
    ntotal = idx_t(n);
}

GpuIndexHNSW::GpuIndexHNSW(ResourcesPtr r, int d_, int M, MetricType metric)
    : Index(d_, metric), res(std::move(r)), build_M_(M) {
    NEARLY_CHECK_ARG(res != nullptr, "GpuIndexHNSW needs GPU resources");
    NEARLY_CHECK_ARG(d_ >= 1, "d must be >= 1");
    NEARLY_CHECK_ARG(M >= 2 && M <= 128, "GpuIndexHNSW: M must be between 2 and 128 on the GPU");
    build.graph.M = M;
    degree_ = 2 * M;
}

void GpuIndexHNSW::add(idx_t n, const float* x) {
    if (build_M_ == 0)
        throw NotSupported("GpuIndexHNSW is a read-only copy: add to the CPU IndexHNSWFlat and copy it again");
    if (ntotal > 0)
        throw NotSupported("GpuIndexHNSW builds its graph once: convert it with index_gpu_to_cpu and add there");
    NEARLY_CHECK_ARG(n >= 0, "n must be >= 0");
    NEARLY_CHECK_ARG(build.graph.M == build_M_, "GpuIndexHNSW: M is fixed when the index is made");
    if (n == 0) return;
    const bool on_device = is_device_pointer(x);
    if (!on_device) check_add_args(n, x);
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    const size_t cnt = size_t(n) * d;
    if (on_device) check_finite_device(*res, x, idx_t(cnt), "x");
    vectors_.resize(cnt, st);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(vectors_.data(), x, cnt * 4, cudaMemcpyDefault, st));
    res->synchronize();
    auto layers = std::make_shared<HNSWLayers>(gpu_build_hnsw(*res, vectors_.data(), n, d, metric_type, build, &graph_));
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (idx_t i = 0; i < n; i++) ids[size_t(i)] = i;
    labels_.resize(size_t(n), st);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(labels_.data(), ids.data(), size_t(n) * 8, cudaMemcpyHostToDevice, st));
    res->synchronize();
    degree_ = 2 * build_M_;
    entry_ = layers->entry;
    layers_ = std::move(layers);
    ntotal = n;
}

std::unique_ptr<IndexHNSWFlat> GpuIndexHNSW::to_cpu() const {
    if (build_M_ == 0) throw NotSupported("GpuIndexHNSW::to_cpu: a copy of a CPU index converts back through its source");
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    auto cpu = std::make_unique<IndexHNSWFlat>(d, build_M_, metric_type);
    if (ntotal == 0) return cpu;
    std::vector<float> host(size_t(ntotal) * d);
    {
        std::lock_guard<std::mutex> call(res->call_mutex());
        res->set_device();
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(host.data(), vectors_.data(), host.size() * 4, cudaMemcpyDeviceToHost,
                                          res->stream()));
        res->synchronize();
    }
    cpu->add_graph(ntotal, host.data(), *layers_);
    return cpu;
}

void GpuIndexHNSW::reset() {
    throw NotSupported("GpuIndexHNSW cannot be reset: make a new one");
}

void GpuIndexHNSW::write_body(Writer&) const {
    throw NotSupported("a GPU index cannot be serialized; convert it with index_gpu_to_cpu first (as in faiss)");
}

void GpuIndexHNSW::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* sp) const {
    NEARLY_CHECK_ARG(k >= 1, "k must be >= 1 (got " + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(k <= 256, "GpuIndexHNSW: k must be <= 256 (got " + std::to_string(k) + ")");
    if (sp && sp->sel)
        throw NotSupported("GPU indexes do not filter with an IDSelector; search the CPU index for filtered queries");
    if (n <= 0) return;
    GraphSearchParams p = params;
    p.itopk = efSearch;
    if (auto h = dynamic_cast<const SearchParametersHNSW*>(sp)) p.itopk = h->efSearch;
    p.itopk = std::max<int>(p.itopk, int(k));
    NEARLY_CHECK_ARG(p.itopk <= (p.merge ? 512 : 256), p.merge ? "GpuIndexHNSW: efSearch must be <= 512"
                                                                : "GpuIndexHNSW: efSearch must be <= 256 without "
                                                                  "search_merge");
    const bool x_dev = is_device_pointer(x);
    const bool out_dev = is_device_pointer(D) && is_device_pointer(I);
    if (!x_dev) check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    if (x_dev) check_finite_device(*res, x, n * d, "x");
    if (ntotal == 0) {
        std::vector<float> dd(size_t(n) * k, metric_type == METRIC_L2 ? FLT_MAX : -FLT_MAX);
        std::vector<idx_t> ii(size_t(n) * k, -1);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(D, dd.data(), dd.size() * 4, cudaMemcpyDefault, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(I, ii.data(), ii.size() * 8, cudaMemcpyDefault, st));
        res->synchronize();
        return;
    }
    p.fp16 = p.fp16 && p.merge;
    if (p.fp16 && vectors16_.size() != size_t(ntotal) * d) {
        // Made at the first such search (the rows never change after the add
        // or the copy); the resources' call lock orders it with other searches.
        vectors16_.resize(size_t(ntotal) * d, st);
        to_fp16(*res, vectors_.data(), ntotal * d, vectors16_.data());
        // A value beyond float16's range (65504) became infinite: the walk
        // would compare NaN scores. Refuse it rather than search wrongly.
        Scratch<float> norms(*res, size_t(ntotal));
        row_norms_fp16(*res, vectors16_.data(), ntotal, d, norms.get());
        try {
            check_finite_device(*res, norms.get(), ntotal,
                                "search_fp16: the rows in float16 (beyond 65504 they overflow)");
        } catch (...) {
            vectors16_.resize(0, st);  // made again (and checked again) by the next such search
            throw;
        }
    }
    const idx_t chunk = x_dev && out_dev ? n : std::min<idx_t>(n, 65536);
    Scratch<float> xq(*res, x_dev ? 0 : size_t(chunk) * d), dd(*res, out_dev ? 0 : size_t(chunk) * k);
    Scratch<idx_t> ii(*res, out_dev ? 0 : size_t(chunk) * k);
    for (idx_t q0 = 0; q0 < n; q0 += chunk) {
        idx_t m = std::min(chunk, n - q0);
        const float* q = x + size_t(q0) * d;
        if (!x_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(xq.get(), q, size_t(m) * d * 4, cudaMemcpyHostToDevice, st));
            q = xq.get();
        }
        float* Dq = out_dev ? D + size_t(q0) * k : dd.get();
        idx_t* Iq = out_dev ? I + size_t(q0) * k : ii.get();
        graph_search(*res, vectors_.data(), vectors16_.data(), ntotal, d, graph_.data(), degree_, entry_,
                     labels_.data(), metric_type, q,
                     m, int(k), p, Dq, Iq);
        if (!out_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(D + size_t(q0) * k, dd.get(), size_t(m) * k * 4, cudaMemcpyDeviceToHost, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(I + size_t(q0) * k, ii.get(), size_t(m) * k * 8, cudaMemcpyDeviceToHost, st));
        }
    }
    res->synchronize();
}

}  // namespace nearly::gpu
