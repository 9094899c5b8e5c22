#include "nearly/topk.h"

#include <cstring>

namespace nearly {

namespace {
// Float bits mapped to unsigned integers of the same order (-0 just below +0).
inline uint32_t ordered(float f) {
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b ^ ((b >> 31) ? 0xffffffffu : 0x80000000u);
}
inline float from_ordered(uint32_t u) {
    const uint32_t b = u ^ ((u >> 31) ? 0x80000000u : 0xffffffffu);
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
inline bool better(const std::pair<float, idx_t>& a, const std::pair<float, idx_t>& b) {
    return TopK::worse(b.first, b.second, a.first, a.second);
}
// Scratch shared by a thread's reservoirs (a search holds one per query).
thread_local std::vector<uint32_t> t_order;
thread_local std::vector<uint64_t> t_order64;
thread_local std::vector<std::pair<float, idx_t>> t_pairs;
}  // namespace

void TopKReservoir::cut() {
    if (n <= k) return;
    // A threshold t with between k and k + slack candidates <= t, found by
    // bisection over the keys' integer images: counting passes that
    // vectorize and never branch on the data (nth_element's partitions
    // mispredict on every other element). Every candidate <= t stays, so
    // the k best always do; the exact k are picked by to_heap.
    t_order.resize(n);
    uint32_t lo = ~0u, hi = 0;
    for (size_t i = 0; i < n; i++) {
        t_order[i] = ordered(keys[i]);
        lo = std::min(lo, t_order[i]);
        hi = std::max(hi, t_order[i]);
    }
    const uint32_t* u = t_order.data();
    const uint32_t nn = uint32_t(n), kk = uint32_t(k), enough = uint32_t(k + (keys.size() - k) / 4);
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        uint32_t c = 0;
        for (uint32_t i = 0; i < nn; i++) c += u[i] <= mid;
        if (c >= kk) {
            hi = mid;
            if (c <= enough) break;
        } else {
            lo = mid + 1;
        }
    }
    const float t = from_ordered(hi);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {  // branch-free compaction
        keys[m] = keys[i];
        ids[m] = ids[i];
        m += keys[i] <= t;  // float order: -0 and +0 tie, like everywhere else
    }
    if (m > (k + keys.size()) / 2) {
        // So many ties that the buffer would not shrink: exactly the k best.
        t_pairs.resize(m);
        for (size_t i = 0; i < m; i++) t_pairs[i] = {keys[i], ids[i]};
        std::nth_element(t_pairs.begin(), t_pairs.begin() + (k - 1), t_pairs.end(), better);
        for (size_t i = 0; i < k; i++) {
            keys[i] = t_pairs[i].first;
            ids[i] = t_pairs[i].second;
        }
        m = k;
    }
    n = m;
    threshold = t;
}

const std::pair<float, idx_t>* TopKReservoir::sort_best(size_t& m) {
    cut();
    t_pairs.resize(n);
    bool small_ids = true;
    for (size_t i = 0; i < n; i++) small_ids &= ids[i] >= 0 && ids[i] <= idx_t(0xffffffff);
    if (small_ids) {
        // (score, id) packed in one integer of the same order: integer
        // comparisons sort several times faster than the pair comparator.
        t_order64.resize(n);
        for (size_t i = 0; i < n; i++)
            t_order64[i] = uint64_t(ordered(keys[i] + 0.f)) << 32 | uint64_t(ids[i]);  // + 0: -0 ties +0
        std::sort(t_order64.begin(), t_order64.end());
        for (size_t i = 0; i < n; i++)
            t_pairs[i] = {from_ordered(uint32_t(t_order64[i] >> 32)), idx_t(t_order64[i] & 0xffffffffu)};
    } else {
        for (size_t i = 0; i < n; i++) t_pairs[i] = {keys[i], ids[i]};
        std::sort(t_pairs.begin(), t_pairs.end(), better);
    }
    m = std::min(n, k);
    n = 0;
    return t_pairs.data();
}

void TopKReservoir::to_heap(float* D, idx_t* I) {
    if (keys.size() < n + k) {
        keys.resize(n + k);
        ids.resize(n + k);
    }
    for (size_t i = 0; i < k; i++)
        if (I[i] >= 0) {
            keys[n] = D[i];
            ids[n] = I[i];
            n++;
        }
    size_t m;
    const std::pair<float, idx_t>* best = sort_best(m);
    for (size_t i = 0; i < k; i++) {
        D[k - 1 - i] = i < m ? best[i].first : std::numeric_limits<float>::infinity();
        I[k - 1 - i] = i < m ? best[i].second : -1;
    }
}

void TopKReservoir::take_sorted(float* D, idx_t* I) {
    size_t m;
    const std::pair<float, idx_t>* best = sort_best(m);
    for (size_t i = 0; i < k; i++) {
        D[i] = i < m ? best[i].first : std::numeric_limits<float>::infinity();
        I[i] = i < m ? best[i].second : -1;
    }
}

}  // namespace nearly
