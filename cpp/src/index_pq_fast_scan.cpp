#include "nearly/index_pq_fast_scan.h"

#include <algorithm>
#include <mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/pq_fast_scan.h"

namespace nearly {

namespace {
// A task takes this many queries, which walk the codes together
// (pq4_search_codes).
constexpr size_t kQueriesPerTask = 8;
}  // namespace

IndexPQFastScan::IndexPQFastScan(int d, size_t M, size_t nbits, MetricType metric) : IndexPQ(d, M, nbits, metric) {
    if (nbits != 4) throw NotSupported("Error: 'nbits == 4' failed: fast-scan codes have 4 bits");
    code_block_ = bbs;
}

IndexPQFastScan::IndexPQFastScan(const IndexPQ& orig) : IndexPQFastScan(orig.d, orig.pq.M, orig.pq.nbits, orig.metric_type) {
    copy_from(orig);
}

void IndexPQFastScan::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                             const SearchParameters* params) const {
    search_sorted_or_not(n, x, k, D, I, params, true);
}

void IndexPQFastScan::search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                       const SearchParameters* params) const {
    search_sorted_or_not(n, x, k, D, I, params, false);
}

void IndexPQFastScan::search_sorted_or_not(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                           const SearchParameters* params, bool sorted) const {
    if (fast_scan_exact(implem, false)) return IndexPQ::search(n, x, k, D, I, params);
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, kk = k, nb = size_t(ntotal);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, nq = std::min(size_t(n), q0 + kQueriesPerTask) - q0;
        std::vector<PQ4Table> tables(nq);
        pq4_query_tables(pq, x + q0 * dd, nq, ip, tables.data());
        const std::vector<float> offsets(nq, 0.f);
        pq4_search_codes(codes_.data(), nb, nq, tables.data(), offsets.data(), kk, sel, metric_type, sorted, D + q0 * kk,
                         I + q0 * kk);
        poll();
    });
}

std::unique_ptr<IndexPQFastScan> IndexPQFastScan::read_body(Reader& r) {
    return read_pq<IndexPQFastScan>(r, "PQFastScan");
}

}  // namespace nearly
