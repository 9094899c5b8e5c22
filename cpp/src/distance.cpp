#include "nearly/distance.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {
namespace {

// Batches of at least this many queries go through the packed micro-kernel;
// below it, streaming the database (a chunk at a time, queries four at a time
// against the chunk while it is in cache) beats packing the whole database:
// measured crossover between 32 and 128 queries on 10k and 100k x 384.
constexpr size_t kGemmMinQueries = 64;
constexpr size_t kMaxSharedPackFloats = size_t(16) << 20;  // 64 MiB
// Below this many multiply-adds a call stays on the calling thread: waking
// the pool would cost more than it saves.
constexpr double kMinParallelWork = 1 << 20;
constexpr size_t kDirectChunk = 256;

// One exhaustive scan. Sinks receive scores where smaller is better:
// squared L2 distance, or the negated inner product.
struct Scan {
    const float* xq;
    size_t nq;
    const float* xb;
    size_t nb;
    size_t d;
    MetricType metric;
    const float* xb_norms;  // may be null
    const float* xq_norms;  // L2 only, set by the driver for four queries or more
    InterruptPoll* poll;
    // All nq queries packed for the micro-kernel, shared by the tasks that
    // each scan a database range (set by pack_queries; else each task packs).
    const float* qpack = nullptr;
    // The whole database packed in blocks (and its squared norms for L2),
    // shared by the tasks that each scan a range of queries (set by
    // pack_database; else each task packs the blocks it scans).
    const float* xbpack = nullptr;
    const float* xbpack_norms = nullptr;
    bool xq_norms_ready() const { return metric != METRIC_L2 || xq_norms != nullptr; }
};

// Streams database rows against each query (few queries): a chunk of the
// database at a time, every query against it while it is in cache; queries
// four at a time where they can (each row is then read once for four).
template <class Sink>
void scan_direct(const Scan& s, size_t q0, size_t q1, size_t j0, size_t j1, Sink& sink) {
    const SimdKernels& K = simd();
    const size_t d = s.d;
    float buf[4][kDirectChunk];
    for (size_t j = j0; j < j1; j += kDirectChunk) {
        const size_t n = std::min(kDirectChunk, j1 - j);
        const float* xj = s.xb + j * d;
        size_t q = q0;
        // L2 from the differences (as faiss's direct path), not from norms:
        // the few-query path then has exact-difference precision.
        for (; q + 4 <= q1; q += 4) {
            if (s.metric == METRIC_L2) {
                K.l2sqr_4q(s.xq + q * d, xj, d, n, buf[0], kDirectChunk);
            } else {
                K.ip_4q(s.xq + q * d, xj, d, n, buf[0], kDirectChunk);
                for (size_t a = 0; a < 4; a++)
                    for (size_t t = 0; t < n; t++) buf[a][t] = -buf[a][t];
            }
            for (size_t a = 0; a < 4; a++) sink(q + a, j, buf[a], n);
        }
        for (; q < q1; q++) {
            if (s.metric == METRIC_L2) {
                K.l2sqr_ny(s.xq + q * d, xj, d, n, buf[0]);
            } else {
                K.inner_products_ny(s.xq + q * d, xj, d, n, buf[0]);
                for (size_t t = 0; t < n; t++) buf[0][t] = -buf[0][t];
            }
            sink(q, j, buf[0], n);
        }
        (*s.poll)();
    }
}

// Packs rows [r0, r0 + nr) of m (zero past `rows`) as a d x nr panel.
void pack_panel(const float* m, size_t rows, size_t r0, size_t nr, size_t d, float* panel) {
    // Row pointers first, then one pass over k writing each panel row
    // contiguously: nr sequential read streams, no scattered stores.
    const float* src[64];
    size_t live = 0;
    for (size_t j = 0; j < nr && r0 + j < rows; j++) src[live++] = m + (r0 + j) * d;
    for (size_t k = 0; k < d; k++) {
        // Too many streams for the hardware prefetcher: fetch each row's
        // cache line four lines ahead.
        if (k % 16 == 0)
            for (size_t j = 0; j < live; j++) __builtin_prefetch(src[j] + k + 64);
        float* out = panel + k * nr;
        size_t j = 0;
        for (; j < live; j++) out[j] = src[j][k];
        for (; j < nr; j++) out[j] = 0.f;
    }
}

// About 256 KiB of packed database per block (a multiple of nr rows).
size_t gemm_block(size_t d, size_t nr) { return std::max(nr, (size_t(65536) / d) / nr * nr); }

// Blocked matrix multiply with the selection fused in: the database is packed
// a block at a time (kept in L2), each mr x nr tile of inner products is
// turned into scores and handed to the sink while still in L1. The full
// nq x nb matrix is never written.
template <class Sink>
void scan_gemm(const Scan& s, size_t q0, size_t q1, size_t j0, size_t j1, Sink& sink) {
    const SimdKernels& K = simd();
    const size_t mr = K.gemm.mr, nr = K.gemm.nr, d = s.d;
    const size_t nqb = (q1 - q0 + mr - 1) / mr;
    std::vector<float> own;
    const float* qpack = s.qpack;
    if (!qpack || q0 != 0 || q1 != s.nq) {
        own.resize(nqb * d * mr);
        for (size_t b = 0; b < nqb; b++) pack_panel(s.xq + q0 * d, q1 - q0, b * mr, mr, d, &own[b * d * mr]);
        qpack = own.data();
    }

    const size_t block = gemm_block(d, nr);
    const bool shared = s.xbpack != nullptr;
    std::vector<float> own_pack(shared ? 0 : block * d), own_norms(shared ? 0 : block), tile(mr * nr), scores(nr);
    for (size_t jb = j0; jb < j1; jb += block) {
        const size_t nbk = std::min(block, j1 - jb), npanel = (nbk + nr - 1) / nr;
        const float* xpack = shared ? s.xbpack + jb * d : own_pack.data();
        const float* xnorms = shared ? s.xbpack_norms + jb : own_norms.data();
        if (!shared) {
            for (size_t p = 0; p < npanel; p++) pack_panel(s.xb + jb * d, nbk, p * nr, nr, d, &own_pack[p * d * nr]);
            if (s.metric == METRIC_L2) {
                if (s.xb_norms)
                    std::copy(s.xb_norms + jb, s.xb_norms + jb + nbk, own_norms.begin());
                else
                    norms_L2sqr(s.xb + jb * d, nbk, d, own_norms.data());
            }
        }
        for (size_t b = 0; b < nqb; b++) {
            for (size_t p = 0; p < npanel; p++) {
                K.gemm_micro(qpack + b * d * mr, &xpack[p * d * nr], d, tile.data(), nr);
                const size_t ncols = std::min(nr, nbk - p * nr);
                for (size_t i = 0; i < mr; i++) {
                    const size_t q = q0 + b * mr + i;
                    if (q >= q1) break;
                    const float* t = &tile[i * nr];
                    if (s.metric == METRIC_L2) {
                        const float qn = s.xq_norms[q];
                        const float* xn = &xnorms[p * nr];
                        for (size_t j = 0; j < ncols; j++) scores[j] = std::max(0.f, qn + xn[j] - 2.f * t[j]);
                    } else {
                        for (size_t j = 0; j < ncols; j++) scores[j] = -t[j];
                    }
                    sink(q, jb + p * nr, scores.data(), ncols);
                }
            }
        }
        (*s.poll)();
    }
}

// Packs the whole database once, in parallel, for a scan split by query
// ranges: blocks laid end to end as scan_gemm cuts them (a partial last panel
// padded with zero rows), so block jb starts at jb * d.
struct PackedDatabase {
    std::vector<float> panels, norms;
};
PackedDatabase pack_database(Scan& s) {
    PackedDatabase pk;
    const size_t nr = simd().gemm.nr, block = gemm_block(s.d, nr);
    const size_t nblocks = (s.nb + block - 1) / block;
    pk.panels.resize((nblocks * block + nr) * s.d);
    if (s.metric == METRIC_L2) pk.norms.resize(nblocks * block);
    parallel_for(nblocks, [&](size_t b) {
        const size_t jb = b * block, nbk = std::min(block, s.nb - jb), npanel = (nbk + nr - 1) / nr;
        for (size_t p = 0; p < npanel; p++)
            pack_panel(s.xb + jb * s.d, nbk, p * nr, nr, s.d, &pk.panels[jb * s.d + p * s.d * nr]);
        if (s.metric == METRIC_L2) {
            if (s.xb_norms)
                std::copy(s.xb_norms + jb, s.xb_norms + jb + nbk, pk.norms.begin() + jb);
            else
                norms_L2sqr(s.xb + jb * s.d, nbk, s.d, &pk.norms[jb]);
        }
    });
    s.xbpack = pk.panels.data();
    s.xbpack_norms = pk.norms.empty() ? nullptr : pk.norms.data();
    return pk;
}

// Packs every query once, in parallel, for a scan split by database ranges.
std::vector<float> pack_queries(Scan& s) {
    std::vector<float> packed;
    if (s.nq < kGemmMinQueries) return packed;
    const size_t mr = simd().gemm.mr, nqb = (s.nq + mr - 1) / mr;
    packed.resize(nqb * s.d * mr);
    parallel_for(nqb, [&](size_t b) { pack_panel(s.xq, s.nq, b * mr, mr, s.d, &packed[b * s.d * mr]); });
    s.qpack = packed.data();
    return packed;
}

template <class Sink>
void scan(const Scan& s, size_t q0, size_t q1, size_t j0, size_t j1, Sink& sink) {
    if (q1 - q0 >= kGemmMinQueries)
        scan_gemm(s, q0, q1, j0, j1, sink);
    else
        scan_direct(s, q0, q1, j0, j1, sink);
}

// How a scan is cut into tasks. Database ranges first: each task packs only
// its own part of the database, once, and runs every query against it (the
// packed queries are small and stream from cache). Splitting by queries would
// make every task pack the whole database again. Queries are split only when
// the database is too small to share out. One query over a big index is split
// too, unlike faiss.
struct Split {
    size_t nq_tasks = 1, nb_tasks = 1;
    size_t q_step, b_step;
};

// k: heap size per query (0 when none), bounding the memory of partial
// results when the database is split.
Split plan(size_t nq, size_t nb, size_t d, size_t k = 0) {
    Split sp;
    sp.q_step = std::max<size_t>(nq, 1);
    sp.b_step = std::max<size_t>(nb, 1);
    const size_t nt = get_num_threads();
    if (nt <= 1 || double(nq) * nb * d < kMinParallelWork || in_parallel_region()) return sp;
    const size_t mr = simd().gemm.mr, nr = simd().gemm.nr;
    const size_t qblocks = (nq + mr - 1) / mr;
    const bool partials_fit = double(nq) * k * 2 * nt <= double(1 << 24);
    // Split the database only when it is much larger than the batch: each
    // database task keeps its own heaps, so every query's selection is done
    // once per task and merged (an IVF coarse search, 1,000 queries x 1,024
    // centroids, ran no faster on 2 threads than on 1); queries split evenly
    // and share one packing of the small database (maybe_pack_database).
    const bool db_large_enough = nb >= 2 * nt * 256 && nb >= 8 * nq;
    if ((db_large_enough && partials_fit) || qblocks < 2 * nt) {
        sp.nb_tasks = std::min((nb + nr - 1) / nr, 2 * nt);
        sp.b_step = ((nb + sp.nb_tasks - 1) / sp.nb_tasks + nr - 1) / nr * nr;
        sp.nb_tasks = (nb + sp.b_step - 1) / sp.b_step;
    } else {
        sp.nq_tasks = std::min(qblocks, 4 * nt);
        sp.q_step = (qblocks + sp.nq_tasks - 1) / sp.nq_tasks * mr;
        sp.nq_tasks = (nq + sp.q_step - 1) / sp.q_step;
    }
    return sp;
}

// Query tasks that would each pack the whole database share one packing
// when it is small (an IVF coarse search, 1,000 queries x 1,024 centroids,
// in 8 tasks on 2 threads packed the centroids 8 times and ran 1.6x faster
// than 1 thread; packed once, 1.9x). Large databases are packed block by
// block in each task: a shared copy would double their memory.
PackedDatabase maybe_pack_database(Scan& s, const Split& sp) {
    const size_t per_task = (s.nq + sp.nq_tasks - 1) / sp.nq_tasks;
    if (sp.nq_tasks <= 1 || per_task < kGemmMinQueries || s.nb * s.d > kMaxSharedPackFloats) return {};
    return pack_database(s);
}

struct KnnSink {
    float* D;  // heaps of this task, k per query, query q at (q - q0) * k
    idx_t* I;
    size_t k, q0;
    const IDSelector* sel;
    // From k = 8 on candidates go through a reservoir per query (merged into
    // the heaps by finish()): an IVF coarse search for 32 lists spent more
    // time in heap sift-downs than in its matrix multiply.
    std::vector<TopKReservoir> res;

    KnnSink(float* D_, idx_t* I_, size_t k_, size_t q0_, size_t nq, const IDSelector* sel_)
        : D(D_), I(I_), k(k_), q0(q0_), sel(sel_) {
        if (k >= kReservoirMinK) {
            res.resize(nq);
            for (auto& r : res) r.reset(k);
        }
    }
    void operator()(size_t q, size_t j0, const float* s, size_t n) {
        if (!res.empty()) {
            TopKReservoir& r = res[q - q0];
            // Once the threshold is tight most runs of scores hold nothing
            // that passes: a vectorized count skips them, and the positions
            // that pass are gathered without a branch per score.
            const float thr = r.threshold;
            uint32_t pass = 0;
            for (size_t j = 0; j < n; j++) pass += s[j] <= thr;
            if (!pass) return;
            uint32_t at[kMaxRun];
            for (size_t j0r = 0; j0r < n; j0r += kMaxRun) {
                const size_t m = std::min(kMaxRun, n - j0r);
                size_t c = 0;
                for (size_t j = 0; j < m; j++) {
                    at[c] = uint32_t(j0r + j);
                    c += s[j0r + j] <= thr;
                }
                for (size_t i = 0; i < c; i++) {
                    const size_t j = at[i];
                    if (s[j] <= r.threshold && (!sel || sel->is_member(idx_t(j0 + j)))) r.add(s[j], idx_t(j0 + j));
                }
            }
            return;
        }
        float* Dq = D + (q - q0) * k;
        idx_t* Iq = I + (q - q0) * k;
        float thr = Dq[0];
        // Ids grow along the scan, so an equal score never beats the root.
        // Most runs hold nothing below it (k-means assignment, k = 1): a
        // vectorized count skips them.
        uint32_t pass = 0;
        for (size_t j = 0; j < n; j++) pass += s[j] < thr;
        if (!pass) return;
        for (size_t j = 0; j < n; j++) {
            if (s[j] < thr && (!sel || sel->is_member(idx_t(j0 + j)))) {
                TopK::push(Dq, Iq, k, s[j], idx_t(j0 + j));
                thr = Dq[0];
            }
        }
    }
    void finish() {
        for (size_t i = 0; i < res.size(); i++) res[i].to_heap(D + i * k, I + i * k);
    }
    static constexpr size_t kReservoirMinK = 8;
    static constexpr size_t kMaxRun = 64;
};

struct RangeSink {
    float threshold;  // score < threshold is a hit
    const IDSelector* sel;
    size_t q0;
    std::vector<std::vector<std::pair<idx_t, float>>> hits;  // per query of the task
    void operator()(size_t q, size_t j0, const float* s, size_t n) {
        auto& h = hits[q - q0];
        for (size_t j = 0; j < n; j++)
            if (s[j] < threshold && (!sel || sel->is_member(idx_t(j0 + j)))) h.emplace_back(idx_t(j0 + j), s[j]);
    }
};

float to_distance(MetricType metric, float score) { return metric == METRIC_L2 ? score : -score; }

}  // namespace

void knn_exhaustive(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType metric, size_t k,
                    float* D, idx_t* I, const IDSelector* sel, const float* xb_norms) {
    NEARLY_CHECK_ARG(k > 0, "k must be positive");
    InterruptPoll poll;
    std::vector<float> qnorms;
    if (metric == METRIC_L2 && nq >= 4) {
        qnorms.resize(nq);
        norms_L2sqr(xq, nq, d, qnorms.data());
    }
    Scan s{xq, nq, xb, nb, d, metric, xb_norms, qnorms.data(), &poll};
    for (size_t q = 0; q < nq; q++) TopK::init(D + q * k, I + q * k, k);
    Split sp = plan(nq, nb, d, k);

    if (sp.nb_tasks == 1) {
        PackedDatabase shared = maybe_pack_database(s, sp);
        parallel_for(sp.nq_tasks, [&](size_t t) {
            size_t q0 = t * sp.q_step, q1 = std::min(nq, q0 + sp.q_step);
            KnnSink sink(D + q0 * k, I + q0 * k, k, q0, q1 - q0, sel);
            scan(s, q0, q1, 0, nb, sink);
            sink.finish();
        });
    } else {
        // Each database range fills its own heaps; merged below.
        std::vector<float> packed = pack_queries(s);
        std::vector<float> pD(sp.nb_tasks * nq * k);
        std::vector<idx_t> pI(sp.nb_tasks * nq * k);
        parallel_for(sp.nb_tasks, [&](size_t t) {
            float* tD = &pD[t * nq * k];
            idx_t* tI = &pI[t * nq * k];
            for (size_t q = 0; q < nq; q++) TopK::init(tD + q * k, tI + q * k, k);
            size_t j0 = t * sp.b_step, j1 = std::min(nb, j0 + sp.b_step);
            KnnSink sink(tD, tI, k, 0, nq, sel);
            scan(s, 0, nq, j0, j1, sink);
            sink.finish();
        });
        parallel_for((nq + 63) / 64, [&](size_t b) {
            for (size_t q = b * 64; q < std::min(nq, b * 64 + 64); q++)
                for (size_t t = 0; t < sp.nb_tasks; t++)
                    for (size_t i = 0; i < k; i++) {
                        size_t o = t * nq * k + q * k + i;
                        if (pI[o] >= 0) TopK::push(D + q * k, I + q * k, k, pD[o], pI[o]);
                    }
        });
    }
    const float pad = missing_distance(metric);
    // Reservoirs leave their heaps fully sorted (descending) unless partial
    // heaps were merged.
    const bool descending = k >= KnnSink::kReservoirMinK && sp.nb_tasks == 1;
    for (size_t q = 0; q < nq; q++) {
        if (descending) {
            std::reverse(D + q * k, D + (q + 1) * k);
            std::reverse(I + q * k, I + (q + 1) * k);
        } else {
            TopK::sort(D + q * k, I + q * k, k);
        }
        for (size_t i = 0; i < k; i++) D[q * k + i] = I[q * k + i] < 0 ? pad : to_distance(metric, D[q * k + i]);
    }
}

void range_exhaustive(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType metric,
                      float radius, RangeSearchResult& result, const IDSelector* sel, const float* xb_norms) {
    InterruptPoll poll;
    std::vector<float> qnorms;
    if (metric == METRIC_L2 && nq >= 4) {
        qnorms.resize(nq);
        norms_L2sqr(xq, nq, d, qnorms.data());
    }
    Scan s{xq, nq, xb, nb, d, metric, xb_norms, qnorms.data(), &poll};
    Split sp = plan(nq, nb, d);
    std::vector<float> packed;
    if (sp.nq_tasks == 1 && sp.nb_tasks > 1) packed = pack_queries(s);
    PackedDatabase shared;
    if (sp.nb_tasks == 1) shared = maybe_pack_database(s, sp);
    const float threshold = metric == METRIC_L2 ? radius : -radius;
    const size_t ntasks = sp.nq_tasks * sp.nb_tasks;
    std::vector<RangeSink> sinks(ntasks);
    parallel_for(ntasks, [&](size_t t) {
        size_t qt = t / sp.nb_tasks, bt = t % sp.nb_tasks;
        size_t q0 = qt * sp.q_step, q1 = std::min(nq, q0 + sp.q_step);
        size_t j0 = bt * sp.b_step, j1 = std::min(nb, j0 + sp.b_step);
        RangeSink& sink = sinks[t];
        sink.threshold = threshold;
        sink.sel = sel;
        sink.q0 = q0;
        sink.hits.resize(q1 - q0);
        scan(s, q0, q1, j0, j1, sink);
    });
    // Tasks are ordered by query range, then database range: concatenating
    // them keeps database order within each query.
    result.lims.assign(nq + 1, 0);
    result.distances.clear();
    result.labels.clear();
    for (size_t q = 0; q < nq; q++) {
        size_t qt = q / sp.q_step;
        for (size_t bt = 0; bt < sp.nb_tasks; bt++) {
            const RangeSink& sink = sinks[qt * sp.nb_tasks + bt];
            for (auto& h : sink.hits[q - sink.q0]) {
                result.labels.push_back(h.first);
                result.distances.push_back(to_distance(metric, h.second));
            }
        }
        result.lims[q + 1] = result.labels.size();
    }
}

void pairwise_distances(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType metric,
                        float* out) {
    std::vector<float> qnorms;
    if (metric == METRIC_L2 && nq >= 4) {
        qnorms.resize(nq);
        norms_L2sqr(xq, nq, d, qnorms.data());
    }
    InterruptPoll poll;
    Scan s{xq, nq, xb, nb, d, metric, nullptr, qnorms.data(), &poll};
    Split sp = plan(nq, nb, d);
    std::vector<float> packed;
    if (sp.nq_tasks == 1 && sp.nb_tasks > 1) packed = pack_queries(s);
    PackedDatabase shared;
    if (sp.nb_tasks == 1) shared = maybe_pack_database(s, sp);
    parallel_for(sp.nq_tasks * sp.nb_tasks, [&](size_t t) {
        size_t qt = t / sp.nb_tasks, bt = t % sp.nb_tasks;
        size_t q0 = qt * sp.q_step, q1 = std::min(nq, q0 + sp.q_step);
        size_t j0 = bt * sp.b_step, j1 = std::min(nb, j0 + sp.b_step);
        auto sink = [&](size_t q, size_t jstart, const float* sc, size_t n) {
            for (size_t j = 0; j < n; j++) out[q * nb + jstart + j] = to_distance(metric, sc[j]);
        };
        scan(s, q0, q1, j0, j1, sink);
    });
}

// Large products run on the pool by ranges of q's rows (whole micro-kernel
// tiles, x packed once for all of them); every entry is the same micro-kernel
// sum whatever the split, so the bits do not depend on the threads. Called
// from inside a task it runs on that task's thread.
void gemm_ip(const float* q, size_t nq, const float* x, size_t nx, size_t d, float* out) {
    InterruptPoll poll;
    Scan s{q, nq, x, nx, d, METRIC_INNER_PRODUCT, nullptr, nullptr, &poll};
    auto sink = [&](size_t i, size_t j0, const float* sc, size_t n) {
        for (size_t j = 0; j < n; j++) out[i * nx + j0 + j] = -sc[j];
    };
    if (nq == 0 || nx == 0) return;
    const size_t mr = simd().gemm.mr, threads = size_t(get_num_threads());
    if (threads == 1 || in_parallel_region() || nq < 4 * mr || nq * nx * d < (size_t(1) << 24)) {
        scan_gemm(s, 0, nq, 0, nx, sink);
        return;
    }
    const PackedDatabase pk = pack_database(s);
    const size_t rows = (std::max<size_t>(mr, nq / (4 * threads)) + mr - 1) / mr * mr;
    parallel_for((nq + rows - 1) / rows, [&](size_t t) {
        scan_gemm(s, t * rows, std::min(nq, (t + 1) * rows), 0, nx, sink);
    });
}

// Row-wise passes over large matrices run in chunks on the pool.
template <class F>
void for_rows(size_t n, size_t d, F&& f) {
    const size_t chunk = std::max<size_t>(1, (size_t(1) << 16) / std::max<size_t>(d, 1));
    parallel_for((n + chunk - 1) / chunk, [&](size_t t) {
        for (size_t i = t * chunk; i < std::min(n, t * chunk + chunk); i++) f(i);
    });
}

void norms_L2sqr(const float* x, size_t n, size_t d, float* out) {
    const SimdKernels& K = simd();
    for_rows(n, d, [&](size_t i) { out[i] = K.inner_product(x + i * d, x + i * d, d); });
}

void normalize_L2(float* x, size_t n, size_t d) {
    const SimdKernels& K = simd();
    for_rows(n, d, [&](size_t i) {
        float* row = x + i * d;
        float nrm = std::sqrt(K.inner_product(row, row, d));
        if (nrm > 0) {
            float inv = 1.f / nrm;
            for (size_t k = 0; k < d; k++) row[k] *= inv;
        }
    });
}

}  // namespace nearly
