#include "nearly/pq.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "nearly/parallel.h"
#include "nearly/pca.h"
#include "nearly/simd.h"

namespace nearly {

ProductQuantizer::ProductQuantizer(size_t d_, size_t M_, size_t nbits_) : d(d_), M(M_), nbits(nbits_) {
    // faiss raises RuntimeError for these, with these texts.
    if (M == 0) throw NotSupported("M must be > 0");
    if (d % M != 0)
        throw NotSupported("The dimension of the vector (d) should be a multiple of the number of subquantizers (M)");
    if (nbits > 24) throw NotSupported("nbits larger than 24 is not practical.");  // faiss's text
    NEARLY_CHECK_ARG(nbits > 0, "ProductQuantizer: nbits must be positive");
    if (nbits > 16)
        throw NotSupported("ProductQuantizer: nbits=" + std::to_string(nbits) + " not implemented in nearly (1 to 16)");
    dsub = d / M;
    ksub = size_t(1) << nbits;
    code_size = (nbits * M + 7) / 8;
    centroids.assign(d * ksub, 0.f);
    sync_transposed_centroids();
}

void ProductQuantizer::check_replacement(const ProductQuantizer& other, const std::string& who,
                                         int64_t ntotal) const {
    NEARLY_CHECK_ARG(other.d == d && other.M == M && other.nbits == nbits,
                     who + ": the product quantizer must have d=" + std::to_string(d) + ", M=" + std::to_string(M) +
                         " and nbits=" + std::to_string(nbits));
    if (ntotal > 0) throw NotSupported(who + ": the product quantizer can only be replaced while the index is empty");
}

void ProductQuantizer::sync_transposed_centroids() {
    transposed_centroids.resize(d * ksub);
    centroid_norms.resize(M * ksub);
    const size_t cb = column_block();
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < ksub; j++) {
            const float* c = get_centroids(m, j);
            float* block = transposed_centroids.data() + m * dsub * ksub + (j / cb) * dsub * cb;
            float s = 0.f;
            for (size_t i = 0; i < dsub; i++) {
                block[i * cb + j % cb] = c[i];
                s += c[i] * c[i];
            }
            centroid_norms[m * ksub + j] = s;
        }
}

namespace {

// Starting centroids at the 2^nbits vertices of a hypercube around the mean
// of x (n x d): along the first nbits coordinates, by the largest |mean|.
// The mean is summed in float, in faiss's order, so that the start (and the
// k-means after it) is faiss's.
void hypercube_start(size_t d, size_t nbits, size_t n, const float* x, float* centroids) {
    std::vector<float> mean(d, 0.f);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    float half = 0;
    for (size_t j = 0; j < d; j++) {
        mean[j] /= float(n);
        half = std::max(half, std::fabs(mean[j]));
    }
    for (size_t c = 0; c < (size_t(1) << nbits); c++)
        for (size_t j = 0; j < d; j++)
            centroids[c * d + j] = j < nbits ? mean[j] + (((c >> j) & 1) ? half : -half) : mean[j];
}

// The same along the first nbits principal directions, each scaled by the
// square root of its eigenvalue.
void hypercube_pca_start(size_t d, size_t nbits, size_t n, const float* x, float* centroids) {
    PCAMatrix pca{int(d), int(nbits)};
    pca.train(idx_t(n), x);
    for (size_t c = 0; c < (size_t(1) << nbits); c++)
        for (size_t j = 0; j < d; j++) {
            float v = pca.mean[j];
            for (size_t k = 0; k < nbits && k < pca.eigenvalues.size(); k++)
                v += std::sqrt(std::max(pca.eigenvalues[k], 0.f)) * (((c >> k) & 1) ? 1.f : -1.f) *
                     pca.PCAMat[k * d + j];
            centroids[c * d + j] = v;
        }
}

}  // namespace

void ProductQuantizer::train(size_t n, const float* x) {
    check_finite(x, n * d, "training data");
    NEARLY_CHECK_ARG(int(train_type) >= 0 && int(train_type) <= int(Train_hypercube_pca),
                     "ProductQuantizer: unknown train_type " + std::to_string(int(train_type)));
    if (train_type == Train_shared) {
        // The n x d rows are n * M subvectors of dsub, one after the other.
        if (n * M < ksub)
            throw NotSupported("Number of training points (" + std::to_string(n * M) +
                               ") should be at least as large as number of clusters (" + std::to_string(ksub) + ")");
        Clustering clus(int(dsub), int(ksub), cp);
        if (verbose) {
            clus.verbose = true;
            std::printf("Training all PQ slices at once\n");
        }
        clus.train(idx_t(n * M), x, METRIC_L2);
        for (size_t m = 0; m < M; m++)
            std::copy(clus.centroids.begin(), clus.centroids.end(), centroids.begin() + m * ksub * dsub);
        sync_transposed_centroids();
        return;
    }
    TrainType start = train_type;
    if ((start == Train_hypercube || start == Train_hypercube_pca) && dsub < nbits) {
        start = Train_default;
        if (verbose) std::printf("cannot train hypercube: nbits=%zu > log2(d=%zu)\n", nbits, dsub);
    }
    // One subspace after the other, like faiss: each k-means uses the pool
    // itself, and Ctrl-C is polled by the calling thread inside it.
    auto train_one = [&](size_t m) {
        std::vector<float> xslice(n * dsub);
        for (size_t i = 0; i < n; i++)
            std::memcpy(&xslice[i * dsub], x + i * d + m * dsub, dsub * sizeof(float));
        Clustering clus(int(dsub), int(ksub), cp);
        if (start == Train_hot_start)
            clus.centroids.assign(centroids.begin() + m * ksub * dsub, centroids.begin() + (m + 1) * ksub * dsub);
        else if (start == Train_hypercube || start == Train_hypercube_pca) {
            clus.centroids.resize(ksub * dsub);
            (start == Train_hypercube ? hypercube_start : hypercube_pca_start)(dsub, nbits, n, xslice.data(),
                                                                             clus.centroids.data());
        }
        if (verbose) {
            clus.verbose = true;
            std::printf("Training PQ slice %zu/%zu\n", m, M);
        }
        clus.train(idx_t(n), xslice.data(), METRIC_L2);
        std::copy(clus.centroids.begin(), clus.centroids.end(), centroids.begin() + m * ksub * dsub);
    };
    // Too few points fail the same way in every subspace: say so once, first
    // (faiss's Clustering text).
    if (n < ksub)
        throw NotSupported("Number of training points (" + std::to_string(n) +
                           ") should be at least as large as number of clusters (" + std::to_string(ksub) + ")");
    for (size_t m = 0; m < M; m++) train_one(m);
    sync_transposed_centroids();
}

// Nearest centroid by ||c||^2 - 2 <x, c> (||x||^2 is the same for all):
// one vector-matrix product per subspace, like faiss with transposed
// centroids. Equal up to rounding to the direct distance; a near tie may pick
// the other centroid.
void ProductQuantizer::compute_code(const float* x, uint8_t* code) const {
    const SimdKernels& K = simd();
    const size_t cb = column_block();
    if (nbits != 8) std::memset(code, 0, code_size);
    BitWriter bw{code};
    for (size_t m = 0; m < M; m++) {
        // Block by block, the first minimum kept: the block kernels keep the
        // first within a block, so this is the unblocked answer.
        size_t best = 0;
        float best_s = 0.f;
        for (size_t b = 0; b * cb < ksub; b++) {
            float s;
            const size_t j = b * cb + K.nearest_transposed(x + m * dsub, dsub, transposed_block(m, b),
                                                           centroid_norms.data() + m * ksub + b * cb, cb, &s);
            if (b == 0 || s < best_s) {
                best_s = s;
                best = j;
            }
        }
        if (nbits == 8)
            code[m] = uint8_t(best);
        else
            bw.write(best, nbits);
    }
}

void ProductQuantizer::compute_codes(const float* x, uint8_t* codes, size_t n) const {
    constexpr size_t kBlock = 256;
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
        for (size_t i = t * kBlock; i < std::min(n, (t + 1) * kBlock); i++) compute_code(x + i * d, codes + i * code_size);
    });
}

void ProductQuantizer::decode(const uint8_t* code, float* x) const {
    for (size_t m = 0; m < M; m++) std::memcpy(x + m * dsub, get_centroids(m, code_at(code, m)), dsub * sizeof(float));
}

void ProductQuantizer::decode(const uint8_t* codes, float* x, size_t n) const {
    for (size_t i = 0; i < n; i++) decode(codes + i * code_size, x + i * d);
}

void ProductQuantizer::compute_distance_table(const float* x, float* tab) const { compute_tables(x, 1, false, tab); }

void ProductQuantizer::compute_inner_prod_table(const float* x, float* tab) const { compute_tables(x, 1, true, tab); }

// Subspace by subspace, block by block, query by query: each block of
// centroids is read once for all nx queries. L2 tables then take
// ||x_m - c||^2 = ||x_m||^2 + ||c||^2 - 2 <x_m, c>.
void ProductQuantizer::compute_tables(const float* x, size_t nx, bool inner_product, float* tabs) const {
    const SimdKernels& K = simd();
    const size_t cb = column_block();
    for (size_t m = 0; m < M; m++) {
        for (size_t b = 0; b * cb < ksub; b++)
            for (size_t q = 0; q < nx; q++)
                K.vecmat_fused(x + q * d + m * dsub, dsub, transposed_block(m, b), cb,
                               tabs + q * M * ksub + m * ksub + b * cb);
        if (inner_product) continue;
        const float* nrm = centroid_norms.data() + m * ksub;
        for (size_t q = 0; q < nx; q++) {
            const float* xm = x + q * d + m * dsub;
            float xn = 0.f;
            for (size_t i = 0; i < dsub; i++) xn += xm[i] * xm[i];
            float* t = tabs + q * M * ksub + m * ksub;
            for (size_t j = 0; j < ksub; j++) t[j] = xn + nrm[j] - 2.f * t[j];
        }
    }
}

namespace {

// ADC over codes of NB bits (NB != 8), faiss's bit strings. Four codes are
// summed side by side: each sum is a chain of M dependent adds (in order m,
// as the reference), and one chain at a time leaves the adder waiting on
// the previous add. A field is read with one unaligned 8-byte load where
// that stays inside the codes (a field spans at most 3 bytes), byte by byte
// for the last codes.
template <size_t NB>
void adc_fixed(const float* tab, const uint8_t* codes, size_t M, size_t code_size, size_t n, float* out) {
    constexpr size_t ksub = size_t(1) << NB;
    constexpr uint64_t mask = ksub - 1;
    const size_t bytes = n * code_size;
    const size_t n_fast = bytes >= code_size + 8 ? (bytes - code_size - 8) / code_size + 1 : 0;
    auto field = [](const uint8_t* c, size_t m) {
        const size_t bit = m * NB;
        uint64_t w;
        std::memcpy(&w, c + (bit >> 3), 8);
        return size_t((w >> (bit & 7)) & mask);
    };
    size_t j = 0;
    for (; j + 4 <= n_fast; j += 4) {
        const uint8_t* c = codes + j * code_size;
        float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
        for (size_t m = 0; m < M; m++) {
            const float* t = tab + m * ksub;
            s0 += t[field(c, m)];
            s1 += t[field(c + code_size, m)];
            s2 += t[field(c + 2 * code_size, m)];
            s3 += t[field(c + 3 * code_size, m)];
        }
        out[j] = s0;
        out[j + 1] = s1;
        out[j + 2] = s2;
        out[j + 3] = s3;
    }
    for (; j < n; j++) {
        const uint8_t* c = codes + j * code_size;
        float s = 0.f;
        for (size_t m = 0; m < M; m++) s += tab[m * ksub + read_bits(c, m * NB, NB)];
        out[j] = s;
    }
}

template <size_t... NB>
void adc_dispatch(size_t nbits, const float* tab, const uint8_t* codes, size_t M, size_t code_size, size_t n,
                  float* out, std::index_sequence<NB...>) {
    ((nbits == NB + 1 ? adc_fixed<NB + 1>(tab, codes, M, code_size, n, out) : void()), ...);
}

}  // namespace

void ProductQuantizer::adc(const float* tab, const uint8_t* codes, size_t n, float* out) const {
    if (nbits == 8) {
        simd().pq_adc8(tab, codes, M, n, out);
        return;
    }
    // Other widths (faiss's PQDecoder16 and PQDecoderGeneric); 4-bit codes
    // come here for IndexPQ's PQ..x4, fast-scan has its own layout and kernels.
    adc_dispatch(nbits, tab, codes, M, code_size, n, out, std::make_index_sequence<16>{});
}

void ProductQuantizer::adc_reference(const float* tab, const uint8_t* codes, size_t n, float* out) const {
    for (size_t j = 0; j < n; j++) {
        BitReader br{codes + j * code_size};
        float s = 0.f;
        for (size_t m = 0; m < M; m++) s += tab[m * ksub + br.read(nbits)];
        out[j] = s;
    }
}

}  // namespace nearly
