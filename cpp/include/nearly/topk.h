// Keeping the k best (smallest) scores of a stream: a max-heap per query
// whose root is the current threshold. Ties go to the smaller id, so results
// do not depend on how the scan was split over threads.
#pragma once
#include <algorithm>
#include <utility>
#include <limits>
#include <vector>

#include "nearly/common.h"

namespace nearly {

struct TopK {
    // Heap over (score, id); "worse" = larger score, then larger id.
    static bool worse(float da, idx_t ia, float db, idx_t ib) { return da > db || (da == db && ia > ib); }

    // Fills k slots with (+inf, -1): the padding faiss returns for missing results.
    static void init(float* D, idx_t* I, size_t k) {
        std::fill(D, D + k, std::numeric_limits<float>::infinity());
        std::fill(I, I + k, idx_t(-1));
    }

    // Replaces the root by (d, id) when better, restoring the heap property.
    static void push(float* D, idx_t* I, size_t k, float d, idx_t id) {
        if (!worse(D[0], I[0], d, id)) return;
        size_t i = 0;
        while (true) {
            size_t l = 2 * i + 1, r = l + 1, w = i;
            float wd = d;
            idx_t wi = id;
            if (l < k && worse(D[l], I[l], wd, wi)) { w = l; wd = D[l]; wi = I[l]; }
            if (r < k && worse(D[r], I[r], wd, wi)) { w = r; }
            if (w == i) break;
            D[i] = D[w];
            I[i] = I[w];
            i = w;
        }
        D[i] = d;
        I[i] = id;
    }

    // Sorts the heap into ascending order in place.
    static void sort(float* D, idx_t* I, size_t k) {
        std::vector<std::pair<float, idx_t>> tmp(k);
        for (size_t i = 0; i < k; i++) tmp[i] = {D[i], I[i]};
        std::sort(tmp.begin(), tmp.end(), [](const auto& a, const auto& b) { return worse(b.first, b.second, a.first, a.second); });
        for (size_t i = 0; i < k; i++) { D[i] = tmp[i].first; I[i] = tmp[i].second; }
    }
};

// The candidates of one query collected ahead of a TopK heap: appended while
// they beat the threshold and cut back to the k best by a partial sort when
// the buffer fills. When many candidates pass (large k, approximate scores)
// this costs a store per candidate where a heap pays a sift-down.
struct TopKReservoir {
    size_t k = 0;
    std::vector<std::pair<float, idx_t>> buf;
    std::vector<float> keys;  // scratch for cut()
    size_t n = 0;
    float threshold = std::numeric_limits<float>::infinity();  // the k-th best after a cut

    void reset(size_t k_) {
        k = k_;
        buf.resize(2 * k + 32);
        n = 0;
        threshold = std::numeric_limits<float>::infinity();
    }
    void add(float d, idx_t id) {
        buf[n++] = {d, id};
        if (n == buf.size()) cut();
    }
    // Keeps every candidate scoring <= the k-th best score (ties at the
    // threshold all stay: the heap orders them by id later), unless so many
    // tie that the buffer would not shrink: then exactly the k best.
    void cut() {
        if (n <= k) return;
        keys.resize(n);
        for (size_t i = 0; i < n; i++) keys[i] = buf[i].first;
        std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end());
        const float t = keys[k - 1];
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (buf[i].first <= t) buf[m++] = buf[i];
        if (m > (k + buf.size()) / 2) {
            auto better = [](const auto& a, const auto& b) { return TopK::worse(b.first, b.second, a.first, a.second); };
            std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.begin() + m, better);
            m = k;
        }
        n = m;
        threshold = t;
    }
    // Merges the collected candidates into the heap (D, I) of k (which may
    // hold earlier results): the k best of both, left in descending order,
    // which is a valid heap.
    void to_heap(float* D, idx_t* I) {
        if (buf.size() < n + k) buf.resize(n + k);
        for (size_t i = 0; i < k; i++)
            if (I[i] >= 0) buf[n++] = {D[i], I[i]};
        auto better = [](const auto& a, const auto& b) { return TopK::worse(b.first, b.second, a.first, a.second); };
        const size_t m = std::min(n, k);
        std::partial_sort(buf.begin(), buf.begin() + m, buf.begin() + n, better);
        for (size_t i = 0; i < k; i++) {
            if (i < m) {
                D[k - 1 - i] = buf[i].first;
                I[k - 1 - i] = buf[i].second;
            } else {
                D[k - 1 - i] = std::numeric_limits<float>::infinity();
                I[k - 1 - i] = -1;
            }
        }
        n = 0;
    }
};

}  // namespace nearly
