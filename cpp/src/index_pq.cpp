#include "nearly/index_pq.h"

#include "nearly/index_pq_fast_scan.h"

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>

#include "nearly/huge_pages.h"
#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
// A task takes this many queries and walks the codes in blocks of kCodeBlock:
// the block stays in cache while each query of the group scans it.
constexpr size_t kQueriesPerTask = 8;
constexpr size_t kCodeBlock = 4096;
constexpr size_t kLargeTableBytes = size_t(1) << 20;
}  // namespace

IndexPQ::IndexPQ(int d, size_t M, size_t nbits, MetricType metric)
    : IndexFlatCodes(d, metric), pq(size_t(d), M, nbits) {
    is_trained = false;
}

void IndexPQ::copy_from(const IndexPQ& orig) {
    std::shared_lock<SharedMutex> theirs(orig.rw_mutex_);
    std::unique_lock<SharedMutex> mine(rw_mutex_);
    NEARLY_CHECK_ARG(orig.pq.M == pq.M && orig.pq.nbits == pq.nbits && orig.d == d && ntotal == 0,
                     "IndexPQ::copy_from: into an empty index of the same shape");
    pq = orig.pq;
    set_codes_in_order(orig.codes_in_order(), size_t(orig.ntotal));
    ntotal = orig.ntotal;
    is_trained = orig.is_trained;
    verbose = orig.verbose;
}

void IndexPQ::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    pq.verbose = verbose;
    pq.train(size_t(n), x);
    is_trained = true;
}

void IndexPQ::set_trained(bool trained) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (trained) check_finite(pq.centroids.data(), pq.centroids.size(), "the PQ centroids");
    is_trained = trained;
}

void IndexPQ::set_quantizer(const ProductQuantizer& other) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    pq.check_replacement(other, "IndexPQ", ntotal);
    pq.centroids = other.centroids;
    pq.sync_transposed_centroids();
}

void IndexPQ::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, kk = k, nb = size_t(ntotal), ts = pq.M * pq.ksub;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const float pad = missing_distance(metric_type);
    InterruptPoll poll;
    // Small tables (8 bits: 48 KiB at M = 48): the queries of a group take
    // turns on each block of codes, which stays in cache. Large ones (16
    // bits: 6 MiB at M = 24) would evict each other that way: each query
    // then scans all codes with its own table.
    const bool large_tables = ts * sizeof(float) > kLargeTableBytes;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        const size_t q0 = t * kQueriesPerTask, q1 = std::min(size_t(n), q0 + kQueriesPerTask);
        // Huge pages for large tables: a 16-bit table (6 MiB) is read at
        // random, each lookup a TLB miss with 4 KiB pages.
        LargeVector<float> tabs((q1 - q0) * ts);
        std::unique_ptr<float[]> buf(new float[kCodeBlock]);
        // Fast-scan codes lie in blocks (an exact scan of IndexPQFastScan):
        // each stretch is gathered into the contiguous form first.
        const CodeLayout lay = layout();
        std::vector<uint8_t> gathered(lay.block == 1 ? 0 : kCodeBlock * pq.code_size);
        size_t gathered_at = SIZE_MAX;
        pq.compute_tables(x + q0 * dd, q1 - q0, ip, tabs.data());  // each codebook block read once for the group
        for (size_t q = q0; q < q1; q++) TopK::init(D + q * kk, I + q * kk, kk);  // scores: L2, or minus the IP
        auto scan = [&](size_t q, size_t j0) {
            const size_t m = std::min(kCodeBlock, nb - j0);
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            const uint8_t* codes = codes_.data() + j0 * pq.code_size;
            if (lay.block != 1) {
                if (gathered_at != j0) lay.gather(codes_.data(), j0, m, gathered.data());
                gathered_at = j0;
                codes = gathered.data();
            }
            pq.adc(&tabs[(q - q0) * ts], codes, m, buf.get());
            for (size_t j = 0; j < m; j++) {
                const float s = ip ? -buf[j] : buf[j];
                if (s > Dq[0] || (sel && !sel->is_member(idx_t(j0 + j)))) continue;
                TopK::push(Dq, Iq, kk, s, idx_t(j0 + j));
            }
        };
        if (large_tables) {
            for (size_t q = q0; q < q1; q++)
                for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) scan(q, j0);
        } else {
            for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock)
                for (size_t q = q0; q < q1; q++) scan(q, j0);
        }
        for (size_t q = q0; q < q1; q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::finish(Dq, Iq, kk, ip, pad);
        }
        poll();
    });
}

void IndexPQ::encode(size_t n, const float* x, uint8_t* codes) const { pq.compute_codes(x, codes, n); }

void IndexPQ::decode(const uint8_t* code, float* out) const { pq.decode(code, out); }

void IndexPQ::write_encoder_state(Writer& w) const {
    w.pod<uint64_t>(pq.M);
    w.pod<uint64_t>(pq.nbits);
    w.vec(pq.centroids);
}

void IndexPQ::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint64_t>(pq.M);
    w.pod<uint64_t>(pq.nbits);
    w.pod<uint8_t>(is_trained);
    w.vec(pq.centroids);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

template <class T>
std::unique_ptr<T> IndexPQ::read_pq(Reader& r, const char* what) {
    const std::string w(what);
    const int d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const uint64_t M = r.pod<uint64_t>();
    const uint64_t nbits = r.pod<uint64_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && M > 0 && M <= uint64_t(d) &&
                d % M == 0 && (std::is_same<T, IndexPQ>::value ? nbits >= 1 && nbits <= 16 : nbits == 4) &&
                trained <= 1,
            ("bad " + w + " header").c_str());
    // The codebook is read (its length checked against the file) before
    // the index allocates one of d x 2^nbits floats.
    std::vector<float> centroids = r.vec<float>();
    r.check(centroids.size() == size_t(d) << nbits, (w + " centroids do not match d and nbits").c_str());
    auto index = std::make_unique<T>(d, size_t(M), size_t(nbits), MetricType(metric));
    index->pq.centroids = std::move(centroids);
    index->pq.sync_transposed_centroids();
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == index->layout().bytes(size_t(ntotal)),
            (w + " code count does not match ntotal").c_str());
    index->ntotal = ntotal;
    return index;
}

std::unique_ptr<IndexPQ> IndexPQ::read_body(Reader& r) { return read_pq<IndexPQ>(r, "PQ"); }

template std::unique_ptr<IndexPQFastScan> IndexPQ::read_pq<IndexPQFastScan>(Reader&, const char*);

namespace {
// A query's ADC table, as IndexPQ::search builds it (inner products
// positive: search negates them itself).
struct PQTableScorer {
    const ProductQuantizer& pq;
    bool ip;
    std::vector<float> table;
    void set_query(const float* q) {
        table.resize(pq.M * pq.ksub);
        pq.compute_tables(q, 1, ip, table.data());
    }
    void scores(const uint8_t* codes, size_t n, float* out) const { pq.adc(table.data(), codes, n, out); }
};
}  // namespace

std::unique_ptr<DistanceComputer> IndexPQ::get_distance_computer() const {
    return std::make_unique<CodeDistanceComputer<IndexPQ, PQTableScorer>>(
        *this, PQTableScorer{pq, metric_type == METRIC_INNER_PRODUCT, {}});
}

}  // namespace nearly
