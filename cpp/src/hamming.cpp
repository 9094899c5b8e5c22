#include "nearly/hamming.h"

#include <algorithm>
#include <vector>

#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

bool hamming_vpopcntdq_native() {
#if defined(NEARLY_HAVE_AVX512)
    static const bool has = cpu_has_avx512_vpopcntdq();
    return has && simd_level() == SimdLevel::avx512;
#else
    return false;
#endif
}

HammingNyFn hamming_ny_kernel() {
#if defined(NEARLY_HAVE_AVX2)
    if (hamming_vpopcntdq_native()) return hamming_ny_vpopcntdq;
    if (simd_level() == SimdLevel::avx2 || simd_level() == SimdLevel::avx512) return hamming_ny_popcnt;
#endif
#if defined(NEARLY_HAVE_NEON)
    if (simd_level() == SimdLevel::neon) return hamming_ny_neon;
#endif
    return hamming_ny_scalar;
}

void hamming_ny(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    hamming_ny_kernel()(q, x, cs, ny, out);
}

HammingNyFn generalized_hamming_ny_kernel() {
#if defined(NEARLY_HAVE_AVX2)
    if (hamming_vpopcntdq_native()) return generalized_hamming_ny_avx512;
    if (simd_level() == SimdLevel::avx2 || simd_level() == SimdLevel::avx512) return generalized_hamming_ny_avx2;
#endif
    return generalized_hamming_ny_scalar;
}

void generalized_hamming_ny(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    generalized_hamming_ny_kernel()(q, x, cs, ny, out);
}

namespace {

// The k nearest of xb for each query under dist (a HammingNyFn-shaped scorer
// of integer distances).
void knn_codes(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t cs, size_t k, int32_t* D,
               idx_t* I, const IDSelector* sel, const idx_t* labels, HammingNyFn dist) {
    // Queries in groups of 16, the database in chunks that stay in cache
    // while every query of the group scans them.
    constexpr size_t kGroup = 16;
    const size_t chunk = std::max<size_t>(256, (size_t(1) << 17) / std::max<size_t>(cs, 1));
    InterruptPoll poll;
    const bool par = nq > 1 && nq * nb * cs > (1u << 18);
    const size_t ngroups = (nq + kGroup - 1) / kGroup;
    const size_t group = par && ngroups < size_t(get_num_threads()) ? 1 : kGroup;
    const size_t ntasks = (nq + group - 1) / group;
    parallel_for(par ? ntasks : (nq ? 1 : 0), [&](size_t t) {
        std::vector<int32_t> scores(chunk);
        std::vector<float> hd(kGroup * k);
        std::vector<idx_t> hi(kGroup * k);
        const size_t q0 = par ? t * group : 0, q1 = par ? std::min(nq, q0 + group) : nq;
        for (size_t g0 = q0; g0 < q1; g0 += kGroup) {
            const size_t g1 = std::min(q1, g0 + kGroup);
            for (size_t q = g0; q < g1; q++) TopK::init(&hd[(q - g0) * k], &hi[(q - g0) * k], k);
            for (size_t j0 = 0; j0 < nb; j0 += chunk) {
                const size_t n = std::min(chunk, nb - j0);
                for (size_t q = g0; q < g1; q++) {
                    float* Dq = &hd[(q - g0) * k];
                    idx_t* Iq = &hi[(q - g0) * k];
                    dist(xq + q * cs, xb + j0 * cs, cs, n, scores.data());
                    // Once the heap is full almost no code beats its worst:
                    // test 16 at a time against it (vectorized) and look at
                    // each only in the rare blocks that hold a candidate.
                    // Without labels the ids ascend, so a tie with the worst
                    // (a larger id) cannot enter: only smaller distances can,
                    // which matters where distances take few values.
                    const int32_t tie = labels ? 0 : 1;
                    int32_t worst = Dq[0] < 2147483647.0f ? int32_t(Dq[0]) - tie : 2147483647;
                    for (size_t b0 = 0; b0 < n; b0 += 16) {
                        const size_t b1 = std::min(n, b0 + 16);
                        int any = 0;
                        for (size_t j = b0; j < b1; j++) any |= scores[j] <= worst;
                        if (!any) continue;
                        for (size_t j = b0; j < b1; j++) {
                            const float v = float(scores[j]);
                            if (v > Dq[0]) continue;
                            idx_t id = labels ? labels[j0 + j] : idx_t(j0 + j);
                            if (!TopK::worse(Dq[0], Iq[0], v, id)) continue;
                            if (sel && !sel->is_member(id)) continue;
                            TopK::push(Dq, Iq, k, v, id);
                        }
                        worst = Dq[0] < 2147483647.0f ? int32_t(Dq[0]) - tie : 2147483647;
                    }
                }
                poll();
            }
            for (size_t q = g0; q < g1; q++) {
                float* Dq = &hd[(q - g0) * k];
                idx_t* Iq = &hi[(q - g0) * k];
                TopK::sort(Dq, Iq, k);
                for (size_t i = 0; i < k; i++) {
                    I[q * k + i] = Iq[i];
                    D[q * k + i] = Iq[i] < 0 ? kHammingPad : int32_t(Dq[i]);
                }
            }
        }
    });
}

}  // namespace

void knn_hamming(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t cs, size_t k, int32_t* D,
                 idx_t* I, const IDSelector* sel, const idx_t* labels) {
    knn_codes(xq, nq, xb, nb, cs, k, D, I, sel, labels, hamming_ny_kernel());
}

void knn_generalized_hamming(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t cs, size_t k,
                             int32_t* D, idx_t* I) {
    knn_codes(xq, nq, xb, nb, cs, k, D, I, nullptr, nullptr, generalized_hamming_ny_kernel());
}

namespace {

// Runs fn(task, i, distances of a_i to b_j0 ... b_j0+n-1, j0, n) for every row
// i of a, b in chunks that stay in cache, rows in tasks of 16 (task
// (na + 15) / 16 at most).
template <class Fn>
void for_each_row_chunk(const uint8_t* a, size_t na, const uint8_t* b, size_t nb, size_t cs, const Fn& fn) {
    constexpr size_t kRows = 16;
    const size_t chunk = std::max<size_t>(256, (size_t(1) << 17) / std::max<size_t>(cs, 1));
    const HammingNyFn dist = hamming_ny_kernel();
    InterruptPoll poll;
    const bool par = na * nb * cs > (1u << 18);
    const size_t ntasks = par ? (na + kRows - 1) / kRows : (na ? 1 : 0);
    parallel_for(ntasks, [&](size_t t) {
        std::vector<int32_t> scores(std::min(chunk, nb));
        const size_t i0 = par ? t * kRows : 0, i1 = par ? std::min(na, i0 + kRows) : na;
        for (size_t j0 = 0; j0 < nb; j0 += chunk) {
            const size_t n = std::min(chunk, nb - j0);
            for (size_t i = i0; i < i1; i++) {
                dist(a + i * cs, b + j0 * cs, cs, n, scores.data());
                fn(t, i, scores.data(), j0, n);
            }
            poll();
        }
    });
}

}  // namespace

void hammings(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t cs, int32_t* dis) {
    // Straight into dis, rows in tasks of 16, b in chunks that stay in cache.
    constexpr size_t kRows = 16;
    const size_t chunk = std::max<size_t>(256, (size_t(1) << 17) / std::max<size_t>(cs, 1));
    const HammingNyFn dist = hamming_ny_kernel();
    InterruptPoll poll;
    const bool par = na * nb * cs > (1u << 18);
    parallel_for(par ? (na + kRows - 1) / kRows : (na ? 1 : 0), [&](size_t t) {
        const size_t i0 = par ? t * kRows : 0, i1 = par ? std::min(na, i0 + kRows) : na;
        for (size_t j0 = 0; j0 < nb; j0 += chunk) {
            const size_t n = std::min(chunk, nb - j0);
            for (size_t i = i0; i < i1; i++) dist(a + i * cs, b + j0 * cs, cs, n, dis + i * nb + j0);
            poll();
        }
    });
}

size_t hamming_count_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int32_t ht, size_t cs) {
    const size_t ntasks = (na + 15) / 16;
    std::vector<size_t> counts(std::max<size_t>(ntasks, 1), 0);
    for_each_row_chunk(a, na, b, nb, cs, [&](size_t t, size_t, const int32_t* s, size_t, size_t n) {
        size_t c = 0;
        for (size_t j = 0; j < n; j++) c += s[j] <= ht;
        counts[t] += c;
    });
    size_t total = 0;
    for (size_t c : counts) total += c;
    return total;
}

size_t crosshamming_count_thres(const uint8_t* x, size_t n, int32_t ht, size_t cs) {
    // Row i against the rows after it; rows in interleaved tasks so that the
    // long rows (small i) and the short ones spread over the threads.
    const HammingNyFn dist = hamming_ny_kernel();
    const bool par = n * n * cs > (1u << 19);
    const size_t ntasks = par ? std::min<size_t>(n, 64 * size_t(get_num_threads())) : (n ? 1 : 0);
    std::vector<size_t> counts(std::max<size_t>(ntasks, 1), 0);
    InterruptPoll poll;
    parallel_for(ntasks, [&](size_t t) {
        std::vector<int32_t> scores(n);
        size_t c = 0;
        for (size_t i = t; i < n; i += ntasks) {
            const size_t m = n - i - 1;
            dist(x + i * cs, x + (i + 1) * cs, cs, m, scores.data());
            for (size_t j = 0; j < m; j++) c += scores[j] <= ht;
            poll();
        }
        counts[t] = c;
    });
    size_t total = 0;
    for (size_t c : counts) total += c;
    return total;
}

void match_hamming_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int32_t ht, size_t cs,
                         std::vector<idx_t>& pairs, std::vector<int32_t>& dis) {
    // Each task keeps its rows' matches; in task order they come out in
    // (i, j) order, as a serial scan's.
    const size_t ntasks = (na + 15) / 16;
    std::vector<std::vector<idx_t>> task_pairs(std::max<size_t>(ntasks, 1));
    std::vector<std::vector<int32_t>> task_dis(task_pairs.size());
    for_each_row_chunk(a, na, b, nb, cs, [&](size_t t, size_t i, const int32_t* s, size_t j0, size_t n) {
        for (size_t j = 0; j < n; j++) {
            if (s[j] > ht) continue;
            task_pairs[t].push_back(idx_t(i));
            task_pairs[t].push_back(idx_t(j0 + j));
            task_dis[t].push_back(s[j]);
        }
    });
    pairs.clear();
    dis.clear();
    for (size_t t = 0; t < task_pairs.size(); t++) {
        const std::vector<idx_t>& p = task_pairs[t];
        std::vector<size_t> order(task_dis[t].size());
        for (size_t m = 0; m < order.size(); m++) order[m] = m;
        // A task visits its rows chunk by chunk: a stable sort by row puts
        // them back in (i, j) order.
        std::stable_sort(order.begin(), order.end(), [&](size_t u, size_t v) { return p[2 * u] < p[2 * v]; });
        for (size_t m : order) {
            pairs.push_back(p[2 * m]);
            pairs.push_back(p[2 * m + 1]);
            dis.push_back(task_dis[t][m]);
        }
    }
}

}  // namespace nearly
