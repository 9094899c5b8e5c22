#include "gpu_muvera.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <mutex>
#include <string>
#include <vector>

#include "nearly/ragged.h"
#include "select_k.cuh"
#include "select_k.h"
#include "vector_ops.h"

namespace nearly::gpu {

namespace {

// Device scratch of one batch of queries (FDEs, candidates, scores) stays
// below this.
constexpr size_t kBatchBytes = size_t(256) << 20;

template <class T>
void upload(cudaStream_t st, DeviceVector<T>& dst, const T* src, size_t n) {
    dst.resize(std::max<size_t>(n, 1), st);
    if (n) NEARLY_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src, n * sizeof(T), cudaMemcpyHostToDevice, st));
}

// One block per query: the inner index's labels (through id_map when it is
// not null) become document keys, the keys store positions (binary search
// of the sorted keys), and the row is sorted with duplicates and misses
// turned into -1: the candidates MultiVectorStore::rerank scores, in the
// same (position) order, so that select_k breaks ties as the CPU does.
__global__ void candidate_positions_kernel(const int64_t* labels, int n_cand, int P, const int64_t* id_map,
                                           const int64_t* keys, int64_t n_docs, int64_t* pos) {
    extern __shared__ int64_t slot[];  // P >= n_cand, a power of two
    const int64_t row = blockIdx.x;
    for (int t = threadIdx.x; t < P; t += blockDim.x) {
        int64_t v = LLONG_MAX;  // nothing: sorts last
        int64_t key = t < n_cand ? labels[row * n_cand + t] : -1;
        if (key >= 0 && id_map) key = key < n_docs ? id_map[key] : -1;
        if (key >= 0) {
            int64_t lo = 0, hi = n_docs;
            while (lo < hi) {
                const int64_t mid = (lo + hi) / 2;
                if (keys[mid] < key)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < n_docs && keys[lo] == key) v = lo;
        }
        slot[t] = v;
    }
    __syncthreads();
    for (int size = 2; size <= P; size <<= 1) {  // bitonic sort, ascending
        for (int stride = size / 2; stride > 0; stride /= 2) {
            for (int t = threadIdx.x; t < P; t += blockDim.x) {
                const int u = t ^ stride;
                if (u > t) {
                    const int64_t a = slot[t], b = slot[u];
                    if ((a > b) == ((t & size) == 0)) {
                        slot[t] = b;
                        slot[u] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (int t = threadIdx.x; t < n_cand; t += blockDim.x) {
        const int64_t v = slot[t];
        pos[row * n_cand + t] = v == LLONG_MAX || (t > 0 && slot[t - 1] == v) ? -1 : v;
    }
}

__global__ void ids_of_positions_kernel(int64_t* I, int64_t n, const int64_t* ids) {
    const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (e < n) I[e] = I[e] >= 0 ? ids[I[e]] : -1;
}

}  // namespace

GpuIndexMuvera::GpuIndexMuvera(ResourcesPtr res, std::shared_ptr<const FdeEncoder> query_encoder, IndexPtr inner,
                               const IndexIDMap& cpu_inner, const MultiVectorStore& store, bool ball_carving, float tau)
    : res_(std::move(res)), encoder_(res_, query_encoder), ball_carving_(ball_carving), tau_(tau), d_(store.dim()),
      fp16_(store.dtype() == TokenDtype::Float16) {
    const FdeConfig& c = query_encoder->config();
    NEARLY_CHECK_ARG(c.dimension == d_, "GpuIndexMuvera: the query encoder's dimension is not the index's d");
    NEARLY_CHECK_ARG(!c.fill_empty_partitions, "GpuIndexMuvera: queries are encoded with fill_empty_partitions off");
    NEARLY_CHECK_ARG(cpu_inner.index != nullptr, "GpuIndexMuvera: the CPU inner index has no sub-index");
    const bool labels_are_keys = cpu_inner.index->has_native_ids();
    std::lock_guard<std::mutex> call(res_->call_mutex());
    res_->set_device();
    cudaStream_t st = res_->stream();
    store.visit_raw([&](const void* v, const std::vector<size_t>& off, const std::vector<idx_t>& ids,
                        const std::vector<idx_t>& keys) {
        n_docs_ = int64_t(ids.size());
        n_vectors_ = off.back();
        if (n_docs_ > 0) {
            NEARLY_CHECK_ARG(inner != nullptr, "GpuIndexMuvera: the GPU inner index is missing");
            NEARLY_CHECK_ARG(inner->ntotal == n_docs_ && cpu_inner.ntotal == n_docs_,
                             "GpuIndexMuvera: the inner index does not hold one vector per document");
            NEARLY_CHECK_ARG(size_t(inner->d) == encoder_.output_dimension(),
                             "GpuIndexMuvera: the inner index's d is not the FDE dimension");
            NEARLY_CHECK_ARG(labels_are_keys || cpu_inner.id_map.size() == size_t(n_docs_),
                             "GpuIndexMuvera: the inner index's id map does not match the documents");
        }
        const size_t values = n_vectors_ * size_t(d_);
        if (fp16_)
            upload(st, f16_, static_cast<const uint16_t*>(v), values);
        else
            upload(st, f32_, static_cast<const float*>(v), values);
        const std::vector<int64_t> o(off.begin(), off.end());
        upload(st, offsets_, o.data(), o.size());
        upload(st, ids_, ids.data(), ids.size());
        upload(st, keys_, keys.data(), keys.size());
        if (!labels_are_keys) upload(st, id_map_, cpu_inner.id_map.data(), size_t(n_docs_));
        res_->synchronize();  // the host arrays are only valid under the store's lock
    });
    if (!labels_are_keys) has_id_map_ = true;
    if (n_docs_ > 0) inner_ = std::move(inner);
}

void GpuIndexMuvera::search(const float* q, size_t n_query_vectors, const int64_t* query_lengths, size_t nq,
                            size_t k, size_t n_cand, const SearchParameters* params, float* D, idx_t* I) const {
    NEARLY_CHECK_ARG(k >= 1, "k must be positive");
    NEARLY_CHECK_ARG(n_cand >= k, "GpuIndexMuvera: k * k_factor candidates must be at least k");
    if (n_cand > size_t(kMaxSelectK))
        throw InvalidArgument("GpuIndexMuvera: k * k_factor = " + std::to_string(n_cand) +
                              " candidates, but a GPU inner index returns at most " + std::to_string(kMaxSelectK) +
                              " per query (faiss's GPU limit); lower k_factor or search the CPU index");
    if (params && params->sel)
        throw NotSupported("GPU indexes do not filter with an IDSelector; search the CPU index for filtered queries");
    const std::vector<size_t> qoff = ragged_offsets(query_lengths, nq, n_query_vectors, "query sets");
    if (nq == 0) return;
    const size_t d = size_t(d_);
    const bool q_dev = is_device_pointer(q);
    const bool D_dev = is_device_pointer(D), I_dev = is_device_pointer(I);
    NEARLY_CHECK_ARG(D_dev == I_dev, "GpuIndexMuvera: D and I must both be on the host or both on the device");
    const bool out_dev = D_dev;
    cudaStream_t st = res_->stream();
    {
        std::lock_guard<std::mutex> call(res_->call_mutex());
        res_->set_device();
        if (q_dev)
            check_finite_device(*res_, q, int64_t(n_query_vectors * d), "the query vectors");
        else
            check_finite(q, n_query_vectors * d, "the query vectors");
        if (n_docs_ == 0) {
            const std::vector<float> dd(nq * k, -FLT_MAX);
            const std::vector<idx_t> ii(nq * k, -1);
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(D, dd.data(), dd.size() * 4, cudaMemcpyDefault, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(I, ii.data(), ii.size() * 8, cudaMemcpyDefault, st));
            res_->synchronize();
            return;
        }
    }
    const size_t fde_dim = encoder_.output_dimension();
    const size_t batch = std::max<size_t>(1, std::min(nq, kBatchBytes / (fde_dim * 4 + n_cand * 24)));
    int P = 1;
    while (P < int(n_cand)) P <<= 1;
    Scratch<float> fde(*res_, batch * fde_dim), cand_d(*res_, batch * n_cand), scores(*res_, batch * n_cand);
    Scratch<float> dbuf(*res_, out_dev ? 0 : batch * k);
    Scratch<int64_t> cand_i(*res_, batch * n_cand), pos(*res_, batch * n_cand), ibuf(*res_, out_dev ? 0 : batch * k);
    Scratch<int64_t> qoff_dev(*res_, batch + 1);
    std::vector<float> host_q, carved;
    std::vector<int64_t> carved_lengths;
    for (size_t i0 = 0; i0 < nq; i0 += batch) {
        const size_t nb = std::min(batch, nq - i0), r0 = qoff[i0], rows = qoff[i0 + nb] - r0;
        const float* qb = q + r0 * d;
        Scratch<float> qbuf(*res_, q_dev ? 0 : rows * d);
        const float* qd = q_dev ? qb : qbuf.get();
        if (!q_dev) {
            std::lock_guard<std::mutex> call(res_->call_mutex());
            res_->set_device();
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(qbuf.get(), qb, rows * d * 4, cudaMemcpyHostToDevice, st));
        }
        // Encode (the encoder and the inner index take the call lock themselves).
        if (ball_carving_) {
            const float* src = qb;
            if (q_dev) {
                std::lock_guard<std::mutex> call(res_->call_mutex());
                res_->set_device();
                host_q.resize(rows * d);
                NEARLY_CUDA_CHECK(cudaMemcpyAsync(host_q.data(), qb, rows * d * 4, cudaMemcpyDeviceToHost, st));
                res_->synchronize();
                src = host_q.data();
            }
            ball_carve(src, rows, query_lengths + i0, nb, d, tau_, carved, carved_lengths);
            encoder_.encode(FdeEncoding::query_sum, carved.data(), carved.size() / d, carved_lengths.data(), nb,
                            fde.get());
        } else {
            encoder_.encode(FdeEncoding::query_sum, qd, rows, query_lengths + i0, nb, fde.get());
        }
        inner_->search(idx_t(nb), fde.get(), idx_t(n_cand), cand_d.get(), cand_i.get(), params);

        // Re-rank.
        std::lock_guard<std::mutex> call(res_->call_mutex());
        res_->set_device();
        std::vector<int64_t> ro(nb + 1);
        int64_t longest = 0;
        for (size_t s = 0; s <= nb; s++) ro[s] = int64_t(qoff[i0 + s] - r0);
        for (size_t s = 0; s < nb; s++) longest = std::max(longest, ro[s + 1] - ro[s]);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(qoff_dev.get(), ro.data(), ro.size() * 8, cudaMemcpyHostToDevice, st));
        candidate_positions_kernel<<<unsigned(nb), 256, size_t(P) * 8, st>>>(
            cand_i.get(), int(n_cand), P, has_id_map_ ? id_map_.data() : nullptr, keys_.data(), n_docs_, pos.get());
        NEARLY_CUDA_CHECK(cudaGetLastError());
        DeviceDocs docs;
        docs.vectors = fp16_ ? static_cast<const void*>(f16_.data()) : static_cast<const void*>(f32_.data());
        docs.fp16 = fp16_;
        docs.offsets = offsets_.data();
        docs.n_docs = n_docs_;
        docs.d = d_;
        chamfer_scores_device(*res_, qd, qoff_dev.get(), int64_t(nb), docs, pos.get(), int64_t(n_cand), longest,
                              scores.get());
        float* Db = out_dev ? D + i0 * k : dbuf.get();
        idx_t* Ib = out_dev ? I + i0 * k : ibuf.get();
        select_k(*res_, scores.get(), pos.get(), int64_t(nb), int64_t(n_cand), int(k), true, Db, Ib);
        const int64_t m = int64_t(nb * k);
        ids_of_positions_kernel<<<unsigned((m + 255) / 256), 256, 0, st>>>(Ib, m, ids_.data());
        NEARLY_CUDA_CHECK(cudaGetLastError());
        if (!out_dev) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(D + i0 * k, Db, nb * k * 4, cudaMemcpyDeviceToHost, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(I + i0 * k, Ib, nb * k * 8, cudaMemcpyDeviceToHost, st));
        }
        res_->synchronize();
    }
}

}  // namespace nearly::gpu
