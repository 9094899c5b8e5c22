#include <algorithm>
#include <cstdlib>

#include "cublas_loader.h"
#include "knn.h"
#include "select_k.cuh"
#include "vector_ops.h"

namespace nearly::gpu {

namespace {

// How a tile value becomes a key (smaller is better) and a key a distance.
constexpr int kModeL2 = 0;     // key = ||x||^2 - 2 <q, x>; distance = key + ||q||^2
constexpr int kModeIP = 1;     // key = -<q, x>; distance = <q, x>
constexpr int kModePlain = 2;  // the tile holds keys; distance = key

// Block (segment s, query row r) of a distance tile: the k best of the
// tile's columns [s * seg_len, (s + 1) * seg_len), as keys where smaller is
// better (L2: ||x||^2 - 2 <q, x>, the query norm is added at the end; inner
// product: -<q, x>).
template <int BLOCK, int S, int R>
__global__ void __launch_bounds__(BLOCK) tile_select_kernel(const float* tile, int64_t tile_cols, int seg_len,
                                                            const float* xb_norms, int64_t col0, int mode, int k,
                                                            const float* running, const float* bounds,
                                                            float* cand, int64_t* cand_ids, int64_t cand_ld) {
    __shared__ BlockSelect<BLOCK, S, R> sel;
    int64_t r = blockIdx.x;
    int s = blockIdx.y;
    int64_t c0 = int64_t(s) * seg_len;
    int64_t left = tile_cols - c0;
    int64_t n = left < 0 ? 0 : (left < seg_len ? left : seg_len);
    const float* row = tile + r * tile_cols + c0;
    // The k-th best of the earlier tiles bounds this one: after the first
    // tile almost every distance fails one compare and nothing is buffered.
    // A bound given by the caller does the same from the start.
    float bound = bounds ? bounds[r] : FLT_MAX;
    if (running) bound = fminf(bound, running[r * cand_ld + k - 1]);
    sel.init(k, bound);
    if (mode == kModeL2) {
        const float* nrm = xb_norms + col0 + c0;
        sel.run(n, [&](int64_t i) { return nrm[i] + row[i]; });
    } else if (mode == kModeIP) {
        sel.run(n, [&](int64_t i) { return -row[i]; });
    } else {
        sel.run(n, [&](int64_t i) { return row[i]; });
    }
    float* out = cand + r * cand_ld + int64_t(s) * k;
    int64_t* out_ids = cand_ids + r * cand_ld + int64_t(s) * k;
    for (int i = threadIdx.x; i < k; i += BLOCK) {
        int32_t p = sel.pos[i];
        out[i] = p < 0 ? FLT_MAX : sel.key[i];
        out_ids[i] = p < 0 ? -1 : col0 + c0 + p;
    }
}

// Merges one query's candidates (cols of them, keys and ids). Not final:
// the k best go back to the row's first k slots (each block owns its row and
// writes only after reading all of it). Final: distances in the metric's
// terms into D / I.
template <int BLOCK, int S, int R>
__global__ void __launch_bounds__(BLOCK) merge_kernel(float* cand, int64_t* cand_ids, int64_t cand_ld, int cols,
                                                      int k, bool final_pass, int mode, const float* q_norms,
                                                      int64_t id_offset, float* D, int64_t* I) {
    __shared__ BlockSelect<BLOCK, S, R> sel;
    int64_t r = blockIdx.x;
    float* row = cand + r * cand_ld;
    int64_t* ids = cand_ids + r * cand_ld;
    sel.init(k);
    sel.run(cols, [&](int64_t i) { return row[i]; });
    if (!final_pass) {
        // finish() has synced: every read of the row is done, but positions
        // may point anywhere in it, so gather the ids before writing back.
        int64_t my_ids[(kMaxSelectK + BLOCK - 1) / BLOCK];
        int c = 0;
        for (int i = threadIdx.x; i < k; i += BLOCK, c++) my_ids[c] = sel.pos[i] < 0 ? -1 : ids[sel.pos[i]];
        __syncthreads();
        c = 0;
        for (int i = threadIdx.x; i < k; i += BLOCK, c++) {
            row[i] = sel.key[i];
            ids[i] = my_ids[c];
        }
        return;
    }
    const bool l2 = mode == kModeL2;
    float qn = l2 ? q_norms[r] : 0.f;
    for (int i = threadIdx.x; i < k; i += BLOCK) {
        int32_t p = sel.pos[i];
        int64_t id = p < 0 ? -1 : ids[p];
        float key = sel.key[i];
        bool missing = id < 0;
        D[r * k + i] = mode == kModePlain ? (missing ? FLT_MAX : key)
                       : missing     ? (l2 ? FLT_MAX : -FLT_MAX)
                                     : (l2 ? fmaxf(key + qn, 0.f) : -key);
        I[r * k + i] = missing ? -1 : id + id_offset;
    }
}

__global__ void fill_kernel(float* cand, int64_t* cand_ids, int64_t ld, int64_t rows, int k) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= rows * k) return;
    int64_t r = i / k, j = i % k;
    cand[r * ld + j] = FLT_MAX;
    cand_ids[r * ld + j] = -1;
}

}  // namespace

KnnArgs float_knn(MetricType metric, const float* xq, int64_t nq, const float* xb, const float* xb_norms, int64_t nb,
                  int d, int k, bool tf32, float* D, int64_t* I) {
    KnnArgs a;
    a.metric = metric;
    a.xq = xq;
    a.nq = nq;
    a.xb = xb;
    a.xb_norms = xb_norms;
    a.nb = nb;
    a.d = d;
    a.k = k;
    a.tf32 = tf32;
    a.D = D;
    a.I = I;
    return a;
}

void knn_exact(GpuResources& res, const KnnArgs& a) {
    NEARLY_CHECK_ARG(a.k >= 1 && a.k <= kMaxSelectK,
                     "k must be between 1 and " + std::to_string(kMaxSelectK) + " on the GPU (got " +
                         std::to_string(a.k) + ")");
    if (a.nq == 0) return;
    res.set_device();
    cudaStream_t st = res.stream();
    const int k = a.k;
    const bool l2 = a.metric == METRIC_L2 && !a.tile_fn;
    const int mode = a.tile_fn ? kModePlain : l2 ? kModeL2 : kModeIP;
    int kp = 1;
    while (kp < k) kp <<= 1;
    // Segment length: long enough that k candidates per segment stay a small
    // fraction of the columns, and that few blocks each sort a first full
    // buffer (k = 65 over 62,608 columns for 1M rows: 1,024-column segments
    // took 3.9 s on an H200, 8,192 for k = 33 took 0.64 s).
    const int seg_len = std::max(8192, 8 * kp);
    int64_t tile_mb = 256;
    if (const char* e = std::getenv("NEARLY_GPU_TILE_MB")) tile_mb = std::max(1, std::atoi(e));  // for benchmarks
    // Tiles of 256 MB (a quarter of the scratch budget at most): per-tile
    // launches and merges then cost little (on an H100, 1M x 384 fp16, 10k
    // queries: 32 MB tiles 0.125 s, 128 MB 0.085 s, 256 MB 0.065 s), and the
    // k-th best of the earlier tiles soon rejects almost every distance.
    const int64_t tile_budget =
        std::max<int64_t>(int64_t(8) << 20, std::min<int64_t>(res.temp_memory() / 4, tile_mb << 20));
    const int64_t nb_round = (std::max<int64_t>(a.nb, 1) + seg_len - 1) / seg_len * seg_len;
    // At least 2048 queries per tile; more when the database is narrow
    // (k-means assignment: many points, few centroids), up to the budget.
    const int64_t qc = std::min<int64_t>(
        a.nq, std::min<int64_t>(int64_t(1) << 20,
                                std::max<int64_t>(2048, tile_budget / 4 / std::max<int64_t>(1, std::min(a.nb, nb_round)))));
    int64_t nt = tile_budget / 4 / qc / seg_len * seg_len;
    nt = std::min(std::max<int64_t>(nt, seg_len), nb_round);
    const int64_t tile_cols = std::min<int64_t>(nt, std::max<int64_t>(a.nb, 1));
    const int segs = int(nt / seg_len);
    const int64_t cand_ld = int64_t(k) * (1 + segs);

    Scratch<float> tile(res, size_t(qc * tile_cols));
    Scratch<float> cand(res, size_t(qc * cand_ld));
    Scratch<int64_t> cand_ids(res, size_t(qc * cand_ld));
    Scratch<float> q_norms(res, size_t(qc));
    Scratch<uint16_t> q16(res, a.xb_fp16 ? size_t(qc) * a.d : 0);
    void* handle = a.tile_fn ? nullptr : res.cublas();

    for (int64_t q0 = 0; q0 < a.nq; q0 += qc) {
        int64_t nq = std::min(qc, a.nq - q0);
        const float* xq = a.tile_fn ? nullptr : a.xq + q0 * a.d;
        if (l2) row_norms(res, xq, nq, a.d, q_norms.get());
        const void* qmat = xq;
        if (a.xb_fp16 && !a.tile_fn) {
            to_fp16(res, xq, nq * a.d, q16.get());
            qmat = q16.get();
        }
        if (a.nb == 0) {
            fill_kernel<<<unsigned((nq * k + 255) / 256), 256, 0, st>>>(cand.get(), cand_ids.get(), cand_ld, nq, k);
        }
        bool first = true;
        for (int64_t j0 = 0; j0 < a.nb; j0 += nt) {
            int64_t ncols = std::min(nt, a.nb - j0);
            if (a.tile_fn) {
                a.tile_fn(q0, nq, j0, ncols, tile.get());
            } else {
                const void* xb = a.xb_fp16 ? static_cast<const void*>(static_cast<const uint16_t*>(a.xb) + j0 * a.d)
                                           : static_cast<const void*>(static_cast<const float*>(a.xb) + j0 * a.d);
                gemm_abt(handle, int(nq), int(ncols), a.d, l2 ? -2.f : 1.f, qmat, xb, a.xb_fp16, a.tf32, tile.get(),
                         int(ncols));
            }
            // The first tile writes the running slots too; later tiles write
            // behind them and are merged in.
            int64_t off = first ? 0 : k;
            int tile_segs = int((ncols + seg_len - 1) / seg_len);
            int launch_segs = first ? tile_segs : segs;  // unused segments fill with padding
            with_select_config(k, [&](auto cfg) {
                using C = decltype(cfg);
                tile_select_kernel<C::kBlock, C::kSlots, C::kItems><<<dim3(unsigned(nq), launch_segs), C::kBlock, 0, st>>>(
                    tile.get(), ncols, seg_len, a.xb_norms, j0, mode, k, first ? nullptr : cand.get(),
                    a.bound_keys ? a.bound_keys + q0 : nullptr, cand.get() + off,
                    cand_ids.get() + off, cand_ld);
            });
            NEARLY_CUDA_CHECK(cudaGetLastError());
            bool last = j0 + nt >= a.nb;
            int cols = first ? tile_segs * k : k * (1 + segs);
            if (!last) {
                with_select_config(k, [&](auto cfg) {
                    using C = decltype(cfg);
                    merge_kernel<C::kBlock, C::kSlots, C::kItems><<<unsigned(nq), C::kBlock, 0, st>>>(
                        cand.get(), cand_ids.get(), cand_ld, cols, k, false, mode, nullptr, 0, nullptr, nullptr);
                });
                NEARLY_CUDA_CHECK(cudaGetLastError());
            } else {
                with_select_config(k, [&](auto cfg) {
                    using C = decltype(cfg);
                    merge_kernel<C::kBlock, C::kSlots, C::kItems><<<unsigned(nq), C::kBlock, 0, st>>>(
                        cand.get(), cand_ids.get(), cand_ld, cols, k, true, mode, q_norms.get(), a.id_offset,
                        a.D + q0 * k, a.I + q0 * k);
                });
                NEARLY_CUDA_CHECK(cudaGetLastError());
            }
            first = false;
        }
        if (a.nb == 0) {
            with_select_config(k, [&](auto cfg) {
                using C = decltype(cfg);
                merge_kernel<C::kBlock, C::kSlots, C::kItems><<<unsigned(nq), C::kBlock, 0, st>>>(
                    cand.get(), cand_ids.get(), cand_ld, k, k, true, mode, q_norms.get(), a.id_offset, a.D + q0 * k,
                    a.I + q0 * k);
            });
            NEARLY_CUDA_CHECK(cudaGetLastError());
        }
    }
}

}  // namespace nearly::gpu
