#include "graph_search.h"
#include "warp_score.cuh"

#include <cuda_fp16.h>

#include <cfloat>
#include <cstdlib>
#include <string>
#include <type_traits>

namespace nearly::gpu {

namespace {

constexpr uint32_t kEmpty = 0xffffffffu;     // no candidate (sorts last, never expanded)
constexpr uint32_t kExpanded = 0x80000000u;  // high bit: node already expanded
constexpr int kHashSlots = 8192;             // visited set; a full probe sequence skips the node
constexpr int kBlock = 128;

__device__ uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// True when row was not in the set (and is now); counts the new ones in *count when given.
template <int SLOTS>
__device__ bool visit(uint32_t* hash, uint32_t row, int* count = nullptr) {
    uint32_t h = uint32_t(splitmix(row)) & (SLOTS - 1);
    for (int probe = 0; probe < 32; probe++) {
        uint32_t old = atomicCAS(&hash[h], 0u, row + 1);
        if (old == 0u) {
            if (count) atomicAdd(count, 1);
            return true;
        }
        if (old == row + 1) return false;
        h = (h + 1) & (SLOTS - 1);
    }
    return false;  // crowded: treat as seen (never a duplicate result)
}

// Two ways to score the rows in slots [0, count) (kEmpty skipped) into
// dist. The search is bound by the latency of these gathers, not by
// arithmetic, and the faster one depends on how many blocks an SM holds:
//  - one warp per row (score_rows_warp): the re-sorting kernel's;
//  - teams of kTeam threads with kInFlight rows each (score_rows_team): the
//    merging kernel's. Every thread runs the same number of rounds: the
//    team's shuffles need the whole warp. On an H200 (1M x 384, bench/gpu.py
//    graph) two rows a team at 48 registers ran at 1.03 to 1.55 times the
//    warp's queries per second in the merging kernel (75 registers); four
//    rows a team at 61 registers had run at 0.7 times.
__device__ void score_rows_warp(const float* q, const float* vectors, int d, bool l2, const uint32_t* rows,
                                float* dist, int count) {
    const int lane = threadIdx.x % 32;
    for (int slot = threadIdx.x / 32; slot < count; slot += kBlock / 32) {
        const uint32_t row = rows[slot];
        if (row == kEmpty) continue;  // uniform across the warp
        const float sc = warp_score(q, vectors + int64_t(row) * d, d, l2, lane);
        if (lane == 0) dist[slot] = sc;
    }
}

constexpr int kTeam = 16;
constexpr int kInFlight = 2;

// A row of float16 (GraphSearchParams::fp16) is read as 8 values a load
// and scored in float32 against the float32 query.
template <class T>
__device__ void score_rows_team(const float* q, const T* vectors, int d, bool l2, const uint32_t* rows, float* dist,
                                int count) {
    constexpr bool kHalf = std::is_same<T, __half>::value;
    constexpr int kTeams = kBlock / kTeam;
    constexpr int kPer = kHalf ? 8 : 4;  // values per 16-byte load
    const int team = threadIdx.x / kTeam, t = threadIdx.x % kTeam;
    const bool vec = d % kPer == 0;  // rows then start 16-byte aligned
    for (int base = 0; base < count; base += kTeams * kInFlight) {
        float acc[kInFlight];
        const T* v[kInFlight];
        bool ok[kInFlight];
#pragma unroll
        for (int c = 0; c < kInFlight; c++) {
            const int slot = base + team * kInFlight + c;
            const uint32_t row = slot < count ? rows[slot] : kEmpty;
            ok[c] = row != kEmpty;
            v[c] = vectors + (ok[c] ? int64_t(row) * d : 0);
            acc[c] = 0.f;
        }
        auto add4 = [&](float& acc_c, const float4 a, float b0, float b1, float b2, float b3) {
            if (l2) {
                const float e0 = a.x - b0, e1 = a.y - b1, e2 = a.z - b2, e3 = a.w - b3;
                acc_c = fmaf(e0, e0, fmaf(e1, e1, fmaf(e2, e2, fmaf(e3, e3, acc_c))));
            } else {
                acc_c = fmaf(a.x, b0, fmaf(a.y, b1, fmaf(a.z, b2, fmaf(a.w, b3, acc_c))));
            }
        };
        if (vec) {
            const float4* q4 = reinterpret_cast<const float4*>(q);
            for (int j = t; j < d / kPer; j += kTeam) {
                if constexpr (kHalf) {
                    const float4 a0 = q4[2 * j], a1 = q4[2 * j + 1];
#pragma unroll
                    for (int c = 0; c < kInFlight; c++) {  // an empty slot reads row 0
                        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(v[c]) + j);
                        const __half2* h = reinterpret_cast<const __half2*>(&raw);
                        const float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]);
                        const float2 f2 = __half22float2(h[2]), f3 = __half22float2(h[3]);
                        add4(acc[c], a0, f0.x, f0.y, f1.x, f1.y);
                        add4(acc[c], a1, f2.x, f2.y, f3.x, f3.y);
                    }
                } else {
                    const float4 a = q4[j];
#pragma unroll
                    for (int c = 0; c < kInFlight; c++) {  // loads without branches: an empty slot reads row 0
                        const float4 b = __ldg(reinterpret_cast<const float4*>(v[c]) + j);
                        add4(acc[c], a, b.x, b.y, b.z, b.w);
                    }
                }
            }
        } else {
            for (int j = t; j < d; j += kTeam) {
                const float a = q[j];
#pragma unroll
                for (int c = 0; c < kInFlight; c++) {
                    float b;
                    if constexpr (kHalf)
                        b = __half2float(v[c][j]);
                    else
                        b = __ldg(v[c] + j);
                    acc[c] = l2 ? fmaf(a - b, a - b, acc[c]) : fmaf(a, b, acc[c]);
                }
            }
        }
#pragma unroll
        for (int c = 0; c < kInFlight; c++) {
            for (int o = kTeam / 2; o > 0; o >>= 1) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], o);
            const int slot = base + team * kInFlight + c;
            if (t == 0 && ok[c]) dist[slot] = l2 ? acc[c] : -acc[c];
        }
    }
}

// (distance, row) order; the expanded flag is not part of the key.
__device__ inline bool before(float da, uint32_t ia, float db, uint32_t ib) {
    return da < db || (da == db && (ia & ~kExpanded) < (ib & ~kExpanded));
}

// Bitonic sort of P (a power of two) pairs in shared memory by one warp.
__device__ void warp_sort_pairs(float* dist, uint32_t* ids, int P) {
    const int lane = threadIdx.x % 32;
    for (int size = 2; size <= P; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int t = lane; t < P / 2; t += 32) {
                int i = 2 * t - (t & (stride - 1));
                int j = i + stride;
                bool ascending = (i & size) == 0;
                float di = dist[i], dj = dist[j];
                uint32_t ii = ids[i], ij = ids[j];
                if (before(dj, ij, di, ii) == ascending) {
                    dist[i] = dj;
                    dist[j] = di;
                    ids[i] = ij;
                    ids[j] = ii;
                }
            }
            __syncwarp();
        }
}

template <int LIST, int S>
__global__ void __launch_bounds__(kBlock) graph_search_kernel(const float* vectors, int64_t n, int d,
                                                              const int32_t* graph, int degree, int32_t entry,
                                                              const int64_t* labels, bool l2, const float* xq, int k,
                                                              int width, int max_iter, int seed_rounds, uint64_t seed,
                                                              float* D, int64_t* I) {
    extern __shared__ float4 q_smem[];  // float4: 16-byte aligned for score_rows
    float* q = reinterpret_cast<float*>(q_smem);
    __shared__ float dist[S];
    __shared__ uint32_t ids[S];
    __shared__ uint32_t hash[kHashSlots];
    __shared__ uint32_t parents[S - LIST];
    __shared__ int n_parents;
    const int64_t qi = blockIdx.x;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int fresh = S - LIST;  // slots for new candidates each step
    for (int j = threadIdx.x; j < d; j += kBlock) q[j] = xq[qi * d + j];
    for (int j = threadIdx.x; j < kHashSlots; j += kBlock) hash[j] = 0u;
    for (int j = threadIdx.x; j < S; j += kBlock) {
        dist[j] = FLT_MAX;
        ids[j] = kEmpty;
    }
    __syncthreads();

    auto score_fresh = [&]() { score_rows_warp(q, vectors, d, l2, ids + LIST, dist + LIST, fresh); };
    auto sort_all = [&]() {
        __syncthreads();
        for (int size = 2; size <= S; size <<= 1) {
            for (int stride = size >> 1; stride > 0; stride >>= 1) {
                for (int t = threadIdx.x; t < S / 2; t += kBlock) {
                    int i = 2 * t - (t & (stride - 1));
                    int j = i + stride;
                    bool ascending = (i & size) == 0;
                    float di = dist[i], dj = dist[j];
                    uint32_t ii = ids[i], ij = ids[j];
                    // Ties by row, the expanded flag ignored; empty slots last.
                    bool j_first = dj < di || (dj == di && (ij & ~kExpanded) < (ii & ~kExpanded));
                    if (j_first == ascending) {
                        dist[i] = dj;
                        dist[j] = di;
                        ids[i] = ij;
                        ids[j] = ii;
                    }
                }
                __syncthreads();
            }
        }
    };

    // Starting points: the entry node and random nodes.
    for (int round = 0; round < seed_rounds; round++) {
        for (int t = threadIdx.x; t < fresh; t += kBlock) {
            uint32_t row;
            if (round == 0 && t == 0 && entry >= 0)
                row = uint32_t(entry);
            else
                row = uint32_t(splitmix(seed ^ (uint64_t(qi) << 20) ^ uint64_t(round * fresh + t)) % uint64_t(n));
            ids[LIST + t] = visit<kHashSlots>(hash, row) ? row : kEmpty;
            dist[LIST + t] = FLT_MAX;
        }
        __syncthreads();
        score_fresh();
        sort_all();
    }

    for (int it = 0; it < max_iter; it++) {
        // Warp 0 picks the best `width` unexpanded candidates.
        if (warp == 0) {
            int found = 0;
            for (int base = 0; base < LIST && found < width; base += 32) {
                uint32_t v = ids[base + lane];
                bool open = v != kEmpty && !(v & kExpanded);
                unsigned mask = __ballot_sync(0xffffffffu, open);
                int before = __popc(mask & ((1u << lane) - 1));
                if (open && found + before < width) {
                    parents[found + before] = v;
                    ids[base + lane] = v | kExpanded;
                }
                found += __popc(mask);
            }
            if (lane == 0) n_parents = found < width ? found : width;
        }
        __syncthreads();
        const int np = n_parents;
        if (np == 0) break;
        for (int t = threadIdx.x; t < fresh; t += kBlock) {
            uint32_t row = kEmpty;
            int p = t / degree, j = t % degree;
            if (p < np) {
                int32_t nb = graph[int64_t(parents[p]) * degree + j];
                if (nb >= 0 && visit<kHashSlots>(hash, uint32_t(nb))) row = uint32_t(nb);
            }
            ids[LIST + t] = row;
            dist[LIST + t] = FLT_MAX;
        }
        __syncthreads();
        score_fresh();
        sort_all();
    }

    for (int i = threadIdx.x; i < k; i += kBlock) {
        uint32_t v = i < LIST ? ids[i] : kEmpty;
        bool ok = v != kEmpty;
        uint32_t row = v & ~kExpanded;
        D[qi * k + i] = ok ? (l2 ? dist[i] : -dist[i]) : (l2 ? FLT_MAX : -FLT_MAX);
        I[qi * k + i] = ok ? labels[row] : -1;
    }
}

// The merging variant (GraphSearchParams::merge): the candidate list stays
// sorted and each step only sorts its new candidates (one warp, no block
// barrier) and merges them in by rank (two barriers), where the first
// variant re-sorts the whole buffer (log^2 of it block-wide barriers). Its
// visited set is a quarter of the size and is rebuilt from the list when
// half full, so long searches keep exploring.
//
// The new candidates are packed at the front of the fresh slots as they are
// found (a shared counter), so a step scores, sorts and merges only those:
// late in a search most neighbours are already visited, and the scoring
// rounds are dependent gathers from device memory, the search's critical
// path. The packing order varies with the atomics, the result does not:
// every row's score is computed the same way wherever it sits, and the sort
// is by (score, row).
//
// T: the rows the walk scores, float32 or float16 (GraphSearchParams::fp16:
// half the bytes gathered per step); with float16 the best of the final list
// (at least 2k of them) are scored again in float32 (`exact`) and re-sorted,
// so the results carry exact scores and order.
template <int LIST, int F, bool TEAM, class T = float, int HASH = (LIST >= 384 ? 4096 : 2048)>
__global__ void __launch_bounds__(kBlock, TEAM ? 10 : 1) graph_search_merge_kernel(
    const T* vectors, const float* exact, int64_t n, int d, const int32_t* graph, int degree, int32_t entry,
    const int64_t* labels, bool l2, const float* xq, int k, int width, int max_iter, int seed_rounds, uint64_t seed,
    float* D, int64_t* I) {
    static_assert(TEAM || std::is_same<T, float>::value, "float16 rows are scored by the team scorer");
    extern __shared__ float4 q_smem[];
    float* q = reinterpret_cast<float*>(q_smem);
    __shared__ float list_d[2][LIST];
    __shared__ uint32_t list_i[2][LIST];
    __shared__ float fresh_d[F];
    __shared__ uint32_t fresh_i[F];
    __shared__ uint32_t hash[HASH];
    __shared__ uint32_t parents[F];
    __shared__ int n_parents, n_visited, n_fresh;
    const int64_t qi = blockIdx.x;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int cur = 0;  // which list buffer is current
    for (int j = threadIdx.x; j < d; j += kBlock) q[j] = xq[qi * d + j];
    for (int j = threadIdx.x; j < HASH; j += kBlock) hash[j] = 0u;
    for (int j = threadIdx.x; j < LIST; j += kBlock) {
        list_d[0][j] = FLT_MAX;
        list_i[0][j] = kEmpty;
    }
    if (threadIdx.x == 0) n_visited = n_fresh = 0;
    __syncthreads();

    auto visit_counted = [&](uint32_t row) { return visit<HASH>(hash, row, &n_visited); };
    // A new row to the next fresh slot (n_fresh is zero at the start of each fill).
    auto add_fresh = [&](uint32_t row) {
        if (visit_counted(row)) {
            const int at = atomicAdd(&n_fresh, 1);
            fresh_i[at] = row;
        }
    };
    // Scores the fresh candidates, sorts them (warp 0), merges them into the list.
    auto absorb = [&]() {
        __syncthreads();
        const int count = n_fresh;
        int P = 2;  // the sorted prefix: a power of two, padded
        while (P < count) P <<= 1;
        for (int j = count + threadIdx.x; j < P; j += kBlock) {
            fresh_d[j] = FLT_MAX;
            fresh_i[j] = kEmpty;
        }
        if constexpr (TEAM)
            score_rows_team<T>(q, vectors, d, l2, fresh_i, fresh_d, count);
        else
            score_rows_warp(q, vectors, d, l2, fresh_i, fresh_d, count);
        __syncthreads();
        if (threadIdx.x == 0) n_fresh = 0;  // every thread has read it; the next fill is after the last barrier
        if (warp == 0) warp_sort_pairs(fresh_d, fresh_i, P);
        __syncthreads();
        // Merge by rank: an element's place is its index plus the number of
        // the other list's elements before it. Rows are distinct (the visited
        // set), so the order is strict but for the list's empty slots, which
        // all land beyond the real ones and the new ones.
        const int nxt = cur ^ 1;
        for (int i = threadIdx.x; i < LIST; i += kBlock) {
            float di = list_d[cur][i];
            uint32_t ii = list_i[cur][i];
            int lo = 0, hi = count;  // new elements before it
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (before(fresh_d[mid], fresh_i[mid], di, ii)) lo = mid + 1; else hi = mid;
            }
            if (i + lo < LIST) {
                list_d[nxt][i + lo] = di;
                list_i[nxt][i + lo] = ii;
            }
        }
        for (int j = threadIdx.x; j < count; j += kBlock) {
            float dj = fresh_d[j];
            uint32_t ij = fresh_i[j];
            int lo = 0, hi = LIST;  // list elements not after it
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (!before(dj, ij, list_d[cur][mid], list_i[cur][mid])) lo = mid + 1; else hi = mid;
            }
            if (j + lo < LIST) {
                list_d[nxt][j + lo] = dj;
                list_i[nxt][j + lo] = ij;
            }
        }
        cur = nxt;
        __syncthreads();
    };

    // Starting points: the entry node and random nodes, about as many as the list holds per round.
    const int seed_fills = seed_rounds * (LIST > F ? LIST / F : 1);
    for (int round = 0; round < seed_fills; round++) {
        for (int t = threadIdx.x; t < F; t += kBlock) {
            uint32_t row;
            if (round == 0 && t == 0 && entry >= 0)
                row = uint32_t(entry);
            else
                row = uint32_t(splitmix(seed ^ (uint64_t(qi) << 20) ^ uint64_t(round * F + t)) % uint64_t(n));
            add_fresh(row);
        }
        absorb();
    }

    for (int it = 0; it < max_iter; it++) {
        // A crowded visited set forgets all but the listed nodes.
        if (n_visited > HASH / 2) {
            __syncthreads();
            for (int j = threadIdx.x; j < HASH; j += kBlock) hash[j] = 0u;
            if (threadIdx.x == 0) n_visited = 0;
            __syncthreads();
            for (int j = threadIdx.x; j < LIST; j += kBlock)
                if (list_i[cur][j] != kEmpty) visit_counted(list_i[cur][j] & ~kExpanded);
            __syncthreads();
        }
        if (warp == 0) {
            int found = 0;
            for (int base = 0; base < LIST && found < width; base += 32) {
                uint32_t v = list_i[cur][base + lane];
                bool open = v != kEmpty && !(v & kExpanded);
                unsigned mask = __ballot_sync(0xffffffffu, open);
                int nb = __popc(mask & ((1u << lane) - 1));
                if (open && found + nb < width) {
                    parents[found + nb] = v;
                    list_i[cur][base + lane] = v | kExpanded;
                }
                found += __popc(mask);
            }
            if (lane == 0) n_parents = found < width ? found : width;
        }
        __syncthreads();
        const int np = n_parents;
        if (np == 0) break;
        for (int t = threadIdx.x; t < np * degree; t += kBlock) {
            const int32_t nb = graph[int64_t(parents[t / degree]) * degree + t % degree];
            if (nb >= 0) add_fresh(uint32_t(nb));
        }
        absorb();
    }

    if constexpr (std::is_same<T, __half>::value) {
        int R = 32;  // a power of two, >= k (LIST >= k), at most LIST
        while (R < 2 * k && 2 * R <= LIST) R <<= 1;
        const int nxt = cur ^ 1;
        for (int i = threadIdx.x; i < R; i += kBlock) {
            const uint32_t v = list_i[cur][i];
            list_i[nxt][i] = v == kEmpty ? kEmpty : (v & ~kExpanded);
            list_d[nxt][i] = FLT_MAX;
        }
        __syncthreads();
        score_rows_team<float>(q, exact, d, l2, list_i[nxt], list_d[nxt], R);
        __syncthreads();
        if (warp == 0) warp_sort_pairs(list_d[nxt], list_i[nxt], R);
        __syncthreads();
        cur = nxt;
    }
    for (int i = threadIdx.x; i < k; i += kBlock) {
        uint32_t v = i < LIST ? list_i[cur][i] : kEmpty;
        bool ok = v != kEmpty;
        uint32_t row = v & ~kExpanded;
        D[qi * k + i] = ok ? (l2 ? list_d[cur][i] : -list_d[cur][i]) : (l2 ? FLT_MAX : -FLT_MAX);
        I[qi * k + i] = ok ? labels[row] : -1;
    }
}


// Kernels of either variant, over batches of at most 2^31 - 1 queries:
// go(grid, smem, q0) launches the batch from query q0.
template <class Kernel, class Go>
void launch(Kernel kern, int d, int64_t nq, Go go) {
    size_t smem = size_t(d) * 4;
    NEARLY_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    for (int64_t q0 = 0; q0 < nq; q0 += 0x7fffffff) go(unsigned(std::min<int64_t>(nq - q0, 0x7fffffff)), smem, q0);
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void graph_search(GpuResources& res, const float* vectors, const uint16_t* vectors16, int64_t n, int d,
                  const int32_t* graph, int degree, int32_t entry, const int64_t* labels, MetricType metric,
                  const float* xq, int64_t nq, int k, const GraphSearchParams& p, float* D, int64_t* I) {
    NEARLY_CHECK_ARG(k >= 1 && k <= 256, "GPU graph search: k must be between 1 and 256");
    NEARLY_CHECK_ARG(degree >= 1 && degree <= 256, "GPU graph search: degree must be between 1 and 256");
    // Bounded before width * degree is formed (no int overflow past the buffer checks below).
    NEARLY_CHECK_ARG(p.width >= 1 && p.width <= 512, "GPU graph search: width must be between 1 and 512");
    if (nq == 0) return;
    NEARLY_CHECK_ARG(n > 0, "GPU graph search on an empty graph");
    int itopk = std::max(p.itopk, k);
    // The merging kernel's list need not be a power of two: 384 as well.
    int list = itopk <= 32 ? 32 : itopk <= 64 ? 64 : itopk <= 128 ? 128 : itopk <= 256 ? 256 : itopk <= 384 ? 384 : 512;
    NEARLY_CHECK_ARG(itopk <= (p.merge ? 512 : 256), p.merge
                                                         ? "GPU graph search: itopk (efSearch) must be <= 512"
                                                         : "GPU graph search: itopk (efSearch) must be <= 256 "
                                                           "without search_merge");
    // Fresh slots per step: width * degree, within the sort buffer.
    int need = p.width * degree;
    int max_iter = p.max_iterations > 0 ? p.max_iterations : list / p.width * 2 + 16;
    bool l2 = metric == METRIC_L2;
    int width = p.width;
    if (p.merge) {
        int F = 32;
        while (F < need) F <<= 1;
        NEARLY_CHECK_ARG(F <= 256, "GPU graph search: width * degree must be <= 256");
        // The team scorer unless the warp one is asked for (the benchmark compares them).
        const char* scorer = std::getenv("NEARLY_GPU_GRAPH_SCORER");
        const bool team = !(scorer && std::string(scorer) == "warp");
        NEARLY_CHECK_ARG(!p.fp16 || vectors16, "GPU graph search: fp16 needs the float16 copy of the rows");
        cudaStream_t st = res.stream();
        auto go = [&](auto L, auto FF) {
            constexpr int kL = decltype(L)::value, kF = decltype(FF)::value;
            auto run = [&](auto kern, auto rows) {
                launch(kern, d, nq, [&](unsigned grid, size_t smem, int64_t q0) {
                    kern<<<grid, kBlock, smem, st>>>(rows, vectors, n, d, graph, degree, entry, labels, l2,
                                                     xq + q0 * d, k, width, max_iter, p.seed_rounds, p.seed,
                                                     D + q0 * k, I + q0 * k);
                });
            };
            if (p.fp16)
                run(graph_search_merge_kernel<kL, kF, true, __half>, reinterpret_cast<const __half*>(vectors16));
            else if (team)
                run(graph_search_merge_kernel<kL, kF, true>, vectors);
            else
                run(graph_search_merge_kernel<kL, kF, false>, vectors);
        };
        auto by_f = [&](auto L) {
            using std::integral_constant;
            if (F == 32) go(L, integral_constant<int, 32>{});
            else if (F == 64) go(L, integral_constant<int, 64>{});
            else if (F == 128) go(L, integral_constant<int, 128>{});
            else go(L, integral_constant<int, 256>{});
        };
        if (list == 32) by_f(std::integral_constant<int, 32>{});
        else if (list == 64) by_f(std::integral_constant<int, 64>{});
        else if (list == 128) by_f(std::integral_constant<int, 128>{});
        else if (list == 256) by_f(std::integral_constant<int, 256>{});
        else if (list == 384) by_f(std::integral_constant<int, 384>{});
        else by_f(std::integral_constant<int, 512>{});
        return;
    }
    int S = 1;
    while (S < list + need) S <<= 1;
    S = std::max(S, 2 * list);
    NEARLY_CHECK_ARG(S <= 512, "GPU graph search: width * degree too large for the candidate buffer (at most " +
                                   std::to_string(512 - list) + ")");
    auto go = [&](auto L, auto SS) {
        auto kern = graph_search_kernel<decltype(L)::value, decltype(SS)::value>;
        launch(kern, d, nq, [&](unsigned grid, size_t smem, int64_t q0) {
            kern<<<grid, kBlock, smem, res.stream()>>>(vectors, n, d, graph, degree, entry, labels, l2, xq + q0 * d, k,
                                                       width, max_iter, p.seed_rounds, p.seed, D + q0 * k, I + q0 * k);
        });
    };
    using std::integral_constant;
    if (list == 32 && S == 64) go(integral_constant<int, 32>{}, integral_constant<int, 64>{});
    else if (list == 32 && S == 128) go(integral_constant<int, 32>{}, integral_constant<int, 128>{});
    else if (list == 32 && S == 256) go(integral_constant<int, 32>{}, integral_constant<int, 256>{});
    else if (list == 32) go(integral_constant<int, 32>{}, integral_constant<int, 512>{});
    else if (list == 64 && S == 128) go(integral_constant<int, 64>{}, integral_constant<int, 128>{});
    else if (list == 64 && S == 256) go(integral_constant<int, 64>{}, integral_constant<int, 256>{});
    else if (list == 64) go(integral_constant<int, 64>{}, integral_constant<int, 512>{});
    else if (list == 128 && S == 256) go(integral_constant<int, 128>{}, integral_constant<int, 256>{});
    else if (list == 128) go(integral_constant<int, 128>{}, integral_constant<int, 512>{});
    else go(integral_constant<int, 256>{}, integral_constant<int, 512>{});
}

}  // namespace nearly::gpu
