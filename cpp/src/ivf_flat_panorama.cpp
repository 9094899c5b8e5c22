#include "nearly/ivf_flat_panorama.h"

#include <mutex>

#include "nearly/io.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// Scans a list batch by batch: the batch's candidates (those the selector
// keeps) go through Panorama's filter against the query's current k-th
// best (range search: the radius), the survivors into the results.
struct PanoramaScanner : InvertedListScanner {
    const Panorama& pano;
    const CodeLayout lay;
    const bool l2;
    Panorama::Query q;
    std::vector<idx_t> rows;
    std::vector<float> scores;
    uint64_t scanned = 0, total = 0;  // level slices, into panorama_stats once (not per batch)

    PanoramaScanner(const Panorama& pano, CodeLayout lay, bool l2) : pano(pano), lay(lay), l2(l2) {}
    ~PanoramaScanner() override { panorama_stats.add(scanned, total); }
    void set_query(const float* x) override { pano.set_query(q, x); }
    void set_list(size_t, float) override {}

    // The candidates of the batch starting at entry b0 (m entries) through
    // the filter; returns how many survive, compacted to the front of rows.
    size_t filter_batch(const uint8_t* codes, size_t b0, size_t m, const idx_t* ids, const IDSelector* sel,
                        float threshold) {
        const size_t B = lay.block, L = pano.n_levels;
        rows.resize(B);
        scores.resize(B);
        size_t n = 0;
        for (size_t r = 0; r < m; r++) {
            rows[n] = idx_t(r);
            n += !sel || sel->is_member(ids[b0 + r]);
        }
        if (n == 0) return 0;
        const uint8_t* batch = codes + lay.offset(b0);
        const float* vecs = reinterpret_cast<const float*>(batch);
        const float* tails = reinterpret_cast<const float*>(batch + B * lay.code_size);
        auto slice = [&](idx_t r, size_t l) {
            return vecs + B * pano.level_begin(l) + size_t(r) * (pano.level_end(l) - pano.level_begin(l));
        };
        auto tail = [&](idx_t r, size_t l) { return l < L ? tails[l * B + size_t(r)] : 0.f; };
        auto norm2 = [&](idx_t r) { return tails[size_t(r)] * tails[size_t(r)]; };
        total += uint64_t(n) * L;
        return pano.filter(q, l2, slice, tail, norm2, rows.data(), n, threshold, scores.data(), &scanned);
    }

    void scan_codes(size_t size, const uint8_t* codes, size_t, const idx_t* ids, bool labels_are_ids, bool,
                    const IDSelector* sel, float* D, idx_t* I, size_t k) override {
        for (size_t b0 = 0; b0 < size; b0 += lay.block) {
            // Strictly below the k-th best, as faiss: a tie is dropped,
            // whatever its id (with all scores equal, nothing past the
            // first batch is read beyond its first level).
            const size_t kept = filter_batch(codes, b0, std::min(lay.block, size - b0), ids, sel, D[0]);
            for (size_t i = 0; i < kept; i++) {
                const size_t j = b0 + size_t(rows[i]);
                if (scores[i] <= D[0]) TopK::push(D, I, k, scores[i], labels_are_ids ? ids[j] : idx_t(j));
            }
        }
    }

    void scan_range(size_t size, const uint8_t* codes, size_t, const idx_t* ids, bool ip, float radius,
                    const IDSelector* sel, std::vector<std::pair<idx_t, float>>& hits) override {
        for (size_t b0 = 0; b0 < size; b0 += lay.block) {
            const size_t kept = filter_batch(codes, b0, std::min(lay.block, size - b0), ids, sel, ip ? -radius : radius);
            for (size_t i = 0; i < kept; i++) hits.emplace_back(ids[b0 + size_t(rows[i])], ip ? -scores[i] : scores[i]);
        }
    }

    // Whole distances (not on the search path): the vectors gathered.
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        const SimdKernels& K = simd();
        std::vector<float> v(n * pano.d);
        lay.gather(codes, 0, n, reinterpret_cast<uint8_t*>(v.data()));
        if (l2)
            K.l2sqr_ny(q.x, v.data(), pano.d, n, out);
        else
            K.inner_products_ny(q.x, v.data(), pano.d, n, out);
    }
};
}  // namespace

IndexIVFFlatPanorama::IndexIVFFlatPanorama(IndexPtr quantizer_, int d, size_t nlist_, size_t n_levels,
                                           MetricType metric, size_t batch_size)
    : IndexIVFFlat(std::move(quantizer_), d, nlist_, metric), pano_(size_t(d), n_levels) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "IndexIVFFlatPanorama: the metric must be L2 or inner product");
    NEARLY_CHECK_ARG(batch_size > 0 && batch_size <= (size_t(1) << 20),
                     "IndexIVFFlatPanorama: batch_size must be in [1, 2^20]");
    code_block = batch_size;
}

std::unique_ptr<InvertedListScanner> IndexIVFFlatPanorama::get_scanner() const {
    return std::make_unique<PanoramaScanner>(pano_, layout(), metric_type == METRIC_L2);
}

// Many queries on one list: its rows gathered once, scored for all of them
// by IndexIVFFlat's matrix products.
void IndexIVFFlatPanorama::scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq,
                                           const float* xq, const float* coarse_dis, size_t k, const IDSelector* sel,
                                           float* dis, idx_t* pos) const {
    std::vector<float> rows(size * size_t(d));
    layout().gather(codes, 0, size, reinterpret_cast<uint8_t*>(rows.data()));
    IndexIVFFlat::scan_list_batch(l, reinterpret_cast<const uint8_t*>(rows.data()), ids, size, nq, xq, coarse_dis, k,
                                  sel, dis, pos);
    const uint64_t slices = uint64_t(nq) * size * pano_.n_levels;
    panorama_stats.add(slices, slices);
}

// As IVFFlat, with the levels and batch size before the lists (which are
// written as stored: batches with their tail norms, so a mapped file is
// searched in place).
void IndexIVFFlatPanorama::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.pod<uint64_t>(pano_.n_levels);
    w.pod<uint64_t>(code_block);
    write_lists(w, sizeof(float));
}

std::unique_ptr<IndexIVFFlatPanorama> IndexIVFFlatPanorama::read_body(Reader& r) {
    Header h = read_header(r, "IVFFlatPanorama");
    const uint64_t n_levels = r.pod<uint64_t>(), batch = r.pod<uint64_t>();
    r.check((h.metric == METRIC_L2 || h.metric == METRIC_INNER_PRODUCT) && n_levels >= 1 &&
                n_levels <= uint64_t(h.d) && batch >= 1 && batch <= (uint64_t(1) << 20),
            "bad IVFFlatPanorama header");
    auto index = std::make_unique<IndexIVFFlatPanorama>(h.quantizer, h.d, h.nlist, size_t(n_levels), h.metric,
                                                        size_t(batch));
    index->nprobe = h.nprobe;
    index->read_lists(r, sizeof(float), h.ntotal, "IVFFlatPanorama");
    return index;
}

}  // namespace nearly
