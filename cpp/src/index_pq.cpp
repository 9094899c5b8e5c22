#include "nearly/index_pq.h"

#include "nearly/index_pq_fast_scan.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>

#include "nearly/hamming.h"
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

IndexPQStats indexPQ_stats;

void record_pq_stats(size_t nq, size_t ncode, size_t n_hamming_pass) {
    static std::mutex lock;
    std::lock_guard<std::mutex> g(lock);
    indexPQ_stats.nq += nq;
    indexPQ_stats.ncode += ncode;
    indexPQ_stats.n_hamming_pass += n_hamming_pass;
}

IndexPQ::IndexPQ(int d, size_t M, size_t nbits, MetricType metric)
    : IndexFlatCodes(d, metric), pq(size_t(d), M, nbits) {
    is_trained = false;
    polysemous_ht = int(M * nbits) + 1;
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
    if (do_polysemous_training) polysemous_training.check(pq);  // before minutes of k-means
    if (!do_polysemous_training) {
        pq.train(size_t(n), x);
    } else {
        // faiss holds back up to a quarter of the vectors for the ranking
        // objective; the affine one renumbers from the centroids alone
        const size_t held = std::min(size_t(std::max(polysemous_training.ntrain_permutation, 0)), size_t(n) / 4);
        if (verbose)
            std::printf("PQ training on %zu points, then polysemous training on %s\n", size_t(n) - held,
                        held ? "the remaining points" : "the centroids");
        ProductQuantizer trained = pq;
        trained.train(size_t(n) - held, x);
        polysemous_training.optimize_pq_for_hamming(trained, held, x + (size_t(n) - held) * size_t(d));
        pq = std::move(trained);  // only once both steps succeeded (Ctrl-C leaves the index as it was)
    }
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
    const auto* pqp = dynamic_cast<const SearchParametersPQ*>(params);
    const int type = pqp ? pqp->search_type : search_type;
    NEARLY_CHECK_ARG(type >= ST_PQ && type <= ST_polysemous_generalize,
                     "IndexPQ: search_type must be one of ST_PQ, ST_HE, ST_generalized_HE, ST_SDC, ST_polysemous, "
                     "ST_polysemous_generalize (got " + std::to_string(type) + ")");
    if (type == ST_polysemous || type == ST_polysemous_generalize) {
        if (metric_type != METRIC_L2) throw NotSupported("IndexPQ: polysemous search needs METRIC_L2");
        if (pq.nbits != 8) throw NotSupported("IndexPQ: polysemous search needs 8-bit codes (pq.nbits == 8)");
        const int ht = pqp ? pqp->polysemous_ht : polysemous_ht;
        NEARLY_CHECK_ARG(ht >= 0, "polysemous_ht must be non-negative");
        search_polysemous(n, x, k, D, I, ht == 0 ? int(pq.M * pq.nbits) + 1 : ht, type == ST_polysemous_generalize,
                          sel);
        return;
    }
    if (type != ST_PQ) {
        search_code_to_code(n, x, k, D, I, type, sel);
        return;
    }
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
    record_pq_stats(size_t(n), size_t(n) * nb, 0);
}

const uint8_t* IndexPQ::plain_codes(std::vector<uint8_t>& scratch) const {
    if (layout().block == 1) return codes_.data();
    scratch = codes_in_order();
    return scratch.data();
}

void IndexPQ::hamming_distance_table(idx_t n, const float* x, int32_t* dis) const {
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    check_finite(x, size_t(n) * size_t(d), "x");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = pq.code_size, nb = size_t(ntotal);
    std::vector<uint8_t> qcodes(size_t(n) * cs);
    pq.compute_codes(x, qcodes.data(), size_t(n));
    std::vector<uint8_t> scratch;
    const uint8_t* codes = plain_codes(scratch);
    const HammingNyFn hamming = hamming_ny_kernel();
    parallel_for(size_t(n), [&](size_t q) { hamming(&qcodes[q * cs], codes, cs, nb, dis + q * nb); });
}

namespace {
// Subquantizers whose centroid numbers differ between two codes (faiss's
// generalized Hamming distance, which counts differing bytes: the same for
// 8-bit codes).
int differing_fields(const ProductQuantizer& pq, const uint8_t* a, const uint8_t* b) {
    int c = 0;
    if (pq.nbits == 8) {
        for (size_t m = 0; m < pq.M; m++) c += a[m] != b[m];
    } else {
        for (size_t m = 0; m < pq.M; m++) c += pq.code_at(a, m) != pq.code_at(b, m);
    }
    return c;
}
}  // namespace

void IndexPQ::search_code_to_code(idx_t n, const float* x, idx_t k, float* D, idx_t* I, int type,
                                  const IDSelector* sel) const {
    if (type == ST_SDC && metric_type != METRIC_L2)
        throw NotSupported("IndexPQ: ST_SDC ranks by L2 distances between centroids; the index must be METRIC_L2");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = pq.code_size, nb = size_t(ntotal), kk = size_t(k);
    std::vector<uint8_t> qcodes(size_t(n) * cs);
    pq.compute_codes(x, qcodes.data(), size_t(n));
    std::vector<uint8_t> scratch;
    const uint8_t* codes = plain_codes(scratch);
    if (type == ST_HE) {
        std::vector<int32_t> Di(size_t(n) * kk);
        knn_hamming(qcodes.data(), size_t(n), codes, nb, cs, kk, Di.data(), I, sel);
        for (size_t i = 0; i < Di.size(); i++) D[i] = float(Di[i]);  // faiss's: INT_MAX for a missing result
        record_pq_stats(size_t(n), size_t(n) * nb, 0);
        return;
    }
    // ST_SDC: sdc[m][a][b], the squared distance between centroids a and b
    // of subquantizer m (faiss's sdc_table).
    std::vector<float> sdc;
    if (type == ST_SDC) {
        const size_t ks = pq.ksub;
        sdc.resize(pq.M * ks * ks);
        parallel_for(pq.M, [&](size_t m) {
            for (size_t a = 0; a < ks; a++)
                for (size_t b = 0; b < ks; b++) {
                    const float *ca = pq.get_centroids(m, a), *cb = pq.get_centroids(m, b);
                    float s = 0;
                    for (size_t t = 0; t < pq.dsub; t++) s += (ca[t] - cb[t]) * (ca[t] - cb[t]);
                    sdc[(m * ks + a) * ks + b] = s;
                }
        });
    }
    InterruptPoll poll;
    parallel_for(size_t(n), [&](size_t q) {
        const uint8_t* qc = &qcodes[q * cs];
        float* Dq = D + q * kk;
        idx_t* Iq = I + q * kk;
        TopK::init(Dq, Iq, kk);
        for (size_t j = 0; j < nb; j++) {
            if (sel && !sel->is_member(idx_t(j))) continue;
            const uint8_t* c = codes + j * cs;
            float s;
            if (type == ST_SDC) {
                s = 0;
                for (size_t m = 0; m < pq.M; m++)
                    s += sdc[(m * pq.ksub + pq.code_at(qc, m)) * pq.ksub + pq.code_at(c, m)];
            } else {
                s = float(differing_fields(pq, qc, c));
            }
            if (s <= Dq[0]) TopK::push(Dq, Iq, kk, s, idx_t(j));
        }
        TopK::finish(Dq, Iq, kk, false, missing_distance(METRIC_L2));
        poll();
    });
    record_pq_stats(size_t(n), size_t(n) * nb, 0);
}

void IndexPQ::search_polysemous(idx_t n, const float* x, idx_t k, float* D, idx_t* I, int ht, bool generalized,
                                const IDSelector* sel) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = pq.code_size, nb = size_t(ntotal), kk = size_t(k), ts = pq.M * pq.ksub;
    std::vector<uint8_t> scratch;
    const uint8_t* codes = plain_codes(scratch);
    const HammingNyFn hamming = hamming_ny_kernel();
    std::atomic<size_t> passed{0};
    InterruptPoll poll;
    // As the ADC scan: the queries of a task take turns on each block of
    // codes, which stays in cache.
    const size_t per_task = items_per_task(size_t(n), kQueriesPerTask);
    parallel_for((size_t(n) + per_task - 1) / per_task, [&](size_t t) {
        const size_t q0 = t * per_task, q1 = std::min(size_t(n), q0 + per_task), nq = q1 - q0;
        std::vector<float> tabs(nq * ts);
        std::vector<uint8_t> qcodes(nq * cs), kept(kCodeBlock * cs);
        std::vector<int32_t> hd(kCodeBlock);
        std::vector<uint32_t> pos(kCodeBlock);
        std::vector<float> dis(kCodeBlock);
        pq.compute_tables(x + q0 * size_t(d), nq, false, tabs.data());
        pq.compute_codes(x + q0 * size_t(d), qcodes.data(), nq);
        for (size_t q = q0; q < q1; q++) TopK::init(D + q * kk, I + q * kk, kk);
        size_t npass = 0;
        for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) {
            const size_t m = std::min(kCodeBlock, nb - j0);
            const uint8_t* block = codes + j0 * cs;
            for (size_t q = q0; q < q1; q++) {
                const uint8_t* qc = &qcodes[(q - q0) * cs];
                float* Dq = D + q * kk;
                idx_t* Iq = I + q * kk;
                // the Hamming filter, then PQ distances for what passed (gathered)
                if (generalized) {
                    for (size_t j = 0; j < m; j++) hd[j] = differing_fields(pq, qc, block + j * cs);
                } else {
                    hamming(qc, block, cs, m, hd.data());
                }
                size_t np = 0;
                for (size_t j = 0; j < m; j++)
                    if (hd[j] < ht && (!sel || sel->is_member(idx_t(j0 + j)))) pos[np++] = uint32_t(j);
                for (size_t i = 0; i < np; i++) std::memcpy(&kept[i * cs], block + size_t(pos[i]) * cs, cs);
                pq.adc(&tabs[(q - q0) * ts], kept.data(), np, dis.data());
                for (size_t i = 0; i < np; i++)
                    if (dis[i] <= Dq[0]) TopK::push(Dq, Iq, kk, dis[i], idx_t(j0 + pos[i]));
                npass += np;
            }
        }
        for (size_t q = q0; q < q1; q++) TopK::finish(D + q * kk, I + q * kk, kk, false, missing_distance(METRIC_L2));
        passed += npass;
        poll();
    });
    record_pq_stats(size_t(n), size_t(n) * nb, passed.load());
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
    w.pod<int32_t>(search_type);
    w.pod<int32_t>(polysemous_ht);
    w.pod<uint8_t>(do_polysemous_training);
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
    if (r.version() >= 7) {
        const int32_t type = r.pod<int32_t>();
        const int32_t ht = r.pod<int32_t>();
        const uint8_t polysemous = r.pod<uint8_t>();
        r.check(type >= ST_PQ && type <= ST_polysemous_generalize && ht >= 0 && polysemous <= 1,
                ("bad " + w + " search settings").c_str());
        index->search_type = type;
        index->polysemous_ht = ht;
        index->do_polysemous_training = polysemous;
    }
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
        *this, PQTableScorer{pq, metric_type == METRIC_INNER_PRODUCT, {}}, true);
}

}  // namespace nearly
