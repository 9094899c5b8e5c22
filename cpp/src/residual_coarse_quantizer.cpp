#include "nearly/residual_coarse_quantizer.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
constexpr size_t kMaxBits = 40;
}  // namespace

ResidualCoarseQuantizer::ResidualCoarseQuantizer(int d, size_t M, size_t nbits, MetricType metric)
    : ResidualCoarseQuantizer(d, std::vector<size_t>(M, nbits), metric) {}

ResidualCoarseQuantizer::ResidualCoarseQuantizer(int d, const std::vector<size_t>& nbits, MetricType metric,
                                                 bool local_search)
    : Index(d, metric), rq(size_t(d), nbits, ResidualQuantizer::ST_decompress) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     std::string(name()) + ": L2 or inner product only");
    NEARLY_CHECK_ARG(rq.tot_code_bits <= kMaxBits, std::string(name()) + ": M * nbits must be at most " +
                                                       std::to_string(kMaxBits) + " (got " +
                                                       std::to_string(rq.tot_code_bits) + ")");
    if (local_search) {
        NEARLY_CHECK_ARG(rq.uniform_nbits() != 0, "LocalSearchCoarseQuantizer: codebooks of one width only");
        rq.local_search = true;
        beam_factor = -1.f;
    }
    is_trained = false;
}

void ResidualCoarseQuantizer::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n > 0, std::string(name()) + ": train() needs vectors");
    check_finite(x, size_t(n) * size_t(d), "training data");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    rq.verbose = verbose;
    // rq's mode may have been switched by hand before training: an LSQ's
    // codebooks are searched exhaustively only.
    if (rq.local_search) beam_factor = -1.f;
    rq.train(size_t(n), x);
    rq.compute_codebook_tables(beam_wants_tables());
    ntotal = idx_t(1) << rq.tot_code_bits;
    is_trained = true;
    centroid_norms_.clear();
    if (beam_factor < 0) compute_centroid_norms();
}

void ResidualCoarseQuantizer::set_trained(bool trained) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (trained && !rq.is_trained)
        throw NotSupported(std::string(name()) + ": is_trained = True needs its quantizer trained (or its codebooks "
                           "assigned and its is_trained set)");
    if (rq.local_search) beam_factor = -1.f;
    is_trained = trained;
    ntotal = trained ? idx_t(1) << rq.tot_code_bits : 0;
    if (trained) rq.compute_codebook_tables(beam_wants_tables());  // codebooks may have been assigned by hand
    centroid_norms_.clear();
    if (trained && beam_factor < 0) compute_centroid_norms();
}

void ResidualCoarseQuantizer::set_rq(const ResidualQuantizer& other) {
    check_writable();
    NEARLY_CHECK_ARG(other.d == size_t(d) && other.nbits == rq.nbits,
                     std::string(name()) + ": " + (local_search() ? "lsq" : "rq") +
                         " = ...: a quantizer of the same d and codebook widths");
    if (other.nsplits != 1 || other.local_search != rq.local_search)
        throw NotSupported(local_search() ? "LocalSearchCoarseQuantizer: its quantizer is a local search quantizer "
                                            "(LocalSearchQuantizer), not product or residual mode"
                                          : "ResidualCoarseQuantizer: its quantizer is a plain residual quantizer "
                                            "(beam search), not product or local search mode");
    {
        std::unique_lock<SharedMutex> lk(rw_mutex_);
        rq = other;
        rq.set_search_type(ResidualQuantizer::ST_decompress);  // centroids are decoded; no code stores a norm
    }
    set_trained(rq.is_trained);
}

void ResidualCoarseQuantizer::check_beam_factor(float bf) const {
    if (local_search() && !(bf < 0))
        throw InvalidArgument("LocalSearchCoarseQuantizer: its codebooks are not residual, so only the exhaustive "
                              "scan searches them: beam_factor must be negative (got " + std::to_string(bf) + ")");
    NEARLY_CHECK_ARG(bf < 0 || bf >= 1.f, "ResidualCoarseQuantizer: beam_factor must be at least 1, or negative "
                                          "for the exhaustive scan (got " + std::to_string(bf) + ")");
}

void ResidualCoarseQuantizer::set_beam_factor(float bf) {
    check_beam_factor(bf);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    beam_factor = bf;
    if (bf < 0 && is_trained && centroid_norms_.empty()) compute_centroid_norms();
    if (bf >= 0 && is_trained && !rq.has_beam_tables() && beam_wants_tables()) rq.compute_codebook_tables(true);
}

// The beam's cross products, where they fit, only while the beam is the
// search: the exhaustive scan (and knn_centroids_*, a quantizer built per
// call) never reads them. A per-search beam_factor on an exhaustive-mode
// quantizer then beams through the residuals.
bool ResidualCoarseQuantizer::beam_wants_tables() const { return beam_factor >= 0 && rq.beam_tables_fit(); }

void ResidualCoarseQuantizer::compute_centroid_norms() {
    if (metric_type != METRIC_L2) return;
    // 4 bytes per centroid: refused beyond 2^32 of them (16 GiB).
    NEARLY_CHECK_ARG(rq.tot_code_bits <= 32, std::string(name()) + ": the exhaustive scan keeps a norm per "
                                            "centroid; at most 2^32 centroids");
    centroid_norms_.resize(size_t(ntotal));
    parallel_for_blocks(size_t(ntotal), 4096, [&](size_t t) {
        std::vector<int32_t> idx(rq.M);
        std::vector<float> c(static_cast<size_t>(d));
        rq.centroid_indexes(uint64_t(t), idx.data());
        rq.decode_unpacked(idx.data(), c.data(), 1);
        centroid_norms_[t] = simd().inner_product(c.data(), c.data(), size_t(d));
    });
}

void ResidualCoarseQuantizer::check_key(idx_t key) const {
    if (key < 0 || key >= ntotal)
        throw OutOfRange(std::string(name()) + ": centroid " + std::to_string(key) + " out of range [0, " +
                         std::to_string(ntotal) + ")");
}

void ResidualCoarseQuantizer::reconstruct(idx_t key, float* out) const {
    if (!is_trained) throw NotSupported(std::string(name()) + ": not trained");
    check_key(key);
    std::vector<int32_t> idx(rq.M);
    rq.centroid_indexes(uint64_t(key), idx.data());
    rq.decode_unpacked(idx.data(), out, 1);
}

void ResidualCoarseQuantizer::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    NEARLY_CHECK_ARG(ni >= 0, "reconstruct_n: ni must be non-negative");
    if (!is_trained) throw NotSupported(std::string(name()) + ": not trained");
    if (ni > 0) check_key(i0), check_key(i0 + ni - 1);
    parallel_for_blocks(size_t(ni), 4096, [&](size_t i) {
        std::vector<int32_t> idx(rq.M);
        rq.centroid_indexes(uint64_t(i0) + i, idx.data());
        rq.decode_unpacked(idx.data(), out + i * size_t(d), 1);
    });
}

void ResidualCoarseQuantizer::add(idx_t, const float*) {
    throw NotSupported(std::string(name()) + ": add() not supported: its centroids are the sums of its "
                       "codebooks' words (train() it)");
}

void ResidualCoarseQuantizer::reset() {
    throw NotSupported(std::string(name()) + ": reset() not supported: its centroids are virtual");
}

void ResidualCoarseQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                     const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported(std::string(name()) + ": not trained");
    float bf = beam_factor;
    if (params) {
        const auto* p = dynamic_cast<const SearchParametersResidualCoarseQuantizer*>(params);
        NEARLY_CHECK_ARG(p, std::string(name()) + ": search parameters must be "
                            "SearchParametersResidualCoarseQuantizer");
        check_beam_factor(p->beam_factor);
        bf = p->beam_factor;
    }
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (bf < 0)
        search_exhaustive(n, x, k, D, I);
    else
        search_beam(n, x, k, bf, D, I);
}

void ResidualCoarseQuantizer::search_beam(idx_t n, const float* x, idx_t k, float bf, float* D, idx_t* I) const {
    const size_t kk = size_t(k), M = rq.M, dd = d;
    const size_t beam = size_t(std::min<double>(double(ntotal), std::max(double(kk), std::floor(kk * double(bf)))));
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    // Queries in slices: each holds beam x M codes and distances.
    const size_t slice = std::max<size_t>(1, (size_t(64) << 20) / (beam * (M + 1) * sizeof(int32_t)));
    std::vector<int32_t> codes;
    std::vector<float> dist;
    for (size_t q0 = 0; q0 < size_t(n); q0 += slice) {
        const size_t m = std::min(slice, size_t(n) - q0);
        codes.resize(m * beam * M);
        dist.resize(m * beam);
        // Through tables when they are there (codebooks assigned by hand
        // after training clear them: then on the residuals).
        if (rq.has_beam_tables())
            rq.refine_beam_LUT(m, x + q0 * dd, beam, codes.data(), dist.data());
        else
            rq.refine_beam(m, x + q0 * dd, beam, codes.data(), dist.data());
        parallel_for_blocks(m, 64, [&](size_t i) {
            float* Dq = D + (q0 + i) * kk;
            idx_t* Iq = I + (q0 + i) * kk;
            TopK::init(Dq, Iq, kk);
            std::vector<float> c(ip ? dd : 0);
            for (size_t j = 0; j < beam; j++) {
                const int32_t* cj = &codes[(i * beam + j) * M];
                if (cj[0] < 0) continue;  // a beam shorter than asked
                idx_t id = 0;
                for (size_t t = 0, shift = 0; t < M; shift += rq.nbits[t], t++) id |= idx_t(cj[t]) << shift;
                float s = dist[i * beam + j];
                if (ip) {  // the beam, searched by L2, re-scored by the inner product
                    rq.decode_unpacked(cj, c.data(), 1);
                    s = -simd().inner_product(x + (q0 + i) * dd, c.data(), dd);
                }
                TopK::push(Dq, Iq, kk, s, id);
            }
            TopK::finish(Dq, Iq, kk, ip, missing_distance(metric_type));
        });
    }
}

// Every centroid scored through the query's table of <x, word> (faiss's
// knn_centroids_*): centroid t's inner product with x is the sum of one
// entry per codebook, so a centroid costs about one add (codebook 0's
// words run innermost; the other codebooks' entries are summed once per
// stretch of K(0) centroids) where decoding it would cost d. L2 adds
// ||x||^2 and the centroid's norm, as the distance to the decoded centroid.
void ResidualCoarseQuantizer::search_exhaustive(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const {
    const size_t kk = size_t(k), dd = d, nc = size_t(ntotal), nq = size_t(n), T = rq.total_codebook_size;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    if (!ip && centroid_norms_.size() != nc)
        throw NotSupported(std::string(name()) + ": the exhaustive scan needs the centroid norms: "
                           "set_beam_factor(-1)");
    const size_t K0 = rq.K(0), M = rq.M;
    // The tables of a slice of queries at a time (about 64 MiB), and about
    // 2^26 centroid scores per slice between two looks at Ctrl-C.
    const size_t slice = std::max<size_t>(1, std::min((size_t(64) << 20) / (T * sizeof(float)), (size_t(1) << 26) / nc));
    std::vector<float> lut;
    InterruptPoll poll;
    for (size_t q0 = 0; q0 < nq; q0 += slice) {
        const size_t m = std::min(slice, nq - q0);
        lut.resize(m * T);
        gemm_ip(x + q0 * dd, m, rq.codebooks.data(), T, dd, lut.data());
        parallel_for_blocks(m, 16, [&](size_t i) {
            const float* tab = lut.data() + i * T;
            const float* xq = x + (q0 + i) * dd;
            const float xn = ip ? 0.f : simd().inner_product(xq, xq, dd);
            float* Dq = D + (q0 + i) * kk;
            idx_t* Iq = I + (q0 + i) * kk;
            TopK::init(Dq, Iq, kk);
            thread_local std::vector<int32_t> idx;
            thread_local std::vector<float> s;
            idx.resize(M);
            s.resize(K0);
            for (size_t t0 = 0; t0 < nc; t0 += K0) {
                rq.centroid_indexes(uint64_t(t0), idx.data());
                float rest = 0.f;
                for (size_t c = 1; c < M; c++) rest += tab[rq.codebook_offsets[c] + size_t(idx[c])];
                // An integer or-reduction (a float min would not vectorize
                // without reassociation): does any score reach the heap?
                const float thr = Dq[0];
                float* sj = s.data();
                int any = 0;
                if (ip) {
                    for (size_t j = 0; j < K0; j++) {
                        sj[j] = -(tab[j] + rest);
                        any |= sj[j] <= thr;
                    }
                } else {
                    const float* nrm = centroid_norms_.data() + t0;
                    for (size_t j = 0; j < K0; j++) {
                        sj[j] = xn + nrm[j] - 2.f * (tab[j] + rest);
                        any |= sj[j] <= thr;
                    }
                }
                if (!any) continue;  // most stretches, once the heap holds good ones
                for (size_t j = 0; j < K0; j++)
                    if (s[j] <= Dq[0]) TopK::push(Dq, Iq, kk, s[j], idx_t(t0 + j));
            }
            TopK::finish(Dq, Iq, kk, ip, missing_distance(metric_type));
        });
        poll();
    }
}

void ResidualCoarseQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint8_t>(is_trained);
    w.pod<float>(beam_factor);
    rq.write(w);
}

std::unique_ptr<ResidualCoarseQuantizer> ResidualCoarseQuantizer::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    const float bf = r.pod<float>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && trained <= 1 &&
                (bf < 0 || bf >= 1.f) && std::isfinite(bf),
            "bad ResidualCoarseQuantizer header");
    ResidualQuantizer rq = ResidualQuantizer::read(r, "ResidualCoarseQuantizer");
    r.check(rq.d == size_t(d) && rq.tot_code_bits <= kMaxBits && rq.nsplits == 1 && (!trained || rq.is_trained) &&
                (!rq.local_search || bf < 0),
            "ResidualCoarseQuantizer: its residual quantizer does not match");
    auto index = std::make_unique<ResidualCoarseQuantizer>(d, rq.nbits, MetricType(metric), rq.local_search);
    index->rq = std::move(rq);
    // Without the beam's tables faiss searches exhaustively; so does nearly.
    index->beam_factor = r.skip_precompute_tables ? -1.f : bf;
    if (trained) index->set_trained(true);
    return index;
}

}  // namespace nearly
