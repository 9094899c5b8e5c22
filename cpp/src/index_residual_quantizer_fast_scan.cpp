#include "nearly/index_residual_quantizer_fast_scan.h"

#include <algorithm>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// As IndexPQFastScan: a task's queries walk the codes together, a stretch
// of kCodeBlock entries at a time.
constexpr size_t kQueriesPerTask = 8;
constexpr size_t kCodeBlock = 4096;  // a multiple of the fast-scan block

void check_fast_scan_quantizer(const ResidualQuantizer& rq, MetricType metric) {
    if (rq.nbits != 4) throw NotSupported("Error: 'nbits == 4' failed: fast-scan codebooks have 4 bits");
    if (metric == METRIC_INNER_PRODUCT) {
        NEARLY_CHECK_ARG(rq.search_type == ResidualQuantizer::ST_LUT_nonorm,
                         "Search type must be ST_LUT_nonorm for IP metric");
    } else {
        NEARLY_CHECK_ARG(metric == METRIC_L2, "IndexResidualQuantizerFastScan: L2 or inner product only");
        NEARLY_CHECK_ARG(rq.search_type == ResidualQuantizer::ST_norm_rq2x4,
                         "Search type must be lsq2x4 or rq2x4 for L2 metric (nearly has rq2x4)");
    }
}
}  // namespace

IndexResidualQuantizerFastScan::IndexResidualQuantizerFastScan(int d, size_t M, size_t nbits, MetricType metric,
                                                               ResidualQuantizer::SearchType search_type)
    : IndexResidualQuantizer(d, M, nbits, metric, search_type) {
    check_fast_scan_quantizer(rq, metric);
    code_block_ = bbs;
}

IndexResidualQuantizerFastScan::IndexResidualQuantizerFastScan(const IndexResidualQuantizer& orig)
    : IndexResidualQuantizerFastScan(orig.d, orig.rq.M, orig.rq.nbits, orig.metric_type, orig.rq.search_type) {
    copy_from(orig);
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
    const SimdKernels& S = simd();
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, nq = std::min(size_t(n), q0 + kQueriesPerTask) - q0;
        std::vector<PQ4Table> tables(nq);
        std::vector<float> offsets(nq, 0.f), luts(nq * M * K), tab(Mfs * K);
        // The task's tables <q, codeword> in one matrix product.
        gemm_ip(x + q0 * dd, nq, rq.codebooks.data(), M * K, dd, luts.data());
        for (size_t i = 0; i < nq; i++) {
            const float* q = x + (q0 + i) * dd;
            const float* lut = luts.data() + i * M * K;
            // Lower is better: L2 is ||q||^2 - 2 <q, x_hat> + ||x_hat||^2,
            // inner product negated.
            const float f = l2 ? -2.f : -1.f;
            for (size_t j = 0; j < M * K; j++) tab[j] = f * lut[j];
            if (l2) {
                std::copy(rq.norm_centroids.begin(), rq.norm_centroids.end(), tab.begin() + M * K);
                offsets[i] = S.inner_product(q, q, dd);
            }
            tables[i].set(tab.data(), Mfs);
        }
        std::vector<TopKReservoir> found(nq);
        std::vector<const PQ4Table*> tabs(nq);
        std::vector<TopKReservoir*> outs(nq);
        for (size_t i = 0; i < nq; i++) {
            found[i].reset(kk);
            tabs[i] = &tables[i];
            outs[i] = &found[i];
        }
        for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) {
            const size_t m = std::min(kCodeBlock, nb - j0);
            pq4_scan_queries(codes_.data() + j0 * rq.code_size, m, nq, tabs.data(), offsets.data(), nullptr,
                             idx_t(j0), sel, outs.data());
        }
        for (size_t i = 0; i < nq; i++)
            pq4_take_results(found[i], kk, true, metric_type, D + (q0 + i) * kk, I + (q0 + i) * kk);
        poll();
    });
}

std::unique_ptr<IndexResidualQuantizerFastScan> IndexResidualQuantizerFastScan::read_body(Reader& r) {
    auto index = read_with(r, "ResidualQuantizerFastScan", [](int d, MetricType metric, const ResidualQuantizer& q) {
        return std::make_unique<IndexResidualQuantizerFastScan>(d, q.M, q.nbits, metric, q.search_type);
    });
    return std::unique_ptr<IndexResidualQuantizerFastScan>(static_cast<IndexResidualQuantizerFastScan*>(index.release()));
}

}  // namespace nearly
