#include "nearly/linear_transform.h"

#include <algorithm>
#include <cmath>

#include "nearly/distance.h"
#include "nearly/io.h"
#include "nearly/linalg.h"
#include "nearly/parallel.h"
#include "nearly/random.h"

namespace nearly {

void matmul_rows(const float* x, idx_t n, const float* m, int d_out, int d_in, float* out) {
    constexpr size_t kBlock = 256;
    const size_t nblocks = (size_t(n) + kBlock - 1) / kBlock;
    parallel_for(nblocks, [&](size_t t) {
        const size_t i0 = t * kBlock, rows = std::min(size_t(n), i0 + kBlock) - i0;
        gemm_ip(x + i0 * d_in, rows, m, size_t(d_out), size_t(d_in), out + i0 * d_out);
    });
}

LinearTransform::LinearTransform(int d_in_, int d_out_, bool have_bias_)
    : VectorTransform(d_in_, d_out_), have_bias(have_bias_) {
    NEARLY_CHECK_ARG(d_in_ > 0 && d_out_ > 0, "LinearTransform: dimensions must be positive");
    is_trained = false;
}

void LinearTransform::apply(idx_t n, const float* x, float* out) const {
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed: Transformation not trained yet");
    if (A.size() != size_t(d_out) * d_in) throw NotSupported("Transformation matrix not initialized");
    if (have_bias && b.size() != size_t(d_out)) throw NotSupported("Bias not initialized");
    matmul_rows(x, n, A.data(), d_out, d_in, out);
    if (have_bias)
        for (idx_t i = 0; i < n; i++)
            for (int j = 0; j < d_out; j++) out[size_t(i) * d_out + j] += b[j];
}

void LinearTransform::transform_transpose(idx_t n, const float* y, float* x) const {
    if (A.size() != size_t(d_out) * d_in) throw NotSupported("Transformation matrix not initialized");
    std::vector<float> centered;
    if (have_bias) {
        centered.assign(y, y + size_t(n) * d_out);
        for (idx_t i = 0; i < n; i++)
            for (int j = 0; j < d_out; j++) centered[size_t(i) * d_out + j] -= b[j];
        y = centered.data();
    }
    std::vector<float> at(size_t(d_in) * d_out);
    for (int i = 0; i < d_out; i++)
        for (int j = 0; j < d_in; j++) at[size_t(j) * d_out + i] = A[size_t(i) * d_in + j];
    matmul_rows(y, n, at.data(), d_in, d_out, x);
}

void LinearTransform::reverse(idx_t n, const float* y, float* x) const {
    if (!is_orthonormal) throw NotSupported("reverse transform not implemented for non-orthonormal matrices");
    transform_transpose(n, y, x);
}

void LinearTransform::set_is_orthonormal() {
    if (d_out > d_in) {  // faiss: not defined for this shape
        is_orthonormal = false;
        return;
    }
    is_orthonormal = A.size() == size_t(d_out) * d_in;
    for (int i = 0; i < d_out && is_orthonormal; i++)
        for (int j = 0; j < d_out && is_orthonormal; j++) {
            double s = 0;
            for (int k = 0; k < d_in; k++) s += double(A[size_t(i) * d_in + k]) * A[size_t(j) * d_in + k];
            if (std::fabs(s - (i == j)) > 4e-5) is_orthonormal = false;
        }
}

void LinearTransform::write_body(Writer& w) const {
    w.pod<uint8_t>(have_bias);
    w.pod<uint8_t>(is_orthonormal);
    w.pod<uint8_t>(is_trained);
    w.vec(A);
    w.vec(b);
}

void LinearTransform::read_linear_body(Reader& r) {
    have_bias = r.pod<uint8_t>() != 0;
    is_orthonormal = r.pod<uint8_t>() != 0;
    is_trained = r.pod<uint8_t>() != 0;
    A = r.vec<float>();
    b = r.vec<float>();
    r.check(A.empty() || A.size() == size_t(d_out) * d_in, "bad linear transform matrix size");
    r.check(b.empty() || b.size() == size_t(d_out), "bad linear transform bias size");
    r.check(!is_trained || (A.size() == size_t(d_out) * d_in && (!have_bias || b.size() == size_t(d_out))),
            "trained linear transform without its matrix");
    for (float v : A) r.check(std::isfinite(v), "non-finite linear transform matrix");
    for (float v : b) r.check(std::isfinite(v), "non-finite linear transform bias");
}

void RandomRotationMatrix::init(uint32_t seed) {
    if (d_out <= d_in) {
        set_matrix_from_double(*this, random_rotation_rows(size_t(d_out), size_t(d_in), seed));
    } else {
        // faiss's tight frame: the first d_in columns of a d_out x d_out rotation.
        std::vector<double> full = random_rotation_rows(size_t(d_out), size_t(d_out), seed), a(size_t(d_out) * d_in);
        for (int i = 0; i < d_out; i++)
            for (int j = 0; j < d_in; j++) a[size_t(i) * d_in + j] = full[size_t(i) * d_out + j];
        set_matrix_from_double(*this, a);
    }
    is_orthonormal = true;
    is_trained = true;
}

void set_matrix_from_double(LinearTransform& t, const std::vector<double>& a) {
    t.A.resize(a.size());
    std::transform(a.begin(), a.end(), t.A.begin(), [](double v) { return float(v); });
}

std::vector<double> rows_cross_product(const float* y, const float* x, size_t n, size_t d2, size_t d) {
    constexpr size_t kChunk = 2048;
    const size_t nchunks = (n + kChunk - 1) / kChunk;
    std::vector<std::vector<double>> partial(nchunks);
    parallel_for(nchunks, [&](size_t c) {
        const size_t i0 = c * kChunk, rows = std::min(n, i0 + kChunk) - i0;
        std::vector<float> yt(d2 * rows), xt(d * rows), prod(d2 * d);
        for (size_t i = 0; i < rows; i++) {
            for (size_t a = 0; a < d2; a++) yt[a * rows + i] = y[(i0 + i) * d2 + a];
            for (size_t b = 0; b < d; b++) xt[b * rows + i] = x[(i0 + i) * d + b];
        }
        gemm_ip(yt.data(), d2, xt.data(), d, rows, prod.data());
        partial[c].assign(prod.begin(), prod.end());
    });
    std::vector<double> m(d2 * d, 0.0);
    for (auto& p : partial)
        for (size_t i = 0; i < m.size(); i++) m[i] += p[i];
    return m;
}

}  // namespace nearly
