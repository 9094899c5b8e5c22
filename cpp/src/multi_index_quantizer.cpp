#include "nearly/multi_index_quantizer.h"

#include <algorithm>
#include <cstring>
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
    const size_t M = pq.M, ksub = pq.ksub, nbits = pq.nbits;
    const size_t cells = size_t(1) << (M * nbits);
    const size_t found = std::min(k, cells);
    std::fill(D + found, D + k, missing_distance(METRIC_L2));
    std::fill(I + found, I + k, idx_t(-1));
    if (found == 0) return;
    // A cell among the k nearest takes at most its k-th best sub-centroid in
    // any subspace (k - 1 cells share its other sub-centroids and beat it),
    // so only the first r of each table's order matter.
    const size_t r = std::min(k, ksub);
    std::vector<uint32_t> order(M * r);
    std::vector<uint32_t> all(ksub);
    for (size_t m = 0; m < M; m++) {
        const float* t = tab + m * ksub;
        std::iota(all.begin(), all.end(), 0u);
        auto less = [t](uint32_t a, uint32_t b) { return t[a] < t[b] || (t[a] == t[b] && a < b); };
        std::partial_sort(all.begin(), all.begin() + r, all.end(), less);
        std::copy(all.begin(), all.begin() + r, &order[m * r]);
    }
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
            const uint32_t j = order[m * r + ((ranks >> (m * nbits)) & field)];
            e.sum += tab[m * ksub + j];
            e.cell |= idx_t(j) << (m * nbits);
        }
        return e;
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    heap.push(make(0));
    for (size_t i = 0; i < found; i++) {
        const Entry e = heap.top();
        heap.pop();
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

}  // namespace nearly
