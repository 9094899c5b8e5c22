#include "nearly/residual_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "nearly/bitstring.h"
#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/progressive_dim_clustering.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

// faiss's 4- and 8-bit uniform norm codes.
uint32_t encode_qint(float x, float lo, float hi, int levels) {
    const float x1 = (x - lo) / (hi - lo) * float(levels);
    const int32_t xi = int32_t(std::floor(x1));
    return uint32_t(xi < 0 ? 0 : xi > levels - 1 ? levels - 1 : xi);
}

float decode_qint(uint32_t c, float lo, float hi, int levels) {
    return float((c + 0.5) / levels * (hi - lo) + lo);
}

// The first nout entries of each of nb final beams of B (codes of M
// indexes, best first) into rows i0.. of codes / distances (optional); a
// beam shorter than nout (K^M < nout) is padded with code -1 and +inf.
void write_final_beams(size_t i0, size_t nb, size_t B, size_t nout, size_t M, const int32_t* cod, const float* dist,
                       int32_t* codes, float* distances) {
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < nout; j++) {
            int32_t* out = codes + ((i0 + i) * nout + j) * M;
            const bool real = j < B;
            if (real)
                std::copy_n(cod + (i * B + j) * M, M, out);
            else
                std::fill(out, out + M, int32_t(-1));
            if (distances)
                distances[(i0 + i) * nout + j] = real ? dist[i * B + j] : std::numeric_limits<float>::infinity();
        }
}

// k-means of n points for codebook training: faiss's ProgressiveDimClustering
// or plain k-means.
std::vector<float> train_codebook(const ResidualQuantizer& rq, size_t n, const float* x, size_t K) {
    if (!(rq.train_type & ResidualQuantizer::Train_progressive_dim)) {
        Clustering clus(int(rq.d), int(K), rq.cp);
        clus.train(idx_t(n), x);
        return clus.centroids;
    }
    ProgressiveDimClusteringParameters params(rq.cp);
    params.progressive_dim_steps = rq.progressive_dim_steps;
    params.apply_pca = rq.apply_pca;
    ProgressiveDimClustering clus(int(rq.d), int(K), params);
    clus.train(idx_t(n), x);
    return std::move(clus.centroids);
}

}  // namespace

void beam_search_step(size_t d, size_t K, const float* cb, const float* cbn, size_t n, size_t B, const float* res,
                      const int32_t* codes, size_t m, size_t B2, float* new_res, int32_t* new_codes,
                      float* new_dist) {
    constexpr size_t kChunk = 32;  // vectors per task: B * K * kChunk scores in flight
    InterruptPoll poll;
    parallel_for((n + kChunk - 1) / kChunk, [&](size_t t) {
        const size_t i0 = t * kChunk, i1 = std::min(n, i0 + kChunk), rows = (i1 - i0) * B;
        std::vector<float> ip(rows * K), rn(rows);
        const float* r0 = res + i0 * B * d;
        gemm_ip(r0, rows, cb, K, d, ip.data());
        const SimdKernels& S = simd();
        for (size_t r = 0; r < rows; r++) rn[r] = S.inner_product(r0 + r * d, r0 + r * d, d);
        std::vector<std::pair<float, uint32_t>> cand(B * K);
        for (size_t i = i0; i < i1; i++) {
            const size_t base = (i - i0) * B;
            for (size_t b = 0; b < B; b++)
                for (size_t k = 0; k < K; k++) {
                    const size_t r = base + b;
                    cand[b * K + k] = {rn[r] + cbn[k] - 2.f * ip[r * K + k], uint32_t(b * K + k)};
                }
            std::partial_sort(cand.begin(), cand.begin() + B2, cand.end());
            for (size_t j = 0; j < B2; j++) {
                const size_t b = cand[j].second / K, k = cand[j].second % K;
                const float* rb = res + (i * B + b) * d;
                const float* ck = cb + k * d;
                float* nr = new_res + (i * B2 + j) * d;
                for (size_t l = 0; l < d; l++) nr[l] = rb[l] - ck[l];
                int32_t* nc = new_codes + (i * B2 + j) * (m + 1);
                std::copy(codes + (i * B + b) * m, codes + (i * B + b) * m + m, nc);
                nc[m] = int32_t(k);
                if (new_dist) new_dist[i * B2 + j] = std::max(cand[j].first, 0.f);
            }
        }
        poll();
    });
}

void beam_search_tab_step(size_t K, size_t n, size_t B, const float* cross, size_t ldc, const size_t* offsets,
                          const float* qcp, size_t ldqc, const float* cnorms, size_t m, const int32_t* codes,
                          const float* distances, size_t B2, int32_t* new_codes, float* new_distances) {
    InterruptPoll poll;
    parallel_for((n + 63) / 64, [&](size_t t) {
        std::vector<std::pair<float, uint32_t>> cand(B * K);
        std::vector<float> dots(K);
        for (size_t i = t * 64; i < std::min(n, t * 64 + 64); i++) {
            const float* q = qcp + i * ldqc;
            for (size_t b = 0; b < B; b++) {
                const int32_t* code = codes + (i * B + b) * m;
                std::fill(dots.begin(), dots.end(), 0.f);
                for (size_t l = 0; l < m; l++) {
                    const float* row = cross + (offsets[l] + size_t(code[l])) * ldc;
                    for (size_t k = 0; k < K; k++) dots[k] += row[k];
                }
                const float base = distances[i * B + b];
                for (size_t k = 0; k < K; k++)
                    cand[b * K + k] = {(base + cnorms[k]) - 2.f * q[k] + 2.f * dots[k], uint32_t(b * K + k)};
            }
            std::partial_sort(cand.begin(), cand.begin() + B2, cand.end());
            for (size_t j = 0; j < B2; j++) {
                const size_t b = cand[j].second / K, k = cand[j].second % K;
                int32_t* nc = new_codes + (i * B2 + j) * (m + 1);
                std::copy_n(codes + (i * B + b) * m, m, nc);
                nc[m] = int32_t(k);
                new_distances[i * B2 + j] = cand[j].first;
            }
        }
        poll();
    });
}

ResidualQuantizer::ResidualQuantizer(size_t d_, size_t M_, size_t nbits_, SearchType st)
    : ResidualQuantizer(d_, std::vector<size_t>(M_, nbits_), st) {}

ResidualQuantizer::ResidualQuantizer(size_t d_, const std::vector<size_t>& nbits_, SearchType st)
    : d(d_), M(nbits_.size()), nbits(nbits_), search_type(st) {
    NEARLY_CHECK_ARG(d > 0, "ResidualQuantizer: d must be positive");
    NEARLY_CHECK_ARG(M > 0, "ResidualQuantizer: M must be positive");
    for (size_t b : nbits)
        if (b < 1 || b > 16)
            throw NotSupported("ResidualQuantizer: nbits=" + std::to_string(b) +
                               " not implemented in nearly (1 to 16 bits per codebook)");
    check_search_type(st);
    codebook_offsets.assign(M + 1, 0);
    for (size_t m = 0; m < M; m++) codebook_offsets[m + 1] = codebook_offsets[m] + K(m);
    total_codebook_size = codebook_offsets[M];
    tot_code_bits = 0;
    for (size_t b : nbits) tot_code_bits += b;
    cp.niter = 10;
    set_derived();
}

size_t ResidualQuantizer::uniform_nbits() const {
    for (size_t b : nbits)
        if (b != nbits[0]) return 0;
    return nbits[0];
}

size_t ResidualQuantizer::one_nbits() const {
    const size_t nb = uniform_nbits();
    if (!nb)
        throw NotSupported("ResidualQuantizer: codebooks of different widths serve the beam search only, not local "
                           "search, product mode or fast-scan");
    return nb;
}

void ResidualQuantizer::check_search_type(SearchType st) {
    if (!valid_search_type(int(st)))
        throw NotSupported("ResidualQuantizer: search type " + std::to_string(int(st)) +
                           " not implemented in nearly (ST_decompress to ST_norm_rq2x4)");
}

ResidualQuantizer ResidualQuantizer::product(size_t d, size_t nsplits, size_t Msub, size_t nbits, SearchType st) {
    NEARLY_CHECK_ARG(nsplits > 0 && d % nsplits == 0,
                     "ProductResidualQuantizer: nsplits must divide d = " + std::to_string(d));
    NEARLY_CHECK_ARG(Msub > 0, "ProductResidualQuantizer: Msub must be positive");
    ResidualQuantizer q(d, nsplits * Msub, nbits, st);
    q.nsplits = nsplits;  // one width for all codebooks, as faiss's
    return q;
}

void ResidualQuantizer::initialize_from(const ResidualQuantizer& other, size_t skip_M) {
    NEARLY_CHECK_ARG(skip_M + M <= other.M, "initialize_from: skip_M + M must be at most the other quantizer's M (" +
                                                std::to_string(other.M) + ")");
    NEARLY_CHECK_ARG(other.d == d, "initialize_from: the other quantizer has another d");
    if (other.nsplits != 1 || other.local_search)
        throw NotSupported("initialize_from: from a plain residual quantizer only");
    if (search_type >= ST_norm_qint8)
        throw NotSupported("initialize_from: search type " + std::to_string(int(search_type)) +
                           " learns its norm coding in train(); use ST_decompress, ST_LUT_nonorm, ST_norm_from_LUT "
                           "or ST_norm_float");
    const SearchType st = search_type;
    const std::vector<size_t> widths(other.nbits.begin() + skip_M, other.nbits.begin() + skip_M + M);
    ResidualQuantizer q(d, widths, st);
    q.train_type = other.train_type;
    q.max_beam_size = other.max_beam_size;
    q.cp = other.cp;
    q.progressive_dim_steps = other.progressive_dim_steps;
    q.apply_pca = other.apply_pca;
    q.verbose = other.verbose;
    q.use_beam_LUT = other.use_beam_LUT;
    if (other.is_trained) {
        const float* first = other.codebooks.data() + other.codebook_offsets[skip_M] * d;
        q.codebooks.assign(first, first + q.total_codebook_size * d);
        q.compute_codebook_tables();
        q.is_trained = true;
    }
    *this = std::move(q);
}

ResidualQuantizer ResidualQuantizer::split(size_t s) const {
    const size_t ds = d / nsplits, Ms = M / nsplits, Kc = K();
    ResidualQuantizer sub(ds, Ms, one_nbits());
    sub.train_type = train_type;
    sub.max_beam_size = max_beam_size;
    sub.cp = cp;
    sub.progressive_dim_steps = progressive_dim_steps;
    sub.apply_pca = apply_pca;
    sub.verbose = verbose;
    sub.local_search = local_search;
    sub.lsq = lsq;
    if (!codebooks.empty()) {
        sub.codebooks.resize(Ms * Kc * ds);
        for (size_t w = 0; w < Ms * Kc; w++)
            std::copy_n(&codebooks[((s * Ms) * Kc + w) * d + s * ds], ds, &sub.codebooks[w * ds]);
        sub.compute_codebook_tables();
    }
    sub.is_trained = is_trained;
    return sub;
}

void ResidualQuantizer::train_product(size_t n, const float* x, const float* centroids) {
    const size_t ds = d / nsplits, Ms = M / nsplits, Kc = K();
    std::vector<float> cb(M * Kc * d, 0.f), xs(n * ds);
    for (size_t s = 0; s < nsplits; s++) {
        if (verbose) std::printf("Training the residual quantizer of slice %zu / %zu\n", s + 1, nsplits);
        for (size_t i = 0; i < n; i++) std::copy_n(x + i * d + s * ds, ds, &xs[i * ds]);
        ResidualQuantizer sub = split(s);
        sub.train(n, xs.data());
        for (size_t w = 0; w < Ms * Kc; w++)
            std::copy_n(&sub.codebooks[w * ds], ds, &cb[((s * Ms) * Kc + w) * d + s * ds]);
    }
    codebooks = std::move(cb);
    is_trained = true;
    // The norm format learns the norms of the training points' reconstructions.
    std::vector<int32_t> idx(n * M);
    std::vector<float> res(n * d);
    encode_product(n, x, idx.data(), res.data());
    train_norm_of_reconstructions(n, x, res.data(), d, centroids);
    compute_codebook_tables();
}

void ResidualQuantizer::encode_product(size_t n, const float* x, int32_t* codes, float* residuals) const {
    const size_t ds = d / nsplits, Ms = M / nsplits;
    std::vector<float> xs(n * ds), rs(residuals ? n * ds : 0);
    std::vector<int32_t> cs(n * Ms);
    for (size_t s = 0; s < nsplits; s++) {
        for (size_t i = 0; i < n; i++) std::copy_n(x + i * d + s * ds, ds, &xs[i * ds]);
        split(s).encode_unpacked(n, xs.data(), cs.data(), residuals ? rs.data() : nullptr);
        for (size_t i = 0; i < n; i++) {
            std::copy_n(&cs[i * Ms], Ms, codes + i * M + s * Ms);
            if (residuals) std::copy_n(&rs[i * ds], ds, residuals + i * d + s * ds);
        }
    }
}

void ResidualQuantizer::set_derived() {
    switch (search_type) {
        case ST_norm_float: norm_bits = 32; break;
        case ST_norm_qint8:
        case ST_norm_cqint8:
        case ST_norm_lsq2x4:
        case ST_norm_rq2x4: norm_bits = 8; break;
        case ST_norm_qint4:
        case ST_norm_cqint4: norm_bits = 4; break;
        default: norm_bits = 0; break;
    }
    code_size = (tot_code_bits + norm_bits + 7) / 8;
}

void ResidualQuantizer::set_search_type(SearchType st) {
    check_search_type(st);
    search_type = st;
    set_derived();
}

void ResidualQuantizer::encode_unpacked(size_t n, const float* x, int32_t* codes, float* residuals) const {
    if (nsplits > 1) return encode_product(n, x, codes, residuals);
    if (local_search) {
        encode_local_search(n, x, codes);
        if (residuals)
            parallel_for_blocks(n, 256, [&](size_t i) {
                decode_unpacked(codes + i * M, residuals + i * d, 1);
                for (size_t t = 0; t < d; t++) residuals[i * d + t] = x[i * d + t] - residuals[i * d + t];
            });
        return;
    }
    const size_t B = size_t(std::max(1, max_beam_size));
    if (use_beam_LUT && has_beam_tables()) {
        // The best of each final beam; residuals from its decoding.
        constexpr size_t kBlock = 4096;
        std::vector<int32_t> beam;
        std::vector<float> dist;
        for (size_t i0 = 0; i0 < n; i0 += kBlock) {
            const size_t nb = std::min(kBlock, n - i0);
            beam.resize(nb * B * M);
            dist.resize(nb * B);
            refine_beam_LUT(nb, x + i0 * d, B, beam.data(), dist.data());
            for (size_t i = 0; i < nb; i++) std::copy_n(&beam[i * B * M], M, codes + (i0 + i) * M);
        }
        if (residuals)
            parallel_for_blocks(n, 256, [&](size_t i) {
                decode_unpacked(codes + i * M, residuals + i * d, 1);
                for (size_t t = 0; t < d; t++) residuals[i * d + t] = x[i * d + t] - residuals[i * d + t];
            });
        return;
    }
    beam_search(n, x, B, 1, codes, residuals, nullptr);
}

void ResidualQuantizer::refine_beam(size_t n, const float* x, size_t beam_size, int32_t* codes,
                                    float* distances) const {
    NEARLY_CHECK_ARG(nsplits == 1 && !local_search, "refine_beam: a plain residual quantizer only");
    beam_search(n, x, beam_size, beam_size, codes, nullptr, distances);
}

bool ResidualQuantizer::has_beam_tables() const {
    return is_trained && centroid_norms.size() == total_codebook_size && cross_products.size() == cross_products_size();
}

void ResidualQuantizer::refine_beam_LUT(size_t n, const float* x, size_t beam_size, int32_t* codes,
                                        float* distances) const {
    NEARLY_CHECK_ARG(nsplits == 1 && !local_search, "refine_beam_LUT: a plain residual quantizer only");
    NEARLY_CHECK_ARG(has_beam_tables(), "refine_beam_LUT: the codebook cross products are not computed");
    const size_t ts = total_codebook_size;
    // Queries whose tables are held at once: at most 64 MiB of them.
    const size_t kBlock = std::max<size_t>(1, std::min<size_t>(1024, (size_t(16) << 20) / ts));
    for (size_t i0 = 0; i0 < n; i0 += kBlock) {
        const size_t nb = std::min(kBlock, n - i0);
        std::vector<float> lut(nb * ts), dist(nb), dist2;
        gemm_ip(x + i0 * d, nb, codebooks.data(), ts, d, lut.data());
        norms_L2sqr(x + i0 * d, nb, d, dist.data());
        std::vector<int32_t> cod, cod2;
        size_t B = 1, cross_off = 0;
        for (size_t m = 0; m < M; m++) {
            const size_t Km = K(m), B2 = std::min(B * Km, beam_size);
            cod2.resize(nb * B2 * (m + 1));
            dist2.resize(nb * B2);
            beam_search_tab_step(Km, nb, B, cross_products.data() + cross_off, Km, codebook_offsets.data(),
                                 lut.data() + codebook_offsets[m], ts, centroid_norms.data() + codebook_offsets[m],
                                 m, cod.data(), dist.data(), B2, cod2.data(), dist2.data());
            if (m > 0) cross_off += codebook_offsets[m] * Km;
            cod.swap(cod2);
            dist.swap(dist2);
            B = B2;
        }
        for (float& v : dist) v = std::max(v, 0.f);  // as the residual beam's squared norms
        write_final_beams(i0, nb, B, beam_size, M, cod.data(), dist.data(), codes, distances);
    }
}

void ResidualQuantizer::beam_search(size_t n, const float* x, size_t beam_size, size_t nout, int32_t* codes,
                                    float* residuals, float* distances) const {
    // Vectors go through all M steps a block at a time: bounded memory
    // (two beams of B x d residuals each, within max_mem_distances) and
    // Ctrl-C between blocks.
    const size_t per_vector = 2 * std::max<size_t>(beam_size, 1) * d * sizeof(float);
    const size_t kBlock = std::max<size_t>(1, std::min(4096 * 5 / std::max<size_t>(beam_size, 5),
                                                       max_mem_distances / per_vector));
    InterruptPoll poll;
    for (size_t i0 = 0; i0 < n; i0 += kBlock) {
        const size_t nb = std::min(kBlock, n - i0);
        size_t B = 1;
        std::vector<float> res(x + i0 * d, x + (i0 + nb) * d), res2, dist;
        std::vector<int32_t> cod, cod2;
        for (size_t m = 0; m < M; m++) {
            const size_t Kc = K(m), B2 = std::min(B * Kc, beam_size);
            res2.resize(nb * B2 * d);
            cod2.resize(nb * B2 * (m + 1));
            if (m + 1 == M && distances) dist.resize(nb * B2);
            const size_t off = codebook_offsets[m];
            beam_search_step(d, Kc, codebooks.data() + off * d, centroid_norms.data() + off, nb, B, res.data(),
                             cod.data(), m, B2, res2.data(), cod2.data(),
                             m + 1 == M && distances ? dist.data() : nullptr);
            res.swap(res2);
            cod.swap(cod2);
            B = B2;
        }
        write_final_beams(i0, nb, B, nout, M, cod.data(), dist.data(), codes, distances);
        if (residuals)
            for (size_t i = 0; i < nb; i++)
                for (size_t j = 0; j < std::min(B, nout); j++)
                    std::copy_n(&res[(i * B + j) * d], d, residuals + ((i0 + i) * nout + j) * d);
        poll();
    }
}

void ResidualQuantizer::train(size_t n, const float* x, const float* centroids) {
    NEARLY_CHECK_ARG(n > 0, "ResidualQuantizer: cannot train on 0 vectors");
    check_finite(x, n * d, "training data");
    NEARLY_CHECK_ARG((train_type & ~(Train_progressive_dim | Train_refine_codebook | Train_top_beam |
                                     Skip_codebook_tables)) == 0,
                     "ResidualQuantizer: unknown train_type bits " + std::to_string(train_type));
    if (nsplits > 1) return train_product(n, x, centroids);
    if (local_search) return train_local_search(n, x, centroids);
    if (verbose)
        std::printf("Training ResidualQuantizer, with %zu steps on %zu %zuD vectors\n", M, n, d);
    std::vector<float> cb(total_codebook_size * d, 0.f);
    size_t B = 1;
    std::vector<float> res(x, x + n * d), res2, dist;
    std::vector<int32_t> cod, cod2;
    for (size_t m = 0; m < M; m++) {
        const size_t Kc = K(m);
        // The residuals of every beam entry, or of the best one.
        std::vector<float> top;
        const float* tr = res.data();
        size_t ntr = n * B;
        if ((train_type & Train_top_beam) && B > 1) {
            top.resize(n * d);
            for (size_t i = 0; i < n; i++) std::copy(&res[i * B * d], &res[i * B * d] + d, &top[i * d]);
            tr = top.data();
            ntr = n;
        }
        std::vector<float> c = train_codebook(*this, ntr, tr, Kc);
        std::copy(c.begin(), c.end(), cb.begin() + codebook_offsets[m] * d);
        std::vector<float> cbn(Kc);
        norms_L2sqr(c.data(), Kc, d, cbn.data());
        const size_t B2 = std::min<size_t>(B * Kc, size_t(std::max(1, max_beam_size)));
        res2.resize(n * B2 * d);
        cod2.resize(n * B2 * (m + 1));
        dist.resize(n * B2);
        beam_search_step(d, Kc, c.data(), cbn.data(), n, B, res.data(), cod.data(), m, B2, res2.data(), cod2.data(),
                         dist.data());
        res.swap(res2);
        cod.swap(cod2);
        if (verbose) {
            double tot = 0;
            for (size_t i = 0; i < n; i++) tot += dist[i * B2];
            std::printf("  train stage %zu, %zu bits, mean quantization error %g, beam size %zu -> %zu\n", m, nbits[m],
                        tot / double(n), B, B2);
        }
        B = B2;
    }
    codebooks = std::move(cb);
    compute_codebook_tables();
    is_trained = true;
    if (train_type & Train_refine_codebook) {
        // faiss's codebook refinement: least-squares codebooks for the
        // training points' codes, then their codes again, a few times.
        std::vector<int32_t> codes(n * M);
        for (int it = 0; it < niter_codebook_refine; it++) {
            if (verbose) std::printf("re-estimating the codebooks to minimize quantization errors (iter %d)\n", it);
            encode_unpacked(n, x, codes.data(), nullptr);
            update_codebooks(x, codes.data(), n);
            compute_codebook_tables();
        }
        res.resize(n * d);
        encode_unpacked(n, x, codes.data(), res.data());
        B = 1;
    }
    // The norms of the reconstructions of the training points (x - best residual).
    train_norm_of_reconstructions(n, x, res.data(), B * d, centroids);
}

void ResidualQuantizer::retrain_AQ_codebook(size_t n, const float* x) {
    NEARLY_CHECK_ARG(is_trained, "retrain_AQ_codebook: the quantizer is not trained");
    NEARLY_CHECK_ARG(n > 0, "retrain_AQ_codebook: needs vectors");
    check_finite(x, n * d, "x");
    std::vector<int32_t> codes(n * M);
    encode_unpacked(n, x, codes.data(), nullptr);
    update_codebooks(x, codes.data(), n);
    compute_codebook_tables();
    if (norm_bits && search_type != ST_norm_float) {
        // The norm coding follows the new reconstructions.
        std::vector<float> res(n * d);
        encode_unpacked(n, x, codes.data(), res.data());
        train_norm_of_reconstructions(n, x, res.data(), d, nullptr);
    }
}

void ResidualQuantizer::train_norm_of_reconstructions(size_t n, const float* x, const float* res, size_t res_stride,
                                                      const float* centroids) {
    std::vector<float> norms(n);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            double v = double(x[i * d + j] - res[i * res_stride + j]);
            if (centroids) v += double(centroids[i * d + j]);
            s += v * v;
        }
        norms[i] = float(s);
    }
    train_norm(n, norms.data());
}

void ResidualQuantizer::train_norm(size_t n, const float* norms) {
    norm_min = HUGE_VALF;
    norm_max = -HUGE_VALF;
    for (size_t i = 0; i < n; i++) {
        norm_min = std::min(norm_min, norms[i]);
        norm_max = std::max(norm_max, norms[i]);
    }
    norm_centroids.clear();
    if (search_type == ST_norm_cqint8 || search_type == ST_norm_cqint4) {
        // faiss's Clustering1D::train_exact: 1-d k-means of the norms.
        const size_t k = size_t(1) << norm_bits;
        std::vector<float> v(norms, norms + n);
        if (v.size() < k) v.resize(k, v.empty() ? 0.f : v.back());  // too few: repeat the last
        ClusteringParameters p;
        p.niter = 25;
        p.max_points_per_centroid = std::numeric_limits<int>::max();
        Clustering clus(1, int(k), p);
        clus.train(idx_t(v.size()), v.data());
        norm_centroids = clus.centroids;
        std::sort(norm_centroids.begin(), norm_centroids.end());
    } else if (search_type == ST_norm_rq2x4 || search_type == ST_norm_lsq2x4) {
        // faiss's: a residual (or local search) quantizer of the norms, 2
        // codebooks of 16.
        ResidualQuantizer nq(1, 2, 4);
        nq.local_search = search_type == ST_norm_lsq2x4;
        nq.train(n, norms);
        norm_centroids = nq.codebooks;
    }
}

void ResidualQuantizer::set_codebooks(const float* c) {
    codebooks.assign(c, c + total_codebook_size * d);
    compute_codebook_tables();
}

void ResidualQuantizer::set_search_type(int st) {
    if (!valid_search_type(st)) throw InvalidArgument("unknown search type " + std::to_string(st));
    if (st == search_type) return;
    const auto normless = [](int t) { return t == ST_decompress || t == ST_LUT_nonorm || t == ST_norm_from_LUT; };
    if (!normless(st) || !normless(search_type))
        throw NotSupported("ResidualQuantizer: search_type can change only among ST_decompress, ST_LUT_nonorm and "
                           "ST_norm_from_LUT (codes without a norm); build the index with the search type it "
                           "should store");
    search_type = SearchType(st);
    if (codebooks.size() == total_codebook_size * d) compute_codebook_tables();  // ST_norm_from_LUT's cross products
}

void ResidualQuantizer::pack_codes(size_t n, const int32_t* idx, uint8_t* out) const {
    std::vector<float> norms(n);
    parallel_for_blocks(n, 256, [&](size_t i) {
        std::vector<float> v(d);
        decode_unpacked(idx + i * M, v.data(), 1);
        double s = 0;
        for (float a : v) s += double(a) * a;
        norms[i] = float(s);
    });
    pack(n, idx, norms.data(), out);
}

size_t ResidualQuantizer::cross_products_size() const {
    size_t n = 0;
    for (size_t m = 1; m < M; m++) n += codebook_offsets[m] * K(m);
    return n;
}

bool ResidualQuantizer::beam_tables_fit() const {
    constexpr size_t kMaxFloats = size_t(64) << 20;  // 256 MiB: RCQ2x16's would be 16 GiB
    return nsplits == 1 && !local_search && cross_products_size() <= kMaxFloats;
}

void ResidualQuantizer::compute_codebook_tables(bool cross_products_always) {
    centroid_norms.resize(total_codebook_size);
    norms_L2sqr(codebooks.data(), total_codebook_size, d, centroid_norms.data());
    cross_products.clear();
    const bool wanted = search_type == ST_norm_from_LUT || (use_beam_LUT && beam_tables_fit());
    if (!wanted && !cross_products_always) return;
    // The words of codebooks 0..m-1 against codebook m's.
    for (size_t m = 1; m < M; m++) {
        const size_t prev = codebook_offsets[m];
        std::vector<float> t(prev * K(m));
        gemm_ip(codebooks.data(), prev, codebooks.data() + prev * d, K(m), d, t.data());
        cross_products.insert(cross_products.end(), t.begin(), t.end());
    }
}

uint32_t ResidualQuantizer::encode_norm(float norm) const {
    switch (search_type) {
        case ST_norm_float: {
            uint32_t u;
            std::memcpy(&u, &norm, 4);
            return u;
        }
        case ST_norm_qint8: return encode_qint(norm, norm_min, norm_max, 256);
        case ST_norm_qint4: return encode_qint(norm, norm_min, norm_max, 16);
        case ST_norm_cqint8:
        case ST_norm_cqint4: {
            // The nearest centroid (ties to the lower one, as faiss's search).
            auto it = std::lower_bound(norm_centroids.begin(), norm_centroids.end(), norm);
            size_t j = size_t(it - norm_centroids.begin());
            if (j == norm_centroids.size() || (j > 0 && norm - norm_centroids[j - 1] <= norm_centroids[j] - norm)) j--;
            return uint32_t(j);
        }
        case ST_norm_lsq2x4:
        case ST_norm_rq2x4: {
            // The nearest of the 256 sums (ties to the lower code).
            const float* c = norm_centroids.data();
            uint32_t best = 0;
            float best_err = HUGE_VALF;
            for (uint32_t code = 0; code < 256; code++) {
                const float err = std::fabs(norm - (c[code & 15] + c[16 + (code >> 4)]));
                if (err < best_err) {
                    best_err = err;
                    best = code;
                }
            }
            return best;
        }
        default: return 0;
    }
}

float ResidualQuantizer::decode_norm(uint32_t c) const {
    switch (search_type) {
        case ST_norm_float: {
            float f;
            std::memcpy(&f, &c, 4);
            return f;
        }
        case ST_norm_qint8: return decode_qint(c, norm_min, norm_max, 256);
        case ST_norm_qint4: return decode_qint(c, norm_min, norm_max, 16);
        case ST_norm_cqint8:
        case ST_norm_cqint4: return norm_centroids[std::min<size_t>(c, norm_centroids.size() - 1)];
        case ST_norm_lsq2x4:
        case ST_norm_rq2x4: return norm_centroids[c & 15] + norm_centroids[16 + ((c >> 4) & 15)];
        default: return 0.f;
    }
}

void ResidualQuantizer::pack(size_t n, const int32_t* codes, const float* norms, uint8_t* out) const {
    std::memset(out, 0, n * code_size);
    for (size_t i = 0; i < n; i++) {
        BitWriter bw{out + i * code_size};
        for (size_t m = 0; m < M; m++) bw.write(uint64_t(codes[i * M + m]), nbits[m]);
        if (norm_bits) bw.write(encode_norm(norms[i]), norm_bits);
    }
}

void ResidualQuantizer::compute_codes(const float* x, uint8_t* codes, size_t n, const float* centroids) const {
    NEARLY_CHECK_ARG(is_trained, "ResidualQuantizer: not trained");
    std::vector<int32_t> idx(n * M);
    std::vector<float> res(n * d);
    encode_unpacked(n, x, idx.data(), res.data());
    std::vector<float> norms(n, 0.f);
    if (norm_bits) {
        // ||x_hat (+ centroid)||^2, x_hat = x - residual.
        parallel_for_blocks(n, 256, [&](size_t i) {
            double s = 0;
            for (size_t j = 0; j < d; j++) {
                const float v = x[i * d + j] - res[i * d + j] + (centroids ? centroids[i * d + j] : 0.f);
                s += double(v) * v;
            }
            norms[i] = float(s);
        });
    }
    pack(n, idx.data(), norms.data(), codes);
}

void ResidualQuantizer::unpack(const uint8_t* code, int32_t* idx) const {
    BitReader br{code};
    for (size_t m = 0; m < M; m++) idx[m] = int32_t(br.read(nbits[m]));
}

void ResidualQuantizer::centroid_indexes(uint64_t t, int32_t* idx) const {
    for (size_t m = 0; m < M; m++) {
        idx[m] = int32_t(t & (K(m) - 1));
        t >>= nbits[m];
    }
}

void ResidualQuantizer::decode(const uint8_t* codes, float* x, size_t n) const {
    NEARLY_CHECK_ARG(is_trained, "ResidualQuantizer: not trained");
    std::vector<int32_t> idx(M);
    for (size_t i = 0; i < n; i++) {
        unpack(codes + i * code_size, idx.data());
        decode_unpacked(idx.data(), x + i * d, 1);
    }
}

void ResidualQuantizer::decode_unpacked(const int32_t* idx, float* x, size_t n) const {
    for (size_t i = 0; i < n; i++) {
        float* xi = x + i * d;
        std::fill(xi, xi + d, 0.f);
        for (size_t m = 0; m < M; m++) {
            const float* c = codebooks.data() + (codebook_offsets[m] + size_t(idx[i * M + m])) * d;
            for (size_t j = 0; j < d; j++) xi[j] += c[j];
        }
    }
}

void ResidualQuantizer::compute_lut(const float* q, float* lut) const {
    const SimdKernels& S = simd();
    S.inner_products_ny(q, codebooks.data(), d, total_codebook_size, lut);
}

void ResidualQuantizer::lut_sums(const uint8_t* codes, size_t n, const float* lut, float* out) const {
    const size_t nb = uniform_nbits();
    if (nb == 8) {
        // Byte-aligned indexes: four partial sums break the chain of adds.
        for (size_t i = 0; i < n; i++) {
            const uint8_t* c = codes + i * code_size;
            float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
            size_t m = 0;
            for (; m + 4 <= M; m += 4) {
                a0 += lut[m * 256 + c[m]];
                a1 += lut[(m + 1) * 256 + c[m + 1]];
                a2 += lut[(m + 2) * 256 + c[m + 2]];
                a3 += lut[(m + 3) * 256 + c[m + 3]];
            }
            for (; m < M; m++) a0 += lut[m * 256 + c[m]];
            out[i] = (a0 + a1) + (a2 + a3);
        }
        return;
    }
    if (nb == 4) {
        // Two indexes a byte, low nibble first: two partial sums.
        for (size_t i = 0; i < n; i++) {
            const uint8_t* c = codes + i * code_size;
            float a0 = 0.f, a1 = 0.f;
            size_t m = 0;
            for (; m + 2 <= M; m += 2) {
                const uint8_t b = c[m / 2];
                a0 += lut[m * 16 + (b & 15)];
                a1 += lut[(m + 1) * 16 + (b >> 4)];
            }
            if (m < M) a0 += lut[m * 16 + (c[m / 2] & 15)];
            out[i] = a0 + a1;
        }
        return;
    }
    // Other widths, mixed ones included: each index read from the (at most
    // three) bytes it covers, at places worked out once; two partial sums.
    struct Field {
        uint32_t byte, shift, bytes, mask;
        size_t lut;
    };
    std::vector<Field> fields(M);
    for (size_t m = 0, bit = 0; m < M; bit += nbits[m], m++)
        fields[m] = {uint32_t(bit >> 3), uint32_t(bit & 7), uint32_t(((bit & 7) + nbits[m] + 7) >> 3),
                     uint32_t(K(m) - 1), codebook_offsets[m]};
    const auto index = [](const uint8_t* c, const Field& f) {
        const uint8_t* p = c + f.byte;
        uint32_t w = p[0];
        if (f.bytes > 1) w |= uint32_t(p[1]) << 8;
        if (f.bytes > 2) w |= uint32_t(p[2]) << 16;
        return (w >> f.shift) & f.mask;
    };
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * code_size;
        float a0 = 0.f, a1 = 0.f;
        size_t m = 0;
        for (; m + 2 <= M; m += 2) {
            a0 += lut[fields[m].lut + index(c, fields[m])];
            a1 += lut[fields[m + 1].lut + index(c, fields[m + 1])];
        }
        if (m < M) a0 += lut[fields[m].lut + index(c, fields[m])];
        out[i] = a0 + a1;
    }
}

float ResidualQuantizer::code_norm(const uint8_t* code, int32_t* idx) const {
    if (search_type == ST_norm_from_LUT) {
        // ||sum_m c_m||^2 = sum_m ||c_m||^2 + 2 sum_{l < m} <c_l, c_m>.
        unpack(code, idx);
        float s = 0.f;
        size_t off = 0;
        for (size_t m = 0; m < M; m++) {
            const size_t Km = K(m), im = size_t(idx[m]);
            s += centroid_norms[codebook_offsets[m] + im];
            for (size_t l = 0; l < m; l++)
                s += 2.f * cross_products[off + (codebook_offsets[l] + size_t(idx[l])) * Km + im];
            off += codebook_offsets[m] * Km;
        }
        return s;
    }
    if (!norm_bits) return 0.f;
    if (norm_bits == 8 && tot_code_bits % 8 == 0) return decode_norm(code[tot_code_bits / 8]);  // a whole byte
    BitReader br{code};
    br.i = tot_code_bits;
    return decode_norm(uint32_t(br.read(norm_bits)));
}

RQScanner::RQScanner(const ResidualQuantizer& rq, MetricType metric)
    : rq_(rq), ip_(metric == METRIC_INNER_PRODUCT) {
    NEARLY_CHECK_ARG(rq.is_trained, "ResidualQuantizer: not trained");
    if (rq.uses_lut()) lut_.resize(rq.total_codebook_size);
    idx_.resize(rq.M);
}

void RQScanner::set_query(const float* q) {
    q_ = q;
    const SimdKernels& S = simd();
    qnorm_ = S.inner_product(q, q, rq_.d);
    if (rq_.uses_lut()) rq_.compute_lut(q, lut_.data());
}

void RQScanner::set_residual_from_tables(const float* qlut, const float* clut, float qnorm) {
    q_ = nullptr;
    qnorm_ = qnorm;
    for (size_t i = 0; i < lut_.size(); i++) lut_[i] = qlut[i] - clut[i];
}

void RQScanner::scores(const uint8_t* codes, size_t n, float* out) const {
    const SimdKernels& S = simd();
    const size_t d = rq_.d, cs = rq_.code_size;
    if (!rq_.uses_lut()) {
        constexpr size_t kChunk = 16;  // decoded floats still in L1 when scored
        if (dec_.size() < kChunk * d) dec_.resize(kChunk * d);
        for (size_t j0 = 0; j0 < n; j0 += kChunk) {
            const size_t m = std::min(kChunk, n - j0);
            rq_.decode(codes + j0 * cs, dec_.data(), m);
            if (ip_)
                S.inner_products_ny(q_, dec_.data(), d, m, out + j0);
            else
                S.l2sqr_ny(q_, dec_.data(), d, m, out + j0);
        }
        return;
    }
    rq_.lut_sums(codes, n, lut_.data(), out);
    if (ip_) return;
    if (rq_.search_type == ResidualQuantizer::ST_LUT_nonorm) {
        for (size_t i = 0; i < n; i++) out[i] = qnorm_ - out[i];
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = qnorm_ + rq_.code_norm(codes + i * cs, idx_.data()) - 2.f * out[i];
}

void ResidualQuantizer::check_fast_scan(MetricType metric) const {
    if (one_nbits() != 4) throw NotSupported("Error: 'nbits == 4' failed: fast-scan codebooks have 4 bits");
    if (metric == METRIC_INNER_PRODUCT) {
        NEARLY_CHECK_ARG(search_type == ST_LUT_nonorm, "Search type must be ST_LUT_nonorm for IP metric");
    } else {
        NEARLY_CHECK_ARG(metric == METRIC_L2, "additive-quantizer fast-scan: L2 or inner product only");
        NEARLY_CHECK_ARG(search_type == ST_norm_rq2x4 || search_type == ST_norm_lsq2x4,
                         "Search type must be lsq2x4 or rq2x4 for L2 metric");
    }
}

void ResidualQuantizer::write(Writer& w) const {
    w.pod<uint64_t>(d);
    w.pod<uint64_t>(M);
    // One width for all codebooks, or 0 and then each codebook's: files of
    // one width read as before.
    const size_t nb = uniform_nbits();
    w.pod<uint64_t>(nb);
    if (!nb)
        for (size_t b : nbits) w.pod<uint64_t>(b);
    w.pod<int32_t>(search_type);
    w.pod<int32_t>(train_type);
    w.pod<int32_t>(max_beam_size);
    w.pod<int32_t>(cp.niter);
    w.pod<int32_t>(progressive_dim_steps);
    w.pod<uint8_t>(apply_pca);
    w.pod<uint8_t>(is_trained);
    w.vec(codebooks);
    w.pod<float>(norm_min);
    w.pod<float>(norm_max);
    w.vec(norm_centroids);
    w.pod<uint64_t>(nsplits);  // format 4
    w.pod<uint8_t>(local_search);  // format 5
    for (int v : {lsq.train_iters, lsq.encode_ils_iters, lsq.train_ils_iters, lsq.icm_iters, lsq.chunk_size,
                  lsq.random_seed, lsq.nperts})
        w.pod<int32_t>(v);
    w.pod<float>(lsq.p);
    w.pod<float>(lsq.lambd);
}

ResidualQuantizer ResidualQuantizer::read(Reader& r, const char* who) {
    const uint64_t d = r.pod<uint64_t>(), M = r.pod<uint64_t>(), nb = r.pod<uint64_t>();
    const std::string what(who);
    r.check(d > 0 && d < (uint64_t(1) << 24) && M > 0 && M <= 4096 && nb <= 16, ("bad " + what + " header").c_str());
    std::vector<size_t> nbits(M, size_t(nb));
    if (nb == 0)
        for (size_t& b : nbits) {
            b = size_t(r.pod<uint64_t>());
            r.check(b >= 1 && b <= 16, ("bad " + what + " codebook widths").c_str());
        }
    const int st = r.pod<int32_t>(), tt = r.pod<int32_t>(), beam = r.pod<int32_t>(), niter = r.pod<int32_t>(),
              steps = r.pod<int32_t>();
    const uint8_t pca = r.pod<uint8_t>(), trained = r.pod<uint8_t>();
    r.check(valid_search_type(st) &&
                (tt & ~(Train_progressive_dim | Train_refine_codebook | Train_top_beam | Skip_codebook_tables)) == 0 &&
                beam >= 1 && niter >= 0 && steps >= 0 && pca <= 1 && trained <= 1,
            ("bad " + what + " header").c_str());
    ResidualQuantizer rq{size_t(d), nbits, SearchType(st)};
    rq.train_type = tt;
    rq.max_beam_size = beam;
    rq.cp.niter = niter;
    rq.progressive_dim_steps = steps;
    rq.apply_pca = pca;
    rq.codebooks = r.vec<float>();
    rq.norm_min = r.pod<float>();
    rq.norm_max = r.pod<float>();
    rq.norm_centroids = r.vec<float>();
    if (r.version() >= 4) {
        rq.nsplits = size_t(r.pod<uint64_t>());
        r.check(rq.nsplits >= 1 && rq.M % rq.nsplits == 0 && rq.d % rq.nsplits == 0 &&
                    (rq.nsplits == 1 || rq.uniform_nbits()),
                (what + " slices do not divide d and M").c_str());
    }
    if (r.version() >= 5) {
        const uint8_t ls = r.pod<uint8_t>();
        int v[7];
        for (int& t : v) t = r.pod<int32_t>();
        rq.lsq.p = r.pod<float>();
        rq.lsq.lambd = r.pod<float>();
        r.check(ls <= 1 && v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[3] >= 0 && v[4] >= 1 && v[6] >= 0 &&
                    std::isfinite(rq.lsq.p) && std::isfinite(rq.lsq.lambd) && rq.lsq.lambd >= 0.f,
                (what + " local search settings are out of range").c_str());
        rq.local_search = ls;
        rq.lsq = {v[0], v[1], v[2], v[3], rq.lsq.p, rq.lsq.lambd, v[4], v[5], v[6]};
    }
    r.check(!rq.local_search || rq.uniform_nbits(), (what + " local search with codebooks of different widths").c_str());
    r.check(rq.codebooks.empty() || rq.codebooks.size() == rq.total_codebook_size * rq.d,
            (what + " codebooks do not match d, M and nbits").c_str());
    for (float c : rq.codebooks) r.check(std::isfinite(c), (what + " codebooks are not finite").c_str());
    const bool cq = rq.search_type == ST_norm_cqint8 || rq.search_type == ST_norm_cqint4;
    const bool two_by_four = rq.search_type == ST_norm_rq2x4 || rq.search_type == ST_norm_lsq2x4;
    const size_t n_norm = cq ? size_t(1) << rq.norm_bits : two_by_four ? 32 : 0;
    r.check(!trained || (rq.codebooks.size() == rq.total_codebook_size * rq.d && rq.norm_centroids.size() == n_norm),
            (what + " is marked trained without its codebooks").c_str());
    r.check(rq.norm_centroids.empty() || rq.norm_centroids.size() == n_norm,
            (what + " norm centroids do not match the search type").c_str());
    for (float c : rq.norm_centroids) r.check(std::isfinite(c), (what + " norm centroids are not finite").c_str());
    rq.is_trained = trained;
    if (trained) rq.compute_codebook_tables();
    return rq;
}

}  // namespace nearly
