#include "gpu_ivf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "cublas_loader.h"
#include "ivf_scan.h"
#include "kmeans_gpu.h"
#include "knn.h"
#include "nearly/flat.h"
#include "nearly/ivf_flat.h"
#include "nearly/random.h"
#include "select_k.cuh"
#include "select_k.h"
#include "vector_ops.h"

namespace nearly::gpu {


GpuIndexIVF::GpuIndexIVF(ResourcesPtr r, int d_, size_t nlist_, size_t code_size_, MetricType metric)
    : Index(d_, metric), res(std::move(r)), nlist(nlist_), code_size(code_size_) {
    NEARLY_CHECK_ARG(res != nullptr, "GPU IVF index needs GPU resources");
    NEARLY_CHECK_ARG(d_ > 0, "d must be > 0");
    NEARLY_CHECK_ARG(nlist_ > 0, "nlist must be positive");
    cp.niter = 10;
    cp.spherical = metric == METRIC_INNER_PRODUCT;
    is_trained = false;
    offsets_.assign(nlist + 1, 0);
    res->set_device();
    offsets_dev_.resize(nlist + 1, res->stream());
    NEARLY_CUDA_CHECK(cudaMemsetAsync(offsets_dev_.data(), 0, (nlist + 1) * 8, res->stream()));
    res->synchronize();
}

void GpuIndexIVF::check_trained(const char* what) const {
    if (!is_trained) throw NotSupported(std::string("Error: '") + what + "' failed: index not trained (train it first)");
}

void GpuIndexIVF::set_centroids(const float* c_host) {
    cudaStream_t st = res->stream();
    centroids_.resize(nlist * d, st);
    centroid_norms_.resize(nlist, st);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(centroids_.data(), c_host, nlist * d * 4, cudaMemcpyHostToDevice, st));
    row_norms(*res, centroids_.data(), idx_t(nlist), d, centroid_norms_.data());
    res->synchronize();
    centroids_ready_ = true;
}

std::vector<float> GpuIndexIVF::centroids() const {
    std::vector<float> c(nlist * d);
    if (!centroids_ready_) return {};
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(c.data(), centroids_.data(), c.size() * 4, cudaMemcpyDeviceToHost, res->stream()));
    res->synchronize();
    return c;
}

void GpuIndexIVF::list_contents(size_t l, std::vector<uint8_t>& codes, std::vector<idx_t>& ids) const {
    NEARLY_CHECK_ARG(l < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    size_t n = list_size(l);
    codes.resize(n * code_size);
    ids.resize(n);
    if (n) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(codes.data(), codes_.data() + size_t(offsets_[l]) * code_size,
                                          n * code_size, cudaMemcpyDeviceToHost, res->stream()));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(ids.data(), ids_.data() + offsets_[l], n * 8, cudaMemcpyDeviceToHost,
                                          res->stream()));
    }
    res->synchronize();
}

namespace {

// The first m rows of faiss's seeded permutation of x, on the device and on
// the host. A device input is sampled on the device, so only the sample
// crosses the bus.
void sample_rows(GpuResources& res, const float* x, bool x_dev, idx_t n, int d, idx_t m, int64_t seed,
                 Scratch<float>& dev, std::vector<float>& host) {
    cudaStream_t st = res.stream();
    host.resize(size_t(m) * d);
    std::vector<int64_t> rows(m);
    if (m < n) {
        std::vector<int> perm(n);
        rand_perm(perm.data(), size_t(n), seed);
        for (idx_t i = 0; i < m; i++) rows[i] = perm[i];
    } else {
        for (idx_t i = 0; i < m; i++) rows[i] = i;
    }
    if (x_dev) {
        Scratch<int64_t> r(res, size_t(m));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(r.get(), rows.data(), size_t(m) * 8, cudaMemcpyHostToDevice, st));
        gather_rows(res, x, r.get(), m, d, dev.get());
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(host.data(), dev.get(), host.size() * 4, cudaMemcpyDeviceToHost, st));
        res.synchronize();
    } else {
        for (idx_t i = 0; i < m; i++) std::memcpy(&host[size_t(i) * d], x + size_t(rows[i]) * d, size_t(d) * 4);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(dev.get(), host.data(), host.size() * 4, cudaMemcpyHostToDevice, st));
    }
}

}  // namespace

void GpuIndexIVF::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be >= 0");
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    const bool x_dev = is_device_pointer(x);
    if (x_dev)
        check_finite_device(*res, x, n * d, "training data");
    else
        check_finite(x, size_t(n) * d, "training data");
    if (!centroids_ready_) {
        if (n < idx_t(nlist))
            throw NotSupported("Number of training points (" + std::to_string(n) +
                               ") should be at least as large as number of clusters (" + std::to_string(nlist) + ")");
        if (verbose) std::printf("Training level-1 quantizer on %lld vectors in %dD (GPU)\n", (long long)n, d);
        ClusteringParameters c = cp;
        c.verbose = verbose;
        // Clustering's own subsampling, done here so a device input stays there.
        idx_t m = n;
        if (c.max_points_per_centroid > 0) m = std::min<idx_t>(n, idx_t(nlist) * c.max_points_per_centroid);
        Scratch<float> dev(*res, size_t(m) * d);
        std::vector<float> host;
        sample_rows(*res, x, x_dev, n, d, m, c.seed, dev, host);
        std::vector<float> cent = gpu_kmeans(*res, c, d, int(nlist), m, host.data(), metric_type, nullptr, dev.get());
        set_centroids(cent.data());
    }
    // The encoder learns from a seeded sample of at most 65536 points (its
    // own k-means subsamples to 256 points per centroid anyway).
    const idx_t ns = std::min<idx_t>(n, 65536);
    Scratch<float> xs(*res, size_t(ns) * d);
    std::vector<float> host;
    sample_rows(*res, x, x_dev, n, d, ns, 1234, xs, host);
    Scratch<int64_t> assign(*res, size_t(ns));
    gpu_assign(*res, xs.get(), ns, centroids_.data(), centroid_norms_.data(), idx_t(nlist), d, metric_type,
               assign.get(), nullptr);
    train_encoder(ns, xs.get(), assign.get());
    res->synchronize();
    is_trained = true;
}

void GpuIndexIVF::add(idx_t n, const float* x) { add_core(n, x, nullptr); }
void GpuIndexIVF::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    NEARLY_CHECK_ARG(ids != nullptr || n == 0, "ids is None");
    add_core(n, x, ids);
}

void GpuIndexIVF::add_core(idx_t n, const float* x, const idx_t* ids) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be >= 0");
    check_trained("add");
    if (n == 0) return;
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    const bool x_dev = is_device_pointer(x);
    if (x_dev)
        check_finite_device(*res, x, n * d, "x");
    else
        check_finite(x, size_t(n) * d, "x");
    const bool ids_dev = ids && is_device_pointer(ids);
    InterruptPoll poll;
    const idx_t chunk = std::max<idx_t>(1, std::min<idx_t>(n, (idx_t(512) << 20) / (4 * d)));
    Scratch<float> xc(*res, x_dev ? 0 : size_t(chunk) * d);
    Scratch<int64_t> assign(*res, size_t(chunk)), idc(*res, size_t(chunk));
    Scratch<uint8_t> codes(*res, size_t(chunk) * code_size);
    std::vector<idx_t> seq;
    for (idx_t i0 = 0; i0 < n; i0 += chunk) {
        idx_t m = std::min(chunk, n - i0);
        const float* xs = x + size_t(i0) * d;
        if (!x_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(xc.get(), xs, size_t(m) * d * 4, cudaMemcpyHostToDevice, st));
            xs = xc.get();
        }
        if (ids) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(idc.get(), ids + i0, size_t(m) * 8, ids_dev ? cudaMemcpyDeviceToDevice
                                                                                       : cudaMemcpyHostToDevice, st));
        } else {
            seq.resize(m);
            for (idx_t j = 0; j < m; j++) seq[j] = ntotal + j;
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(idc.get(), seq.data(), size_t(m) * 8, cudaMemcpyHostToDevice, st));
        }
        gpu_assign(*res, xs, m, centroids_.data(), centroid_norms_.data(), idx_t(nlist), d, metric_type, assign.get(),
                   nullptr);
        encode(m, xs, assign.get(), codes.get());
        insert(m, assign.get(), codes.get(), idc.get());
        if (verbose) std::printf("  add: %lld / %lld\r", (long long)(i0 + m), (long long)n), std::fflush(stdout);
        poll();
    }
    if (verbose) std::printf("\n");
}

void GpuIndexIVF::insert(idx_t n, const int64_t* assign_dev, const uint8_t* codes_dev, const idx_t* ids_dev) {
    cudaStream_t st = res->stream();
    std::vector<int64_t> assign(n);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(assign.data(), assign_dev, size_t(n) * 8, cudaMemcpyDeviceToHost, st));
    res->synchronize();
    std::vector<int64_t> added(nlist, 0);
    for (idx_t i = 0; i < n; i++) added[assign[i]]++;
    std::vector<int64_t> off(nlist + 1, 0);
    for (size_t l = 0; l < nlist; l++) off[l + 1] = off[l] + list_size(l) + added[l];
    // New entries go behind each list's old ones, in input order.
    std::vector<int64_t> dest(n), fill(nlist);
    for (size_t l = 0; l < nlist; l++) fill[l] = off[l] + list_size(l);
    for (idx_t i = 0; i < n; i++) dest[i] = fill[assign[i]]++;
    const size_t total = size_t(off[nlist]);
    DeviceVector<uint8_t> codes;
    DeviceVector<idx_t> ids;
    codes.resize(total * code_size, st);
    ids.resize(total, st);
    for (size_t l = 0; l < nlist; l++) {
        size_t m = list_size(l);
        if (!m) continue;
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(codes.data() + size_t(off[l]) * code_size,
                                          codes_.data() + size_t(offsets_[l]) * code_size, m * code_size,
                                          cudaMemcpyDeviceToDevice, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(ids.data() + off[l], ids_.data() + offsets_[l], m * 8,
                                          cudaMemcpyDeviceToDevice, st));
    }
    Scratch<int64_t> dest_dev(*res, size_t(n));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(dest_dev.get(), dest.data(), size_t(n) * 8, cudaMemcpyHostToDevice, st));
    scatter_rows(*res, codes_dev, dest_dev.get(), n, code_size, codes.data());
    scatter_rows(*res, reinterpret_cast<const uint8_t*>(ids_dev), dest_dev.get(), n, 8,
                 reinterpret_cast<uint8_t*>(ids.data()));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(offsets_dev_.data(), off.data(), (nlist + 1) * 8, cudaMemcpyHostToDevice, st));
    res->synchronize();
    codes_.swap(codes);
    ids_.swap(ids);
    offsets_ = std::move(off);
    ntotal += n;
}

void GpuIndexIVF::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    NEARLY_CHECK_ARG(k >= 1, "k must be >= 1 (got " + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(k <= kMaxSelectK, "k must be <= " + std::to_string(kMaxSelectK) + " on the GPU; got " +
                                           std::to_string(k));
    if (params && params->sel)
        throw NotSupported("GPU indexes do not filter with an IDSelector; search the CPU index for filtered queries");
    check_trained("search");
    size_t np = nprobe;
    if (auto p = dynamic_cast<const SearchParametersIVF*>(params)) np = p->nprobe;
    NEARLY_CHECK_ARG(np >= 1, "nprobe must be >= 1");
    np = std::min({np, nlist, size_t(kMaxSelectK)});
    if (n <= 0) return;
    const bool x_dev = is_device_pointer(x);
    const bool out_dev = is_device_pointer(D) && is_device_pointer(I);
    if (!x_dev) check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    if (x_dev) check_finite_device(*res, x, n * d, "x");
    const idx_t qc = std::min<idx_t>(n, 1024);
    Scratch<float> xq(*res, x_dev ? 0 : size_t(qc) * d);
    Scratch<float> cd(*res, size_t(qc) * np), cand(*res, size_t(qc) * np * k), dd(*res, size_t(qc) * k);
    Scratch<int64_t> ci(*res, size_t(qc) * np), cand_ids(*res, size_t(qc) * np * k), ii(*res, size_t(qc) * k);
    InterruptPoll poll;
    for (idx_t q0 = 0; q0 < n; q0 += qc) {
        idx_t nq = std::min(qc, n - q0);
        const float* q = x + size_t(q0) * d;
        if (!x_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(xq.get(), q, size_t(nq) * d * 4, cudaMemcpyHostToDevice, st));
            q = xq.get();
        }
        KnnArgs a;
        a.metric = metric_type;
        a.xq = q;
        a.nq = nq;
        a.xb = centroids_.data();
        a.xb_norms = centroid_norms_.data();
        a.nb = idx_t(nlist);
        a.d = d;
        a.k = int(np);
        a.D = cd.get();
        a.I = ci.get();
        knn_exact(*res, a);
        int cols = scan(q, nq, cd.get(), ci.get(), int(np), int(k), cand.get(), cand_ids.get());
        float* Dq = out_dev ? D + size_t(q0) * k : dd.get();
        idx_t* Iq = out_dev ? I + size_t(q0) * k : ii.get();
        select_k(*res, cand.get(), cand_ids.get(), nq, cols, int(k), false, Dq, Iq);
        if (metric_type == METRIC_INNER_PRODUCT) negate(*res, Dq, nq * k);
        if (!out_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(D + size_t(q0) * k, dd.get(), size_t(nq) * k * 4, cudaMemcpyDeviceToHost, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(I + size_t(q0) * k, ii.get(), size_t(nq) * k * 8, cudaMemcpyDeviceToHost, st));
        }
        poll();
    }
    res->synchronize();
}

void GpuIndexIVF::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    res->synchronize();
    codes_.clear();
    ids_.clear();
    offsets_.assign(nlist + 1, 0);
    NEARLY_CUDA_CHECK(cudaMemsetAsync(offsets_dev_.data(), 0, (nlist + 1) * 8, res->stream()));
    res->synchronize();
    ntotal = 0;
}

void GpuIndexIVF::write_body(Writer&) const {
    throw NotSupported("a GPU index cannot be serialized; convert it with index_gpu_to_cpu first (as in faiss)");
}

void GpuIndexIVF::copy_lists_from(const IndexIVF& cpu) {
    NEARLY_CHECK_ARG(cpu.d == d && cpu.nlist == nlist && cpu.metric_type == metric_type,
                     "copy_from: the CPU index differs in d, nlist or metric");
    NEARLY_CHECK_ARG(cpu.code_size == code_size, "copy_from: the CPU index's codes are of another size");
    NEARLY_CHECK_ARG(cpu.layout().block == 1,
                     "copy_from: the CPU index's lists are laid out in blocks (fast-scan or Panorama), not one code after another");
    NEARLY_CHECK_ARG(cpu.is_trained, "copy_from: the CPU index is not trained");
    std::vector<float> cent(nlist * d);
    cpu.quantizer->reconstruct_n(0, idx_t(nlist), cent.data());
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    set_centroids(cent.data());
    std::vector<int64_t> off(nlist + 1, 0);
    for (size_t l = 0; l < nlist; l++) off[l + 1] = off[l] + cpu.list_size(l);
    const size_t total = size_t(off[nlist]);
    codes_.clear();
    ids_.clear();
    codes_.resize(total * code_size, st);
    ids_.resize(total, st);
    for (size_t l = 0; l < nlist; l++) {
        size_t m = cpu.list_size(l);
        if (!m) continue;
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(codes_.data() + size_t(off[l]) * code_size, cpu.list_codes(l),
                                          m * code_size, cudaMemcpyHostToDevice, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(ids_.data() + off[l], cpu.list_ids_ptr(l), m * 8, cudaMemcpyHostToDevice, st));
    }
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(offsets_dev_.data(), off.data(), (nlist + 1) * 8, cudaMemcpyHostToDevice, st));
    res->synchronize();  // the host lists are read until here
    offsets_ = std::move(off);
    ntotal = idx_t(total);
    nprobe = cpu.nprobe;
    is_trained = true;
}

// ---- IVF-Flat ------------------------------------------------------------------

GpuIndexIVFFlat::GpuIndexIVFFlat(ResourcesPtr r, int d_, size_t nlist_, MetricType metric)
    : GpuIndexIVF(std::move(r), d_, nlist_, size_t(d_) * 4, metric) {}

void GpuIndexIVFFlat::encode(idx_t n, const float* x_dev, const int64_t*, uint8_t* codes_dev) const {
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(codes_dev, x_dev, size_t(n) * d * 4, cudaMemcpyDeviceToDevice, res->stream()));
}

int GpuIndexIVFFlat::scan(const float* xq, idx_t nq, const float*, const int64_t* coarse_i, int np, int k,
                          float* cand, int64_t* cand_ids) const {
    ivf_flat_scan(*res, xq, nq, d, coarse_i, np, reinterpret_cast<const float*>(codes_.data()), ids_.data(),
                  offsets_dev_.data(), metric_type == METRIC_L2, k, cand, cand_ids);
    return np * k;
}

void GpuIndexIVFFlat::copy_from(const IndexIVF& cpu) {
    NEARLY_CHECK_ARG(dynamic_cast<const IndexIVFFlat*>(&cpu) != nullptr, "copy_from: not an IndexIVFFlat");
    copy_lists_from(cpu);
}

std::shared_ptr<IndexIVF> GpuIndexIVFFlat::to_cpu() const {
    auto q = std::make_shared<IndexFlat>(d, metric_type);
    std::vector<float> c = centroids();
    if (!c.empty()) q->add(idx_t(nlist), c.data());
    auto cpu = std::make_shared<IndexIVFFlat>(q, d, nlist, metric_type);
    cpu->nprobe = nprobe;
    std::vector<uint8_t> codes;
    std::vector<idx_t> ids;
    for (size_t l = 0; l < nlist; l++) {
        list_contents(l, codes, ids);
        if (!ids.empty()) cpu->add_entries(l, ids.size(), codes.data(), ids.data());
    }
    return cpu;
}

// ---- IVF-PQ --------------------------------------------------------------------

namespace {

__global__ void list_table_kernel(float* tab, const float* pq_norms, int64_t rows, int T) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < rows * T) tab[i] += pq_norms[i % T];
}

__global__ void column_block_kernel(const float* x, int64_t n, int d, int col0, int w, float* out) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n * w) out[i] = x[(i / w) * d + col0 + i % w];
}

}  // namespace

GpuIndexIVFPQ::GpuIndexIVFPQ(ResourcesPtr r, int d_, size_t nlist_, size_t M_, size_t nbits_, MetricType metric)
    : GpuIndexIVF(std::move(r), d_, nlist_, M_, metric), M(M_), nbits(nbits_), dsub(M_ ? d_ / M_ : 0) {
    NEARLY_CHECK_ARG(M_ > 0 && d_ % M_ == 0, "IVFPQ: d=" + std::to_string(d_) + " is not a multiple of M=" +
                                                 std::to_string(M_));
    NEARLY_CHECK_ARG(nbits_ == 8, "GpuIndexIVFPQ supports nbits=8 only (got " + std::to_string(nbits_) + ")");
    NEARLY_CHECK_ARG(dsub <= 64, "GpuIndexIVFPQ: at most 64 dimensions per sub-quantizer");
    NEARLY_CHECK_ARG(M_ * 256 * 4 <= 200 * 1024, "GpuIndexIVFPQ: M too large for the shared-memory tables");
}

void GpuIndexIVFPQ::train_encoder(idx_t n, const float* x_dev, const int64_t* assign_dev) {
    cudaStream_t st = res->stream();
    Scratch<float> r(*res, size_t(n) * d), sub(*res, size_t(n) * dsub);
    residuals(*res, x_dev, assign_dev, centroids_.data(), n, d, r.get());
    std::vector<float> host_sub(size_t(n) * dsub), pq(M * 256 * dsub);
    for (size_t m = 0; m < M; m++) {
        column_block_kernel<<<unsigned((n * dsub + 255) / 256), 256, 0, st>>>(r.get(), n, d, int(m * dsub), int(dsub),
                                                                             sub.get());
        NEARLY_CUDA_CHECK(cudaGetLastError());
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(host_sub.data(), sub.get(), host_sub.size() * 4, cudaMemcpyDeviceToHost, st));
        res->synchronize();
        ClusteringParameters c = pq_cp;
        c.verbose = false;
        if (verbose) std::printf("  training sub-quantizer %zu / %zu\r", m + 1, M), std::fflush(stdout);
        std::vector<float> cm = gpu_kmeans(*res, c, int(dsub), 256, n, host_sub.data(), METRIC_L2, nullptr, sub.get());
        std::copy(cm.begin(), cm.end(), pq.begin() + m * 256 * dsub);
    }
    if (verbose) std::printf("\n");
    set_codebook(pq.data());
}

void GpuIndexIVFPQ::set_codebook(const float* pq_host) {
    cudaStream_t st = res->stream();
    const size_t T = M * 256;
    pq_host_.assign(pq_host, pq_host + T * dsub);
    pq_.resize(T * dsub, st);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(pq_.data(), pq_host, T * dsub * 4, cudaMemcpyHostToDevice, st));
    std::vector<float> block(T * d, 0.f);
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < 256; j++)
            std::copy(pq_host + (m * 256 + j) * dsub, pq_host + (m * 256 + j + 1) * dsub,
                      &block[(m * 256 + j) * d + m * dsub]);
    block_.resize(T * d, st);
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(block_.data(), block.data(), block.size() * 4, cudaMemcpyHostToDevice, st));
    if (metric_type == METRIC_L2) {
        Scratch<float> norms(*res, T);
        row_norms(*res, pq_.data(), idx_t(T), int(dsub), norms.get());
        list_tab_.resize(nlist * T, st);
        gemm_abt(res->cublas(), int(nlist), int(T), d, 2.f, centroids_.data(), block_.data(), false, false,
                 list_tab_.data(), int(T));
        list_table_kernel<<<unsigned((nlist * T + 255) / 256), 256, 0, st>>>(list_tab_.data(), norms.get(),
                                                                             idx_t(nlist), int(T));
        NEARLY_CUDA_CHECK(cudaGetLastError());
    }
    res->synchronize();  // the host block is freed on return
}

std::vector<float> GpuIndexIVFPQ::pq_centroids() const { return pq_host_; }

void GpuIndexIVFPQ::encode(idx_t n, const float* x_dev, const int64_t* assign_dev, uint8_t* codes_dev) const {
    pq_encode(*res, x_dev, assign_dev, centroids_.data(), n, d, int(M), int(dsub), pq_.data(), codes_dev);
}

int GpuIndexIVFPQ::scan(const float* xq, idx_t nq, const float* coarse_d, const int64_t* coarse_i, int np, int k,
                        float* cand, int64_t* cand_ids) const {
    const size_t T = M * 256;
    Scratch<float> qtab(*res, size_t(nq) * T);
    gemm_abt(res->cublas(), int(nq), int(T), d, 1.f, xq, block_.data(), false, false, qtab.get(), int(T));
    if (metric_type == METRIC_INNER_PRODUCT && ntotal < (idx_t(1) << 31)) {
        ivfpq_scan_ip(*res, qtab.get(), coarse_d, coarse_i, nq, np, int(M), codes_.data(), ids_.data(),
                      offsets_dev_.data(), k, cand, cand_ids, use_float16_tables);
        return ivfpq_ip_groups(np) * k;
    }
    ivfpq_scan(*res, qtab.get(), metric_type == METRIC_L2 ? list_tab_.data() : nullptr, coarse_d, coarse_i, nq, np,
               int(M), codes_.data(), ids_.data(), offsets_dev_.data(), metric_type == METRIC_L2, k, cand, cand_ids,
               use_float16_tables);
    return np * k;
}

void GpuIndexIVFPQ::copy_from(const IndexIVF& cpu, const float* pq_centroids) {
    copy_lists_from(cpu);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    set_codebook(pq_centroids);
}

}  // namespace nearly::gpu
