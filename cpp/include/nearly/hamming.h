// Hamming distances between 1-bit binary codes (faiss's IndexBinary
// semantics): code_size bytes per code, row-major, distances as int32.
#pragma once
#include <cstddef>
#include <cstdint>

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

void hamming_ny_scalar(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void hamming_ny_popcnt(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void hamming_ny_vpopcntdq(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
void hamming_ny_neon(const uint8_t* q, const uint8_t* x, size_t code_size, size_t ny, int32_t* out);
bool cpu_has_avx512_vpopcntdq();

}  // namespace nearly
