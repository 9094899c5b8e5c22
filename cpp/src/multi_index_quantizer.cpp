#include "nearly/multi_index_quantizer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <queue>
#include <vector>

#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

MultiIndexQuantizer::MultiIndexQuantizer(int d, size_t M, size_t nbits) : Index(d, METRIC_L2), pq(size_t(d), M, nbits) {
    // Cell numbers are idx_t, and -1 is the padding.
    NEARLY_CHECK_ARG(M * nbits <= 62, "MultiIndexQuantizer: M * nbits must be at most 62 (cell numbers are 64-bit)");
    is_trained = false;
}

void MultiIndexQuantizer::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    pq.verbose = verbose;
    pq.train(size_t(n), x);
    is_trained = true;
    ntotal = idx_t(1) << (pq.M * pq.nbits);
}

void MultiIndexQuantizer::set_trained(bool trained) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (trained) {
        check_finite(pq.centroids.data(), pq.centroids.size(), "the MultiIndexQuantizer's centroids");
        pq.sync_transposed_centroids();
    }
    is_trained = trained;
    ntotal = trained ? idx_t(1) << (pq.M * pq.nbits) : 0;
}

void MultiIndexQuantizer::set_pq(const ProductQuantizer& other) {
    check_writable();
    NEARLY_CHECK_ARG(other.d == pq.d && other.M == pq.M && other.nbits == pq.nbits,
                     "MultiIndexQuantizer.pq: the product quantizer must have the same d, M and nbits");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    pq = other;
    pq.sync_transposed_centroids();
}

void MultiIndexQuantizer::add(idx_t, const float*) {
    throw NotSupported("This index has virtual elements, it does not support add");
}

void MultiIndexQuantizer::reset() {
    throw NotSupported("This index has virtual elements, it does not support reset");
}

void MultiIndexQuantizer::check_key(idx_t key) const {
    if (!is_trained) throw NotSupported("MultiIndexQuantizer: not trained, it has no cells");
    if (key < 0 || key >= ntotal)
        throw OutOfRange("MultiIndexQuantizer: cell " + std::to_string(key) + " out of range [0, " +
                         std::to_string(ntotal) + ")");
}

void MultiIndexQuantizer::reconstruct(idx_t key, float* out) const {
    check_key(key);
    for (size_t m = 0; m < pq.M; m++)
        std::memcpy(out + m * pq.dsub, &pq.centroids[(m * pq.ksub + sub_cell(key, m)) * pq.dsub],
                    pq.dsub * sizeof(float));
}

void MultiIndexQuantizer::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    NEARLY_CHECK_ARG(ni >= 0, "reconstruct_n: ni must be non-negative");
    if (ni > 0) check_key(i0), check_key(i0 + ni - 1);
    parallel_for_blocks(size_t(ni), 4096, [&](size_t i) { reconstruct(i0 + idx_t(i), out + i * size_t(d)); });
}

void MultiIndexQuantizer::nearest_cells(const float* tab, size_t k, float* D, idx_t* I) const {
    const size_t M = pq.M, ksub = pq.ksub;
    // A cell among the k nearest takes at most its k-th best sub-centroid in
    // any subspace (k - 1 cells share its other sub-centroids and beat it),
    // so only the first r of each table's order matter.
    const size_t r = std::min(k, ksub);
    std::vector<uint32_t> all(ksub);
    std::vector<float> dis(M * r);
    std::vector<idx_t> ids(M * r);
    for (size_t m = 0; m < M; m++) {
        const float* t = tab + m * ksub;
        std::iota(all.begin(), all.end(), 0u);
        auto less = [t](uint32_t a, uint32_t b) { return t[a] < t[b] || (t[a] == t[b] && a < b); };
        std::partial_sort(all.begin(), all.begin() + r, all.end(), less);
        for (size_t j = 0; j < r; j++) dis[m * r + j] = t[all[j]], ids[m * r + j] = idx_t(all[j]);
    }
    combine_sorted(dis.data(), ids.data(), r, k, D, I);
}

void MultiIndexQuantizer::combine_sorted(const float* dis, const idx_t* ids, size_t r, size_t k, float* D,
                                         idx_t* I) const {
    const size_t M = pq.M, nbits = pq.nbits;
    // Cells whose sub-centroid lists ran short (a sub-index gave fewer than
    // r) are not cells: their sums are infinite and end the enumeration.
    std::fill(D, D + k, missing_distance(METRIC_L2));
    std::fill(I, I + k, idx_t(-1));
    if (r == 0) return;
    // Best-first over rank tuples (rank m in field m of `ranks`). A tuple's
    // parent lowers its last non-zero rank by one, so each tuple is pushed
    // once, by its parent, which sums no more than it: popping in order of
    // sums yields the cells in order. Each pop pushes at most M tuples.
    struct Entry {
        float sum;
        idx_t cell;
        uint64_t ranks;
        bool operator>(const Entry& o) const { return sum > o.sum || (sum == o.sum && cell > o.cell); }
    };
    const uint64_t field = (uint64_t(1) << nbits) - 1;
    auto make = [&](uint64_t ranks) {
        Entry e{0.f, 0, ranks};
        for (size_t m = 0; m < M; m++) {
            const size_t j = m * r + ((ranks >> (m * nbits)) & field);
            e.sum += ids[j] < 0 ? std::numeric_limits<float>::infinity() : dis[j];
            e.cell |= std::max<idx_t>(ids[j], 0) << (m * nbits);
        }
        return e;
    };
    const size_t cells = size_t(1) << (M * nbits);
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    heap.push(make(0));
    for (size_t i = 0; i < std::min(k, cells) && !heap.empty(); i++) {
        const Entry e = heap.top();
        heap.pop();
        if (e.sum == std::numeric_limits<float>::infinity()) break;
        D[i] = e.sum;
        I[i] = e.cell;
        size_t last = 0;  // the last subspace with a non-zero rank
        for (size_t m = 0; m < M; m++)
            if ((e.ranks >> (m * nbits)) & field) last = m;
        for (size_t m = last; m < M; m++)
            if (((e.ranks >> (m * nbits)) & field) + 1 < r) heap.push(make(e.ranks + (uint64_t(1) << (m * nbits))));
    }
}

void MultiIndexQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                 const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (params && params->sel) throw NotSupported("search params not supported for this index");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const size_t ts = pq.M * pq.ksub, kk = size_t(k);
    constexpr size_t kQueries = 16;
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueries - 1) / kQueries, [&](size_t t) {
        const size_t q0 = t * kQueries, q1 = std::min(size_t(n), q0 + kQueries);
        std::vector<float> tabs((q1 - q0) * ts);
        pq.compute_tables(x + q0 * size_t(d), q1 - q0, false, tabs.data());
        for (size_t q = q0; q < q1; q++) nearest_cells(&tabs[(q - q0) * ts], kk, D + q * kk, I + q * kk);
        poll();
    });
}

void MultiIndexQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<uint64_t>(pq.M);
    w.pod<uint64_t>(pq.nbits);
    w.pod<uint8_t>(is_trained);
    w.vec(pq.centroids);
}

std::unique_ptr<MultiIndexQuantizer> MultiIndexQuantizer::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const uint64_t M = r.pod<uint64_t>();
    const uint64_t nbits = r.pod<uint64_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && M > 0 && M <= uint64_t(d) && d % M == 0 && nbits >= 1 && nbits <= 16 && M * nbits <= 62 &&
                trained <= 1,
            "bad MultiIndexQuantizer header");
    std::vector<float> centroids = r.vec<float>();
    r.check(centroids.size() == size_t(d) << nbits, "MultiIndexQuantizer centroids do not match d and nbits");
    auto index = std::make_unique<MultiIndexQuantizer>(d, size_t(M), size_t(nbits));
    index->pq.centroids = std::move(centroids);
    index->pq.sync_transposed_centroids();
    index->is_trained = trained;
    index->ntotal = trained ? idx_t(1) << (M * nbits) : 0;
    return index;
}

MultiIndexQuantizer2::MultiIndexQuantizer2(int d, size_t M, size_t nbits, std::vector<IndexPtr> indexes)
    : MultiIndexQuantizer(d, M, nbits), assign_indexes(std::move(indexes)) {
    NEARLY_CHECK_ARG(assign_indexes.size() == M, "MultiIndexQuantizer2: one assign index per subspace (M of them)");
    for (const IndexPtr& a : assign_indexes)
        NEARLY_CHECK_ARG(a && size_t(a->d) == pq.dsub, "Provided sub-index has incorrect size");
}

void MultiIndexQuantizer2::train(idx_t n, const float* x) {
    MultiIndexQuantizer::train(n, x);
    for (size_t m = 0; m < pq.M; m++) assign_indexes[m]->add(idx_t(pq.ksub), &pq.centroids[m * pq.ksub * pq.dsub]);
}

void MultiIndexQuantizer2::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                  const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (params) throw NotSupported("search params not supported for this index");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    if (n == 0) return;
    const size_t M = pq.M, dsub = pq.dsub, nn = size_t(n), kk = size_t(k);
    const size_t r = std::min(kk, pq.ksub);
    // Each subspace's r nearest sub-centroids from its assign index, as
    // (query, subspace, rank) rows for the enumeration.
    std::vector<float> dis(nn * M * r), sub_dis(nn * r), xsub(nn * dsub);
    std::vector<idx_t> ids(nn * M * r), sub_ids(nn * r);
    for (size_t m = 0; m < M; m++) {
        for (size_t q = 0; q < nn; q++) std::memcpy(&xsub[q * dsub], x + q * size_t(d) + m * dsub, dsub * sizeof(float));
        assign_indexes[m]->search(n, xsub.data(), idx_t(r), sub_dis.data(), sub_ids.data());
        for (size_t q = 0; q < nn; q++)
            for (size_t j = 0; j < r; j++) {
                const idx_t id = sub_ids[q * r + j];
                // An id the sub-index should not hold (it must hold the ksub sub-centroids) is not a cell.
                ids[(q * M + m) * r + j] = id >= 0 && size_t(id) < pq.ksub ? id : -1;
                dis[(q * M + m) * r + j] = sub_dis[q * r + j];
            }
    }
    parallel_for_blocks(nn, 16, [&](size_t q) {
        combine_sorted(&dis[q * M * r], &ids[q * M * r], r, kk, D + q * kk, I + q * kk);
    });
}

void MultiIndexQuantizer2::write_body(Writer& w) const {
    MultiIndexQuantizer::write_body(w);
    for (const IndexPtr& a : assign_indexes) write_index_payload(*a, w);
}

std::unique_ptr<MultiIndexQuantizer2> MultiIndexQuantizer2::read_body(Reader& r) {
    std::unique_ptr<MultiIndexQuantizer> base = MultiIndexQuantizer::read_body(r);
    std::vector<IndexPtr> indexes;
    for (size_t m = 0; m < base->pq.M; m++) {
        indexes.push_back(read_index_payload(r));
        r.check(size_t(indexes.back()->d) == base->pq.dsub, "MultiIndexQuantizer2: an assign index of the wrong size");
    }
    auto index = std::make_unique<MultiIndexQuantizer2>(base->d, base->pq.M, base->pq.nbits, std::move(indexes));
    index->pq = base->pq;
    index->is_trained = base->is_trained;
    index->ntotal = base->ntotal;
    return index;
}

}  // namespace nearly
