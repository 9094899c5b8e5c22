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
}  // namespace

void TopKReservoir::cut() {
    if (n <= k) return;
    // A threshold t with between k and k + slack candidates <= t, found by
    // counting passes that vectorize and never branch on the data
    // (nth_element's partitions mispredict on every other element). Every
    // candidate <= t stays, so the k best always do; the exact k are picked
    // by sort_best.
    float fmin = keys[0], fmax = keys[0];
    for (size_t i = 1; i < n; i++) {
        fmin = std::min(fmin, keys[i]);
        fmax = std::max(fmax, keys[i]);
    }
    // The count is searched for by interpolation between the bracketing
    // values (scores near the cut are spread about evenly: a few passes),
    // every third guess a bisection of the integer images (always
    // progresses).
    const float* key = keys.data();
    auto count = [&](float v) {
        uint32_t c = 0;
        for (size_t i = 0; i < n; i++) c += key[i] <= v;
        return size_t(c);
    };
    const size_t enough = k + (keys.size() - k) / 4, target = (k + enough) / 2;
    float flo = fmin, fhi = fmax;
    size_t clo = count(flo), chi = n;
    if (clo >= k) fhi = flo;
    for (int step = 0; clo < k; step++) {
        const uint32_t lo = ordered(flo), hi = ordered(fhi);
        if (hi - lo <= 1) break;
        float guess = flo + (fhi - flo) * (float(target - clo) / float(chi - clo));
        const uint32_t g = ordered(guess);
        if (step % 3 == 2 || !(g > lo && g < hi)) guess = from_ordered(lo + (hi - lo) / 2);
        const size_t c = count(guess);
        if (c >= k) {
            fhi = guess;
            chi = c;
            if (c <= enough) break;
        } else {
            flo = guess;
            clo = c;
        }
    }
    const float t = fhi;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {  // branch-free compaction
        keys[m] = keys[i];
        ids[m] = ids[i];
        m += keys[i] <= t;
    }
    n = m;
    threshold = t;
    // So many ties that the buffer would not shrink: exactly the k best.
    if (m > (k + keys.size()) / 2) keep_k_best();
}

void TopKReservoir::keep_k_best() {
    std::vector<std::pair<float, idx_t>> pairs(n);
    for (size_t i = 0; i < n; i++) pairs[i] = {keys[i], ids[i]};
    std::nth_element(pairs.begin(), pairs.begin() + (k - 1), pairs.end(), better);
    for (size_t i = 0; i < k; i++) {
        keys[i] = pairs[i].first;
        ids[i] = pairs[i].second;
    }
    n = k;
}

size_t TopKReservoir::sort_best() {
    cut();
    bool small_ids = true;
    for (size_t i = 0; i < n; i++) small_ids &= ids[i] >= 0 && ids[i] <= idx_t(0xffffffff);
    if (small_ids) {
        // (score, id) packed in one integer of the same order, in place of
        // the ids: integer comparisons sort several times faster than the
        // pair comparator.
        uint64_t* packed = reinterpret_cast<uint64_t*>(ids.data());
        for (size_t i = 0; i < n; i++)
            packed[i] = uint64_t(ordered(keys[i] + 0.f)) << 32 | uint64_t(ids[i]);  // + 0: -0 ties +0
        std::sort(packed, packed + n);
        for (size_t i = 0; i < n; i++) {
            keys[i] = from_ordered(uint32_t(packed[i] >> 32));
            ids[i] = idx_t(packed[i] & 0xffffffffu);
        }
    } else {
        std::vector<std::pair<float, idx_t>> pairs(n);
        for (size_t i = 0; i < n; i++) pairs[i] = {keys[i], ids[i]};
        std::sort(pairs.begin(), pairs.end(), better);
        for (size_t i = 0; i < n; i++) {
            keys[i] = pairs[i].first;
            ids[i] = pairs[i].second;
        }
    }
    const size_t m = std::min(n, k);
    n = 0;
    return m;
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
    const size_t m = sort_best();
    for (size_t i = 0; i < k; i++) {
        D[k - 1 - i] = i < m ? keys[i] : std::numeric_limits<float>::infinity();
        I[k - 1 - i] = i < m ? ids[i] : -1;
    }
}

void TopKReservoir::take_best(float* D, idx_t* I) {
    cut();
    if (n > k) keep_k_best();
    for (size_t i = 0; i < k; i++) {
        D[i] = i < n ? keys[i] : std::numeric_limits<float>::infinity();
        I[i] = i < n ? ids[i] : -1;
    }
    n = 0;
}

void TopKReservoir::take_sorted(float* D, idx_t* I) {
    const size_t m = sort_best();
    for (size_t i = 0; i < k; i++) {
        D[i] = i < m ? keys[i] : std::numeric_limits<float>::infinity();
        I[i] = i < m ? ids[i] : -1;
    }
}

}  // namespace nearly
