#include "nearly/ivfpq_fast_scan.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"

namespace nearly {

namespace {

// The IVFPQ scanner's float table, quantized to bytes whenever it changes:
// once per query when it does not depend on the list (no residual, or inner
// product, whose list term is the offset dis0), once per list otherwise.
struct IVFPQFastScanScanner : IVFPQScanner {
    PQ4Table table;
    TopKReservoir found;  // the current query's candidates
    const float* quantized = nullptr;  // the float table `table` was made from
    std::vector<float> negated;

    // sync() quantizes the list's table in set_list: it is built there.
    explicit IVFPQFastScanScanner(const IndexIVFPQ& ix) : IVFPQScanner(ix) { lazy_table = false; }

    // Lower is better inside: inner products are negated.
    void sync() {
        if (tab == quantized && !(residual && !ip)) return;
        if (ip) {
            negated.resize(pq.M * pq.ksub);
            for (size_t i = 0; i < negated.size(); i++) negated[i] = -tab[i];
            table.set(negated.data(), pq.M);
        } else {
            table.set(tab, pq.M);
        }
        quantized = tab;
    }
    void set_query(const float* x) override {
        IVFPQScanner::set_query(x);
        found.n = 0;
        found.threshold = INFINITY;
        quantized = nullptr;
        if (!residual || ip) sync();
    }
    void set_list(size_t list_no, float coarse_dis) override {
        IVFPQScanner::set_list(list_no, coarse_dis);
        if (residual && !ip) {
            quantized = nullptr;
            sync();
        }
    }
    float offset() const { return ip ? -dis0 : dis0; }

    void distances(size_t n, const uint8_t* codes, float* out) const override {
        pq4_scores(codes, n, table, 0.f, out);
        for (size_t j = 0; j < n; j++) out[j] = ip ? dis0 - out[j] : dis0 + out[j];
    }
    void scan_codes(size_t size, const uint8_t* codes, size_t, const idx_t* ids, bool labels_are_ids, bool,
                    const IDSelector* sel, float* D, idx_t* I, size_t k) override {
        if (!labels_are_ids && sel) {
            // Positions as labels, ids for the selector: the generic path.
            InvertedListScanner::scan_codes(size, codes, pq.code_size, ids, false, ip, sel, D, I, k);
            return;
        }
        if (found.k != k) found.reset(k);
        pq4_scan(codes, size, table, offset(), labels_are_ids ? ids : nullptr, 0, sel, found);
    }
    void finish_query(float* D, idx_t* I, size_t k) override {
        if (found.k == k) found.to_heap(D, I);
        found.reset(k);
    }
};

// implem 1: the float tables of IndexIVFPQ over the block-laid codes, each
// stretch gathered into the contiguous form first (the generic scan hands
// stretches that start on a block).
struct IVFPQFastScanExactScanner : IVFPQScanner {
    mutable std::vector<uint8_t> gathered;
    using IVFPQScanner::IVFPQScanner;

    void distances(size_t n, const uint8_t* codes, float* out) const override {
        gathered.resize(n * pq.code_size);
        pq4_layout(pq.code_size).gather(codes, 0, n, gathered.data());
        IVFPQScanner::distances(n, gathered.data(), out);
    }
};
}  // namespace

IndexIVFPQFastScan::IndexIVFPQFastScan(IndexPtr quantizer_, int d, size_t nlist_, size_t M, size_t nbits,
                                       MetricType metric)
    : IndexIVFPQ(std::move(quantizer_), d, nlist_, M, nbits, metric, 4) {
    code_block = bbs;
    by_residual = false;
}

IndexIVFPQFastScan::IndexIVFPQFastScan(const IndexIVFPQ& orig)
    : IndexIVFPQFastScan(orig.quantizer, orig.d, orig.nlist, orig.pq.M, orig.pq.nbits, orig.metric_type) {
    copy_from(orig);
}

std::unique_ptr<InvertedListScanner> IndexIVFPQFastScan::get_scanner() const {
    if (fast_scan_exact(implem, true)) return std::make_unique<IVFPQFastScanExactScanner>(*this);
    return std::make_unique<IVFPQFastScanScanner>(*this);
}

bool IndexIVFPQFastScan::search_assigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                                         const float* coarse_dis, const IDSelector* sel, float* D, idx_t* I,
                                         bool sorted) const {
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    // L2 on residuals has a table per (query, list): nothing to share.
    if ((by_residual && !ip) || fast_scan_exact(implem, true)) return false;
    // Inner product on residuals takes <q, c> from the coarse scores: a
    // quantizer that ranks by L2 scores distances, the scanner computes it.
    if (by_residual && quantizer->metric_type != METRIC_INNER_PRODUCT) return false;
    const size_t dd = d;
    return search_grouped(
        n, k, np, coarse, sel, D, I, sorted, (pq.M + 1) / 2 * 64,
        [&](size_t q0, size_t m, PQ4Table* tables) { pq4_query_tables(pq, x + q0 * dd, m, ip, tables); },
        // Inner product on residuals: score = -<q, c> - <q, r>.
        [&](size_t j) { return by_residual ? -coarse_dis[j] : 0.f; });
}

void IndexIVFPQFastScan::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.pod<uint64_t>(pq.M);
    w.pod<uint8_t>(by_residual);
    w.pod<int32_t>(use_precomputed_table);
    w.pod<uint8_t>(pq_trained_);
    w.vec(pq.centroids);
    write_lists(w, 1);
}

std::unique_ptr<IndexIVFPQFastScan> IndexIVFPQFastScan::read_body(Reader& r) {
    Header h = read_header(r, "IVFPQFastScan");
    const uint64_t M = r.pod<uint64_t>();
    const uint8_t by_residual = r.pod<uint8_t>();
    const int32_t upt = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(M > 0 && M <= uint64_t(h.d) && h.d % M == 0 && by_residual <= 1 && upt >= -1 && upt <= 2 && trained <= 1,
            "bad IVFPQFastScan header");
    auto index = std::make_unique<IndexIVFPQFastScan>(h.quantizer, h.d, h.nlist, size_t(M), 4, h.metric);
    index->nprobe = h.nprobe;
    index->by_residual = by_residual;
    index->use_precomputed_table = upt;
    std::vector<float> centroids = r.vec<float>();
    r.check(centroids.size() == index->pq.centroids.size(), "IVFPQFastScan centroids do not match d and M");
    index->pq.centroids = std::move(centroids);
    index->pq.sync_transposed_centroids();
    index->pq_trained_ = trained;
    index->read_lists(r, 1, h.ntotal, "IVFPQFastScan");
    if (index->pq_trained_ && upt >= 1) index->precompute_table();
    index->refresh_trained();
    return index;
}

}  // namespace nearly
