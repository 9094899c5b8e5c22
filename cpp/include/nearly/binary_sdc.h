// Symmetric Distance Calculation (SDC) over recurrent binary codes (BEBR).
//
// A code has m dimensions and nb = u + 1 bit planes (1 <= nb <= 4). Plane i
// holds b_i in {-1,+1}^m and the code stands for b = sum_i 2^-i b_i, so every
// dimension takes one of 2^nb evenly spaced odd levels. Scaled by 2^u the
// level of dimension k is the odd integer L(k) = sum_i 2^(u-i) s_i(k) with
// |L| <= 2^nb - 1, and the SDC score of two codes is the exact integer
//
//     S(q, x) = 2^(2u) <b_q, b_x> = sum_k L_q(k) L_x(k)
//             = sum_i sum_j 2^(u-i) 2^(u-j) (m - 2 popcount(q_i XOR x_j)).
//
// Canonical code (what encode() returns, one row per vector), code_size =
// nb * m / 8 bytes, m a multiple of 8:
//     byte  i * m/8 + k/8, bit k % 8  =  1 when s_i(k) = +1   (plane 0 = MSB first)
//
// Stored layout (what the index scans), "blocked planes": vectors in blocks of
// 32; inside a block, byte position p of the 32 codes is 32 consecutive bytes:
//     blocks[(blk * code_size + p) * 32 + c]  =  canonical byte p of vector 32 blk + c
// The last block is padded with zero codes (at most 31, scores ignored), so
// the bytes per vector are code_size (plus that padding amortized).
//
// Both scans read this one layout:
//  - nibble-LUT SDC: a nibble of plane j holds the signs of 4 dims; for the
//    4 dims of group g the query contributes T_g[nibble] = sum_k +-L_q(4g+k)
//    (|T| <= 4 (2^nb - 1) fits a byte), the same table for every plane j. One
//    32-byte load gives byte p of 32 codes, two in-register shuffles score
//    both nibbles of all 32; per-plane sums are weighted by 2^(u-j) at the end.
//  - bit-plane popcount: the same 32-byte load XOR the query's byte p of each
//    query plane, popcount per byte (AVX-512 BITALG vpopcntb, or at AVX2 the
//    nibble-table pshufb popcount), weighted sums.
// Sums are kept in 16-bit lanes over chunks short enough not to overflow and
// added into 32-bit totals per chunk.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nearly/common.h"

namespace nearly {

constexpr size_t kSdcBlock = 32;

inline size_t sdc_code_size(int m, int nb) { return size_t(nb) * size_t(m) / 8; }

// Throws InvalidArgument unless 1 <= nb <= 4 and m is a positive multiple of 8.
void sdc_check_shape(int m, int nb);

// Query table: m/4 groups of 16 signed values, T_g[n] = sum_{k<4} (bit k of n ? +1 : -1) L_q(4g + k).
void sdc_query_lut(const uint8_t* qcode, int m, int nb, int8_t* lut);

// A query prepared once for any number of scans: its canonical code, the
// biased nibble tables (T_g + 4 (2^nb - 1), m/4 x 16 bytes), the same tables
// laid out for 64-byte registers (per pair of byte positions p, p + 1: 64
// bytes for low nibbles [T_2p T_2p T_2p+2 T_2p+2], 64 for high nibbles), and
// the query's plane bytes broadcast for the popcount path (per plane and
// pair: 32 x byte p, 32 x byte p + 1). A missing last position is zeros.
struct SdcQuery {
    int m = 0, nb = 0;
    std::vector<uint8_t> code, lut, lut512, popq;
};
void sdc_prepare(const uint8_t* qcode, int m, int nb, SdcQuery& q);

// Scores of nblocks blocks of stored codes: out[32 b + c] = S(q, code 32 b + c).
// Dispatched on the active SIMD level (scalar / avx2 / avx512). popcount:
// the bit-plane popcount path (same scores; AVX-512 BITALG when the CPU has
// it and the level is avx512, the AVX2 pshufb popcount at avx2 and at avx512
// without BITALG, the scalar reference otherwise).
void sdc_scan(const SdcQuery& q, const uint8_t* blocks, size_t nblocks, int32_t* out, bool popcount = false);
// Several queries over the same blocks (each data register is loaded once
// for all of them at the avx512 level): outs[i] receives query i's scores.
void sdc_scan_multi(const SdcQuery* const* qs, size_t nq, const uint8_t* blocks, size_t nblocks, int32_t* const* outs,
                    bool popcount = false);
// The first j in [j, n) with s[j] >= smin, or n: the integer pre-filter of
// the top-k (AVX-512: 16 scores per compare).
size_t sdc_next_at_least(const int32_t* s, size_t j, size_t n, int32_t smin);
size_t sdc_next_at_least_avx512(const int32_t* s, size_t j, size_t n, int32_t smin);
// The same with a per-code integer offset: first j with s[j] + off[j] >= smin.
size_t sdc_next_at_least_off(const int32_t* s, const int32_t* off, size_t j, size_t n, int32_t smin);
size_t sdc_next_at_least_off_avx512(const int32_t* s, const int32_t* off, size_t j, size_t n, int32_t smin);
// One-shot forms (prepare + scan).
void sdc_scan(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out);
void sdc_scan_popcount(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out);
bool sdc_popcount_native();  // true when sdc_scan_popcount runs the AVX-512 kernel now
// The kernel sdc_scan(..., popcount = true) runs at the active level:
// "avx512_bitalg", "avx2_pshufb" or "scalar".
const char* sdc_popcount_kernel();

// Scalar reference of one pair of canonical codes.
int32_t sdc_score_ref(const uint8_t* qcode, const uint8_t* xcode, int m, int nb);

// Canonical <-> blocked layout. blocks holds ceil(n / 32) blocks.
void sdc_to_blocks(const uint8_t* codes, size_t n, size_t code_size, uint8_t* blocks, size_t first = 0);
void sdc_from_blocks(const uint8_t* blocks, size_t i0, size_t n, size_t code_size, uint8_t* codes);

// Per-level kernels (cpp/src/simd/<isa>/binary_sdc.cpp). lut_biased holds
// T_g + 4 (2^nb - 1) as bytes (m/4 groups x 16); bias is removed inside.
void sdc_scan_scalar(const uint8_t* qcode, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out);
void sdc_scan_lut_avx2(const uint8_t* lut_biased, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out);
void sdc_scan_lut_avx512(const uint8_t* lut512, const uint8_t* blocks, size_t nblocks, int m, int nb,
                         int32_t* out);
void sdc_scan_lut_avx512_multi(const uint8_t* const* luts, size_t nq, const uint8_t* blocks, size_t nblocks, int m,
                               int nb, int32_t* const* outs);
void sdc_scan_popcount_avx2(const uint8_t* popq, const uint8_t* blocks, size_t nblocks, int m, int nb, int32_t* out);
void sdc_scan_popcount_avx512(const uint8_t* popq, const uint8_t* blocks, size_t nblocks, int m, int nb,
                              int32_t* out);
bool cpu_has_avx512_bitalg();

}  // namespace nearly
