#include "nearly/ivf.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/flat.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// Distances are computed this many list entries at a time (stack buffer).
constexpr size_t kScanChunk = 256;
// Queries per task: enough work to amortize a task, small enough to share
// a batch of queries over the pool.
constexpr size_t kQueriesPerTask = 8;
// From this many queries per probed list on average, a batch is scanned list
// by list with the GEMM engine (see search_by_list).
constexpr size_t kMinQueriesPerList = 4;
constexpr size_t kMaxPairResults = size_t(16) << 20;
}  // namespace

IndexIVFFlat::IndexIVFFlat(IndexPtr quantizer_, int d, size_t nlist_, MetricType metric)
    : Index(d, metric), quantizer(std::move(quantizer_)), nlist(nlist_), lists_(nlist_) {
    NEARLY_CHECK_ARG(quantizer != nullptr, "IndexIVFFlat: the quantizer is None");
    NEARLY_CHECK_ARG(quantizer->d == d, "IndexIVFFlat: the quantizer's dimension " + std::to_string(quantizer->d) +
                                            " differs from d=" + std::to_string(d));
    NEARLY_CHECK_ARG(nlist_ > 0, "IndexIVFFlat: nlist must be positive");
    cp.niter = 10;
    cp.spherical = metric == METRIC_INNER_PRODUCT;
    refresh_trained();
}

void IndexIVFFlat::refresh_trained() { is_trained = quantizer->is_trained && size_t(quantizer->ntotal) == nlist; }

void IndexIVFFlat::train(idx_t n, const float* x) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (verbose) std::printf("Training level-1 quantizer\n");
    if (quantizer->is_trained && size_t(quantizer->ntotal) == nlist) {
        if (verbose) std::printf("IVF quantizer does not need training.\n");
    } else {
        if (verbose) std::printf("Training level-1 quantizer on %lld vectors in %dD\n", (long long)n, d);
        Clustering clus(d, int(nlist), cp);
        clus.train(n, x, quantizer->metric_type);
        quantizer->reset();
        quantizer->train(idx_t(nlist), clus.centroids.data());
        quantizer->add(idx_t(nlist), clus.centroids.data());
    }
    std::fflush(stdout);
    refresh_trained();
}

void IndexIVFFlat::add(idx_t n, const float* x) { add_core(n, x, nullptr); }

void IndexIVFFlat::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_core(n, x, ids); }

void IndexIVFFlat::add_core(idx_t n, const float* x, const idx_t* ids) {
    check_writable();
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed: the IVF index must be trained before adding");
    check_add_args(n, x);
    if (n == 0) return;
    // Assign outside the lock: searches go on while the quantizer works.
    std::vector<float> dis(n);
    std::vector<idx_t> list_of(n);
    quantizer->search(n, x, 1, dis.data(), list_of.data());
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    InterruptPoll poll;
    const size_t dd = d;
    size_t added = 0;
    for (idx_t i = 0; i < n; i++) {
        const idx_t l = list_of[i];
        if (l < 0 || size_t(l) >= nlist) continue;  // faiss skips vectors the quantizer cannot place
        List& list = lists_[l];
        list.vectors.insert(list.vectors.end(), x + size_t(i) * dd, x + size_t(i + 1) * dd);
        list.ids.push_back(ids ? ids[i] : ntotal + i);
        if (direct_map_) where_[list.ids.back()] = {size_t(l), list.ids.size() - 1};
        added++;
        if ((i & 0xffff) == 0) poll();
    }
    ntotal += n;
    if (verbose) std::printf("IndexIVFFlat::add_core: added %zu / %lld vectors\n", added, (long long)n);
}

void IndexIVFFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                          const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    const size_t np = effective_nprobe(params);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    if (n == 0) return;

    std::vector<float> coarse_dis(size_t(n) * np);
    std::vector<idx_t> coarse(size_t(n) * np);
    quantizer->search(n, x, idx_t(np), coarse_dis.data(), coarse.data());

    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (size_t(n) * np >= kMinQueriesPerList * std::min(nlist, size_t(n) * np)) {
        // Per-pair partial results take n * nprobe * k slots: big batches go
        // in slices so that stays bounded (about 200 MB).
        const size_t per_slice = std::max<size_t>(1, kMaxPairResults / (np * size_t(k)));
        for (size_t q0 = 0; q0 < size_t(n); q0 += per_slice) {
            const size_t m = std::min(per_slice, size_t(n) - q0);
            search_by_list(idx_t(m), x + q0 * d, k, np, coarse.data() + q0 * np, sel, D + q0 * k, I + q0 * k);
        }
    } else {
        search_by_query(n, x, k, np, coarse.data(), sel, D, I);
    }
}

// Few queries per list: each query walks its lists, distances from the SIMD
// row kernels straight into its heap.
void IndexIVFFlat::search_by_query(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                                   const IDSelector* sel, float* D, idx_t* I) const {
    const SimdKernels& K = simd();
    const size_t dd = d, kk = k;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    InterruptPoll poll;
    parallel_for((n + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        float buf[kScanChunk];
        for (size_t q = t * kQueriesPerTask; q < std::min(size_t(n), (t + 1) * kQueriesPerTask); q++) {
            const float* xq = x + q * dd;
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);  // scores: L2 distance, or the negated inner product
            for (size_t p = 0; p < np; p++) {
                const idx_t l = coarse[q * np + p];
                if (l < 0) continue;
                const List& list = lists_[l];
                const size_t size = list.ids.size();
                for (size_t j0 = 0; j0 < size; j0 += kScanChunk) {
                    const size_t m = std::min(kScanChunk, size - j0);
                    const float* xb = list.vectors.data() + j0 * dd;
                    if (ip) {
                        K.inner_products_ny(xq, xb, dd, m, buf);
                        for (size_t j = 0; j < m; j++) buf[j] = -buf[j];
                    } else {
                        K.l2sqr_ny(xq, xb, dd, m, buf);
                    }
                    const idx_t* ids = list.ids.data() + j0;
                    for (size_t j = 0; j < m; j++) {
                        if (buf[j] > Dq[0] || (sel && !sel->is_member(ids[j]))) continue;
                        TopK::push(Dq, Iq, kk, buf[j], ids[j]);
                    }
                }
            }
            TopK::sort(Dq, Iq, kk);
            for (size_t i = 0; i < kk; i++) Dq[i] = Iq[i] < 0 ? pad : (ip ? -Dq[i] : Dq[i]);
            poll();
        }
    });
}

// Many queries per list: the queries probing a list are gathered and scanned
// against it with the blocked GEMM engine of exact search (knn_exhaustive),
// one list per task; each (query, probe) pair gets its own k best, merged per
// query at the end. Turns the scan from memory-bound into compute-bound.
void IndexIVFFlat::search_by_list(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                                  const IDSelector* sel, float* D, idx_t* I) const {
    const size_t dd = d, kk = k, npairs = size_t(n) * np;
    // Pairs bucketed by list.
    std::vector<size_t> start(nlist + 1, 0);
    for (size_t i = 0; i < npairs; i++)
        if (coarse[i] >= 0) start[coarse[i] + 1]++;
    for (size_t l = 0; l < nlist; l++) start[l + 1] += start[l];
    std::vector<size_t> pairs(start[nlist]), fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < npairs; i++)
        if (coarse[i] >= 0) pairs[fill[coarse[i]]++] = i;
    // Lists with work, biggest first, so the pool ends evenly.
    std::vector<size_t> order;
    for (size_t l = 0; l < nlist; l++)
        if (start[l + 1] > start[l] && !lists_[l].ids.empty()) order.push_back(l);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return (start[a + 1] - start[a]) * lists_[a].ids.size() > (start[b + 1] - start[b]) * lists_[b].ids.size();
    });

    std::vector<float> pD(npairs * kk);
    std::vector<idx_t> pI(npairs * kk, -1);
    InterruptPoll poll;
    parallel_for(order.size(), [&](size_t t) {
        const size_t l = order[t];
        const List& list = lists_[l];
        const size_t nq = start[l + 1] - start[l];
        std::vector<float> xq(nq * dd), dis(nq * kk);
        std::vector<idx_t> pos(nq * kk);
        for (size_t i = 0; i < nq; i++) {
            const float* src = x + (pairs[start[l] + i] / np) * dd;
            std::copy(src, src + dd, &xq[i * dd]);
        }
        std::unique_ptr<IDSelectorTranslated> translated;
        if (sel) translated = std::make_unique<IDSelectorTranslated>(list.ids, *sel);
        knn_exhaustive(xq.data(), nq, list.vectors.data(), list.ids.size(), dd, metric_type, kk, dis.data(),
                       pos.data(), translated.get());
        for (size_t i = 0; i < nq; i++) {
            const size_t pair = pairs[start[l] + i];
            for (size_t j = 0; j < kk; j++) {
                const idx_t p = pos[i * kk + j];
                pD[pair * kk + j] = dis[i * kk + j];
                pI[pair * kk + j] = p < 0 ? -1 : list.ids[p];
            }
        }
        poll();
    });

    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    parallel_for((n + 63) / 64, [&](size_t t) {
        for (size_t q = t * 64; q < std::min(size_t(n), t * 64 + 64); q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            for (size_t c = q * np * kk; c < (q + 1) * np * kk; c++)
                if (pI[c] >= 0) TopK::push(Dq, Iq, kk, ip ? -pD[c] : pD[c], pI[c]);
            TopK::sort(Dq, Iq, kk);
            for (size_t i = 0; i < kk; i++) Dq[i] = Iq[i] < 0 ? pad : (ip ? -Dq[i] : Dq[i]);
        }
    });
}

size_t IndexIVFFlat::effective_nprobe(const SearchParameters* params) const {
    size_t np = nprobe;
    if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) np = p->nprobe;
    NEARLY_CHECK_ARG(np > 0, "nprobe must be positive");
    return std::min(np, nlist);  // faiss clips too
}

void IndexIVFFlat::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    const size_t np = effective_nprobe(params);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::vector<float> coarse_dis(size_t(n) * np);
    std::vector<idx_t> coarse(size_t(n) * np);
    if (n > 0) quantizer->search(n, x, idx_t(np), coarse_dis.data(), coarse.data());

    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const SimdKernels& K = simd();
    const size_t dd = d;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    std::vector<std::vector<std::pair<idx_t, float>>> hits(n);
    InterruptPoll poll;
    parallel_for((n + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        float buf[kScanChunk];
        for (size_t q = t * kQueriesPerTask; q < std::min(size_t(n), (t + 1) * kQueriesPerTask); q++) {
            for (size_t p = 0; p < np; p++) {
                const idx_t l = coarse[q * np + p];
                if (l < 0) continue;
                const List& list = lists_[l];
                for (size_t j0 = 0; j0 < list.ids.size(); j0 += kScanChunk) {
                    const size_t m = std::min(kScanChunk, list.ids.size() - j0);
                    const float* xb = list.vectors.data() + j0 * dd;
                    if (ip)
                        K.inner_products_ny(x + q * dd, xb, dd, m, buf);
                    else
                        K.l2sqr_ny(x + q * dd, xb, dd, m, buf);
                    for (size_t j = 0; j < m; j++) {
                        const idx_t id = list.ids[j0 + j];
                        if ((ip ? buf[j] > radius : buf[j] < radius) && (!sel || sel->is_member(id)))
                            hits[q].emplace_back(id, buf[j]);
                    }
                }
            }
            poll();
        }
    });
    result.lims.assign(size_t(n) + 1, 0);
    result.labels.clear();
    result.distances.clear();
    for (size_t q = 0; q < size_t(n); q++) {
        for (const auto& h : hits[q]) {
            result.labels.push_back(h.first);
            result.distances.push_back(h.second);
        }
        result.lims[q + 1] = result.labels.size();
    }
}

size_t IndexIVFFlat::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d;
    size_t removed = 0;
    for (List& list : lists_) {
        size_t keep = 0;
        for (size_t j = 0; j < list.ids.size(); j++) {
            if (sel.is_member(list.ids[j])) continue;
            if (keep != j) {
                list.ids[keep] = list.ids[j];
                std::copy(list.vectors.begin() + j * dd, list.vectors.begin() + (j + 1) * dd,
                          list.vectors.begin() + keep * dd);
            }
            keep++;
        }
        removed += list.ids.size() - keep;
        list.ids.resize(keep);
        list.vectors.resize(keep * dd);
    }
    ntotal -= idx_t(removed);
    if (direct_map_ && removed) rebuild_direct_map();
    return removed;
}

void IndexIVFFlat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    for (List& list : lists_) {
        list.vectors.clear();
        list.ids.clear();
    }
    where_.clear();
    ntotal = 0;
}

void IndexIVFFlat::make_direct_map(bool enable) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    direct_map_ = enable;
    rebuild_direct_map();
}

void IndexIVFFlat::rebuild_direct_map() {
    where_.clear();
    if (!direct_map_) return;
    where_.reserve(size_t(ntotal));
    for (size_t l = 0; l < nlist; l++)
        for (size_t j = 0; j < lists_[l].ids.size(); j++) where_[lists_[l].ids[j]] = {l, j};
}

void IndexIVFFlat::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (!direct_map_) throw NotSupported("direct map not initialized: call make_direct_map() before reconstruct()");
    auto it = where_.find(key);
    if (it == where_.end()) throw OutOfRange("key " + std::to_string(key) + " not found");
    const float* v = lists_[it->second.first].vectors.data() + it->second.second * size_t(d);
    std::copy(v, v + d, out);
}

size_t IndexIVFFlat::list_size(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return lists_[list_no].ids.size();
}

std::vector<idx_t> IndexIVFFlat::list_ids(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return lists_[list_no].ids;
}

void IndexIVFFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint64_t>(nlist);
    w.pod<uint64_t>(nprobe);
    w.pod<int64_t>(ntotal);
    write_index_payload(*quantizer, w);
    for (const List& list : lists_) {
        w.vec(list.ids);
        w.vec(list.vectors);
    }
    w.pod<uint8_t>(direct_map_);
}

std::unique_ptr<IndexIVFFlat> IndexIVFFlat::read_body(Reader& r) {
    int d = r.pod<int32_t>();
    int metric = r.pod<int32_t>();
    uint64_t nlist = r.pod<uint64_t>();
    uint64_t nprobe = r.pod<uint64_t>();
    idx_t ntotal = r.pod<int64_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && ntotal >= 0 && nprobe > 0 &&
                nlist > 0 && nlist <= r.remaining() / 16,
            "bad IVFFlat header");
    IndexPtr quantizer = read_index_payload(r);
    r.check(quantizer->d == d, "IVFFlat quantizer dimension does not match");
    auto index = std::make_unique<IndexIVFFlat>(quantizer, d, nlist, MetricType(metric));
    index->nprobe = nprobe;
    size_t total = 0;
    for (List& list : index->lists_) {
        list.ids = r.vec<idx_t>();
        list.vectors = r.vec<float>();
        r.check(list.vectors.size() == list.ids.size() * size_t(d), "IVFFlat list sizes do not match");
        total += list.ids.size();
    }
    r.check(total == size_t(ntotal), "IVFFlat list sizes do not add up to ntotal");
    index->ntotal = ntotal;
    const uint8_t direct_map = r.pod<uint8_t>();
    r.check(direct_map <= 1, "bad IVFFlat direct map flag");
    if (direct_map) index->make_direct_map(true);
    return index;
}

}  // namespace nearly
