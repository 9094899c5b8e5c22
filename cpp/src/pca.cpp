#include "nearly/pca.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/kmeans.h"
#include "nearly/linalg.h"
#include "nearly/random.h"

namespace nearly {

PCAMatrix::PCAMatrix(int d_in, int d_out, float eigen_power, bool random_rotation)
    : LinearTransform(d_in, d_out, true), eigen_power(eigen_power), random_rotation(random_rotation) {
    // faiss says so only when A is prepared; nothing can come of it.
    NEARLY_CHECK_ARG(d_out <= d_in, "PCA matrix cannot output " + std::to_string(d_out) + " dimensions from " +
                                        std::to_string(d_in));
}

void PCAMatrix::train(idx_t n_in, const float* x_in) {
    NEARLY_CHECK_ARG(n_in >= 1, "PCAMatrix::train: needs at least one training vector");
    check_finite(x_in, size_t(n_in) * d_in, "the training vectors");
    const size_t d = size_t(d_in);
    // faiss's fvecs_maybe_subsample: the first max of a seeded permutation.
    const float* x = x_in;
    size_t n = size_t(n_in);
    std::vector<float> subset;
    maybe_subsample(x, n, d, max_points_per_d * d, subset, verbose);
    std::vector<double> mu(d, 0.0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mu[j] += x[i * d + j];
    for (double& m : mu) m /= double(n);
    mean.assign(mu.begin(), mu.end());

    if (n >= d) {
        // The scatter matrix sum (x - mean)(x - mean)^T, a block of vectors at
        // a time: each block centered and transposed (d x rows), its rows'
        // inner products by the GEMM kernels in float (like faiss's sgemm),
        // the blocks summed in double.
        constexpr size_t kBlock = 4096;
        std::vector<double> a(d * d, 0.0), values;
        std::vector<float> block_t(d * std::min(n, kBlock)), part(d * d);
        for (size_t i0 = 0; i0 < n; i0 += kBlock) {
            const size_t rows = std::min(kBlock, n - i0);
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < d; j++) block_t[j * rows + i] = float(double(x[(i0 + i) * d + j]) - mu[j]);
            gemm_ip(block_t.data(), d, block_t.data(), d, rows, part.data());
            for (size_t k = 0; k < d * d; k++) a[k] += part[k];
        }
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < i; j++) a[i * d + j] = a[j * d + i] = 0.5 * (a[i * d + j] + a[j * d + i]);
        if (verbose) std::printf("  PCA: eigen-decomposition of the %zu x %zu scatter matrix\n", d, d);
        symmetric_eigen(a, d, values);
        PCAMat.assign(a.begin(), a.end());
        eigenvalues.assign(values.begin(), values.end());
    } else {
        // Fewer vectors than dimensions: the eigenvectors of the n x n Gram
        // matrix G = Xc Xc^T give the components Xc^T u / ||Xc^T u||.
        std::vector<float> xc(n * d);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) xc[i * d + j] = float(double(x[i * d + j]) - mu[j]);
        std::vector<float> gram(n * n);
        gemm_ip(xc.data(), n, xc.data(), n, d, gram.data());
        std::vector<double> a(n * n), values;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) a[i * n + j] = 0.5 * (double(gram[i * n + j]) + gram[j * n + i]);
        symmetric_eigen(a, n, values);
        PCAMat.assign(n * d, 0.f);
        for (size_t c = 0; c < n; c++) {
            std::vector<double> comp(d, 0.0);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < d; j++) comp[j] += a[c * n + i] * double(xc[i * d + j]);
            double norm = 0;
            for (double v : comp) norm += v * v;
            norm = std::sqrt(norm);
            for (size_t j = 0; j < d; j++) PCAMat[c * d + j] = norm > 0 ? float(comp[j] / norm) : 0.f;
        }
        eigenvalues.assign(d, 0.f);
        for (size_t c = 0; c < n; c++) eigenvalues[c] = float(values[c]);
    }
    prepare_Ab();
    is_trained = true;
}

void PCAMatrix::prepare_Ab() {
    const size_t din = size_t(d_in), dout = size_t(d_out);
    if (PCAMat.size() < dout * din)
        throw NotSupported("PCA matrix cannot output " + std::to_string(d_out) + " dimensions from " +
                           std::to_string(PCAMat.size() / din));
    NEARLY_CHECK_ARG(eigenvalues.size() >= dout && mean.size() == din, "PCAMatrix: not trained");
    auto factor = [&](size_t i) { return std::pow(double(eigenvalues[i]) + epsilon, double(eigen_power)); };
    if (!random_rotation) {
        A.assign(PCAMat.begin(), PCAMat.begin() + dout * din);
        if (eigen_power != 0)
            for (size_t i = 0; i < dout; i++) {
                const float f = float(factor(i));
                for (size_t j = 0; j < din; j++) A[i * din + j] *= f;
            }
        if (balanced_bins != 0) {
            NEARLY_CHECK_ARG(balanced_bins > 0 && d_out % balanced_bins == 0,
                             "output dimension must be divisible by balanced_bins");
            // Components in decreasing variance, each to the bin with the
            // least variance so far that still has room.
            const size_t bins = size_t(balanced_bins), per_bin = dout / bins;
            std::vector<float> unbalanced = A;
            std::vector<double> total(bins, 0.0);
            std::vector<size_t> count(bins, 0);
            for (size_t i = 0; i < dout; i++) {
                size_t best = bins;
                for (size_t b = 0; b < bins; b++)
                    if (count[b] < per_bin && (best == bins || total[b] < total[best])) best = b;
                const size_t row = best * per_bin + count[best]++;
                total[best] += eigenvalues[i];
                std::copy(&unbalanced[i * din], &unbalanced[i * din] + din, &A[row * din]);
            }
        }
    } else {
        NEARLY_CHECK_ARG(balanced_bins == 0, "both balancing bins and applying a random rotation does not make sense");
        // A = R diag(f) P: the leading components (P, dout x din), scaled, then rotated.
        RandomRotationMatrix rr(d_out, d_out);
        rr.init(5);
        std::vector<double> rs(dout * dout);
        for (size_t i = 0; i < dout; i++)
            for (size_t k = 0; k < dout; k++)
                rs[i * dout + k] = double(rr.A[i * dout + k]) * (eigen_power != 0 ? factor(k) : 1.0);
        A.assign(dout * din, 0.f);
        for (size_t i = 0; i < dout; i++) {
            std::vector<double> row(din, 0.0);
            for (size_t k = 0; k < dout; k++) {
                const double r = rs[i * dout + k];
                for (size_t j = 0; j < din; j++) row[j] += r * PCAMat[k * din + j];
            }
            for (size_t j = 0; j < din; j++) A[i * din + j] = float(row[j]);
        }
    }
    b.assign(dout, 0.f);
    for (size_t i = 0; i < dout; i++) {
        double s = 0;
        for (size_t j = 0; j < din; j++) s -= double(mean[j]) * A[i * din + j];
        b[i] = float(s);
    }
    is_orthonormal = eigen_power == 0;
}

void PCAMatrix::write_body(Writer& w) const {
    LinearTransform::write_body(w);
    w.pod<float>(eigen_power);
    w.pod<float>(epsilon);
    w.pod<uint8_t>(random_rotation);
    w.pod<uint64_t>(max_points_per_d);
    w.pod<int32_t>(balanced_bins);
    w.vec(mean);
    w.vec(eigenvalues);
    w.vec(PCAMat);
}

std::shared_ptr<PCAMatrix> PCAMatrix::read(Reader& r, int d_in, int d_out) {
    r.check(d_out <= d_in, "PCA: more outputs than inputs");
    auto t = std::make_shared<PCAMatrix>(d_in, d_out);
    t->read_linear_body(r);
    t->eigen_power = r.pod<float>();
    t->epsilon = r.pod<float>();
    t->random_rotation = r.pod<uint8_t>() != 0;
    t->max_points_per_d = size_t(r.pod<uint64_t>());
    t->balanced_bins = r.pod<int32_t>();
    t->mean = r.vec<float>();
    t->eigenvalues = r.vec<float>();
    t->PCAMat = r.vec<float>();
    r.check(std::isfinite(t->eigen_power) && std::isfinite(t->epsilon) && t->balanced_bins >= 0, "PCA: bad parameters");
    r.check(t->mean.empty() || t->mean.size() == size_t(d_in), "PCA: bad mean");
    r.check(t->PCAMat.size() % size_t(d_in) == 0 && t->PCAMat.size() <= size_t(d_in) * d_in, "PCA: bad matrix");
    r.check(t->eigenvalues.size() <= size_t(d_in), "PCA: bad eigenvalues");
    return t;
}

}  // namespace nearly
