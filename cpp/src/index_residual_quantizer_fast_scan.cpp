#include "nearly/index_residual_quantizer_fast_scan.h"

#include <algorithm>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
// A task takes this many queries, which walk the codes together
// (pq4_search_codes), as IndexPQFastScan's do.
constexpr size_t kQueriesPerTask = 8;
}  // namespace

IndexResidualQuantizerFastScan::IndexResidualQuantizerFastScan(int d, size_t M, size_t nbits, MetricType metric,
                                                               ResidualQuantizer::SearchType search_type)
    : IndexResidualQuantizer(d, M, nbits, metric, search_type) {
    rq.check_fast_scan(metric);
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
        pq4_search_codes(codes_.data(), nb, nq, tables.data(), offsets.data(), kk, sel, metric_type, true,
                         D + q0 * kk, I + q0 * kk);
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
