#include "nearly/pq_fast_scan.h"

#include <algorithm>
#include <cmath>

#include "nearly/index.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

void PQ4Table::set(const float* tab, size_t M, size_t scaled_from, int table_scale) {
    npairs = (M + 1) / 2;
    tail = PQ4Tail{};
    const bool scaled = table_scale > 1 && scaled_from < M;
    if (scaled) {
        // The pairs from the one holding table scaled_from on: nibble t of
        // pair p is table 2p + t (the padding table is zero, its multiplier
        // does not matter).
        const size_t first = scaled_from / 2;
        if (npairs - first > 2) throw InvalidArgument("fast-scan: only the last four tables can be scaled");
        if (table_scale > 255) throw InvalidArgument("fast-scan: table scale must be at most 255");
        tail.npairs = npairs - first;
        for (size_t t = 0; t < tail.npairs; t++)
            for (size_t h = 0; h < 2; h++)
                tail.mult[t][h] = 2 * (first + t) + h >= scaled_from ? uint16_t(table_scale) : uint16_t(1);
    }
    bytes.resize(npairs * 32);
    std::fill(bytes.begin() + M * 16, bytes.end(), uint8_t(0));  // odd M: a zero table
    float mins_small[256];
    std::vector<float> mins_big(M > 256 ? M : 0);
    float* mins = M > 256 ? mins_big.data() : mins_small;
    float max_span = 0.f, sum_span = 0.f;
    bias = 0.f;
    for (size_t m = 0; m < M; m++) {
        // Four running lanes: the compiler turns them into one min and one
        // max vector (a plain running min is a serial chain).
        const float* t = tab + m * 16;
        float lo[4] = {t[0], t[1], t[2], t[3]}, hi[4] = {t[0], t[1], t[2], t[3]};
        for (size_t j = 4; j < 16; j += 4)
            for (size_t c = 0; c < 4; c++) {
                lo[c] = std::min(lo[c], t[j + c]);
                hi[c] = std::max(hi[c], t[j + c]);
            }
        const float l = std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3]));
        const float h = std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3]));
        mins[m] = l;
        bias += l;
        // A scaled table's bytes span (h - l) / table_scale; its sums, h - l.
        max_span = std::max(max_span, scaled && m >= scaled_from ? (h - l) / float(table_scale) : h - l);
        sum_span += h - l;
    }
    // Each entry fits a byte; beyond 257 subquantizers (or with scaled
    // tables) the sums must still fit 16 bits.
    scale = max_span > 0.f ? 255.f / max_span : 1.f;
    if (sum_span * scale > 65535.f) scale = 65535.f / sum_span;
    inv_scale = 1.f / scale;
    for (size_t m = 0; m < M; m++) {
        const float lo = mins[m];
        const float f = scaled && m >= scaled_from ? scale / float(table_scale) : scale;
        for (size_t j = 0; j < 16; j++) {
            const float v = (tab[m * 16 + j] - lo) * f + 0.5f;  // >= 0.5: truncation rounds
            bytes[m * 16 + j] = uint8_t(int32_t(v < 255.f ? v : 255.f));
        }
    }
    pack();
}

void PQ4Table::set_exact(const uint8_t* entries, size_t M) {
    npairs = (M + 1) / 2;
    tail = PQ4Tail{};
    bytes.assign(npairs * 32, 0);
    std::copy(entries, entries + M * 16, bytes.begin());
    bias = 0.f;
    scale = inv_scale = 1.f;
    pack();
}

void PQ4Table::pack() {
    packed_.resize(npairs * 64 + 63);
    packed_offset_ = (64 - reinterpret_cast<uintptr_t>(packed_.data()) % 64) % 64;
    simd().pq4_pack_lut(bytes.data(), npairs, tail.npairs, packed_.data() + packed_offset_);
}

void pq4_query_tables(const ProductQuantizer& pq, const float* x, size_t nx, bool inner_product, PQ4Table* out) {
    constexpr size_t kGroup = 4;
    const size_t ts = pq.M * pq.ksub;
    std::vector<float> tabs(kGroup * ts);
    for (size_t q0 = 0; q0 < nx; q0 += kGroup) {
        const size_t m = std::min(kGroup, nx - q0);
        pq.compute_tables(x + q0 * pq.d, m, inner_product, tabs.data());
        if (inner_product)
            for (size_t i = 0; i < m * ts; i++) tabs[i] = -tabs[i];
        for (size_t i = 0; i < m; i++) out[q0 + i].set(tabs.data() + i * ts, pq.M);
    }
}

void pq4_take_results(TopKReservoir& found, size_t k, bool sorted, MetricType metric, float* D, idx_t* I) {
    if (sorted)
        found.take_sorted(D, I);
    else
        found.take_best(D, I);
    const float pad = missing_distance(metric);
    const bool ip = metric == METRIC_INNER_PRODUCT;
    for (size_t j = 0; j < k; j++) D[j] = I[j] < 0 ? pad : (ip ? -D[j] : D[j]);
}

uint16_t PQ4Table::threshold(float thr) const {
    if (!(thr < INFINITY)) return 65535;
    const double v = (double(thr) - double(bias)) * double(scale);
    if (v < 0) return 0;
    if (v >= 65534.0) return 65535;
    return uint16_t(v) + 1;
}

void pq4_search_codes(const uint8_t* codes, size_t nb, size_t nq, const PQ4Table* tables, const float* offsets,
                      size_t k, const IDSelector* sel, MetricType metric, bool sorted, float* D, idx_t* I) {
    // Stretches that stay in cache while all the queries scan them.
    constexpr size_t kCodeBlock = 4096;  // a multiple of the fast-scan block
    std::vector<TopKReservoir> found(nq);
    std::vector<const PQ4Table*> tabs(nq);
    std::vector<TopKReservoir*> outs(nq);
    for (size_t i = 0; i < nq; i++) {
        found[i].reset(k);
        tabs[i] = &tables[i];
        outs[i] = &found[i];
    }
    const size_t code_size = nq ? tables[0].npairs : 0;
    for (size_t j0 = 0; j0 < nb && nq; j0 += kCodeBlock) {
        const size_t m = std::min(kCodeBlock, nb - j0);
        pq4_scan_queries(codes + j0 * code_size, m, nq, tabs.data(), offsets, nullptr, idx_t(j0), sel, outs.data());
    }
    for (size_t i = 0; i < nq; i++) pq4_take_results(found[i], k, sorted, metric, D + i * k, I + i * k);
}

void pq4_scan_queries(const uint8_t* codes, size_t n, size_t nq, const PQ4Table* const* tables,
                      const float* offsets, const idx_t* ids, idx_t id0, const IDSelector* sel,
                      TopKReservoir* const* outs) {
    const auto scan_block = simd().pq4_scan_block;
    const size_t np = tables[0]->npairs, block_bytes = np * kPQ4Block;
    constexpr size_t kMaxQ = 16;
    const uint8_t* packed[kMaxQ];
    uint16_t thr[kMaxQ];
    uint32_t masks[kMaxQ];
    alignas(64) uint16_t sums[kMaxQ * kPQ4Block];
    for (size_t q0 = 0; q0 < nq; q0 += kMaxQ) {
        const size_t m = std::min(kMaxQ, nq - q0);
        for (size_t q = 0; q < m; q++) packed[q] = tables[q0 + q]->packed();
        for (size_t j0 = 0; j0 < n; j0 += kPQ4Block) {
            for (size_t q = 0; q < m; q++) thr[q] = tables[q0 + q]->threshold(outs[q0 + q]->threshold - offsets[q0 + q]);
            scan_block(codes + j0 / kPQ4Block * block_bytes, np, packed, m, thr, sums, masks, tables[0]->tail);
            const uint32_t valid = n - j0 < kPQ4Block ? (uint32_t(1) << (n - j0)) - 1 : ~uint32_t(0);
            for (size_t q = 0; q < m; q++) {
                uint32_t mask = masks[q] & valid;
                const PQ4Table& table = *tables[q0 + q];
                TopKReservoir& out = *outs[q0 + q];
                while (mask) {
                    const size_t i = size_t(__builtin_ctz(mask));
                    mask &= mask - 1;
                    const float s = offsets[q0 + q] + table.score(sums[q * kPQ4Block + i]);
                    if (s > out.threshold) continue;
                    const idx_t label = ids ? ids[j0 + i] : id0 + idx_t(j0 + i);
                    if (sel && !sel->is_member(label)) continue;
                    out.add(s, label);
                }
            }
        }
    }
}

void pq4_scan(const uint8_t* codes, size_t n, const PQ4Table& table, float offset, const idx_t* ids, idx_t id0,
              const IDSelector* sel, TopKReservoir& out) {
    const PQ4Table* t = &table;
    TopKReservoir* o = &out;
    pq4_scan_queries(codes, n, 1, &t, &offset, ids, id0, sel, &o);
}

void pq4_scores(const uint8_t* codes, size_t n, const PQ4Table& table, float offset, float* out) {
    const auto scan_block = simd().pq4_scan_block;
    const size_t np = table.npairs, block_bytes = np * kPQ4Block;
    const uint8_t* packed = table.packed();
    const uint16_t thr = 65535;
    uint32_t mask;
    alignas(64) uint16_t sums[kPQ4Block];
    for (size_t j0 = 0; j0 < n; j0 += kPQ4Block) {
        scan_block(codes + j0 / kPQ4Block * block_bytes, np, &packed, 1, &thr, sums, &mask, table.tail);
        for (size_t i = 0; i < std::min(kPQ4Block, n - j0); i++) out[j0 + i] = offset + table.score(sums[i]);
    }
}

}  // namespace nearly
