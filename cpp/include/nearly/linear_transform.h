// Linear vector transforms, faiss's LinearTransform family: y = A x (+ b), A
// stored row-major d_out x d_in like faiss. Applied with the GEMM kernels of
// exact search, on all threads. OPQ (opq.h) learns its A; a random rotation
// draws one.
#pragma once
#include <cstdint>
#include <vector>

#include "nearly/transform.h"

namespace nearly {

struct LinearTransform : VectorTransform {
    std::vector<float> A;  // d_out x d_in
    std::vector<float> b;  // d_out, when have_bias
    bool have_bias;
    // A has orthonormal rows (or columns when d_out > d_in), so that the
    // reverse transform is A^T (y - b).
    bool is_orthonormal = false;
    bool verbose = false;

    // Untrained until A is set (by train(), or by the owner, who then sets
    // is_trained like faiss's users do).
    LinearTransform(int d_in, int d_out, bool have_bias = false);
    std::string type_name() const override { return "LinearTransform"; }
    // Throws "Transformation not trained yet" (faiss's text) before training.
    void apply(idx_t n, const float* x, float* out) const override;
    // x = A^T (y - b); only for orthonormal A, like faiss.
    void reverse(idx_t n, const float* y, float* x) const override;
    void transform_transpose(idx_t n, const float* y, float* x) const;
    // Sets is_orthonormal from A (A^T A = I within 4e-5, faiss's tolerance).
    void set_is_orthonormal();
    void write_body(Writer& w) const override;
    // Reads what write_body wrote into this (d_in, d_out already set).
    void read_linear_body(Reader& r);
};

// A random orthonormal d_out x d_in matrix (d_out <= d_in), or, when d_out >
// d_in, the first d_in columns of a d_out x d_out one. train() draws it with
// faiss's seed (12345) and faiss's draws (random.h): faiss's matrix to about 1e-7.
struct RandomRotationMatrix : LinearTransform {
    RandomRotationMatrix(int d_in, int d_out) : LinearTransform(d_in, d_out, false) {}
    std::string type_name() const override { return "RandomRotation"; }
    void init(uint32_t seed);
    void train(idx_t, const float*) override { init(12345); }
};

// out (n x d_out) = x (n x d_in) times m^T (m: d_out x d_in), cut into row
// blocks over the pool; each block is one packed GEMM.
void matmul_rows(const float* x, idx_t n, const float* m, int d_out, int d_in, float* out);

// m (d2 x d, double) = sum over rows i of y_i^T x_i, for y (n x d2) and x
// (n x d): chunks of rows as GEMMs on the pool, the chunk sums added in
// double (the cross products of OPQ's and ITQ's rotation updates).
std::vector<double> rows_cross_product(const float* y, const float* x, size_t n, size_t d2, size_t d);

// t.A = a (d_out x d_in, computed in double), rounded to float.
void set_matrix_from_double(LinearTransform& t, const std::vector<double>& a);

}  // namespace nearly
