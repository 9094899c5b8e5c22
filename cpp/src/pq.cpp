#include "nearly/pq.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "nearly/parallel.h"
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

void ProductQuantizer::sync_transposed_centroids() {
    transposed_centroids.resize(d * ksub);
    centroid_norms.resize(M * ksub);
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < ksub; j++) {
            const float* c = get_centroids(m, j);
            float s = 0.f;
            for (size_t i = 0; i < dsub; i++) {
                transposed_centroids[(m * dsub + i) * ksub + j] = c[i];
                s += c[i] * c[i];
            }
            centroid_norms[m * ksub + j] = s;
        }
}

void ProductQuantizer::train(size_t n, const float* x) {
    check_finite(x, n * d, "training data");
    // One subspace after the other, like faiss: each k-means uses the pool
    // itself, and Ctrl-C is polled by the calling thread inside it.
    auto train_one = [&](size_t m) {
        std::vector<float> xslice(n * dsub);
        for (size_t i = 0; i < n; i++)
            std::memcpy(&xslice[i * dsub], x + i * d + m * dsub, dsub * sizeof(float));
        Clustering clus(int(dsub), int(ksub), cp);
        if (train_type == Train_hot_start)
            clus.centroids.assign(centroids.begin() + m * ksub * dsub, centroids.begin() + (m + 1) * ksub * dsub);
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
    if (nbits != 8) std::memset(code, 0, code_size);
    BitWriter bw{code};
    for (size_t m = 0; m < M; m++) {
        float s;
        const size_t best = K.nearest_transposed(x + m * dsub, dsub, transposed_centroids.data() + m * dsub * ksub,
                                                 centroid_norms.data() + m * ksub, ksub, &s);
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

// ||x_m - c||^2 = ||x_m||^2 + ||c||^2 - 2 <x_m, c>.
namespace {
// Subspace m of x's table: inner products with the centroids, or squared
// distances from them.
void table_of_subspace(const ProductQuantizer& pq, const SimdKernels& K, const float* x, size_t m,
                       bool inner_product, float* t) {
    const float* xm = x + m * pq.dsub;
    K.vecmat_fused(xm, pq.dsub, pq.transposed_centroids.data() + m * pq.dsub * pq.ksub, pq.ksub, t);
    if (inner_product) return;
    float xn = 0.f;
    for (size_t i = 0; i < pq.dsub; i++) xn += xm[i] * xm[i];
    const float* nrm = pq.centroid_norms.data() + m * pq.ksub;
    for (size_t j = 0; j < pq.ksub; j++) t[j] = xn + nrm[j] - 2.f * t[j];
}
}  // namespace

void ProductQuantizer::compute_distance_table(const float* x, float* tab) const { compute_tables(x, 1, false, tab); }

void ProductQuantizer::compute_inner_prod_table(const float* x, float* tab) const { compute_tables(x, 1, true, tab); }

void ProductQuantizer::compute_tables(const float* x, size_t nx, bool inner_product, float* tabs) const {
    const SimdKernels& K = simd();
    for (size_t m = 0; m < M; m++)
        for (size_t q = 0; q < nx; q++)
            table_of_subspace(*this, K, x + q * d, m, inner_product, tabs + q * M * ksub + m * ksub);
}

void ProductQuantizer::adc(const float* tab, const uint8_t* codes, size_t n, float* out) const {
    if (nbits == 8) {
        simd().pq_adc8(tab, codes, M, n, out);
        return;
    }
    // Other widths are scanned in the same order m (faiss's PQDecoder16 and
    // PQDecoderGeneric). 4-bit codes come here only as a reference: fast-scan
    // has its own layout and kernels.
    if (nbits == 16) {
        for (size_t j = 0; j < n; j++) {
            const uint8_t* c = codes + j * code_size;
            float s = 0.f;
            for (size_t m = 0; m < M; m++) s += tab[m * ksub + (size_t(c[2 * m]) | size_t(c[2 * m + 1]) << 8)];
            out[j] = s;
        }
        return;
    }
    for (size_t j = 0; j < n; j++) {
        BitReader br{codes + j * code_size};
        float s = 0.f;
        for (size_t m = 0; m < M; m++) s += tab[m * ksub + br.read(nbits)];
        out[j] = s;
    }
}

}  // namespace nearly
