#include "gpu_binary_recurrent.h"

#include <algorithm>
#include <mutex>
#include <numeric>
#include <shared_mutex>

#include "binary_gpu.h"
#include "knn.h"
#include "select_k.cuh"

namespace nearly::gpu {

namespace {

// Turns a tile of -S (sdc_tile) into search keys in place: recurrent_key
// (cpp/src/binary_recurrent.cpp) operation for operation. The _rn
// intrinsics round each operation to nearest and are never fused into an
// FMA, as the CPU file is compiled without contraction.
__global__ void sdc_keys_kernel(float* tile, int64_t rows, int64_t cols, const float* qt, const float* vt, bool l2,
                                float a, float a2) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= rows * cols) return;
    const int64_t r = i / cols, c = i - r * cols;
    const float s = -tile[i];
    tile[i] = l2 ? __fsub_rn(__fadd_rn(qt[r], vt[c]), __fmul_rn(a2, s))
                 : -__fadd_rn(__fadd_rn(__fmul_rn(a, s), qt[r]), vt[c]);
}

// p itself when it is host memory, else a host copy of its count elements.
template <class T>
const T* on_host(GpuResources& res, const T* p, size_t count, std::vector<T>& copy) {
    if (p == nullptr || count == 0 || !is_device_pointer(p)) return p;
    copy.resize(count);
    std::lock_guard<std::mutex> call(res.call_mutex());
    res.set_device();
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(copy.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost, res.stream()));
    res.synchronize();
    return copy.data();
}

// Indexes of ids in ascending order, equal ids in their given order.
std::vector<size_t> ascending(const std::vector<idx_t>& ids) {
    std::vector<size_t> order(ids.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
    return order;
}

}  // namespace

GpuIndexBinaryRecurrent::GpuIndexBinaryRecurrent(ResourcesPtr r, const IndexBinaryRecurrent& cpu)
    : Index(cpu.d, cpu.metric_type), res(std::move(r)) {
    NEARLY_CHECK_ARG(res != nullptr, "GpuIndexBinaryRecurrent needs GPU resources");
    IndexBinaryRecurrent::Contents c = cpu.contents();
    m_ = c.encoder->m;
    nb_ = c.encoder->nb;
    sdc_check_gpu_shape(m_, nb_);
    enc_ = c.encoder;
    is_trained = enc_->is_trained;
    Rows rows;
    rows.codes = std::move(c.codes);
    rows.terms = std::move(c.terms);
    rows.ids = std::move(c.ids);
    rows.seq.resize(rows.ids.size());
    std::iota(rows.seq.begin(), rows.seq.end(), idx_t(0));
    next_seq_ = idx_t(rows.ids.size());
    store(gather(rows, ascending(rows.ids), code_size()));
}

GpuIndexBinaryRecurrent::Rows GpuIndexBinaryRecurrent::gather(const Rows& r, const std::vector<size_t>& order,
                                                              size_t cs) {
    Rows out;
    out.codes.resize(order.size() * cs);
    out.terms.resize(order.size());
    out.ids.resize(order.size());
    out.seq.resize(order.size());
    for (size_t i = 0; i < order.size(); i++) {
        const size_t j = order[i];
        std::copy_n(r.codes.data() + j * cs, cs, out.codes.data() + i * cs);
        out.terms[i] = r.terms[j];
        out.ids[i] = r.ids[j];
        out.seq[i] = r.seq[j];
    }
    return out;
}

GpuIndexBinaryRecurrent::Rows GpuIndexBinaryRecurrent::download() const {
    Rows r;
    const size_t n = size_t(ntotal);
    r.codes.resize(n * code_size());
    r.terms.resize(n);
    r.ids = ids_;
    r.seq = seq_;
    if (n == 0) return r;
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(r.codes.data(), codes_.data(), r.codes.size(), cudaMemcpyDeviceToHost, st));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(r.terms.data(), terms_.data(), n * 4, cudaMemcpyDeviceToHost, st));
    res->synchronize();
    return r;
}

void GpuIndexBinaryRecurrent::store(Rows rows) {
    const size_t n = rows.ids.size(), words = code_size() / 4;
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    // Emptied first so that growing does not copy the old rows.
    codes_.resize(0, st);
    terms_.resize(0, st);
    codes_.resize(n * words, st);
    terms_.resize(n, st);
    if (n) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(codes_.data(), rows.codes.data(), rows.codes.size(), cudaMemcpyHostToDevice, st));
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(terms_.data(), rows.terms.data(), n * 4, cudaMemcpyHostToDevice, st));
    }
    res->synchronize();  // the host rows are freed on return
    ids_ = std::move(rows.ids);
    seq_ = std::move(rows.seq);
    ntotal = idx_t(n);
}

void GpuIndexBinaryRecurrent::append(const Rows& rows) {
    const size_t n = rows.ids.size(), words = code_size() / 4, old = size_t(ntotal);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    cudaStream_t st = res->stream();
    codes_.resize((old + n) * words, st);
    terms_.resize(old + n, st);
    NEARLY_CUDA_CHECK(
        cudaMemcpyAsync(codes_.data() + old * words, rows.codes.data(), rows.codes.size(), cudaMemcpyHostToDevice, st));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(terms_.data() + old, rows.terms.data(), n * 4, cudaMemcpyHostToDevice, st));
    res->synchronize();
    ids_.insert(ids_.end(), rows.ids.begin(), rows.ids.end());
    seq_.insert(seq_.end(), rows.seq.begin(), rows.seq.end());
    ntotal = idx_t(old + n);
}

void GpuIndexBinaryRecurrent::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n > 0, "IndexBinaryRecurrent: train needs at least one vector");
    std::vector<float> copy;
    const float* xh = on_host(*res, x, size_t(n) * d, copy);
    check_finite(xh, size_t(n) * d, "the training vectors");
    auto enc = std::make_shared<RecurrentEncoder>(d, m_, nb_);
    enc->train(n, xh);
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    enc_ = enc;
    is_trained = true;
}

void GpuIndexBinaryRecurrent::add(idx_t n, const float* x) { add_rows(n, x, nullptr); }

void GpuIndexBinaryRecurrent::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    NEARLY_CHECK_ARG(ids != nullptr || n <= 0, "ids is None");
    add_rows(n, x, ids);
}

void GpuIndexBinaryRecurrent::add_rows(idx_t n, const float* x, const idx_t* ids) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    if (!is_trained) throw NotSupported("the index is not trained: call train() before add()");
    if (n == 0) return;
    std::vector<float> xcopy;
    std::vector<idx_t> idcopy;
    const float* xh = on_host(*res, x, size_t(n) * d, xcopy);
    const idx_t* idh = on_host(*res, ids, size_t(n), idcopy);
    check_add_args(n, xh);
    std::shared_ptr<const RecurrentEncoder> enc;
    {
        std::shared_lock<SharedMutex> lock(rw_mutex_);
        enc = enc_;
    }
    // Encoded outside the lock, as the CPU index does: searches go on meanwhile.
    Rows batch;
    batch.codes.resize(size_t(n) * code_size());
    batch.terms.resize(size_t(n));
    enc->encode(n, xh, batch.codes.data());
    recurrent_vector_terms(*enc, metric_type, n, xh, batch.terms.data());
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    for (idx_t i = 0; i < n; i++) {
        batch.ids.push_back(idh ? idh[i] : ntotal + i);
        batch.seq.push_back(next_seq_ + i);
    }
    next_seq_ += n;
    const bool in_order = std::is_sorted(batch.ids.begin(), batch.ids.end()) &&
                          (ids_.empty() || batch.ids.front() >= ids_.back());
    if (in_order) {
        append(batch);
        return;
    }
    // Ids below stored ones: re-sort everything through the host so that the
    // rows stay in id order (the tie rule, see the header).
    Rows all = download();
    all.codes.insert(all.codes.end(), batch.codes.begin(), batch.codes.end());
    all.terms.insert(all.terms.end(), batch.terms.begin(), batch.terms.end());
    all.ids.insert(all.ids.end(), batch.ids.begin(), batch.ids.end());
    all.seq.insert(all.seq.end(), batch.seq.begin(), batch.seq.end());
    store(gather(all, ascending(all.ids), code_size()));
}

void GpuIndexBinaryRecurrent::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                     const SearchParameters* params) const {
    NEARLY_CHECK_ARG(k >= 1, "k must be >= 1 (got " + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(k <= kMaxSelectK, "k must be <= " + std::to_string(kMaxSelectK) +
                                           " on the GPU (faiss's limit too); got " + std::to_string(k));
    if (params && params->sel)
        throw NotSupported("GPU indexes do not filter with an IDSelector; search the CPU index for filtered queries");
    NEARLY_CHECK_ARG(n >= 0, "the number of queries must be non-negative");
    if (n == 0) return;
    if (!is_trained) throw NotSupported("the index is not trained: call train() before search()");
    std::vector<float> xcopy;
    const float* xh = on_host(*res, x, size_t(n) * d, xcopy);
    check_search_args(n, xh, k);
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    const RecurrentEncoder& enc = *enc_;
    const size_t cs = code_size(), words = cs / 4, kk = size_t(k);
    const float a = recurrent_score_scale(enc), a2 = 2 * a;  // 2 * a: the CPU's (2 * a) * s
    const bool l2 = metric_type == METRIC_L2;
    const float pad = missing_distance(metric_type);
    const bool d_dev = is_device_pointer(D), i_dev = is_device_pointer(I);
    // Queries in chunks: bounded host buffers and tiles of at most 65536
    // rows. A multiple of 256, so that the encoder groups the queries as in
    // one CPU call (its 256-row blocks).
    const idx_t chunk = std::min<idx_t>(n, 65536);
    std::vector<uint8_t> qc(size_t(chunk) * cs);
    std::vector<float> qt(static_cast<size_t>(chunk)), keys(size_t(chunk) * kk), dh(d_dev ? size_t(chunk) * kk : 0);
    std::vector<int64_t> rows(size_t(chunk) * kk);
    std::vector<idx_t> ih(i_dev ? size_t(chunk) * kk : 0);
    for (idx_t q0 = 0; q0 < n; q0 += chunk) {
        const idx_t nq = std::min(chunk, n - q0);
        const size_t cnt = size_t(nq) * kk;
        const float* xq = xh + size_t(q0) * d;
        enc.encode(nq, xq, qc.data());
        recurrent_query_terms(enc, metric_type, nq, xq, qt.data());
        std::lock_guard<std::mutex> call(res->call_mutex());
        res->set_device();
        cudaStream_t st = res->stream();
        if (ntotal == 0) {
            std::fill(rows.begin(), rows.begin() + cnt, int64_t(-1));
        } else {
            Scratch<uint32_t> qd(*res, size_t(nq) * words);
            Scratch<float> qtd(*res, size_t(nq)), keysd(*res, cnt);
            Scratch<int64_t> rowsd(*res, cnt);
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(qd.get(), qc.data(), size_t(nq) * cs, cudaMemcpyHostToDevice, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(qtd.get(), qt.data(), size_t(nq) * 4, cudaMemcpyHostToDevice, st));
            KnnArgs args;
            args.nq = nq;
            args.nb = ntotal;
            args.k = int(k);
            args.D = keysd.get();
            args.I = rowsd.get();
            args.tile_fn = [&](int64_t r0, int64_t nr, int64_t j0, int64_t nc, float* tile) {
                sdc_tile(*res, qd.get() + r0 * words, nr, codes_.data() + j0 * words, nc, m_, nb_, tile);
                const int64_t count = nr * nc;
                sdc_keys_kernel<<<unsigned((count + 255) / 256), 256, 0, st>>>(tile, nr, nc, qtd.get() + r0,
                                                                              terms_.data() + j0, l2, a, a2);
                NEARLY_CUDA_CHECK(cudaGetLastError());
            };
            knn_exact(*res, args);
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(keys.data(), keysd.get(), cnt * 4, cudaMemcpyDeviceToHost, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(rows.data(), rowsd.get(), cnt * 8, cudaMemcpyDeviceToHost, st));
            res->synchronize();
        }
        // Rows to ids, keys to distances, as the CPU index finishes its heaps
        // (a negative id reads as missing there too).
        float* Dq = d_dev ? dh.data() : D + size_t(q0) * kk;
        idx_t* Iq = i_dev ? ih.data() : I + size_t(q0) * kk;
        for (size_t i = 0; i < cnt; i++) {
            Iq[i] = rows[i] < 0 ? idx_t(-1) : ids_[size_t(rows[i])];
            Dq[i] = Iq[i] < 0 ? pad : (l2 ? keys[i] : -keys[i]);
        }
        if (d_dev) NEARLY_CUDA_CHECK(cudaMemcpyAsync(D + size_t(q0) * kk, Dq, cnt * 4, cudaMemcpyHostToDevice, st));
        if (i_dev) NEARLY_CUDA_CHECK(cudaMemcpyAsync(I + size_t(q0) * kk, Iq, cnt * 8, cudaMemcpyHostToDevice, st));
        res->synchronize();
    }
}

void GpuIndexBinaryRecurrent::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    // The first row of that id: the earliest added, as the CPU index finds it.
    auto it = std::lower_bound(ids_.begin(), ids_.end(), key);
    if (it == ids_.end() || *it != key) throw OutOfRange("key " + std::to_string(key) + " is not in the index");
    const size_t row = size_t(it - ids_.begin()), cs = code_size();
    std::vector<uint8_t> code(cs);
    {
        std::lock_guard<std::mutex> call(res->call_mutex());
        res->set_device();
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(code.data(), codes_.data() + row * (cs / 4), cs, cudaMemcpyDeviceToHost,
                                          res->stream()));
        res->synchronize();
    }
    enc_->decode(1, code.data(), out);
}

size_t GpuIndexBinaryRecurrent::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    Rows all = download();
    std::vector<size_t> keep;
    for (size_t i = 0; i < all.ids.size(); i++)
        if (!sel.is_member(all.ids[i])) keep.push_back(i);
    const size_t removed = all.ids.size() - keep.size();
    if (removed) store(gather(all, keep, code_size()));
    return removed;
}

void GpuIndexBinaryRecurrent::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lock(rw_mutex_);
    std::lock_guard<std::mutex> call(res->call_mutex());
    res->set_device();
    res->synchronize();
    codes_.clear();
    terms_.clear();
    ids_.clear();
    seq_.clear();
    ntotal = 0;
    next_seq_ = 0;
}

void GpuIndexBinaryRecurrent::write_body(Writer&) const {
    throw NotSupported("a GPU index cannot be serialized; convert it with index_gpu_to_cpu first (as in faiss)");
}

std::shared_ptr<IndexBinaryRecurrent> GpuIndexBinaryRecurrent::to_cpu() const {
    std::shared_lock<SharedMutex> lock(rw_mutex_);
    Rows rows = download();
    // Insertion order: the CPU index's own order of its rows.
    std::vector<size_t> order(rows.seq.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows.seq[a] < rows.seq[b]; });
    Rows ordered = gather(rows, order, code_size());
    IndexBinaryRecurrent::Contents c;
    c.encoder = std::make_shared<RecurrentEncoder>(*enc_);
    c.codes = std::move(ordered.codes);
    c.terms = std::move(ordered.terms);
    c.ids = std::move(ordered.ids);
    return IndexBinaryRecurrent::from_contents(metric_type, c);
}

}  // namespace nearly::gpu
