#include "graph_build.h"

#include <algorithm>
#include <chrono>
#include <cfloat>
#include <climits>
#include <cstdio>

#include "kmeans_gpu.h"
#include "nearly/random.h"
#include "knn.h"
#include "select_k.h"
#include "vector_ops.h"
#include "warp_score.cuh"

namespace nearly::gpu {

namespace {

constexpr int kWarps = 4;        // warps (nodes) per block in the per-node kernels
constexpr int kMaxCap = 256;     // links kept per node
constexpr int kMergeBuf = 512;   // a node's forward and reverse links staged at once
constexpr unsigned kFull = 0xffffffffu;

// At least one block: a launch of none fails, and every kernel here checks its bound.
unsigned blocks_for(int64_t n, int per) { return unsigned(std::max<int64_t>(1, (n + per - 1) / per)); }

// A NeighborTable on the device.
struct DeviceTable {
    int64_t n = 0;
    int k = 0;
    DeviceVector<int32_t> ids;
    DeviceVector<float> scores;
    void swap(DeviceTable& o) {
        std::swap(n, o.n);
        std::swap(k, o.k);
        ids.swap(o.ids);
        scores.swap(o.scores);
    }
    void resize(int64_t n_, int k_, cudaStream_t st) {
        n = n_;
        k = k_;
        ids.resize(std::max<size_t>(size_t(n) * k, 1), st);
        scores.resize(std::max<size_t>(size_t(n) * k, 1), st);
    }
};

void upload(GpuResources& res, const NeighborTable& h, DeviceTable& t) {
    t.resize(h.n, h.k, res.stream());
    if (h.ids.empty()) return;
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(t.ids.data(), h.ids.data(), h.ids.size() * 4, cudaMemcpyHostToDevice, res.stream()));
    NEARLY_CUDA_CHECK(
        cudaMemcpyAsync(t.scores.data(), h.scores.data(), h.scores.size() * 4, cudaMemcpyHostToDevice, res.stream()));
    res.synchronize();  // h may go away on return
}

// with_scores false: the ids alone (the scores left zero), for a graph's
// final links, whose scores nothing reads.
NeighborTable download(GpuResources& res, const DeviceTable& t, bool with_scores = true) {
    NeighborTable h(t.n, t.k);
    if (h.ids.empty()) return h;
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(h.ids.data(), t.ids.data(), h.ids.size() * 4, cudaMemcpyDeviceToHost, res.stream()));
    if (with_scores)
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(h.scores.data(), t.scores.data(), h.scores.size() * 4,
                                          cudaMemcpyDeviceToHost, res.stream()));
    res.synchronize();
    return h;
}

// HNSW's heuristic by one warp over nc candidates (best first; -1 and self
// are skipped), as graph_build.cpp's: with at most cap candidates all are
// kept. The kept links go to kept_ids / kept_scores (this warp's shared
// arrays); returns how many. Every lane takes the same branches.
// Whether candidate i counts: a row, not the node itself, not seen earlier
// in the list (a row can be both a near and a far candidate). Per lane.
__device__ inline bool usable(const int32_t* ids, int i, int32_t self) {
    const int32_t c = ids[i];
    if (c < 0 || c == self) return false;
    for (int j = 0; j < i; j++)
        if (ids[j] == c) return false;
    return true;
}

__device__ int warp_heuristic(const float* x, int d, bool l2, int32_t self, const int32_t* ids, const float* scores,
                              int nc, int cap, int32_t* kept_ids, float* kept_scores) {
    const int lane = threadIdx.x & 31;
    int valid = 0;
    for (int base = 0; base < nc; base += 32) {
        const int i = base + lane;
        valid += __popc(__ballot_sync(kFull, i < nc && usable(ids, i, self)));
    }
    int nk = 0;
    if (valid <= cap) {
        for (int base = 0; base < nc; base += 32) {
            const int i = base + lane;
            const bool ok = i < nc && usable(ids, i, self);
            const unsigned m = __ballot_sync(kFull, ok);
            if (ok) {
                const int at = nk + __popc(m & ((1u << lane) - 1u));
                kept_ids[at] = ids[i];
                kept_scores[at] = scores[i];
            }
            nk += __popc(m);
        }
        __syncwarp();
        return nk;
    }
    for (int i = 0; i < nc && nk < cap; i++) {
        const int32_t c = ids[i];
        // A repeat of a kept row is occluded by it; one of an occluded row
        // is checked again (its score may round differently), as on the CPU
        // it is not: so skip it, in every lane alike.
        bool seen = c < 0 || c == self;
        for (int base = 0; base < i && !seen; base += 32)
            seen = __ballot_sync(kFull, base + lane < i && ids[base + lane] == c) != 0;
        if (seen) continue;
        const float sc = scores[i];
        const float* xc = x + size_t(c) * d;
        bool good = true;
        for (int r = 0; r < nk && good; r++) good = warp_score(xc, x + size_t(kept_ids[r]) * d, d, l2, lane) >= sc;
        if (good) {
            if (lane == 0) {
                kept_ids[nk] = c;
                kept_scores[nk] = sc;
            }
            __syncwarp();
            nk++;
        }
    }
    return nk;
}

__device__ void write_links(int64_t v, int cap, int nk, const int32_t* kept_ids, const float* kept_scores,
                            int32_t* out_ids, float* out_scores) {
    for (int j = threadIdx.x & 31; j < cap; j += 32) {
        out_ids[v * cap + j] = j < nk ? kept_ids[j] : -1;
        out_scores[v * cap + j] = j < nk ? kept_scores[j] : 0.f;
    }
}

// One warp per node: its k-NN candidates pruned to at most cap links.
__global__ void __launch_bounds__(32 * kWarps)
    prune_kernel(const float* x, int d, bool l2, const int32_t* cand_ids, const float* cand_scores, int64_t n, int kc,
                 int cap, int32_t* out_ids, float* out_scores) {
    __shared__ int32_t kept_ids[kWarps][kMaxCap];
    __shared__ float kept_scores[kWarps][kMaxCap];
    const int w = threadIdx.x >> 5;
    const int64_t v = int64_t(blockIdx.x) * kWarps + w;
    if (v >= n) return;  // the whole warp; no block-wide barrier follows
    const int nk = warp_heuristic(x, d, l2, int32_t(v), cand_ids + v * kc, cand_scores + v * kc, kc, cap,
                                  kept_ids[w], kept_scores[w]);
    write_links(v, cap, nk, kept_ids[w], kept_scores[w], out_ids, out_scores);
}

// Sorts a warp's staged links by (score, row), drops every row seen earlier
// in that order (a link and its reverse carry differently rounded scores:
// the better counts) and the padding, and keeps the first `keep`. Returns
// how many are left at the front.
__device__ int warp_sort_unique(float* s, int32_t* id, int cnt, int keep) {
    const int lane = threadIdx.x & 31;
    int p = 32;
    while (p < cnt) p <<= 1;
    for (int j = cnt + lane; j < p; j += 32) {
        s[j] = FLT_MAX;
        id[j] = INT32_MAX;
    }
    __syncwarp();
    for (int k = 2; k <= p; k <<= 1)
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = lane; i < p; i += 32) {
                const int l = i ^ j;
                if (l > i) {
                    const float si = s[i], sl = s[l];
                    const int32_t ii = id[i], il = id[l];
                    const bool after = si > sl || (si == sl && ii > il);
                    if (after == ((i & k) == 0)) {
                        s[i] = sl;
                        s[l] = si;
                        id[i] = il;
                        id[l] = ii;
                    }
                }
            }
            __syncwarp();
        }
    unsigned dup[kMergeBuf / 32];
    for (int base = 0; base < p; base += 32) {
        const int i = base + lane;
        const int32_t me = id[i];
        bool seen = me == INT32_MAX;
        for (int j = 0; j < i && !seen; j++) seen = id[j] == me;
        dup[base / 32] = __ballot_sync(kFull, seen);
    }
    int out = 0;
    for (int base = 0; base < p; base += 32) {
        const int i = base + lane;
        const bool ok = !((dup[base / 32] >> lane) & 1u);
        const float si = s[i];
        const int32_t ii = id[i];
        const unsigned m = __ballot_sync(kFull, ok);
        __syncwarp();  // every lane has read its entry before any is overwritten
        const int at = out + __popc(m & ((1u << lane) - 1u));
        if (ok && at < keep) {
            s[at] = si;
            id[at] = ii;
        }
        out += __popc(m);
        __syncwarp();
    }
    return min(out, keep);
}

// One warp per node v: its own links and the links to it (rev_*[rev_start[v]
// .. rev_start[v + 1])), the best max_merge of them once each, pruned to cap.
__global__ void __launch_bounds__(32 * kWarps)
    merge_kernel(const float* x, int d, bool l2, const int32_t* fwd_ids, const float* fwd_scores, int kf,
                 const int64_t* rev_start, const int32_t* rev_ids, const float* rev_scores, int64_t n, int cap,
                 int max_merge, int32_t* out_ids, float* out_scores) {
    __shared__ float buf_s[kWarps][kMergeBuf];
    __shared__ int32_t buf_i[kWarps][kMergeBuf];
    __shared__ int32_t kept_ids[kWarps][kMaxCap];
    __shared__ float kept_scores[kWarps][kMaxCap];
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t v = int64_t(blockIdx.x) * kWarps + w;
    if (v >= n) return;
    float* bs = buf_s[w];
    int32_t* bi = buf_i[w];
    const int64_t r0 = rev_start[v];
    const int64_t total = kf + (rev_start[v + 1] - r0);
    int cnt = 0;
    for (int64_t t0 = 0; t0 < total;) {
        const int take = int(total - t0 < kMergeBuf - cnt ? total - t0 : int64_t(kMergeBuf - cnt));
        for (int j = lane; j < take; j += 32) {
            const int64_t t = t0 + j;
            const int32_t id = t < kf ? fwd_ids[v * kf + t] : rev_ids[r0 + t - kf];
            const float sc = t < kf ? fwd_scores[v * kf + t] : rev_scores[r0 + t - kf];
            bi[cnt + j] = id < 0 ? INT32_MAX : id;  // padding sorts last and is dropped
            bs[cnt + j] = id < 0 ? FLT_MAX : sc;
        }
        __syncwarp();
        cnt += take;
        t0 += take;
        // A hub: keep the best max_merge (<= kMergeBuf / 2) and stage more.
        if (cnt == kMergeBuf && t0 < total) cnt = warp_sort_unique(bs, bi, cnt, max_merge);
    }
    cnt = warp_sort_unique(bs, bi, cnt, max_merge);
    const int nk = warp_heuristic(x, d, l2, int32_t(v), bi, bs, cnt, cap, kept_ids[w], kept_scores[w]);
    write_links(v, cap, nk, kept_ids[w], kept_scores[w], out_ids, out_scores);
}

__global__ void count_in_links_kernel(const int32_t* ids, int64_t total, unsigned* indeg) {
    const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (e < total && ids[e] >= 0) atomicAdd(&indeg[ids[e]], 1u);
}

// The reverse lists in any order: merge_kernel sorts them.
__global__ void scatter_in_links_kernel(const int32_t* ids, const float* scores, int64_t total, int k,
                                        const int64_t* start, unsigned* cursor, int32_t* rev_ids, float* rev_scores) {
    const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (e >= total) return;
    const int32_t v = ids[e];
    if (v < 0) return;
    const int64_t at = start[v] + atomicAdd(&cursor[v], 1u);
    rev_ids[at] = int32_t(e / k);
    rev_scores[at] = scores[e];
}

// k-NN results (knn_exact / select_k: distances, ids best first, k + 1 per
// row) to a table of k: ids through `rows` (null: as they are), the node
// itself and padding dropped, scores as the build compares them.
__global__ void finish_knn_kernel(const float* D, const int64_t* I, int kin, const int64_t* rows, int64_t row0,
                                  int64_t n, bool l2, int k, int32_t* out_ids, float* out_scores) {
    const int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (q >= n) return;
    const int64_t self = row0 + q;
    int m = 0;
    for (int j = 0; j < kin && m < k; j++) {
        int64_t v = I[q * kin + j];
        if (v < 0) continue;
        if (rows) v = rows[v];
        if (v == self) continue;
        out_ids[self * k + m] = int32_t(v);
        out_scores[self * k + m] = l2 ? D[q * kin + j] : -D[q * kin + j];
        m++;
    }
    for (; m < k; m++) {
        out_ids[self * k + m] = -1;
        out_scores[self * k + m] = 0.f;
    }
}

// Row q's candidates from each of its probes' result rows, side by side.
__global__ void gather_probe_rows_kernel(const float* cD, const int64_t* cI, int kin, const int64_t* entry_of,
                                         int n_probe, int64_t q0, int64_t nq, float* outD, int64_t* outI) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    const int64_t per = int64_t(n_probe) * kin;
    if (i >= nq * per) return;
    const int64_t q = i / per, j = i % per;
    const int64_t src = entry_of[(q0 + q) * n_probe + j / kin] * kin + j % kin;
    outD[i] = cD[src];
    outI[i] = cI[src];
}

void prune_on_device(GpuResources& res, const float* x, int d, MetricType metric, const DeviceTable& cands, int cap,
                     DeviceTable& out) {
    NEARLY_CHECK_ARG(cap >= 1 && cap <= kMaxCap, "GPU graph build: at most " + std::to_string(kMaxCap) + " links per node");
    out.resize(cands.n, cap, res.stream());
    if (cands.n == 0) return;
    prune_kernel<<<blocks_for(cands.n, kWarps), 32 * kWarps, 0, res.stream()>>>(
        x, d, metric == METRIC_L2, cands.ids.data(), cands.scores.data(), cands.n, cands.k, cap, out.ids.data(),
        out.scores.data());
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

void merge_on_device(GpuResources& res, const float* x, int d, MetricType metric, const DeviceTable& links, int cap,
                     int max_merge, DeviceTable& out) {
    NEARLY_CHECK_ARG(cap >= 1 && cap <= kMaxCap && max_merge >= cap && max_merge <= kMergeBuf / 2,
                     "GPU graph build: need 1 <= cap <= max_merge <= " + std::to_string(kMergeBuf / 2));
    const int64_t n = links.n;
    out.resize(n, cap, res.stream());
    if (n == 0) return;
    cudaStream_t st = res.stream();
    const int64_t total = n * links.k;
    Scratch<unsigned> indeg(res, size_t(n));
    NEARLY_CUDA_CHECK(cudaMemsetAsync(indeg.get(), 0, size_t(n) * 4, st));
    count_in_links_kernel<<<blocks_for(total, 256), 256, 0, st>>>(links.ids.data(), total, indeg.get());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    std::vector<unsigned> h(static_cast<size_t>(n));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(h.data(), indeg.get(), size_t(n) * 4, cudaMemcpyDeviceToHost, st));
    res.synchronize();
    std::vector<int64_t> start(size_t(n) + 1, 0);
    for (int64_t v = 0; v < n; v++) start[size_t(v) + 1] = start[size_t(v)] + h[size_t(v)];
    Scratch<int64_t> start_d(res, start.size());
    Scratch<int32_t> rev_ids(res, std::max<size_t>(size_t(start.back()), 1));
    Scratch<float> rev_scores(res, std::max<size_t>(size_t(start.back()), 1));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(start_d.get(), start.data(), start.size() * 8, cudaMemcpyHostToDevice, st));
    NEARLY_CUDA_CHECK(cudaMemsetAsync(indeg.get(), 0, size_t(n) * 4, st));  // now the fill cursors
    scatter_in_links_kernel<<<blocks_for(total, 256), 256, 0, st>>>(links.ids.data(), links.scores.data(), total,
                                                                     links.k, start_d.get(), indeg.get(),
                                                                     rev_ids.get(), rev_scores.get());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    merge_kernel<<<blocks_for(n, kWarps), 32 * kWarps, 0, st>>>(x, d, metric == METRIC_L2, links.ids.data(),
                                                                links.scores.data(), links.k, start_d.get(),
                                                                rev_ids.get(), rev_scores.get(), n, cap, max_merge,
                                                                out.ids.data(), out.scores.data());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    res.synchronize();  // start (host) is freed on return
}

// Exact k-NN of n rows (device) among themselves.
void exact_knn_on_device(GpuResources& res, const float* x, int64_t n, int d, MetricType metric, int k, bool tf32,
                         DeviceTable& out) {
    out.resize(n, k, res.stream());
    const int kin = int(std::min<int64_t>(k + 1, n));
    Scratch<float> norms(res, metric == METRIC_L2 ? size_t(n) : 0);
    if (metric == METRIC_L2) row_norms(res, x, n, d, norms.get());
    Scratch<float> D(res, size_t(n) * kin);
    Scratch<int64_t> I(res, size_t(n) * kin);
    knn_exact(res, float_knn(metric, x, n, x, norms.get(), n, d, kin, tf32, D.get(), I.get()));
    finish_knn_kernel<<<blocks_for(n, 256), 256, 0, res.stream()>>>(D.get(), I.get(), kin, nullptr, 0, n,
                                                                     metric == METRIC_L2, k, out.ids.data(),
                                                                     out.scores.data());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    res.synchronize();
}

// A chunk's (row, probe) entries as sort keys: the row's nearest list in
// [0, n_lists) (scanned first), its other lists in [n_lists, 2 n_lists).
__global__ void entry_keys_kernel(const int64_t* probes, int64_t E, int n_probe, int n_lists, int32_t* keys,
                                  int32_t* vals, unsigned* counts) {
    const int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (e >= E) return;
    const int32_t key = int32_t(probes[e]) + (e % n_probe == 0 ? 0 : n_lists);
    keys[e] = key;
    vals[e] = int32_t(e);
    atomicAdd(&counts[key], 1u);
}

// Entries in list order (a stable sort: by row within a list): each
// position's row, and each entry's position.
__global__ void place_entries_kernel(const int32_t* sorted_entries, int64_t E, int n_probe, int64_t r0,
                                     int64_t* q_rows, int64_t* entry_of) {
    const int64_t at = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (at >= E) return;
    const int32_t e = sorted_entries[at];
    q_rows[at] = r0 + e / n_probe;
    entry_of[e] = at;
}

// The bound of each entry of a row's other lists: the kin-th best key in its
// nearest list (knn.h's bound_keys), nudged up so that a tie is kept.
__global__ void list_bounds_kernel(const float* cD, const int64_t* cI, int kin, const int64_t* q_rows,
                                   const int64_t* entry_of, int n_probe, int64_t r0, int64_t at0, int64_t count,
                                   const float* x_norms, bool l2, float* bounds) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= count) return;
    const int64_t q = q_rows[at0 + i];
    const int64_t last = entry_of[(q - r0) * n_probe] * kin + kin - 1;
    if (cI[last] < 0) {  // a list of fewer than kin rows bounds nothing
        bounds[i] = FLT_MAX;
        return;
    }
    const float D = cD[last], qn = l2 ? x_norms[q] : 0.f;
    bounds[i] = (l2 ? D - qn : -D) + 1e-5f * (fabsf(D) + qn) + 1e-30f;
}

// TF32 scores made exact: each row's candidates scored again in float32
// (one warp per row) and sorted by (score, row), as finish_knn's tables are.
__global__ void __launch_bounds__(32 * kWarps)
    rescore_kernel(const float* x, int d, bool l2, int64_t n, int k, int32_t* ids, float* scores) {
    __shared__ float buf_s[kWarps][kMergeBuf];
    __shared__ int32_t buf_i[kWarps][kMergeBuf];
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t v = int64_t(blockIdx.x) * kWarps + w;
    if (v >= n) return;
    const float* xv = x + size_t(v) * d;
    for (int j = 0; j < k; j++) {
        const int32_t c = ids[v * k + j];  // the same in every lane
        const float sc = c < 0 ? FLT_MAX : warp_score(xv, x + size_t(c) * d, d, l2, lane);
        if (lane == 0) {
            buf_s[w][j] = sc;
            buf_i[w][j] = c < 0 ? INT32_MAX : c;
        }
    }
    __syncwarp();
    const int cnt = warp_sort_unique(buf_s[w], buf_i[w], k, k);
    for (int j = lane; j < k; j += 32) {
        ids[v * k + j] = j < cnt ? buf_i[w][j] : -1;
        scores[v * k + j] = j < cnt ? buf_s[w][j] : 0.f;
    }
}

void rescore_on_device(GpuResources& res, const float* x, int d, MetricType metric, DeviceTable& t) {
    if (t.n == 0 || t.k == 0) return;
    NEARLY_CHECK_ARG(t.k <= kMergeBuf, "GPU graph build: at most " + std::to_string(kMergeBuf) + " candidates per row");
    rescore_kernel<<<blocks_for(t.n, kWarps), 32 * kWarps, 0, res.stream()>>>(x, d, metric == METRIC_L2, t.n, t.k,
                                                                               t.ids.data(), t.scores.data());
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

// Approximate k-NN of n rows (device) among themselves by an inverted file.
// Each row is scored against the rows of its n_probe nearest lists, one GEMM
// (TF32) per list for all the rows probing it, its candidates from each list
// merged (select_k) and their scores then computed again exactly. A row's
// own list is scanned first: the k-th best there bounds the other lists, so
// their selections (most of the work: a full sort per row and list without
// a bound) only see the few keys that beat it.
//
// far (optional, with up: one flag per row): each row's kf nearest rows
// among the flagged ones, from the same lists: a list's flagged rows sit at
// its front, so each list's second GEMM covers only them. The upper level's
// rows nearest to a row lie in its nearest lists: on 100k real embeddings
// (bench/graph_far_candidates.py) these tables share 84% of the exact ones
// (far_candidates_on_device) and the graphs search at the same recall
// (within 0.001 at efSearch 16 to 256), for a few percent of the cost.
void ivf_knn_on_device(GpuResources& res, const float* x, int64_t n, int d, MetricType metric, int k, int n_lists,
                       int n_probe, const std::vector<char>* up, int kf, bool verbose, DeviceTable& out,
                       DeviceTable* far) {
    cudaStream_t st = res.stream();
    const bool l2 = metric == METRIC_L2;
    auto t0 = std::chrono::steady_clock::now();
    auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    auto say = [&](const char* what) {
        if (!verbose) return;
        res.synchronize();
        std::printf("  GPU graph build:     %-28s at %.3f s\n", what, secs());
        std::fflush(stdout);
    };
    n_lists = int(std::min<int64_t>(n_lists, n));
    n_probe = std::min(n_probe, n_lists);
    const bool with_far = far && up && kf >= 1;
    const int kin = k + 1, kfin = with_far ? kf + 1 : 0;
    // rescore_kernel's buffer holds the k (kf) kept per row, not kin (kfin).
    NEARLY_CHECK_ARG(k <= kMergeBuf && (!with_far || kf <= kMergeBuf),
                     "GPU graph build: at most " + std::to_string(kMergeBuf) + " neighbours per node");

    // Lists from a sample of 64 rows per list, drawn and gathered here (the
    // rows may live on the device only): lists only have to gather near rows.
    Scratch<float> cent(res, size_t(n_lists) * d), cent_norms(res, size_t(n_lists));
    {
        const int64_t ns = std::min<int64_t>(n, int64_t(n_lists) * 64);
        std::vector<int> perm(static_cast<size_t>(n));
        rand_perm(perm.data(), size_t(n), 1234);  // faiss's subsampling draw (rows are int32 here)
        std::vector<int64_t> pick(perm.begin(), perm.begin() + ns);
        std::sort(pick.begin(), pick.end());
        Scratch<int64_t> pick_d(res, size_t(ns));
        Scratch<float> sample_d(res, size_t(ns) * d);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(pick_d.get(), pick.data(), size_t(ns) * 8, cudaMemcpyHostToDevice, st));
        gather_rows(res, x, pick_d.get(), ns, d, sample_d.get());
        std::vector<float> sample(size_t(ns) * d);
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(sample.data(), sample_d.get(), sample.size() * 4, cudaMemcpyDeviceToHost, st));
        res.synchronize();
        ClusteringParameters cp;
        cp.niter = 10;
        cp.max_points_per_centroid = 64;  // the sample as it is
        std::vector<float> centroids =
            gpu_kmeans(res, cp, d, n_lists, ns, sample.data(), METRIC_L2, nullptr, sample_d.get());
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(cent.get(), centroids.data(), centroids.size() * 4, cudaMemcpyHostToDevice, st));
        row_norms(res, cent.get(), n_lists, d, cent_norms.get());
        res.synchronize();  // centroids (host) go away
    }
    say("lists trained");

    // Each row's probes: its n_probe nearest centroids (the first is its list).
    Scratch<int64_t> probes_d(res, size_t(n) * n_probe);
    std::vector<int64_t> first(static_cast<size_t>(n));
    {
        Scratch<float> pd(res, size_t(n) * n_probe);
        knn_exact(res, float_knn(metric, x, n, cent.get(), cent_norms.get(), n_lists, d, n_probe, false, pd.get(),
                                 probes_d.get()));
        NEARLY_CUDA_CHECK(cudaMemcpy2DAsync(first.data(), 8, probes_d.get(), size_t(n_probe) * 8, 8, size_t(n),
                                            cudaMemcpyDeviceToHost, st));
        res.synchronize();
    }
    // The rows of each list (by first probe) back to back in xs, a list's
    // flagged rows first; ties by row.
    std::vector<int64_t> list_off(size_t(n_lists) + 1, 0), up_count(size_t(n_lists), 0);
    for (int64_t q = 0; q < n; q++) {
        list_off[size_t(first[size_t(q)]) + 1]++;
        if (with_far && (*up)[size_t(q)]) up_count[size_t(first[size_t(q)])]++;
    }
    for (int l = 0; l < n_lists; l++) list_off[size_t(l) + 1] += list_off[size_t(l)];
    std::vector<int64_t> members(static_cast<size_t>(n));
    {
        std::vector<int64_t> fill_up(list_off.begin(), list_off.end() - 1), fill(fill_up);
        for (int l = 0; l < n_lists; l++) fill[size_t(l)] += up_count[size_t(l)];
        for (int64_t q = 0; q < n; q++) {
            const size_t l = size_t(first[size_t(q)]);
            const bool u = with_far && (*up)[size_t(q)];
            members[size_t(u ? fill_up[l]++ : fill[l]++)] = q;
        }
    }
    Scratch<int64_t> members_d(res, size_t(n));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(members_d.get(), members.data(), size_t(n) * 8, cudaMemcpyHostToDevice, st));
    Scratch<float> xs(res, size_t(n) * d), xs_norms(res, size_t(n)), x_norms(res, l2 ? size_t(n) : 0);
    gather_rows(res, x, members_d.get(), n, d, xs.get());
    row_norms(res, xs.get(), n, d, xs_norms.get());
    if (l2) row_norms(res, x, n, d, x_norms.get());
    res.synchronize();  // members (host) stays, first goes
    say("rows grouped by list");

    // Rows in chunks: a chunk's candidates (n_probe x (kin + kfin) per row,
    // positions in xs) take at most a quarter of the free device memory (at
    // least 2 GB); one chunk on a large GPU, so each list is visited once.
    size_t free_b = 0, total_b = 0;
    NEARLY_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const int64_t per_row = int64_t(n_probe) * ((kin + kfin) * 12 + 40);
    const int64_t budget = std::max<int64_t>(int64_t(2) << 30, int64_t(free_b / 4));
    const int64_t rows_per_chunk = std::max<int64_t>(
        1024, std::min<int64_t>(budget / per_row, (int64_t(1) << 31) / (2 * int64_t(n_probe))));
    out.resize(n, k, st);
    if (with_far) far->resize(n, kf, st);
    InterruptPoll poll;
    for (int64_t r0 = 0; r0 < n; r0 += rows_per_chunk) {
        const int64_t nr = std::min(rows_per_chunk, n - r0);
        const int64_t E = nr * n_probe;
        // The chunk's (row, probe) entries grouped by list, own lists first.
        const int groups = 2 * n_lists;
        Scratch<int64_t> q_rows_d(res, size_t(E)), entry_of_d(res, size_t(E));
        std::vector<int64_t> g_off(size_t(groups) + 1, 0);
        {
            Scratch<int32_t> keys(res, size_t(E)), keys_sorted(res, size_t(E)), vals(res, size_t(E)),
                vals_sorted(res, size_t(E));
            Scratch<unsigned> counts(res, size_t(groups));
            NEARLY_CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, size_t(groups) * 4, st));
            entry_keys_kernel<<<blocks_for(E, 256), 256, 0, st>>>(probes_d.get() + size_t(r0) * n_probe, E, n_probe,
                                                                   n_lists, keys.get(), vals.get(), counts.get());
            NEARLY_CUDA_CHECK(cudaGetLastError());
            int bits = 1;
            while ((int64_t(1) << bits) < groups) bits++;
            sort_pairs_by_key(res, keys.get(), keys_sorted.get(), vals.get(), vals_sorted.get(), E, bits);
            place_entries_kernel<<<blocks_for(E, 256), 256, 0, st>>>(vals_sorted.get(), E, n_probe, r0,
                                                                      q_rows_d.get(), entry_of_d.get());
            NEARLY_CUDA_CHECK(cudaGetLastError());
            std::vector<unsigned> c(static_cast<size_t>(groups));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(c.data(), counts.get(), size_t(groups) * 4, cudaMemcpyDeviceToHost, st));
            res.synchronize();
            for (int g = 0; g < groups; g++) g_off[size_t(g) + 1] = g_off[size_t(g)] + c[size_t(g)];
        }
        say("entries grouped");
        Scratch<float> cD(res, size_t(E) * kin), fD(res, size_t(E) * kfin);
        Scratch<int64_t> cI(res, size_t(E) * kin), fI(res, size_t(E) * kfin);
        Scratch<float> bounds(res, size_t(g_off[size_t(groups)] - g_off[size_t(n_lists)]));
        int64_t max_q = 1;
        for (int g = 0; g < groups; g++) max_q = std::max(max_q, g_off[size_t(g) + 1] - g_off[size_t(g)]);
        Scratch<float> qx(res, size_t(max_q) * d);
        for (int g = 0; g < groups; g++) {
            if (g == n_lists) {  // own lists done: bound the others
                const int64_t at0 = g_off[size_t(n_lists)], cnt = g_off[size_t(groups)] - at0;
                if (cnt > 0) {
                    list_bounds_kernel<<<blocks_for(cnt, 256), 256, 0, st>>>(
                        cD.get(), cI.get(), kin, q_rows_d.get(), entry_of_d.get(), n_probe, r0, at0, cnt,
                        x_norms.get(), l2, bounds.get());
                    NEARLY_CUDA_CHECK(cudaGetLastError());
                }
                say("own lists scored");
            }
            const int64_t e0 = g_off[size_t(g)], nq = g_off[size_t(g) + 1] - e0;
            if (nq == 0) continue;
            const int l = g % n_lists;
            gather_rows(res, x, q_rows_d.get() + e0, nq, d, qx.get());
            const int64_t b0 = list_off[size_t(l)], nb = list_off[size_t(l) + 1] - b0;
            KnnArgs a = float_knn(metric, qx.get(), nq, xs.get() + size_t(b0) * d, xs_norms.get() + b0, nb, d, kin,
                                  true, cD.get() + size_t(e0) * kin, cI.get() + size_t(e0) * kin);
            a.id_offset = b0;
            if (g >= n_lists) a.bound_keys = bounds.get() + (e0 - g_off[size_t(n_lists)]);
            knn_exact(res, a);
            if (with_far) {
                KnnArgs f = float_knn(metric, qx.get(), nq, xs.get() + size_t(b0) * d, xs_norms.get() + b0,
                                      up_count[size_t(l)], d, kfin, true, fD.get() + size_t(e0) * kfin,
                                      fI.get() + size_t(e0) * kfin);
                f.id_offset = b0;
                knn_exact(res, f);
            }
            poll();
        }
        say("other lists scored");
        // Each row's candidates from its lists, merged.
        auto merge_probes = [&](const float* D, const int64_t* I, int kk, int keep, DeviceTable& t) {
            const int per = n_probe * kk;
            const int64_t sub = std::min<int64_t>(65536, nr);
            Scratch<float> gD(res, size_t(sub) * per), sD(res, size_t(sub) * kk);
            Scratch<int64_t> gI(res, size_t(sub) * per), sI(res, size_t(sub) * kk);
            for (int64_t q0 = 0; q0 < nr; q0 += sub) {
                const int64_t nq = std::min(sub, nr - q0);
                gather_probe_rows_kernel<<<blocks_for(nq * per, 256), 256, 0, st>>>(D, I, kk, entry_of_d.get(),
                                                                                    n_probe, q0, nq, gD.get(), gI.get());
                NEARLY_CUDA_CHECK(cudaGetLastError());
                select_k(res, gD.get(), gI.get(), nq, per, kk, !l2, sD.get(), sI.get());
                finish_knn_kernel<<<blocks_for(nq, 256), 256, 0, st>>>(sD.get(), sI.get(), kk, members_d.get(), r0 + q0,
                                                                        nq, l2, keep, t.ids.data(), t.scores.data());
                NEARLY_CUDA_CHECK(cudaGetLastError());
            }
            res.synchronize();
        };
        merge_probes(cD.get(), cI.get(), kin, k, out);
        if (with_far) merge_probes(fD.get(), fI.get(), kfin, kf, *far);
        say("candidates merged");
    }
    // Exact scores (the lists were scored in TF32) and the order they give.
    rescore_on_device(res, x, d, metric, out);
    if (with_far) rescore_on_device(res, x, d, metric, *far);
    say("candidates rescored");
}

// Two tables side by side, -1 as +inf (sorted last), for select_k.
__global__ void concat_tables_kernel(const int32_t* a_ids, const float* a_scores, int ka, const int32_t* b_ids,
                                     const float* b_scores, int kb, int64_t r0, int64_t nr, float* keys,
                                     int64_t* ids) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    const int kt = ka + kb;
    if (i >= nr * kt) return;
    const int64_t r = r0 + i / kt;
    const int j = int(i % kt);
    const int32_t id = j < ka ? a_ids[r * ka + j] : b_ids[r * kb + j - ka];
    const float sc = j < ka ? a_scores[r * ka + j] : b_scores[r * kb + j - ka];
    keys[i] = id < 0 ? FLT_MAX : sc;
    ids[i] = id;
}

__global__ void table_from_sorted_kernel(const float* keys, const int64_t* ids, int64_t r0, int64_t nr, int k,
                                         int32_t* out_ids, float* out_scores) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= nr * k) return;
    const int64_t id = ids[i];
    out_ids[r0 * k + i] = id < 0 ? -1 : int32_t(id);
    out_scores[r0 * k + i] = id < 0 ? 0.f : keys[i];
}

// graph_build.h's far_candidates: each of the n rows' k nearest among the
// rows `up` (itself excluded). TF32 products: these are bridges to be
// pruned, not results.
void far_candidates_on_device(GpuResources& res, const float* x, int64_t n, int d, MetricType metric,
                              const std::vector<int32_t>& up, int k, DeviceTable& out) {
    cudaStream_t st = res.stream();
    const int64_t nu = int64_t(up.size());
    out.resize(n, k, st);
    const int kin = int(std::min<int64_t>(k + 1, nu));
    std::vector<int64_t> up64(up.begin(), up.end());
    Scratch<int64_t> up_d(res, std::max<size_t>(up64.size(), 1));
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(up_d.get(), up64.data(), up64.size() * 8, cudaMemcpyHostToDevice, st));
    Scratch<float> xu(res, size_t(nu) * d), xu_norms(res, size_t(nu));
    gather_rows(res, x, up_d.get(), nu, d, xu.get());
    row_norms(res, xu.get(), nu, d, xu_norms.get());
    Scratch<float> D(res, size_t(n) * kin);
    Scratch<int64_t> I(res, size_t(n) * kin);
    knn_exact(res, float_knn(metric, x, n, xu.get(), xu_norms.get(), nu, d, kin, true, D.get(), I.get()));
    finish_knn_kernel<<<blocks_for(n, 256), 256, 0, st>>>(D.get(), I.get(), kin, up_d.get(), 0, n,
                                                           metric == METRIC_L2, k, out.ids.data(), out.scores.data());
    NEARLY_CUDA_CHECK(cudaGetLastError());
    res.synchronize();  // up64 is freed on return
}

// graph_build.h's add_far_candidates: rows sorted by score, ties to the
// earlier column (select_k's rule, the CPU's stable sort).
void add_far_candidates_on_device(GpuResources& res, const DeviceTable& a, const DeviceTable& b, DeviceTable& out) {
    cudaStream_t st = res.stream();
    const int kt = a.k + b.k;
    out.resize(a.n, kt, st);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(a.n, (int64_t(256) << 20) / (int64_t(kt) * 12)));
    Scratch<float> keys(res, size_t(chunk) * kt), skeys(res, size_t(chunk) * kt);
    Scratch<int64_t> ids(res, size_t(chunk) * kt), sids(res, size_t(chunk) * kt);
    for (int64_t r0 = 0; r0 < a.n; r0 += chunk) {
        const int64_t nr = std::min(chunk, a.n - r0);
        concat_tables_kernel<<<blocks_for(nr * kt, 256), 256, 0, st>>>(a.ids.data(), a.scores.data(), a.k,
                                                                        b.ids.data(), b.scores.data(), b.k, r0, nr,
                                                                        keys.get(), ids.get());
        NEARLY_CUDA_CHECK(cudaGetLastError());
        select_k(res, keys.get(), ids.get(), nr, kt, kt, false, skeys.get(), sids.get());
        table_from_sorted_kernel<<<blocks_for(nr * kt, 256), 256, 0, st>>>(skeys.get(), sids.get(), r0, nr, kt,
                                                                            out.ids.data(), out.scores.data());
        NEARLY_CUDA_CHECK(cudaGetLastError());
    }
    res.synchronize();
}

// A level's k-NN (cands) and, when up is given, its far candidates: by the
// inverted file when n_lists > 0 (both from the same lists), else exact.
void level_knn_on_device(GpuResources& res, const float* x, int64_t n, int d, MetricType metric, int k, int n_lists,
                         int n_probe, const std::vector<int32_t>* up, int kf, bool verbose, DeviceTable& cands,
                         DeviceTable& far) {
    if (n_lists > 0) {
        std::vector<char> flag;
        if (up) {
            flag.assign(size_t(n), 0);
            for (int32_t i : *up) flag[size_t(i)] = 1;
        }
        ivf_knn_on_device(res, x, n, d, metric, k, n_lists, n_probe, up ? &flag : nullptr, kf, verbose, cands, &far);
        return;
    }
    exact_knn_on_device(res, x, n, d, metric, k, false, cands);
    if (up) far_candidates_on_device(res, x, n, d, metric, *up, kf, far);
}

void upload_rows(GpuResources& res, const float* x_host, int64_t n, int d, DeviceVector<float>& x) {
    x.resize(std::max<size_t>(size_t(n) * d, 1), res.stream());
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(x.data(), x_host, size_t(n) * d * 4, cudaMemcpyHostToDevice, res.stream()));
}

}  // namespace

namespace {

// A table step on host data: x and the table to the device, step, back.
template <class Step>
NeighborTable table_step(GpuResources& res, const float* x_host, int64_t n, int d, const NeighborTable& in,
                         const Step& step) {
    NEARLY_CHECK_ARG(in.n == n, "GPU graph build: one table row per vector");
    std::lock_guard<std::mutex> call(res.call_mutex());
    res.set_device();
    DeviceVector<float> x;
    upload_rows(res, x_host, n, d, x);
    DeviceTable t, out;
    upload(res, in, t);
    step(x.data(), t, out);
    return download(res, out);
}

}  // namespace

NeighborTable gpu_prune_links(GpuResources& res, const float* x_host, int64_t n, int d, MetricType metric,
                              const NeighborTable& cands, int cap) {
    return table_step(res, x_host, n, d, cands, [&](const float* x, const DeviceTable& t, DeviceTable& out) {
        prune_on_device(res, x, d, metric, t, cap, out);
    });
}

NeighborTable gpu_merge_reverse_links(GpuResources& res, const float* x_host, int64_t n, int d, MetricType metric,
                                      const NeighborTable& links, int cap, int max_merge) {
    return table_step(res, x_host, n, d, links, [&](const float* x, const DeviceTable& t, DeviceTable& out) {
        merge_on_device(res, x, d, metric, t, cap, max_merge, out);
    });
}

NeighborTable gpu_level_knn(GpuResources& res, const float* x_host, int64_t n, int d, MetricType metric, int k,
                            int n_lists, int n_probe) {
    NEARLY_CHECK_ARG(n >= 2 && k >= 1 && k < n, "gpu_level_knn: need 1 <= k < n");
    NEARLY_CHECK_ARG(n_lists >= 0 && n_probe >= 1, "gpu_level_knn: n_lists >= 0 and n_probe >= 1");
    std::lock_guard<std::mutex> call(res.call_mutex());
    res.set_device();
    DeviceVector<float> x;
    upload_rows(res, x_host, n, d, x);
    DeviceTable out, unused;
    level_knn_on_device(res, x.data(), n, d, metric, k, n_lists, n_probe, nullptr, 0, false, out, unused);
    return download(res, out);
}

HNSWLayers gpu_build_hnsw(GpuResources& res, const float* x_dev, int64_t n, int d, MetricType metric, const GpuGraphBuildParams& p, DeviceVector<int32_t>* level0) {
    const GraphBuildParams& gp = p.graph;
    NEARLY_CHECK_ARG(gp.M >= 2 && 2 * gp.M <= kMaxCap, "GPU graph build: M must be between 2 and " +
                                                           std::to_string(kMaxCap / 2));
    NEARLY_CHECK_ARG(gp.knn_factor >= 1 && gp.merge_factor >= 1, "GPU graph build: knn_factor and merge_factor must be >= 1");
    NEARLY_CHECK_ARG(p.n_lists >= 0 && p.n_probe >= 1, "GPU graph build: n_lists >= 0 and n_probe >= 1");
    HNSWLayers g;
    if (n == 0) return g;
    res.set_device();
    cudaStream_t st = res.stream();
    auto t0 = std::chrono::steady_clock::now();
    auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    g.levels = draw_levels(n, gp.M, gp.seed);
    const int top = *std::max_element(g.levels.begin(), g.levels.end());
    g.nodes.resize(size_t(top) + 1);
    g.links.resize(size_t(top) + 1);
    for (int l = 0; l <= top; l++) {
        std::vector<int32_t>& rows = g.nodes[size_t(l)];
        for (int64_t r = 0; r < n; r++)
            if (g.levels[size_t(r)] >= l) rows.push_back(int32_t(r));
        const int64_t m = int64_t(rows.size());
        const int cap = l == 0 ? 2 * gp.M : gp.M;
        const int kc = int(std::min<int64_t>(int64_t(cap) * gp.knn_factor, m - 1));
        // The CPU's cap * merge_factor up to 256 (M <= 64 at the default
        // merge_factor 2); beyond, only a row with more candidates than that
        // is cut shorter than on the CPU.
        const int max_merge = std::min(cap * gp.merge_factor, kMergeBuf / 2);
        std::vector<int32_t>& out = g.links[size_t(l)];
        out.assign(size_t(m) * cap, -1);
        if (kc < 1) continue;  // a single node
        // The level's rows back to back (level 0: x itself); its tables
        // speak of positions in rows.
        DeviceVector<float> xl;
        const float* xv = x_dev;
        if (l > 0) {
            std::vector<int64_t> rows64(rows.begin(), rows.end());
            Scratch<int64_t> rows_d(res, rows64.size());
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(rows_d.get(), rows64.data(), rows64.size() * 8, cudaMemcpyHostToDevice, st));
            xl.resize(size_t(m) * d, st);
            gather_rows(res, x_dev, rows_d.get(), m, d, xl.data());
            res.synchronize();
            xv = xl.data();
        }
        const int n_lists = m < p.exact_below ? 0
                            : p.n_lists > 0   ? p.n_lists
                                              : int(std::max<int64_t>(1, (m + 999) / 1000));
        DeviceTable cands, fwd, links;
        // verbose: each step's time (the stream drained first), level 0 only
        double last = secs();
        auto step = [&](const char* what) {
            if (!p.verbose || l > 0) return;
            res.synchronize();
            const double now = secs();
            std::printf("  GPU graph build:   %-22s %.3f s\n", what, now - last);
            std::fflush(stdout);
            last = now;
        };
        // Far candidates: the level above's nodes (positions in rows).
        std::vector<int32_t> up;
        const bool with_far = l < top && gp.far_factor > 0;
        if (with_far)
            for (int64_t i = 0; i < m; i++)
                if (g.levels[size_t(rows[size_t(i)])] > l) up.push_back(int32_t(i));
        DeviceTable far;
        level_knn_on_device(res, xv, m, d, metric, kc, n_lists, p.n_probe, with_far ? &up : nullptr,
                            cap * gp.far_factor, p.verbose && l == 0, cands, far);
        step(with_far ? "k-NN and far candidates" : "k-NN");
        if (with_far) {
            DeviceTable both;
            add_far_candidates_on_device(res, cands, far, both);
            cands.swap(both);
            step("far candidates merged");
        }
        const int kcand = cands.k;
        prune_on_device(res, xv, d, metric, cands, cap, fwd);
        step("pruned");
        merge_on_device(res, xv, d, metric, fwd, cap, max_merge, links);
        step("reverse links merged");
        NeighborTable h = download(res, links, false);  // HNSWLayers keeps no scores
        step("downloaded");
        link_orphans(h, kcand, [&](int64_t v, int32_t* ids, float* scores) {
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(ids, cands.ids.data() + size_t(v) * kcand, size_t(kcand) * 4,
                                              cudaMemcpyDeviceToHost, st));
            NEARLY_CUDA_CHECK(cudaMemcpyAsync(scores, cands.scores.data() + size_t(v) * kcand, size_t(kcand) * 4,
                                              cudaMemcpyDeviceToHost, st));
            res.synchronize();
        });
        step("orphans linked");
        for (size_t e = 0; e < out.size(); e++)
            if (h.ids[e] >= 0) out[e] = rows[size_t(h.ids[e])];
        if (p.verbose) {
            std::printf("  GPU graph build: level %d (%lld nodes) linked at %.2f s\n", l, (long long)m, secs());
            std::fflush(stdout);
        }
    }
    add_upper_links(g, gp.M);
    if (p.verbose) std::printf("  GPU graph build: upper links added at %.2f s\n", secs());
    if (level0) {
        level0->resize(g.links[0].size(), st);
        NEARLY_CUDA_CHECK(
            cudaMemcpyAsync(level0->data(), g.links[0].data(), g.links[0].size() * 4, cudaMemcpyHostToDevice, st));
        res.synchronize();
    }
    for (int64_t r = 0; r < n; r++)
        if (g.levels[size_t(r)] == top) {
            g.entry = int32_t(r);
            break;
        }
    return g;
}

}  // namespace nearly::gpu
