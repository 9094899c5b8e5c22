// Keeping the k best (smallest) scores of a stream: a max-heap per query
// whose root is the current threshold. Ties go to the smaller id, so results
// do not depend on how the scan was split over threads.
#pragma once
#include <algorithm>
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

}  // namespace nearly
