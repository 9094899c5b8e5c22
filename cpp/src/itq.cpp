#include "nearly/itq.h"

#include <algorithm>
#include <cstdio>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/linalg.h"
#include "nearly/parallel.h"
#include "nearly/pca.h"
#include "nearly/random.h"

namespace nearly {

void ITQMatrix::train(idx_t n_in, const float* x) {
    NEARLY_CHECK_ARG(n_in >= 1, "ITQMatrix::train: needs at least one training vector");
    NEARLY_CHECK_ARG(max_iter >= 0, "ITQMatrix: max_iter must be >= 0");
    check_finite(x, size_t(n_in) * d_in, "the training vectors");
    const size_t n = size_t(n_in), d = size_t(d_in);
    std::vector<double> rotation;
    if (!init_rotation.empty()) {
        NEARLY_CHECK_ARG(init_rotation.size() == d * d, "ITQMatrix: init_rotation must be d x d");
        rotation = init_rotation;
    } else {
        rotation = random_rotation_rows(d, d, seed);
    }
    std::vector<float> rot_f(d * d), proj(n * d);
    std::vector<double> left;  // the previous SVD's left factor: the next one starts there
    InterruptPoll poll;
    for (int it = 0; it < max_iter; it++) {
        std::transform(rotation.begin(), rotation.end(), rot_f.begin(), [](double v) { return float(v); });
        matmul_rows(x, idx_t(n), rot_f.data(), int(d), int(d), proj.data());
        double loss = 0;
        for (float& v : proj) {
            const float b = v < 0 ? -1.f : 1.f;
            if (verbose) loss += double(b - v) * (b - v);
            v = b;
        }
        if (verbose) std::printf("  ITQ iteration %d: quantization loss %g\n", it, loss / double(n));
        const std::vector<double> m = rows_cross_product(proj.data(), x, n, d, d);  // B^T X
        procrustes_rotation(m.data(), d, d, rotation.data(), left);
        poll();
    }
    set_matrix_from_double(*this, rotation);
    is_trained = true;
    is_orthonormal = true;
}

ITQTransform::ITQTransform(int d_in_, int d_out_, bool do_pca_)
    : VectorTransform(d_in_, d_out_), do_pca(do_pca_), itq(d_out_), pca_then_itq(d_in_, d_out_, false) {
    NEARLY_CHECK_ARG(d_in_ > 0 && d_out_ > 0, "ITQTransform: dimensions must be positive");
    NEARLY_CHECK_ARG(do_pca || d_in_ == d_out_, "ITQTransform: input and output dimensions must match when PCA is "
                                                "disabled");
    NEARLY_CHECK_ARG(d_out_ <= d_in_, "ITQTransform: d_out must be at most d_in");
    is_trained = false;
}

void ITQTransform::train(idx_t n_in, const float* x_in) {
    if (is_trained) throw NotSupported("ITQTransform has already been trained");
    NEARLY_CHECK_ARG(n_in >= 1, "ITQTransform::train: needs at least one training vector");
    check_finite(x_in, size_t(n_in) * d_in, "the training vectors");
    const size_t d = size_t(d_in), dout = size_t(d_out);
    const float* x = x_in;
    size_t n = size_t(n_in);
    std::vector<float> subset;
    maybe_subsample(x, n, d, std::max<size_t>(size_t(max_train_per_dim) * d, 32768), subset, verbose);
    std::vector<double> mu(d, 0.0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mu[j] += x[i * d + j];
    mean.resize(d);
    for (size_t j = 0; j < d; j++) mean[j] = float(mu[j] / double(n));
    std::vector<float> xn(n * d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xn[i * d + j] = x[i * d + j] - mean[j];
    normalize_L2(xn.data(), n, d);
    std::vector<float> pca_rows;  // d_out x d_in (the vectors are centred: no bias)
    std::vector<float> xp;
    if (do_pca) {
        PCAMatrix pca(d_in, d_out);
        pca.verbose = verbose;
        pca.train(idx_t(n), xn.data());
        pca_rows = pca.A;
        xp.resize(n * dout);
        matmul_rows(xn.data(), idx_t(n), pca_rows.data(), int(dout), int(d), xp.data());
    }
    itq.verbose = verbose;
    itq.train(idx_t(n), do_pca ? xp.data() : xn.data());
    if (do_pca) {
        std::vector<double> merged(dout * d, 0.0);  // itq.A (d_out x d_out) times the PCA rows
        for (size_t i = 0; i < dout; i++)
            for (size_t k = 0; k < dout; k++) {
                const double a = itq.A[i * dout + k];
                for (size_t j = 0; j < d; j++) merged[i * d + j] += a * pca_rows[k * d + j];
            }
        set_matrix_from_double(pca_then_itq, merged);
    } else {
        pca_then_itq.A = itq.A;
    }
    pca_then_itq.is_trained = true;
    is_trained = true;
}

void ITQTransform::apply(idx_t n, const float* x, float* out) const {
    if (!is_trained) throw NotSupported("Transformation not trained yet");
    const size_t d = size_t(d_in);
    std::vector<float> xn(size_t(n) * d);
    for (size_t i = 0; i < size_t(n); i++)
        for (size_t j = 0; j < d; j++) xn[i * d + j] = x[i * d + j] - mean[j];
    normalize_L2(xn.data(), size_t(n), d);
    pca_then_itq.apply(n, xn.data(), out);
}

void ITQTransform::write_body(Writer& w) const {
    w.pod<uint8_t>(do_pca);
    w.pod<int32_t>(max_train_per_dim);
    w.pod<uint8_t>(is_trained);
    w.vec(mean);
    itq.write_body(w);
    pca_then_itq.write_body(w);
}

std::shared_ptr<ITQTransform> ITQTransform::read(Reader& r, int d_in, int d_out) {
    const uint8_t do_pca = r.pod<uint8_t>();
    const int32_t max_per_dim = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(do_pca <= 1 && trained <= 1 && max_per_dim >= 0 && (do_pca || d_in == d_out) && d_out <= d_in,
            "bad ITQTransform header");
    auto t = std::make_shared<ITQTransform>(d_in, d_out, bool(do_pca));
    t->max_train_per_dim = max_per_dim;
    t->mean = r.vec<float>();
    t->itq.read_linear_body(r);
    t->pca_then_itq.read_linear_body(r);
    r.check(!trained || (t->mean.size() == size_t(d_in) && t->pca_then_itq.is_trained), "ITQTransform is not trained");
    t->is_trained = trained;
    return t;
}

}  // namespace nearly
