#include "nearly/index_residual_quantizer_fast_scan.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/random.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
// A task takes this many queries, which walk the codes together
// (pq4_search_codes), as IndexPQFastScan's do.
constexpr size_t kQueriesPerTask = 8;

// The widest span (max - min) of tables [m0, m1) of 16 entries.
float widest_span(const float* tab, size_t m0, size_t m1) {
    float widest = 0.f;
    for (size_t m = m0; m < m1; m++) {
        const auto [lo, hi] = std::minmax_element(tab + m * 16, tab + m * 16 + 16);
        widest = std::max(widest, *hi - *lo);
    }
    return widest;
}
}  // namespace

namespace {
// The float tables of a query, lower is better: -2 x lut and the norm's two
// tables under L2, -lut for inner product.
void float_tables(const ResidualQuantizer& rq, const float* lut, bool l2, float* tab) {
    const size_t ts = rq.M * 16;
    const float f = l2 ? -2.f : -1.f;
    for (size_t j = 0; j < ts; j++) tab[j] = f * lut[j];
    if (l2) std::copy(rq.norm_centroids.begin(), rq.norm_centroids.end(), tab + ts);
}
}  // namespace

void aq_fast_scan_table(const ResidualQuantizer& rq, const float* lut, bool l2, int norm_scale, float* tab,
                        PQ4Table& out) {
    float_tables(rq, lut, l2, tab);
    if (l2)
        out.set(tab, rq.M + 2, rq.M, norm_scale);
    else
        out.set(tab, rq.M);
}

int estimate_norm_scale(const ResidualQuantizer& rq, size_t n, const float* x) {
    constexpr size_t kMaxSample = 65536;  // faiss's sample, drawn with its seed
    std::vector<int> perm;
    if (n > kMaxSample) {
        perm.resize(n);
        rand_perm(perm.data(), n, 0x980903);
    }
    const size_t ns = std::min(n, kMaxSample), M = rq.M, d = rq.d;
    // A query whose tables are all flat (the zero vector) has no ratio.
    std::vector<double> ratio(ns, -1.0);
    parallel_for((ns + 63) / 64, [&](size_t t) {
        std::vector<float> lut(M * 16), tab((M + 2) * 16);
        for (size_t i = t * 64; i < std::min(ns, t * 64 + 64); i++) {
            rq.compute_lut(x + (perm.empty() ? i : size_t(perm[i])) * d, lut.data());
            float_tables(rq, lut.data(), true, tab.data());
            const double ip = widest_span(tab.data(), 0, M);
            if (ip > 0) ratio[i] = double(widest_span(tab.data(), M, M + 2)) / ip;
        }
    });
    double sum = 0.0;
    size_t counted = 0;
    for (double r : ratio)
        if (r >= 0) sum += r, counted++;
    const double mean = counted ? sum / double(counted) : 1.0;
    return int(std::lround(std::min(std::max(mean, 1.0), 255.0)));
}

IndexResidualQuantizerFastScan::IndexResidualQuantizerFastScan(int d, size_t M, size_t nbits, MetricType metric,
                                                               ResidualQuantizer::SearchType search_type)
    : IndexResidualQuantizer(d, M, nbits, metric, search_type) {
    rq.check_fast_scan(metric);
    code_block_ = bbs;
}

IndexResidualQuantizerFastScan::IndexResidualQuantizerFastScan(const IndexResidualQuantizer& orig)
    : IndexResidualQuantizerFastScan(orig.d, orig.rq.M, orig.rq.one_nbits(), orig.metric_type, orig.rq.search_type) {
    copy_from(orig);
}

void IndexResidualQuantizerFastScan::train(idx_t n, const float* x) {
    IndexResidualQuantizer::train(n, x);
    if (metric_type == METRIC_L2) norm_scale = estimate_norm_scale(rq, size_t(n), x);
}

void IndexResidualQuantizerFastScan::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                            const SearchParameters* params) const {
    if (fast_scan_exact(implem, false)) return IndexResidualQuantizer::search(n, x, k, D, I, params);
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, kk = k, nb = size_t(ntotal), M = rq.M, Mfs = fast_scan_M(), K = rq.K();
    const bool l2 = metric_type == METRIC_L2;
    const int scale = table_scale();
    const SimdKernels& S = simd();
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, nq = std::min(size_t(n), q0 + kQueriesPerTask) - q0;
        std::vector<PQ4Table> tables(nq);
        std::vector<float> offsets(nq, 0.f), luts(nq * M * K), tab(Mfs * K);
        // The task's tables <q, codeword> in one matrix product.
        gemm_ip(x + q0 * dd, nq, rq.codebooks.data(), M * K, dd, luts.data());
        for (size_t i = 0; i < nq; i++) {
            // Lower is better: L2 is ||q||^2 - 2 <q, x_hat> + ||x_hat||^2,
            // inner product negated.
            const float* q = x + (q0 + i) * dd;
            aq_fast_scan_table(rq, luts.data() + i * M * K, l2, scale, tab.data(), tables[i]);
            if (l2) offsets[i] = S.inner_product(q, q, dd);
        }
        pq4_search_codes(codes_.data(), nb, nq, tables.data(), offsets.data(), kk, sel, metric_type, true,
                         D + q0 * kk, I + q0 * kk);
        poll();
    });
}

void IndexResidualQuantizerFastScan::write_body(Writer& w) const {
    IndexResidualQuantizer::write_body(w);
    w.pod<uint8_t>(rescale_norm);
    w.pod<int32_t>(norm_scale);
}

void read_norm_scale(Reader& r, bool& rescale_norm, int& norm_scale, const char* what) {
    if (r.version() < 6) return;  // written before norm_scale: the tables alike
    const uint8_t rescale = r.pod<uint8_t>();
    const int32_t scale = r.pod<int32_t>();
    r.check(rescale <= 1 && scale >= 1 && scale <= 255, (std::string("bad ") + what + " norm_scale").c_str());
    rescale_norm = rescale;
    norm_scale = scale;
}

std::unique_ptr<IndexResidualQuantizerFastScan> IndexResidualQuantizerFastScan::read_body(Reader& r) {
    auto index = read_with(r, "ResidualQuantizerFastScan", [](int d, MetricType metric, const ResidualQuantizer& q) {
        return std::make_unique<IndexResidualQuantizerFastScan>(d, q.M, q.one_nbits(), metric, q.search_type);
    });
    std::unique_ptr<IndexResidualQuantizerFastScan> out(static_cast<IndexResidualQuantizerFastScan*>(index.release()));
    read_norm_scale(r, out->rescale_norm, out->norm_scale, "ResidualQuantizerFastScan");
    return out;
}

}  // namespace nearly
