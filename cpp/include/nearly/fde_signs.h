// The SimHash signs of the FDE encoder for many points at once, one kernel
// per SIMD level. The scalar reference takes every sum as vecmat_unfused
// does (in coordinate order, each product rounded before its add, from +0:
// the reference's matrix product built without FMA). The AVX-512 kernel
// takes the sums with fused multiply-adds, twice the arithmetic rate, and
// keeps a sign only where that is provably the reference's: both sums lie
// within gamma_d * ||x|| * ||w_j|| of the exact inner product (the standard
// error bound of a d-term dot product in any order, gamma_d = d u / (1 - d u),
// u = 2^-24), so a fused sum beyond twice that bound has the exact sign, and
// the reference sum has it too. The few sums inside the bound are taken
// again the reference's way.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

// positive[p * n + j] = 1 when sum over i < d of points[p * d + i] * w[i * n + j],
// summed the reference's way, is > 0, else 0; for m points. w_norm[j] is an
// upper bound of the Euclidean norm of column j of w (see fde_column_norms).
void fde_signs(const float* points, size_t m, size_t d, const float* w, size_t n, const float* w_norm,
               uint8_t* positive);

// Column norms of a d x n row-major matrix, rounded up to float.
std::vector<float> fde_column_norms(const float* w, size_t d, size_t n);

// The reference's sum for one point and column j (shared by every level for
// the sums the fast kernels cannot decide).
float fde_sign_sum_reference(const float* x, size_t d, const float* w, size_t n, size_t j);

void fde_signs_scalar(const float* points, size_t m, size_t d, const float* w, size_t n, const float* w_norm,
                      uint8_t* positive);
void fde_signs_avx512(const float* points, size_t m, size_t d, const float* w, size_t n, const float* w_norm,
                      uint8_t* positive);

}  // namespace nearly
