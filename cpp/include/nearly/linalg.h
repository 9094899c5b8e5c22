// Small dense linear algebra for learning rotations (OPQ, random rotations):
// matrices of a few hundred rows, in double, row-major. Not a BLAS: the big
// products (data times matrix) go through the GEMM kernels of distance.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

// Rows of a (rows x cols, rows <= cols) made orthonormal in place by modified
// Gram-Schmidt, twice (enough for double precision). A row that is linearly
// dependent on the rows above it is replaced by a unit vector orthogonal to
// them, so the result always has orthonormal rows.
void orthonormalize_rows(double* a, size_t rows, size_t cols);

// The orthogonal Procrustes solution: for m (rows x cols, rows <= cols), the
// matrix r with orthonormal rows that maximizes trace(r^T m), i.e. U V^T for
// the singular value decomposition m = U S V^T. Computed by one-sided (Hestenes)
// Jacobi on the rows of m. left (rows x rows, row-major, the columns of U as
// rows) is the rotation the iterations start from and, on return, the one
// found: passing the previous call's value makes a slowly changing m converge
// in one or two sweeps. Empty left starts from the identity. Directions where
// m is (numerically) rank deficient are completed to an orthonormal basis.
void procrustes_rotation(const double* m, size_t rows, size_t cols, double* r, std::vector<double>& left);

// Eigen-decomposition of a symmetric n x n matrix a (row-major): on return
// row i of a is a unit eigenvector of values[i], values in decreasing order.
// Householder reduction to tridiagonal form, then the implicit QL algorithm
// with Wilkinson-like shifts (O(n^3), about 2 s for n = 768).
void symmetric_eigen(std::vector<double>& a, size_t n, std::vector<double>& values);

// Solves a x = b for a symmetric positive definite n x n matrix a (row-major,
// the lower triangle read and overwritten by its Cholesky factor) and nrhs
// right-hand sides (b: n x nrhs, row-major, overwritten by x). Blocked: the
// trailing updates are row sweeps that vectorize and run in parallel, so
// n = 4096 takes seconds (LSQ's codebook update). Throws std::invalid_argument
// when a is not positive definite.
void cholesky_solve(double* a, size_t n, double* b, size_t nrhs);

}  // namespace nearly
