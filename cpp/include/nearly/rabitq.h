// RaBitQ (Gao & Long, SIGMOD 2024; extended to several bits per dimension in
// their 2025 paper), with faiss's code layout and estimators so that codes
// and scores match faiss's IndexRaBitQ / IndexIVFRaBitQ.
//
// A vector x is coded against a centroid c (the data's mean, or its IVF
// list's centroid): the sign bit of each component of x - c, then factors
// that turn a bit dot product into an unbiased distance estimate:
//   [d/8 sign bytes][||x - c||^2 (IP: minus ||x||^2), ||x - c|| / <x̄, o>]
//   multi-bit adds [f_error], [ex_bits per dimension, packed][f_add, f_rescale].
// The query's residual q - c is scalar-quantized to qb bits (qb = 0: kept in
// float) and laid out as qb bit planes, so <q̄, x̄> is a sum of popcounts.
// Multi-bit codes are searched in two stages: the 1-bit estimate and its
// error bound decide which codes need the full estimate (faiss's rule).
#pragma once
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nearly/common.h"

namespace nearly {

struct RaBitQuantizer {
    size_t d = 0;
    MetricType metric = METRIC_L2;
    size_t nb_bits = 1;  // 1: sign bits only; 2-9: 1 sign bit + nb_bits - 1 extra bits
    size_t code_size = 0;

    RaBitQuantizer(size_t d, MetricType metric, size_t nb_bits = 1);

    size_t sign_bytes() const { return (d + 7) / 8; }
    size_t ex_bits() const { return nb_bits - 1; }
    // Encodes n vectors against centroid (null: the origin), in parallel.
    void encode(size_t n, const float* x, const float* centroid, uint8_t* codes) const;
    void encode_one(const float* x, const float* centroid, uint8_t* code) const;
    // faiss's decode: signs scaled to keep inner products, plus the centroid
    // (only the sign bits are used, like faiss).
    void decode(size_t n, const uint8_t* codes, const float* centroid, float* x) const;
};

// One query prepared against one centroid: what scores its codes.
struct RaBitQQuery {
    const RaBitQuantizer* rq = nullptr;
    int qb = 4;
    bool centered = false;
    std::vector<float> rotated;    // q - c
    std::vector<uint8_t> planes;   // qb bit planes of sign_bytes() each (qb > 0)
    std::vector<uint8_t> values;   // the quantized components, padded to whole bytes
    float c1 = 0, c2 = 0, c34 = 0, int_dot_scale = 1;
    float qr_to_c_L2sqr = 0, qr_norm_L2sqr = 0, q_dot_c = 0;
    float g_error = 0;             // ||q - c||: scales a code's error bound
    uint32_t planes_popcount = 0;  // sum_b 2^b popcount(plane b), for the centered form

    // qb in 0..8; centroid null: the origin.
    void prepare(const RaBitQuantizer& q, const float* x, const float* centroid, int qb, bool centered);
    // The 1-bit estimates of n codes (stride code_size) in faiss's sense:
    // L2 distance, or inner product for METRIC_INNER_PRODUCT.
    void estimate(size_t n, const uint8_t* codes, float* out) const;
    // The 1-bit estimate of a code from its bit dot product with the query
    // planes, its popcount and its two factors (qb > 0).
    float from_ints(uint32_t dot, uint32_t pop, float or_minus_c_l2sqr, float dp_multiplier) const {
        float final_dot;
        if (centered) {
            // sum_b 2^b popcount(plane_b XOR x), from the AND form
            const int64_t max_code = (int64_t(1) << qb) - 1;
            const int64_t xor_dot = int64_t(planes_popcount) + max_code * pop - 2 * int64_t(dot);
            const int64_t int_dot = max_code * int64_t(rq->d) - 2 * xor_dot;
            final_dot = float(int_dot) * int_dot_scale;
        } else {
            final_dot = 0;
            final_dot += c1 * float(dot);
            final_dot += c2 * float(pop);
            final_dot -= c34;
        }
        return from_dot(final_dot, or_minus_c_l2sqr, dp_multiplier);
    }
    // The estimate from the code's estimated <q - c, x̄> and its two factors.
    float from_dot(float final_dot, float or_minus_c_l2sqr, float dp_multiplier) const {
        const float pre = or_minus_c_l2sqr + qr_to_c_L2sqr - 2 * dp_multiplier * final_dot;
        return rq->metric == METRIC_INNER_PRODUCT ? -0.5f * (pre - qr_norm_L2sqr) : std::max(0.0f, pre);
    }
    // The bit dot product as sums of byte tables over 4 dimensions (the
    // 4-bit fast-scan layout): 2 sign_bytes() tables of 16 entries, entry e
    // of table m = sum_k v_{4m+k} bit k of e. With up to 6 query bits one set
    // of tables holds v (entries <= 4 x 63); with 7 or 8, part 0 holds the
    // low 4 bits of v and part 1 the rest, dot = sum_0 + 16 sum_1. 0: no
    // tables (a float query, or sums past 16 bits).
    int nibble_parts() const;
    void nibble_tables(int part, uint8_t* out) const;
    // The full estimate of one code: the 1-bit one for nb_bits = 1, else
    // from the extra bits and the float query.
    float full(const uint8_t* code) const;
    // Whether a code whose 1-bit estimate is est can beat threshold (faiss's
    // should_refine_candidate: the estimate widened by the code's error bound).
    bool may_beat(float f_error, float est, float threshold) const {
        const float err = f_error * g_error;
        if (rq->metric == METRIC_INNER_PRODUCT) return est + err > threshold;
        return std::max(0.0f, est - err) < threshold;
    }
    bool may_beat(const uint8_t* code, float est, float threshold) const {
        float f_error;
        std::memcpy(&f_error, code + rq->sign_bytes() + 8, 4);
        return may_beat(f_error, est, threshold);
    }
};

// dot[j] = sum over b < qb of 2^b popcount(planes[b] & code_j) and
// pop[j] = popcount(code_j), over the first nbytes bytes of n codes (row
// stride bytes); planes are qb rows of nbytes. Integer results, the same at
// every level: scalar reference, hardware popcnt, AVX-512 VPOPCNTDQ.
using RaBitQDotsFn = void (*)(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                              size_t n, uint32_t* dot, uint32_t* pop);
void rabitq_dots_scalar(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                        size_t n, uint32_t* dot, uint32_t* pop);
void rabitq_dots_popcnt(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                        size_t n, uint32_t* dot, uint32_t* pop);
void rabitq_dots_vpopcntdq(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                           size_t n, uint32_t* dot, uint32_t* pop);
void rabitq_dots_neon(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                      size_t n, uint32_t* dot, uint32_t* pop);
RaBitQDotsFn rabitq_dots_kernel();  // the one the current SIMD level runs

}  // namespace nearly
