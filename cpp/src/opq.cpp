#include "nearly/opq.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/kmeans.h"
#include "nearly/linalg.h"
#include "nearly/parallel.h"
#include "nearly/pq.h"
#include "nearly/random.h"

namespace nearly {

OPQMatrix::OPQMatrix(int d_in_, int M_, int d_out_)
    : LinearTransform(d_in_, d_out_ == -1 ? d_in_ : d_out_, false), M(M_) {
    NEARLY_CHECK_ARG(d_out_ == -1 || d_out_ > 0, "OPQMatrix: d_out must be positive (or -1 for d_in)");
    // What the ProductQuantizer of train() would raise (faiss's texts), now.
    if (M_ <= 0) throw NotSupported("M must be > 0");
    if (d_out % M_ != 0)
        throw NotSupported("The dimension of the vector (d) should be a multiple of the number of subquantizers (M)");
}


void OPQMatrix::train(idx_t n_in, const float* x_in) {
    NEARLY_CHECK_ARG(n_in >= 0, "OPQMatrix::train: n must be non-negative");
    check_finite(x_in, size_t(n_in) * d_in, "the training vectors");
    // niter 0 leaves the starting rotation, as in faiss.
    NEARLY_CHECK_ARG(niter >= 0 && niter_pq >= 0 && niter_pq_0 >= 0, "OPQMatrix: niter must be >= 0");
    // faiss's fvecs_maybe_subsample: the first max_train_points of a seeded
    // permutation.
    const float* x = x_in;
    size_t n = size_t(n_in);
    std::vector<float> subset;
    maybe_subsample(x, n, size_t(d_in), max_train_points, subset, verbose);
    // Fewer points than centroids: the PQ's k-means error, before any work.
    if (n < 256)
        throw NotSupported("Number of training points (" + std::to_string(n) +
                           ") should be at least as large as number of clusters (256)");

    // More output than input dimensions: the vectors are padded with zeros.
    const size_t d = size_t(std::max(d_in, d_out)), d2 = size_t(d_out);
    if (verbose)
        std::printf("OPQMatrix::train: training an OPQ rotation matrix for M=%d from %zu vectors in %dD -> %dD\n", M,
                    n, d_in, d_out);

    // Centered training vectors: the rotation is fitted to the spread of the
    // data around its mean (apply() does not subtract it, as in faiss).
    std::vector<float> xtrain(n * d, 0.f);
    {
        std::vector<double> mean(d_in, 0.0);
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < d_in; j++) mean[j] += x[i * d_in + j];
        for (double& v : mean) v /= double(n);
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < d_in; j++) xtrain[i * d + j] = float(x[i * d_in + j] - mean[j]);
    }

    std::vector<double> rotation;  // d2 x d
    if (!A.empty() && d_out <= d_in) {
        NEARLY_CHECK_ARG(A.size() == d2 * d, "OPQMatrix::train: A must be d_out x d_in to start from it");
        rotation.assign(A.begin(), A.end());
    } else {
        rotation = random_rotation_rows(d, d, 1234);  // faiss's start: the first d2 rows of a d x d rotation
        rotation.resize(d2 * d);
    }

    ProductQuantizer pq(d2, size_t(M), 8);
    std::vector<float> rot_f(d2 * d), xproj(n * d2), recons(n * d2);
    std::vector<uint8_t> codes(n * pq.code_size);
    std::vector<double> left;  // the previous SVD's left factor: the next one starts there
    InterruptPoll poll;
    auto t0 = std::chrono::steady_clock::now();
    for (int iter = 0; iter < niter; iter++) {
        std::transform(rotation.begin(), rotation.end(), rot_f.begin(), [](double v) { return float(v); });
        matmul_rows(xtrain.data(), idx_t(n), rot_f.data(), int(d2), int(d), xproj.data());
        pq.cp.max_points_per_centroid = 1000;
        pq.cp.niter = iter == 0 ? niter_pq_0 : niter_pq;
        pq.verbose = verbose;
        pq.train(n, xproj.data());
        pq.train_type = ProductQuantizer::Train_hot_start;
        pq.compute_codes(xproj.data(), codes.data(), n);
        pq.decode(codes.data(), recons.data(), n);
        if (verbose) {
            double err = 0;
            for (size_t i = 0; i < n * d2; i++) err += double(recons[i] - xproj[i]) * (recons[i] - xproj[i]);
            std::printf("    Iteration %d (%d PQ iterations): %.3f s, obj=%g\n", iter, pq.cp.niter,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), err / n);
            std::fflush(stdout);
        }
        // The rotation R (orthonormal rows) minimizing ||xtrain R^T - recons||:
        // the polar factor of recons^T xtrain.
        auto t_rot = std::chrono::steady_clock::now();
        std::vector<double> m = rows_cross_product(recons.data(), xtrain.data(), n, d2, d);
        procrustes_rotation(m.data(), d2, d, rotation.data(), left);
        if (verbose)
            std::printf("    rotation update: %.3f s\n",
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_rot).count());
        poll();
    }

    if (d > size_t(d_in)) {  // drop the padding columns
        std::vector<double> a(d2 * d_in);
        for (size_t i = 0; i < d2; i++)
            std::copy(&rotation[i * d], &rotation[i * d] + d_in, &a[i * d_in]);
        rotation.swap(a);
    }
    set_matrix_from_double(*this, rotation);
    is_trained = true;
    is_orthonormal = true;
}

void OPQMatrix::write_body(Writer& w) const {
    w.pod<int32_t>(M);  // first: the reader needs it to construct
    LinearTransform::write_body(w);
    w.pod<int32_t>(niter);
    w.pod<int32_t>(niter_pq);
    w.pod<int32_t>(niter_pq_0);
    w.pod<uint64_t>(max_train_points);
}

std::shared_ptr<OPQMatrix> OPQMatrix::read(Reader& r, int d_in, int d_out) {
    const int M = r.pod<int32_t>();
    r.check(M > 0 && d_out % M == 0, "OPQ: M does not divide d_out");
    auto t = std::make_shared<OPQMatrix>(d_in, M, d_out);
    t->read_linear_body(r);
    t->niter = r.pod<int32_t>();
    t->niter_pq = r.pod<int32_t>();
    t->niter_pq_0 = r.pod<int32_t>();
    t->max_train_points = size_t(r.pod<uint64_t>());
    r.check(t->niter >= 1 && t->niter_pq >= 0 && t->niter_pq_0 >= 0, "OPQ: bad iteration counts");
    return t;
}

}  // namespace nearly
