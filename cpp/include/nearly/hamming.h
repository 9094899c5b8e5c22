// Hamming distances between 1-bit binary codes (faiss's IndexBinary
// semantics): code_size bytes per code, row-major, distances as int32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nearly/common.h"
#include "nearly/selector.h"

namespace nearly {

constexpr int32_t kHammingPad = 2147483647;  // distance of a missing result

// out[j] = popcount(q XOR x_j) for ny codes. Dispatched: scalar reference,
// hardware popcnt (avx2 level), AVX-512 VPOPCNTDQ (avx512 level when the CPU
// has it, detected at run time), NEON cnt (neon level).
void hamming_ny(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
bool hamming_vpopcntdq_native();
// The kernel hamming_ny dispatches to now, for callers that score a few codes
// at a time (graph walks) and should not pay the dispatch on every call.
using HammingNyFn = void (*)(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
HammingNyFn hamming_ny_kernel();

// k nearest codes of xb for each query, ascending distance, ties to the
// smaller id; padded with (2147483647, -1).
void knn_hamming(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t code_size, size_t k,
                 int32_t* D, idx_t* I, const IDSelector* sel = nullptr, const idx_t* labels = nullptr);

// faiss's hamming.h utilities. All pairs: dis[i * nb + j] = hamming(a_i, b_j).
void hammings(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t code_size, int32_t* dis);
// How many pairs (i, j) have hamming(a_i, b_j) <= ht; crosshamming: the pairs
// i < j of one set.
size_t hamming_count_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int32_t ht, size_t code_size);
size_t crosshamming_count_thres(const uint8_t* x, size_t n, int32_t ht, size_t code_size);
// The pairs within ht, (i, j) flattened in pairs, in (i, j) order.
void match_hamming_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int32_t ht, size_t code_size,
                         std::vector<idx_t>& pairs, std::vector<int32_t>& dis);
// faiss's "generalized" Hamming distance: how many bytes differ. Dispatched:
// scalar reference, AVX2 byte compares, AVX-512 eight codes at a time (where
// the CPU has VPOPCNTDQ, as the Hamming kernel it shares code with).
void generalized_hamming_ny(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
HammingNyFn generalized_hamming_ny_kernel();
void generalized_hamming_ny_scalar(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void generalized_hamming_ny_avx2(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void generalized_hamming_ny_avx512(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void knn_generalized_hamming(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t code_size, size_t k,
                             int32_t* D, idx_t* I);

void hamming_ny_scalar(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void hamming_ny_popcnt(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void hamming_ny_vpopcntdq(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void hamming_ny_neon(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
bool cpu_has_avx512_vpopcntdq();

}  // namespace nearly
