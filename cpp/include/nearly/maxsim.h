// The inner loop of Chamfer re-ranking: the best inner product of every
// query vector with the rows of one candidate document. The query set is
// transposed once (its vectors across SIMD lanes), so each document row is
// read once for all query vectors, without packing the document and without
// a horizontal sum per inner product. One kernel per SIMD level.
#pragma once
#include <cstddef>

namespace nearly {

// Query vectors per lane group: transposed queries are padded to a multiple.
constexpr size_t kMaxSimLanes = 16;

// qt (d x mp, row i holding coordinate i of every query vector, mp a multiple
// of kMaxSimLanes, zeros past the last vector) from m query vectors of d
// coordinates (row-major).
void maxsim_transpose_queries(const float* q, size_t m, size_t d, float* qt, size_t mp);

// best[a] = max(best[a], max over j < n of <q_a, x_j>) for a < mp, x: n rows
// of d floats. Each inner product sums over i in order; the SIMD levels fuse
// the multiply-add, the scalar reference does not (so they agree to float
// rounding, not bit for bit). While it runs, the kernel may prefetch
// next_bytes from next (the following candidate's rows): candidates lie
// scattered in memory, each only a few short rows, too short for the
// hardware prefetchers to follow.
void maxsim_update(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best,
                   const void* next = nullptr, size_t next_bytes = 0);

void maxsim_update_scalar(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best,
                          const void* next, size_t next_bytes);
void maxsim_update_avx2(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best,
                        const void* next, size_t next_bytes);
void maxsim_update_avx512(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best,
                          const void* next, size_t next_bytes);

}  // namespace nearly
