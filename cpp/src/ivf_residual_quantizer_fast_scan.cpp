#include "nearly/ivf_residual_quantizer_fast_scan.h"

#include <algorithm>
#include <cmath>

#include "nearly/pq_fast_scan.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// One query's quantized table: built once per query, or per list for L2 on
// residuals. Lower is better inside: L2 is ||q'||^2 - 2 <q', r> + ||r||^2
// (q' = q, or q - c on residuals), inner product negated (-<q, c> - <q, r>).
struct IVFRQFastScanScanner : InvertedListScanner {
    const IndexIVFResidualQuantizer& ix;
    const ResidualQuantizer& rq;
    const bool ip, residual;
    const size_t d, ts, Mfs;
    std::vector<float> qlut, tab, cbuf;
    const float* q = nullptr;
    float qnorm = 0.f, offset = 0.f;
    PQ4Table table;
    TopKReservoir found;  // the current query's candidates

    IVFRQFastScanScanner(const IndexIVFResidualQuantizer& ix, size_t Mfs)
        : ix(ix), rq(ix.rq), ip(ix.metric_type == METRIC_INNER_PRODUCT), residual(ix.by_residual),
          d(size_t(ix.d)), ts(ix.rq.M * ix.rq.K()), Mfs(Mfs), qlut(ts), tab(Mfs * 16) {}

    // The table of <q', codeword> = qlut - clut (clut null: q' = q).
    void make_table(const float* clut) {
        const float f = ip ? -1.f : -2.f;
        for (size_t j = 0; j < ts; j++) tab[j] = f * (clut ? qlut[j] - clut[j] : qlut[j]);
        if (!ip) std::copy(rq.norm_centroids.begin(), rq.norm_centroids.end(), tab.begin() + ts);
        table.set(tab.data(), Mfs);
    }
    void set_query(const float* x) override {
        q = x;
        rq.compute_lut(x, qlut.data());
        qnorm = simd().inner_product(x, x, d);
        found.n = 0;
        found.threshold = INFINITY;
        offset = ip ? 0.f : qnorm;
        if (ip || !residual) make_table(nullptr);
    }
    void set_list(size_t list_no, float coarse_dis) override {
        if (!residual) return;
        if (ip) {
            offset = -coarse_dis;
            return;
        }
        make_table(ix.list_table(list_no, cbuf));
        offset = coarse_dis;  // ||q - c||^2
    }
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        pq4_scores(codes, n, table, offset, out);
        if (ip)
            for (size_t j = 0; j < n; j++) out[j] = -out[j];
    }
    void scan_codes(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool labels_are_ids,
                    bool, const IDSelector* sel, float* D, idx_t* I, size_t k) override {
        if (!labels_are_ids && sel) {
            // Positions as labels, ids for the selector: the generic path.
            InvertedListScanner::scan_codes(size, codes, code_size, ids, false, ip, sel, D, I, k);
            return;
        }
        if (found.k != k) found.reset(k);
        pq4_scan(codes, size, table, offset, labels_are_ids ? ids : nullptr, 0, sel, found);
    }
    void finish_query(float* D, idx_t* I, size_t k) override {
        if (found.k == k) found.to_heap(D, I);
        found.reset(k);
    }
};

// implem 1: IndexIVFResidualQuantizer's float-table scanner over the
// block-laid codes, each stretch gathered into the contiguous form first.
struct GatheringScanner : InvertedListScanner {
    std::unique_ptr<InvertedListScanner> inner;
    CodeLayout layout;
    mutable std::vector<uint8_t> gathered;

    GatheringScanner(std::unique_ptr<InvertedListScanner> inner, size_t code_size)
        : inner(std::move(inner)), layout(pq4_layout(code_size)) {}
    void set_query(const float* x) override { inner->set_query(x); }
    void set_list(size_t list_no, float coarse_dis) override { inner->set_list(list_no, coarse_dis); }
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        gathered.resize(n * layout.code_size);
        layout.gather(codes, 0, n, gathered.data());
        inner->distances(n, gathered.data(), out);
    }
};

void check_fast_scan_quantizer(const ResidualQuantizer& rq, MetricType metric) {
    if (rq.nbits != 4) throw NotSupported("Error: 'nbits == 4' failed: fast-scan codebooks have 4 bits");
    if (metric == METRIC_INNER_PRODUCT) {
        NEARLY_CHECK_ARG(rq.search_type == ResidualQuantizer::ST_LUT_nonorm,
                         "Search type must be ST_LUT_nonorm for IP metric");
    } else {
        NEARLY_CHECK_ARG(metric == METRIC_L2, "IndexIVFResidualQuantizerFastScan: L2 or inner product only");
        NEARLY_CHECK_ARG(rq.search_type == ResidualQuantizer::ST_norm_rq2x4,
                         "Search type must be lsq2x4 or rq2x4 for L2 metric (nearly has rq2x4)");
    }
}
}  // namespace

IndexIVFResidualQuantizerFastScan::IndexIVFResidualQuantizerFastScan(IndexPtr quantizer_, int d, size_t nlist_,
                                                                     size_t M, size_t nbits, MetricType metric,
                                                                     ResidualQuantizer::SearchType search_type)
    : IndexIVFResidualQuantizer(std::move(quantizer_), d, nlist_, M, nbits, metric, search_type) {
    check_fast_scan_quantizer(rq, metric);
    code_block = bbs;
    by_residual = false;
}

std::unique_ptr<InvertedListScanner> IndexIVFResidualQuantizerFastScan::get_scanner() const {
    if (fast_scan_exact(implem, true))
        return std::make_unique<GatheringScanner>(IndexIVFResidualQuantizer::get_scanner(), code_size);
    return std::make_unique<IVFRQFastScanScanner>(*this, fast_scan_M());
}

std::unique_ptr<IndexIVFResidualQuantizerFastScan> IndexIVFResidualQuantizerFastScan::read_body(Reader& r) {
    auto index = read_with(r, "IVFResidualQuantizerFastScan", [](const Header& h, const ResidualQuantizer& q) {
        return std::make_unique<IndexIVFResidualQuantizerFastScan>(h.quantizer, h.d, h.nlist, q.M, q.nbits, h.metric,
                                                                   q.search_type);
    });
    return std::unique_ptr<IndexIVFResidualQuantizerFastScan>(
        static_cast<IndexIVFResidualQuantizerFastScan*>(index.release()));
}

}  // namespace nearly
