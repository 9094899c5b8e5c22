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

    // Sorts the heap and gives the scores back in the metric's sense: negated
    // again for inner product (kept negated in the heap), pad where no result.
    static void finish(float* D, idx_t* I, size_t k, bool negated, float pad) {
        sort(D, I, k);
        for (size_t i = 0; i < k; i++) D[i] = I[i] < 0 ? pad : (negated ? -D[i] : D[i]);
    }
};

// The candidates of one query collected ahead of a TopK heap: appended while
// they can beat the threshold and cut back to the k best when the buffer
// fills. When many candidates pass (large k, approximate scores) this costs
// a store per candidate where a heap pays a sift-down. Keys and ids lie in
// separate arrays so the cut's counting passes vectorize.
struct TopKReservoir {
    size_t k = 0, n = 0;
    std::vector<float> keys;
    std::vector<idx_t> ids;
    float threshold = std::numeric_limits<float>::infinity();  // set by cut(): >= the k-th best

    void reset(size_t k_) {
        k = k_;
        keys.resize(2 * k + 32);
        ids.resize(2 * k + 32);
        n = 0;
        threshold = std::numeric_limits<float>::infinity();
    }
    void add(float d, idx_t id) {
        keys[n] = d;
        ids[n] = id;
        if (++n == keys.size()) cut();
    }
    // Keeps every candidate scoring <= a threshold that at least k of them
    // meet and not many more (ties at the threshold all stay: to_heap orders
    // them by id), unless so many tie that the buffer would not shrink: then
    // exactly the k best.
    void cut();
    // Merges the collected candidates into the heap (D, I) of k (which may
    // hold earlier results): the k best of both, left in descending order,
    // which is a valid heap.
    void to_heap(float* D, idx_t* I);
    // The k best, ascending (score, then id), padded with (+inf, -1); empties the reservoir.
    void take_sorted(float* D, idx_t* I);
    // The same k best in any order, then the padding: no sort (a partition
    // when more than k are left). Empties the reservoir.
    void take_best(float* D, idx_t* I);

   private:
    // Leaves exactly the k best of n > k candidates, in any order (a partition).
    void keep_k_best();
    // Sorts the candidates in place (the k best first, ascending) and
    // empties the reservoir; returns min(n, k).
    size_t sort_best();
};

}  // namespace nearly
