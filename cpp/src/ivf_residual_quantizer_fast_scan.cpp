#include "nearly/ivf_residual_quantizer_fast_scan.h"

#include <algorithm>
#include <cmath>

#include "nearly/index_residual_quantizer_fast_scan.h"
#include "nearly/io.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/residual_quantizer.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {

// One query's quantized table of <q, codeword> serves every list. Lower is
// better inside: L2 is ||q||^2 - 2 <q, c> - 2 <q, r> + ||c + r||^2 (c = 0
// without residuals), inner product negated (-<q, c> - <q, r>).
struct IVFRQFastScanScanner : InvertedListScanner {
    const IndexIVFResidualQuantizer& ix;
    const ResidualQuantizer& rq;
    const bool ip, residual;
    const int scale;
    const size_t d, ts, Mfs;
    std::vector<float> qlut, tab;
    float qnorm = 0.f, offset = 0.f;
    PQ4Table table;
    TopKReservoir found;  // the current query's candidates

    IVFRQFastScanScanner(const IndexIVFResidualQuantizer& ix, size_t Mfs, int scale)
        : ix(ix), rq(ix.rq), ip(ix.metric_type == METRIC_INNER_PRODUCT), residual(ix.by_residual), scale(scale),
          d(size_t(ix.d)), ts(ix.rq.total_codebook_size), Mfs(Mfs), qlut(ts), tab(Mfs * 16) {}

    void set_query(const float* x) override {
        rq.compute_lut(x, qlut.data());
        qnorm = simd().inner_product(x, x, d);
        found.n = 0;
        found.threshold = INFINITY;
        offset = ip ? 0.f : qnorm;
        aq_fast_scan_table(rq, qlut.data(), !ip, scale, tab.data(), table);
    }
    void set_list(size_t list_no, float coarse_dis) override {
        if (!residual) return;
        // inner product: -<q, c>; L2: ||q||^2 - 2 <q, c> = ||q - c||^2 - ||c||^2
        // (the code's norm is ||c + r||^2).
        offset = ip ? -coarse_dis : coarse_dis - ix.centroid_norm(list_no);
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

// implem 1 for L2 on residuals: the float tables of the whole vector, with
// the same per-list term as the quantized scan, over gathered codes.
struct WholeNormExactScanner : InvertedListScanner {
    const IndexIVFResidualQuantizer& ix;
    RQScanner scan;
    CodeLayout layout;
    mutable std::vector<uint8_t> gathered;
    float qnorm = 0.f, bias = 0.f;

    WholeNormExactScanner(const IndexIVFResidualQuantizer& ix)
        : ix(ix), scan(ix.rq, METRIC_L2), layout(pq4_layout(ix.code_size)) {}
    void set_query(const float* x) override {
        scan.set_query(x);  // ||q||^2 + stored norm - 2 <q, r>
        qnorm = simd().inner_product(x, x, size_t(ix.d));
    }
    void set_list(size_t list_no, float coarse_dis) override {
        bias = coarse_dis - qnorm - ix.centroid_norm(list_no);  // -2 <q, c>
    }
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        gathered.resize(n * layout.code_size);
        layout.gather(codes, 0, n, gathered.data());
        scan.scores(gathered.data(), n, out);
        for (size_t j = 0; j < n; j++) out[j] += bias;
    }
};

}  // namespace

IndexIVFResidualQuantizerFastScan::IndexIVFResidualQuantizerFastScan(IndexPtr quantizer_, int d, size_t nlist_,
                                                                     size_t M, size_t nbits, MetricType metric,
                                                                     ResidualQuantizer::SearchType search_type)
    : IndexIVFResidualQuantizer(std::move(quantizer_), d, nlist_, M, nbits, metric, search_type) {
    rq.check_fast_scan(metric);
    code_block = bbs;
    by_residual = false;
}

IndexIVFResidualQuantizerFastScan::IndexIVFResidualQuantizerFastScan(const IndexIVFResidualQuantizer& orig)
    : IndexIVFResidualQuantizerFastScan(orig.quantizer, orig.d, orig.nlist, orig.rq.M, orig.rq.one_nbits(),
                                        orig.metric_type, orig.rq.search_type) {
    if (metric_type == METRIC_L2 && orig.by_residual)
        throw NotSupported("IndexIVFAdditiveQuantizerFastScan: an L2 index converts only when it codes the vectors "
                           "themselves (by_residual = False), as faiss: a residual code's norm is the residual's, "
                           "a fast-scan code's the whole vector's");
    copy_from(orig);
}

std::unique_ptr<InvertedListScanner> IndexIVFResidualQuantizerFastScan::get_scanner() const {
    if (fast_scan_exact(implem, true)) {
        if (norm_includes_centroid()) return std::make_unique<WholeNormExactScanner>(*this);
        return std::make_unique<GatheringScanner>(IndexIVFResidualQuantizer::get_scanner(), code_size);
    }
    return std::make_unique<IVFRQFastScanScanner>(*this, fast_scan_M(), table_scale());
}

bool IndexIVFResidualQuantizerFastScan::search_assigned(idx_t n, const float* x, idx_t k, size_t np,
                                                        const idx_t* coarse, const float* coarse_dis,
                                                        const IDSelector* sel, float* D, idx_t* I, bool sorted) const {
    if (fast_scan_exact(implem, true)) return false;
    // Residual codes take <q, c> from the coarse scores, which must be in
    // the index's metric: otherwise the scanner's way.
    if (by_residual && quantizer->metric_type != metric_type) return false;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const size_t dd = d, Mfs = fast_scan_M();
    const int scale = table_scale();
    std::vector<float> qnorms(static_cast<size_t>(n));
    // The offsets are IVFRQFastScanScanner's (set_query, set_list).
    return search_grouped(
        n, k, np, coarse, sel, D, I, sorted, (Mfs + 1) / 2 * 64,
        [&](size_t q0, size_t m, PQ4Table* tables) {
            std::vector<float> lut(rq.total_codebook_size), tab(Mfs * 16);
            for (size_t i = 0; i < m; i++) {
                const float* xi = x + (q0 + i) * dd;
                rq.compute_lut(xi, lut.data());
                qnorms[q0 + i] = simd().inner_product(xi, xi, dd);
                aq_fast_scan_table(rq, lut.data(), !ip, scale, tab.data(), tables[i]);
            }
        },
        [&](size_t j) {
            if (!by_residual) return ip ? 0.f : qnorms[j / np];
            return ip ? -coarse_dis[j] : coarse_dis[j] - centroid_norm(size_t(coarse[j]));
        });
}

void IndexIVFResidualQuantizerFastScan::train_encoder(idx_t n, const float* x, const idx_t* assign) {
    IndexIVFResidualQuantizer::train_encoder(n, x, assign);
    if (metric_type != METRIC_L2) return;
    if (!by_residual) {
        norm_scale = estimate_norm_scale(rq, size_t(n), x);
        return;
    }
    // x holds residuals, but a search's tables are those of the whole query:
    // the estimate is made on the training vectors themselves (faiss's, made
    // on the residuals, divides by the zero tables of a residual that is its
    // centroid and comes out as INT_MIN).
    std::vector<float> whole(size_t(n) * size_t(d));
    centroids_of(size_t(n), assign, whole.data());
    for (size_t i = 0; i < whole.size(); i++) whole[i] += x[i];
    norm_scale = estimate_norm_scale(rq, size_t(n), whole.data());
}

void IndexIVFResidualQuantizerFastScan::write_body(Writer& w) const {
    IndexIVFResidualQuantizer::write_body(w);
    w.pod<uint8_t>(rescale_norm);
    w.pod<int32_t>(norm_scale);
}

std::unique_ptr<IndexIVFResidualQuantizerFastScan> IndexIVFResidualQuantizerFastScan::read_body(Reader& r) {
    auto index = read_with(r, "IVFResidualQuantizerFastScan", [](const Header& h, const ResidualQuantizer& q) {
        return std::make_unique<IndexIVFResidualQuantizerFastScan>(h.quantizer, h.d, h.nlist, q.M, q.one_nbits(), h.metric,
                                                                   q.search_type);
    });
    std::unique_ptr<IndexIVFResidualQuantizerFastScan> out(
        static_cast<IndexIVFResidualQuantizerFastScan*>(index.release()));
    read_norm_scale(r, out->rescale_norm, out->norm_scale, "IVFResidualQuantizerFastScan");
    return out;
}

}  // namespace nearly
