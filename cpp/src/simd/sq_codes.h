// One dimension's value in a ScalarQuantizer code as the scoring kernels
// see it (sq_scan.h): the integer code of 4, 6 or 8 bits (faiss's packings:
// 4 bits two per byte, low nibble first; 6 bits four per three bytes, low
// bits first), or the float a bf16 / fp16 code holds. Shared by the kernels
// of every level for the dimensions after the last full SIMD block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "nearly/half.h"
#include "nearly/sq_scan.h"

namespace nearly {

template <int Bits>
static inline uint32_t sq_code_value(const uint8_t* c, size_t j) {
    if constexpr (Bits == 8) {
        return c[j];
    } else if constexpr (Bits == 4) {
        return (c[j / 2] >> ((j & 1) * 4)) & 15;
    } else {
        const uint8_t* g = c + (j >> 2) * 3;
        switch (j & 3) {
            case 0: return g[0] & 63;
            case 1: return (g[0] >> 6) | ((g[1] & 15) << 2);
            case 2: return (g[1] >> 4) | ((g[2] & 3) << 4);
            default: return g[2] >> 2;
        }
    }
}

// Dimension j's cell in a codebook (TurboQuant) code of `bits` bits per
// dimension, packed low bits first across bytes (faiss's layout).
static inline uint32_t sq_codebook_index(const uint8_t* c, size_t j, size_t bits) {
    const size_t bit = j * bits;
    uint32_t v = c[bit >> 3];
    if ((bit & 7) + bits > 8) v |= uint32_t(c[(bit >> 3) + 1]) << 8;
    return (v >> (bit & 7)) & ((1u << bits) - 1);
}

// The codebook score of dimensions j0..d-1, one at a time (the scalar
// reference, and the tail after the last full SIMD step).
template <bool IP>
static inline float sq_codebook_tail(const uint8_t* c, size_t j0, size_t d, const float* q, const float* t,
                                     size_t bits) {
    float s = 0.f;
    for (size_t j = j0; j < d; j++) {
        const float v = t[sq_codebook_index(c, j, bits)];
        s += IP ? q[j] * v : (q[j] - v) * (q[j] - v);
    }
    return s;
}

// f(std::integral_constant<int, bits>{}) for a codebook type's 1, 2, 3, 4
// or 8 bits: one kernel instantiation per width.
template <class F>
static inline void with_codebook_bits(size_t bits, F&& f) {
    switch (bits) {
        case 1: return f(std::integral_constant<int, 1>{});
        case 2: return f(std::integral_constant<int, 2>{});
        case 3: return f(std::integral_constant<int, 3>{});
        case 4: return f(std::integral_constant<int, 4>{});
        default: return f(std::integral_constant<int, 8>{});
    }
}

// f(group size as an integral_constant, first query) over nq queries in
// groups of up to four.
template <class F>
static inline void for_groups_of_four(size_t nq, F&& f) {
    for (size_t q0 = 0; q0 < nq; q0 += 4) {
        const size_t g = nq - q0 < 4 ? nq - q0 : 4;
        if (g == 4) f(std::integral_constant<int, 4>{}, q0);
        else if (g == 3) f(std::integral_constant<int, 3>{}, q0);
        else if (g == 2) f(std::integral_constant<int, 2>{}, q0);
        else f(std::integral_constant<int, 1>{}, q0);
    }
}

template <int Kind>
static inline float sq_value(const uint8_t* c, size_t j) {
    if constexpr (Kind == kSQbf16 || Kind == kSQfp16) {
        uint16_t h;
        std::memcpy(&h, c + 2 * j, 2);
        float f;
        if constexpr (Kind == kSQfp16) {
            half_to_float_scalar(&h, 1, &f);  // in simd/scalar: the kernel files link on their own
        } else {
            const uint32_t u = uint32_t(h) << 16;
            std::memcpy(&f, &u, 4);
        }
        return f;
    } else {
        return float(sq_code_value<Kind>(c, j));
    }
}

// f(std::integral_constant<int, kind>{}): one kernel instantiation per kind.
template <class F>
static inline void with_sq_kind(int kind, F&& f) {
    switch (kind) {
        case kSQ4: return f(std::integral_constant<int, kSQ4>{});
        case kSQ6: return f(std::integral_constant<int, kSQ6>{});
        case kSQ8: return f(std::integral_constant<int, kSQ8>{});
        case kSQbf16: return f(std::integral_constant<int, kSQbf16>{});
        default: return f(std::integral_constant<int, kSQfp16>{});
    }
}

// The groups of up to four of nq queries that the group kernels take: calls
// f(kind, group size, first query) with the first two as integral_constants.
template <class F>
static inline void for_query_groups(int kind, size_t nq, F&& f) {
    for (size_t q0 = 0; q0 < nq; q0 += 4) {
        const size_t g = nq - q0 < 4 ? nq - q0 : 4;
        with_sq_kind(kind, [&](auto k) {
            if (g == 4) f(k, std::integral_constant<int, 4>{}, q0);
            else if (g == 3) f(k, std::integral_constant<int, 3>{}, q0);
            else if (g == 2) f(k, std::integral_constant<int, 2>{}, q0);
            else f(k, std::integral_constant<int, 1>{}, q0);
        });
    }
}

}  // namespace nearly
