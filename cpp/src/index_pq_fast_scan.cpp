#include "nearly/index_pq_fast_scan.h"

#include <algorithm>
#include <mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// A task takes this many queries and walks the codes kCodeBlock entries at a
// time, so a stretch of codes stays in cache while each query scans it.
constexpr size_t kQueriesPerTask = 8;
constexpr size_t kCodeBlock = 4096;  // a multiple of the fast-scan block
}  // namespace

IndexPQFastScan::IndexPQFastScan(int d, size_t M, size_t nbits, MetricType metric) : IndexPQ(d, M, nbits, metric) {
    if (nbits != 4) throw NotSupported("Error: 'nbits == 4' failed: fast-scan codes have 4 bits");
    code_block_ = bbs;
}

void IndexPQFastScan::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                             const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, kk = k, nb = size_t(ntotal), ts = pq.M * pq.ksub;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, q1 = std::min(size_t(n), q0 + kQueriesPerTask);
        std::vector<PQ4Table> tables(q1 - q0);
        std::vector<TopKReservoir> found(q1 - q0);
        std::vector<float> tab(ts);
        for (size_t q = q0; q < q1; q++) {
            // Lower is better inside: inner products are negated.
            if (ip) {
                pq.compute_inner_prod_table(x + q * dd, tab.data());
                for (float& v : tab) v = -v;
            } else {
                pq.compute_distance_table(x + q * dd, tab.data());
            }
            tables[q - q0].set(tab.data(), pq.M);
            found[q - q0].reset(kk);
            TopK::init(D + q * kk, I + q * kk, kk);
        }
        for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) {
            const size_t m = std::min(kCodeBlock, nb - j0);
            const uint8_t* codes = codes_.data() + j0 * pq.code_size;
            for (size_t q = q0; q < q1; q++)
                pq4_scan(codes, m, tables[q - q0], 0.f, nullptr, idx_t(j0), sel, found[q - q0]);
        }
        for (size_t q = q0; q < q1; q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            found[q - q0].to_heap(Dq, Iq);
            TopK::sort(Dq, Iq, kk);
            for (size_t i = 0; i < kk; i++) Dq[i] = Iq[i] < 0 ? pad : (ip ? -Dq[i] : Dq[i]);
        }
        poll();
    });
}

std::unique_ptr<IndexPQFastScan> IndexPQFastScan::read_body(Reader& r) {
    return read_pq<IndexPQFastScan>(r, "PQFastScan");
}

}  // namespace nearly
