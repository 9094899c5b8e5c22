// Panorama (Panorama: Fast-Track Nearest Neighbors, arXiv 2510.00566):
// exact search that reads each candidate a level (a run of consecutive
// dimensions) at a time and drops it as soon as a Cauchy-Schwarz bound on
// the dimensions still unread shows it cannot beat the current k-th best.
// The answer is the exhaustive one; what it saves depends on how much of
// the vectors' energy the first dimensions hold, so it pays after an
// orthogonal transform that sorts dimensions by variance (PCA).
//
// Unlike faiss, which copies the vectors into a level-major layout per
// batch, nearly reads the rows as IndexFlat stores them (a level is a
// stretch of each row): every other operation (reconstruct, removal,
// merging, the GEMM of plain search) stays the flat index's, and a
// candidate set scattered over the base (re-ranking) reads the same way.
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

    // Scores candidate rows rows[0..n) of xb (row-major, d floats a row;
    // tails: n_levels + 1 floats a row) against q, level by level, dropping
    // a row once its bound is not below threshold. Scores are "smaller is
    // better": L2 squared distances, or negated inner products. norms2 (L2
    // only, may be null): the rows' exact squared norms. The survivors are
    // compacted to the front of rows, their final scores into scores;
    // returns how many. Counts the level slices read into *scanned.
    size_t filter(const Query& q, bool l2, const float* xb, const float* tails, const float* norms2, idx_t* rows,
                  size_t n, float threshold, float* scores, uint64_t* scanned) const;
};

}  // namespace nearly
