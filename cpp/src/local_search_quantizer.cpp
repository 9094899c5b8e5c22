// Local search mode of the additive quantizer (faiss's LocalSearchQuantizer:
// LSQ++, Martinez et al., ECCV 2016 and 2018). See residual_quantizer.h.
//
// Encoding minimises ||x - sum_m c_m[i_m]||^2 over the M indexes, which is
// ||x||^2 + sum_m u_m[i_m] + sum_{m < m'} b_mm'[i_m, i_m'] with unary terms
// u_m[k] = ||c_mk||^2 - 2 <x, c_mk> and binary terms b = 2 <c_mk, c_m'k'>:
// iterated conditional modes (each index in turn set to its best value with
// the others fixed), restarted from random perturbations of the best code
// (iterated local search), the best code kept. Training alternates the
// least-squares codebooks for the current codes, a decreasing random shake
// of the codebooks (stochastic relaxation), and a few rounds of encoding.
// The random draws are faiss's (std::mt19937 and libstdc++'s
// distributions, libstdcxx_random.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "nearly/distance.h"
#include "nearly/libstdcxx_random.h"
#include "nearly/linalg.h"
#include "nearly/parallel.h"
#include "nearly/residual_quantizer.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

// u[i * M*K + j] = ||c_j||^2 - 2 <x_i, c_j> (j = m * K + k).
void unary_terms(const ResidualQuantizer& q, const float* x, size_t n, float* u) {
    const size_t MK = q.M * q.K();
    std::vector<float> norms(MK);
    norms_L2sqr(q.codebooks.data(), MK, q.d, norms.data());
    gemm_ip(x, n, q.codebooks.data(), MK, q.d, u);
    parallel_for_blocks(n, 256, [&](size_t i) {
        for (size_t j = 0; j < MK; j++) u[i * MK + j] = norms[j] - 2.f * u[i * MK + j];
    });
}

// The terms of a chunk's objective: unaries (n x M*K, a vector's together)
// and the binaries of every pair of codewords (faiss's M x M x K x K:
// b[m][m'][k][k'] = 2 <c_mk, c_m'k'>, symmetric), computed once per codebook
// set and shared by the chunks.
struct LocalSearch {
    const ResidualQuantizer& q;
    const size_t d, M, K, MK;
    const SimdKernels& kernels = simd();
    std::vector<float> own;
    const float* binaries;

    explicit LocalSearch(const ResidualQuantizer& q, const float* given = nullptr)
        : q(q), d(q.d), M(q.M), K(q.K()), MK(q.M * q.K()), binaries(given) {
        if (!given) {
            own.resize(MK * MK);
            q.compute_binary_terms(own.data());
            binaries = own.data();
        }
    }
    const float* pair(size_t m, size_t m2, size_t k) const { return binaries + ((m * M + m2) * K + k) * K; }

    // The objective of code c of a vector with unaries u, less ||x||^2.
    float objective(const float* u, const int32_t* c) const {
        float s = 0.f;
        for (size_t m = 0; m < M; m++) {
            s += u[m * K + size_t(c[m])];
            for (size_t m2 = m + 1; m2 < M; m2++) s += pair(m, m2, size_t(c[m]))[c[m2]];
        }
        return s;
    }

    // icm_iters sweeps of conditional modes over one code: index m becomes
    // the first argmin over k of u_m[k] + sum_{m2 != m} b[m][m2][k][c[m2]].
    // The M terms are laid out as the rows of a panel and summed by the
    // SIMD kernel nearest_transposed with weights -1/2 (products and the
    // final -2x are exact), so the sums are faiss's, added in its order.
    void icm(const float* u, int32_t* c, size_t iters, std::vector<float>& panel) const {
        panel.resize(M * K + M + K);
        float* half = panel.data() + M * K;
        float* zeros = half + M;
        std::fill(half, half + M, -0.5f);
        std::fill(zeros, zeros + K, 0.f);
        for (size_t it = 0; it < iters; it++)
            for (size_t m = 0; m < M; m++) {
                std::copy(u + m * K, u + (m + 1) * K, panel.begin());
                for (size_t m2 = 0, r = 1; m2 < M; m2++)
                    if (m2 != m) std::copy_n(pair(m2, m, size_t(c[m2])), K, panel.begin() + (r++) * K);  // b[m][m2][.][c[m2]]
                float score;
                c[m] = int32_t(kernels.nearest_transposed(half, M, panel.data(), zeros, K, &score));
            }
    }

    // Iterated local search on n codes (improved in place) of the vectors x.
    void encode(const float* x, size_t n, int32_t* codes, size_t ils_iters, Mt19937& gen) const {
        const ResidualQuantizer::LocalSearchParams& p = q.lsq;
        const size_t nperts = std::min(size_t(p.nperts), M);
        std::vector<float> u(n * MK), best(n);
        unary_terms(q, x, n, u.data());
        std::vector<int32_t> trial(codes, codes + n * M);
        for (size_t i = 0; i < n; i++) best[i] = objective(&u[i * MK], codes + i * M);
        InterruptPoll poll;
        for (size_t it = 0; it < ils_iters; it++) {
            for (size_t i = 0; i < n; i++)  // one generator: the draws do not depend on the threads
                for (size_t j = 0; j < nperts; j++) {
                    const size_t m = uniform_below(gen, M);
                    trial[i * M + m] = int32_t(uniform_below(gen, K));
                }
            parallel_for((n + 63) / 64, [&](size_t t) {
                std::vector<float> panel;
                for (size_t i = t * 64; i < std::min(n, t * 64 + 64); i++) {
                    icm(&u[i * MK], &trial[i * M], size_t(p.icm_iters), panel);
                    const float o = objective(&u[i * MK], &trial[i * M]);
                    if (o < best[i]) {
                        best[i] = o;
                        std::copy_n(&trial[i * M], M, codes + i * M);
                    } else {
                        std::copy_n(codes + i * M, M, &trial[i * M]);
                    }
                }
                poll();
            });
        }
    }
};

// Encodes n vectors in chunks of chunk_size (the unaries of a chunk are
// chunk_size x M*K floats), starting from and improving codes.
void encode_chunks(const ResidualQuantizer& q, const float* x, size_t n, int32_t* codes, size_t ils_iters,
                   Mt19937& gen) {
    const LocalSearch ls(q);
    const size_t chunk = std::max<size_t>(1, size_t(q.lsq.chunk_size));
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        const size_t ni = std::min(chunk, n - i0);
        ls.encode(x + i0 * q.d, ni, codes + i0 * q.M, ils_iters, gen);
    }
}

// Mean ||x - x_hat||^2 of n codes (the verbose trace).
double mean_error(const ResidualQuantizer& q, const float* x, size_t n, const int32_t* codes) {
    std::vector<double> err(n);
    parallel_for_blocks(n, 256, [&](size_t i) {
        std::vector<float> rec(q.d);
        q.decode_unpacked(codes + i * q.M, rec.data(), 1);
        double s = 0;
        for (size_t j = 0; j < q.d; j++) s += double(x[i * q.d + j] - rec[j]) * (x[i * q.d + j] - rec[j]);
        err[i] = s;
    });
    double s = 0;
    for (double e : err) s += e;
    return n ? s / double(n) : 0.0;
}

}  // namespace

void ResidualQuantizer::compute_binary_terms(float* out) const {
    const size_t Kc = K(), MK = M * Kc;
    std::vector<float> g(MK * MK);  // <c_j, c_j'>, j = m * K + k
    gemm_ip(codebooks.data(), MK, codebooks.data(), MK, d, g.data());
    parallel_for(M * M, [&](size_t mm) {
        const size_t m = mm / M, m2 = mm % M;
        for (size_t k = 0; k < Kc; k++)
            for (size_t k2 = 0; k2 < Kc; k2++) out[(mm * Kc + k) * Kc + k2] = 2.f * g[(m * Kc + k) * MK + m2 * Kc + k2];
    });
}

void ResidualQuantizer::compute_unary_terms(const float* x, float* out, size_t n) const {
    const size_t Kc = K(), MK = M * Kc;
    std::vector<float> u(n * MK);
    unary_terms(*this, x, n, u.data());
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < M; m++) std::copy_n(&u[i * MK + m * Kc], Kc, out + (m * n + i) * Kc);
}

void ResidualQuantizer::icm_encode_step(int32_t* codes, const float* unaries, const float* binaries, size_t n,
                                        size_t n_iters) const {
    const LocalSearch ls(*this, binaries);
    parallel_for((n + 63) / 64, [&](size_t t) {
        std::vector<float> u(ls.MK), panel;
        for (size_t i = t * 64; i < std::min(n, t * 64 + 64); i++) {
            for (size_t m = 0; m < M; m++) std::copy_n(unaries + (m * n + i) * ls.K, ls.K, &u[m * ls.K]);
            ls.icm(u.data(), codes + i * M, n_iters, panel);
        }
    });
}

void ResidualQuantizer::update_codebooks(const float* x, const int32_t* codes, size_t n) {
    // Least squares with a ridge: (B^T B + lambd I) C = B^T X, B the n x T
    // one-hot matrix of the codes (T words in all, codebook m's from
    // codebook_offsets[m]).
    const size_t MK = total_codebook_size;
    // The normal equations are MK x MK doubles, solved in MK^3 / 3.
    if (MK > 8192)
        throw NotSupported("ResidualQuantizer: a least-squares codebook fit over " + std::to_string(MK) +
                           " codewords (at most 8192)");
    const auto word = [&](size_t i, size_t m) { return codebook_offsets[m] + size_t(codes[i * M + m]); };
    std::vector<double> bb(MK * MK, 0.0), bx(MK * d, 0.0);
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < M; m++) {
            const size_t j = word(i, m);
            for (size_t m2 = 0; m2 < M; m2++) bb[j * MK + word(i, m2)] += 1.0;
        }
    for (size_t j = 0; j < MK; j++) bb[j * MK + j] += double(lsq.lambd);
    parallel_for(M, [&](size_t m) {  // codebook m's rows of B^T X
        for (size_t i = 0; i < n; i++) {
            double* row = &bx[word(i, m) * d];
            for (size_t t = 0; t < d; t++) row[t] += double(x[i * d + t]);
        }
    });
    cholesky_solve(bb.data(), MK, bx.data(), d);
    codebooks.resize(MK * d);
    for (size_t t = 0; t < MK * d; t++) codebooks[t] = float(bx[t]);
}

void ResidualQuantizer::train_local_search(size_t n, const float* x, const float* centroids) {
    const size_t Kc = K();
    if (verbose) std::printf("Training LSQ, with %zu subcodes on %zu %zuD vectors\n", M, n, d);
    Mt19937 gen(uint32_t(lsq.random_seed));
    std::vector<int32_t> codes(n * M);
    for (int32_t& c : codes) c = int32_t(uniform_below(gen, Kc));
    // Each dimension's spread scales the codebooks' shake.
    std::vector<float> stddev(d);
    parallel_for(d, [&](size_t t) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; i++) mean += x[i * d + t];
        mean /= double(n);
        for (size_t i = 0; i < n; i++) var += (x[i * d + t] - mean) * (x[i * d + t] - mean);
        stddev[t] = float(std::sqrt(var / double(n)));
    });
    InterruptPoll poll;
    for (size_t it = 0; it < size_t(lsq.train_iters); it++) {
        update_codebooks(x, codes.data(), n);
        if (verbose) std::printf("iter %zu:\n\tafter updating codebooks: obj = %g\n", it, mean_error(*this, x, n, codes.data()));
        const float T = std::pow(1.f - float(it + 1) / float(lsq.train_iters), lsq.p);
        std::vector<NormalFloat> noise;
        for (size_t t = 0; t < d; t++) noise.emplace_back(0.f, stddev[t]);
        for (size_t w = 0; w < M * Kc; w++)
            for (size_t t = 0; t < d; t++) codebooks[w * d + t] += T * noise[t](gen) / float(M);
        encode_chunks(*this, x, n, codes.data(), size_t(lsq.train_ils_iters), gen);
        if (verbose) std::printf("\tafter updating codes: obj = %g\n", mean_error(*this, x, n, codes.data()));
        poll();
    }
    is_trained = true;
    std::vector<float> res(n * d);
    decode_unpacked(codes.data(), res.data(), n);
    for (size_t t = 0; t < n * d; t++) res[t] = x[t] - res[t];
    train_norm_of_reconstructions(n, x, res.data(), d, centroids);
    compute_codebook_tables();
}

void ResidualQuantizer::encode_local_search(size_t n, const float* x, int32_t* codes) const {
    Mt19937 gen(uint32_t(lsq.random_seed));
    for (size_t t = 0; t < n * M; t++) codes[t] = int32_t(uniform_below(gen, K()));
    encode_chunks(*this, x, n, codes, size_t(lsq.encode_ils_iters), gen);
}

}  // namespace nearly
