// 4-bit PQ fast-scan (André, Kermarrec and Le Scouarnec, "Cache locality is
// not enough", VLDB 2015; faiss's IndexPQFastScan). With 16 centroids per
// subquantizer a query's table for one subquantizer, quantized to bytes,
// fits one 128-bit register, and a byte shuffle looks up 32 or 64 codes at
// once. Codes lie in blocks of 32 entries, byte-transposed (CodeLayout with
// block 32): byte p of a code holds subquantizers 2p (low nibble) and 2p+1,
// as in ProductQuantizer's 4-bit codes. Sums of byte lookups are 16-bit, so
// scores are approximate (within M / 2 quantization steps); a re-ranking
// (IndexRefineFlat) restores exact distances.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nearly/code_layout.h"
#include "nearly/common.h"
#include "nearly/pq.h"
#include "nearly/selector.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

constexpr size_t kPQ4Block = 32;

// faiss's fast-scan `implem` knob, whose values differ between the flat and
// the IVF classes. faiss's kernel variants (flat: 3, 4, 12-15; IVF: 2, 10-15,
// +100 single-threaded) all run nearly's one quantized-table scan, with the
// same results; the float-table reference (flat: 2; IVF: 1) scores exactly,
// as IndexPQ / IndexIVFPQ do. 0 is auto.
inline bool fast_scan_implem_exists(int implem, bool ivf) {
    if (implem == 0) return true;
    if (!ivf) return (implem >= 2 && implem <= 4) || (implem >= 12 && implem <= 15);
    const int v = implem >= 100 ? implem - 100 : implem;
    return v == 1 || v == 2 || (v >= 10 && v <= 15);
}
inline bool fast_scan_exact(int implem, bool ivf) { return ivf ? implem == 1 || implem == 101 : implem == 2; }
// implem, or InvalidArgument when it is none of faiss's values.
inline int checked_fast_scan_implem(int implem, bool ivf) {
    if (!fast_scan_implem_exists(implem, ivf))
        throw InvalidArgument("implem " + std::to_string(implem) + " does not exist for " +
                              (ivf ? "IVF fast-scan (0, 1, 2, 10-15, or 101, 102, 110-115)"
                                   : "flat fast-scan (0, 2, 3, 4, 12-15)"));
    return implem;
}

inline CodeLayout pq4_layout(size_t code_size) { return CodeLayout{code_size, kPQ4Block}; }

// A query's float table (M x 16, lower is better) quantized to bytes per
// subquantizer: entry = round((t - min_m) * scale), one scale for all
// subquantizers so that sums compare; a sum s stands for bias + s x inv_scale
// (inv_scale = 1 / scale in float: a product, not a division, per candidate).
struct PQ4Table {
    size_t npairs = 0;
    float bias = 0.f, scale = 1.f, inv_scale = 1.f;
    std::vector<uint8_t> bytes;  // 2 * npairs x 16, odd M padded with a zero table
    PQ4Tail tail;                // the multiplied last pairs (none unless set with table_scale > 1)
    // The active SIMD level's layout of bytes, 64-byte aligned.
    const uint8_t* packed() const { return packed_.data() + packed_offset_; }

    // Tables m >= scaled_from (at most the last four) are quantized
    // table_scale times coarser and multiplied back by the scan (faiss's
    // norm_scale): entry = round((t - min_m) / table_scale x scale).
    void set(const float* tab, size_t M, size_t scaled_from = SIZE_MAX, int table_scale = 1);
    // Byte tables given as they are (M x 16; sums are then exact integers:
    // RaBitQ's bit dot products).
    void set_exact(const uint8_t* entries, size_t M);
    float score(uint16_t s) const { return bias + float(s) * inv_scale; }
    // The largest sum that can stand for a score <= thr (a little beyond:
    // candidates are checked again in float).
    uint16_t threshold(float thr) const;

   private:
    void pack();
    std::vector<uint8_t> packed_;
    size_t packed_offset_ = 0;
};

// The quantized tables of nx queries (rows of x), lower is better: inner
// products negated. The float tables are computed a few queries at a time
// (ProductQuantizer::compute_tables).
void pq4_query_tables(const ProductQuantizer& pq, const float* x, size_t nx, bool inner_product, PQ4Table* out);

// Scans n entries (codes in the block layout, npairs bytes per code) and
// adds those that can beat the reservoir's threshold to it: score = offset
// + table score, lower is better. Labels are ids[j], or id0 + j when ids is
// null; entries the selector rejects (by label) are skipped.
void pq4_scan(const uint8_t* codes, size_t n, const PQ4Table& table, float offset, const idx_t* ids, idx_t id0,
              const IDSelector* sel, TopKReservoir& out);

// pq4_scan for nq queries at once (each with its table, offset and
// reservoir; their tables' tails alike): every block of codes is loaded
// once for all of them.
void pq4_scan_queries(const uint8_t* codes, size_t n, size_t nq, const PQ4Table* const* tables,
                      const float* offsets, const idx_t* ids, idx_t id0, const IDSelector* sel,
                      TopKReservoir* const* outs);

// The flat fast-scan search of nq queries (their tables and offsets) over
// nb codes in the block layout, labels 0..nb-1: every stretch of codes is
// loaded once for all of them; their k results go to rows of D, I (sorted,
// or in any order), distances as the index reports them.
void pq4_search_codes(const uint8_t* codes, size_t nb, size_t nq, const PQ4Table* tables, const float* offsets,
                      size_t k, const IDSelector* sel, MetricType metric, bool sorted, float* D, idx_t* I);

// Empties a query's reservoir into its k results, distances as the index
// reports them (inner products positive again, missing ones padded): sorted,
// or the same k in any order when the caller re-ranks them (no sort).
void pq4_take_results(TopKReservoir& found, size_t k, bool sorted, MetricType metric, float* D, idx_t* I);

// The scores of all n entries (range search, tests).
void pq4_scores(const uint8_t* codes, size_t n, const PQ4Table& table, float offset, float* out);

}  // namespace nearly
