// Panorama (Panorama: Fast-Track Nearest Neighbors, arXiv 2510.00566):
// exact search that reads each candidate a level (a run of consecutive
// dimensions) at a time and drops it as soon as a Cauchy-Schwarz bound on
// the dimensions still unread shows it cannot beat the current k-th best.
// The answer is the exhaustive one; what it saves depends on how much of
// the vectors' energy the first dimensions hold, so it pays after an
// orthogonal transform that sorts dimensions by variance (PCA).

#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nearly/common.h"

namespace nearly {

// faiss's indexPanorama_stats: how many level slices searches read out of
// how many an exhaustive scan of the same candidates would.
struct PanoramaStats {
    std::atomic<uint64_t> total_dims_scanned{0};
    std::atomic<uint64_t> total_dims{0};
    void reset() {
        total_dims_scanned = 0;
        total_dims = 0;
    }
    double ratio_dims_scanned() const {
        const uint64_t t = total_dims;
        return t ? double(total_dims_scanned) / double(t) : 1.0;
    }
    void add(uint64_t scanned, uint64_t total) {
        total_dims_scanned += scanned;
        total_dims += total;
    }
};
extern PanoramaStats panorama_stats;

// The tail norms of a d-dimensional v cut into levels of `width` dims (the
// last maybe shorter): tails[l * stride] = || v[l * width:] ||, l < n_levels,
// summed from the last level back in double. The one definition of what the
// bounds use, for queries and for the stored vectors alike.
void panorama_tail_norms(const float* v, size_t d, size_t width, size_t n_levels, float* tails, size_t stride = 1);

struct Panorama {
    size_t d = 0, n_levels = 0, width = 0;  // width = dims per level, the last level may be shorter

    Panorama() = default;
    // n_levels in [1, d]; like faiss, levels that would be empty are dropped
    // (d = 10, 4 levels of 3 dims: 3 + 3 + 3 + 1; d = 10, 6 levels: 5 of 2).
    Panorama(size_t d, size_t n_levels);

    size_t level_begin(size_t l) const { return l * width; }
    size_t level_end(size_t l) const { return std::min(d, (l + 1) * width); }

    // tails[l] = || v[level_begin(l):] ||, l = 0 .. n_levels (tails[n_levels] = 0).
    void tail_norms(const float* v, float* tails) const;

    // The query's side of a search: its tail norms and squared norm.
    struct Query {
        const float* x = nullptr;
        std::vector<float> tails;
        float norm2 = 0;
    };
    Query query(const float* x) const;
    // The same into q, reusing its storage (once per query on hot paths).
    void set_query(Query& q, const float* x) const;

    // Scores candidate rows rows[0..n) against q level by level, dropping a
    // row once its bound is not below threshold. slice(r, l): row r's
    // level-l dimensions (level_end(l) - level_begin(l) floats); tail(r, l):
    // its tail norm from level l; norm2(r) (L2): its squared norm. Scores
    // are "smaller is better": L2 squared distances, or negated inner
    // products. The survivors are compacted to the front of rows, their
    // final scores into scores; returns how many. Adds the level slices
    // read to *scanned.
    template <class Slice, class Tail, class Norm2>
    size_t filter(const Query& q, bool l2, const Slice& slice, const Tail& tail, const Norm2& norm2, idx_t* rows,
                  size_t n, float threshold, float* scores, uint64_t* scanned) const {
        const auto dots_of = rows_kernel();
        thread_local std::vector<const float*> ptr;
        thread_local std::vector<float> dot;
        if (ptr.size() < n) {
            ptr.resize(n);
            dot.resize(n);
        }
        // L2: |q|^2 + |v|^2 - 2 <q, v>; inner product: -<q, v>. The
        // dimensions not yet read add at least -f |q_rest| |v_rest|.
        const float f = l2 ? 2.f : 1.f;
        for (size_t i = 0; i < n; i++) scores[i] = l2 ? q.norm2 + norm2(rows[i]) : 0.f;
        size_t active = n;
        for (size_t l = 0; l < n_levels && active > 0; l++) {
            const size_t b = level_begin(l), w = level_end(l) - b;
            const float qrest = f * q.tails[l + 1];
            // Rows scattered over the base (re-ranking): every slice is
            // requested before the first is read, so the misses overlap.
            for (size_t i = 0; i < active; i++) {
                ptr[i] = slice(rows[i], l);
                __builtin_prefetch(ptr[i]);
                __builtin_prefetch(reinterpret_cast<const char*>(ptr[i] + w) - 1);
            }
            dots_of(q.x + b, ptr.data(), w, active, dot.data());
            *scanned += active;
            size_t kept = 0;
            for (size_t i = 0; i < active; i++) {
                const idx_t r = rows[i];
                const float s = scores[i] - f * dot[i];
                const float bound = s - qrest * tail(r, l + 1);
                rows[kept] = r;
                scores[kept] = s;
                kept += bound < threshold;
            }
            active = kept;
        }
        if (l2)
            for (size_t i = 0; i < active; i++) scores[i] = std::max(scores[i], 0.f);
        return active;
    }

   private:
    using RowsFn = void (*)(const float*, const float* const*, size_t, size_t, float*);
    static RowsFn rows_kernel();  // the dispatched inner_products_rows (simd.h)
};

}  // namespace nearly
