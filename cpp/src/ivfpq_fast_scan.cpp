#include "nearly/ivfpq_fast_scan.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"

namespace nearly {

namespace {
// Grouping pays once lists are probed by a few queries of a slice on average.
constexpr size_t kMinGroupedPairsPerList = 2;
// Probe ranks are visited in rounds: [0, 1), [1, 4), [4, nprobe).
constexpr size_t kRounds = 3;
inline size_t round_of(size_t rank) { return rank < 1 ? 0 : (rank < 4 ? 1 : 2); }

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
    const size_t npairs = (pq.M + 1) / 2, table_bytes = npairs * 64;
    // Slices: their tables fit in half of a 2 MB L2, and every thread gets
    // as many.
    const size_t threads = size_t(std::max(1, get_num_threads()));
    const size_t max_slice = std::max<size_t>(1, (size_t(1) << 20) / table_bytes);
    const size_t waves = (size_t(n) + threads * max_slice - 1) / (threads * max_slice);
    const size_t slice = (size_t(n) + threads * waves - 1) / (threads * waves);
    // Too few queries per list to share the loads: one query after the other.
    if (slice * np < kMinGroupedPairsPerList * nlist) return false;

    const size_t dd = d, kk = k, nslices = (size_t(n) + slice - 1) / slice;
    InterruptPoll poll;
    parallel_for(nslices, [&](size_t s) {
        const size_t q0 = s * slice, m = std::min(slice, size_t(n) - q0);
        std::vector<PQ4Table> tables(m);
        pq4_query_tables(pq, x + q0 * dd, m, ip, tables.data());
        std::vector<TopKReservoir> found(m);
        for (auto& f : found) f.reset(kk);
        // The slice's (query, probe) pairs bucketed by (round, list): each
        // query's nearest lists come in the first rounds, so its threshold is
        // tight before the bulk of its lists is scanned.
        const size_t nb = kRounds * nlist;
        auto bucket = [&](size_t j) { return round_of(j % np) * nlist + size_t(coarse[j]); };
        std::vector<uint32_t> start(nb + 1, 0);
        for (size_t j = q0 * np; j < (q0 + m) * np; j++)
            if (coarse[j] >= 0) start[bucket(j) + 1]++;
        for (size_t b = 0; b < nb; b++) start[b + 1] += start[b];
        std::vector<uint32_t> pairs(start[nb]), fill(start.begin(), start.end() - 1);
        for (size_t j = q0 * np; j < (q0 + m) * np; j++)
            if (coarse[j] >= 0) pairs[fill[bucket(j)]++] = uint32_t(j - q0 * np);

        std::vector<const PQ4Table*> tabs;
        std::vector<TopKReservoir*> outs;
        std::vector<float> offsets;
        size_t next = 0;
        auto advance = [&](size_t b) {
            while (b < nb && (start[b + 1] == start[b] || list_at(b % nlist).ids.empty())) b++;
            return b;
        };
        for (size_t b = advance(0); b < nb; b = next) {
            next = advance(b + 1);
            const InvertedLists::List& list = list_at(b % nlist);
            // The next list's codes start coming from memory while this one
            // is scanned.
            if (next < nb) {
                const InvertedLists::List& nl = list_at(next % nlist);
                for (size_t o = 0; o < std::min<size_t>(nl.codes.size(), 16384); o += 64)
                    __builtin_prefetch(nl.codes.data() + o);
            }
            tabs.clear();
            outs.clear();
            offsets.clear();
            for (uint32_t j = start[b]; j < start[b + 1]; j++) {
                const size_t i = pairs[j] / np;
                tabs.push_back(&tables[i]);
                outs.push_back(&found[i]);
                // Inner product on residuals: score = -<q, c> - <q, r>.
                offsets.push_back(by_residual ? -coarse_dis[q0 * np + pairs[j]] : 0.f);
            }
            pq4_scan_queries(list.codes.data(), list.ids.size(), tabs.size(), tabs.data(), offsets.data(),
                             list.ids.data(), 0, sel, outs.data());
        }
        for (size_t i = 0; i < m; i++)
            pq4_take_results(found[i], kk, sorted, metric_type, D + (q0 + i) * kk, I + (q0 + i) * kk);
        poll();
    });
    return true;
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
