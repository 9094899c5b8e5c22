// EDEN (Vargaftik et al., "EDEN: Communication-Efficient and Robust
// Distributed Mean Estimation", ICML 2022), faiss's QT_*_eden codes. A
// vector's residual r = x - c (c: the index's center, or the list's
// centroid) is scaled to unit-variance coordinates, z = r sqrt(d) / |r|, and
// each coordinate quantized by the normal law's Lloyd-Max codebook of 2^bits
// levels (ScalarQuantizer QT_<bits>bit_eden). The code is those cells, packed
// bits wide, then two floats:
//   scale: the reconstruction is c + scale * q (q the cells' centroids);
//     unbiased (EDEN's): |r|^2 / <q, r>, so that <scale q, y> is an
//     unbiased estimate of <r, y> under a random rotation; biased (DRIVE's,
//     NeurIPS 2021): <q, r> / |q|^2, the least-squares fit of r;
//   l2_norm_term: the |x - c|^2 the L2 estimate uses: |r|^2 (unbiased) or
//     |scale q|^2 (biased, the reconstruction's own).
// Scores, as faiss's distance computer (y the query):
//   L2: |y - c|^2 + l2_norm_term - 2 scale <y - c, q>
//   IP: <y, c> + scale <y, q>
// with <., q> summed by the codebook kernels of sq_scan.h. Random rotations,
// which EDEN's guarantees assume, come from an IndexPreTransform ("RR...").
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nearly/index.h"
#include "nearly/scalar_quantizer.h"

namespace nearly {

struct EdenCodec {
    size_t d;
    bool biased;       // faiss's EDENScaleType_BIASED (false: _UNBIASED)
    ScalarQuantizer sq;  // QT_<bits>bit_eden, trained (its codebook needs no data)

    EdenCodec(size_t d, size_t bits, bool biased);
    size_t bits() const { return sq.bits; }
    size_t packed_size() const { return sq.code_size; }
    size_t code_size() const { return sq.code_size + 2 * sizeof(float); }
    // n vectors' codes; center: d floats, or null for the origin.
    void encode(size_t n, const float* x, const float* center, uint8_t* codes) const;
    void decode(size_t n, const uint8_t* codes, const float* center, float* x) const;
    // The code's (l2_norm_term, scale).
    static void factors(const uint8_t* code, size_t packed, float& l2_norm_term, float& scale);
};

// Scores codes against one query (the Scorer of index_flat_codes.h and of
// the IVF scanners): distances (L2) or inner products (IP). center: the
// codes' center (null: the origin, e.g. an IVF list's residual codes, whose
// scanner hands the query's residual or adds the coarse score itself).
class EdenScorer {
   public:
    EdenScorer(const EdenCodec& codec, MetricType metric, const float* center);
    void set_query(const float* q);
    void scores(const uint8_t* codes, size_t n, float* out) const;
    static void scores_group(const EdenScorer* s, size_t nq, const uint8_t* codes, size_t n, float* out);

   private:
    // out[i] (the <y', q> sums) turned into scores, in place.
    void finish(const uint8_t* codes, size_t n, float* out) const;
    const EdenCodec* codec_;
    bool ip_;
    const float* center_;
    std::vector<float> table_;  // the codebook's centroids, zero-padded to 16 at least
    std::vector<float> dq_;     // y - c (L2) or y (IP)
    float base_ = 0.f;          // |y - c|^2 (L2) or <y, c> (IP)
};

}  // namespace nearly
