// The ScalarQuantizer decoder, written once as plain loops the compiler
// vectorizes, and compiled once per SIMD level (cpp/src/simd/<isa>/sq.cpp,
// with -ffp-contract=off so that every level rounds like the scalar
// reference: one multiply, then one add, as faiss's scalar decoder).
// Private to cpp/src.
#pragma once
#include <cstdint>
#include <cstring>

#include "nearly/common.h"
#include "nearly/scalar_quantizer.h"
#include "simd/sq_codes.h"

namespace nearly {
namespace sq_detail {

// faiss's decode_component: the centre of the code's cell in [0, 1].
template <int Levels>
inline float unit(uint32_t c) {
    return (float(c) + 0.5f) / float(Levels);
}

template <int Levels>
inline void decode_8bit(const uint8_t* c, const float* vmin, const float* vdiff, float* x, size_t d) {
    for (size_t j = 0; j < d; j++) x[j] = vmin[j] + unit<Levels>(c[j]) * vdiff[j];
}

inline void decode_4bit(const uint8_t* c, const float* vmin, const float* vdiff, float* x, size_t d) {
    size_t j = 0;
    for (; j + 2 <= d; j += 2) {
        const uint32_t b = c[j / 2];
        x[j] = vmin[j] + unit<15>(b & 15) * vdiff[j];
        x[j + 1] = vmin[j + 1] + unit<15>(b >> 4) * vdiff[j + 1];
    }
    if (j < d) x[j] = vmin[j] + unit<15>(c[j / 2] & 15) * vdiff[j];
}

// Four dimensions in three bytes: 6 | 2+4 | 4+2 | 6 bits, low bits first.
inline void decode_6bit(const uint8_t* c, const float* vmin, const float* vdiff, float* x, size_t d) {
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        const uint8_t* g = c + (j >> 2) * 3;
        const uint32_t b0 = g[0], b1 = g[1], b2 = g[2];
        x[j] = vmin[j] + unit<63>(b0 & 63) * vdiff[j];
        x[j + 1] = vmin[j + 1] + unit<63>((b0 >> 6) | ((b1 & 15) << 2)) * vdiff[j + 1];
        x[j + 2] = vmin[j + 2] + unit<63>((b1 >> 4) | ((b2 & 3) << 4)) * vdiff[j + 2];
        x[j + 3] = vmin[j + 3] + unit<63>(b2 >> 2) * vdiff[j + 3];
    }
    for (; j < d; j++) x[j] = vmin[j] + unit<63>(sq_code_value<6>(c, j)) * vdiff[j];
}


// Decodes n codes into n * d floats; `halves` is the level's fp16 converter.
inline void decode(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n,
                   void (*halves)(const uint16_t*, size_t, float*)) {
    const size_t d = sq.d, cs = sq.code_size;
    using Q = ScalarQuantizer;
    // TurboQuant's full codes are not per-dimension: ScalarQuantizer::decode
    // hands them to their codec (turboquant.h) before any level's decoder.
    if (sq.turboq()) throw NotSupported("sq_decode: QT_*bit_tq codes decode through TurboQuantCodec");
    if (sq.codebook()) {
        const float* centroid = sq.centroids();
        const size_t bits = sq.bits;
        for (size_t i = 0; i < n; i++) {
            const uint8_t* c = codes + i * cs;
            for (size_t j = 0; j < d; j++) x[i * d + j] = centroid[sq_codebook_index(c, j, bits)];
        }
        return;
    }
    if (sq.qtype == Q::QT_8bit_uniform || sq.qtype == Q::QT_4bit_uniform) {
        const float vmin = sq.trained[0], vdiff = sq.trained[1];
        const bool four = sq.qtype == Q::QT_4bit_uniform;
        for (size_t i = 0; i < n; i++) {
            const uint8_t* c = codes + i * cs;
            float* xi = x + i * d;
            if (four) {
                for (size_t j = 0; j < d; j++) xi[j] = vmin + unit<15>((c[j / 2] >> ((j & 1) * 4)) & 15) * vdiff;
            } else {
                for (size_t j = 0; j < d; j++) xi[j] = vmin + unit<255>(c[j]) * vdiff;
            }
        }
        return;
    }
    const float* vmin = sq.trained.data();
    const float* vdiff = sq.trained.data() + (sq.trained.empty() ? 0 : d);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        float* xi = x + i * d;
        switch (sq.qtype) {
            case Q::QT_8bit: decode_8bit<255>(c, vmin, vdiff, xi, d); break;
            case Q::QT_4bit: decode_4bit(c, vmin, vdiff, xi, d); break;
            case Q::QT_6bit: decode_6bit(c, vmin, vdiff, xi, d); break;
            case Q::QT_fp16: halves(reinterpret_cast<const uint16_t*>(c), d, xi); break;
            case Q::QT_bf16:
                for (size_t j = 0; j < d; j++) {
                    uint16_t h;
                    std::memcpy(&h, c + 2 * j, 2);
                    xi[j] = bf16_to_float(h);
                }
                break;
            case Q::QT_8bit_direct:
                for (size_t j = 0; j < d; j++) xi[j] = float(c[j]);
                break;
            case Q::QT_8bit_direct_signed:
                for (size_t j = 0; j < d; j++) xi[j] = float(int(c[j]) - 128);
                break;
            default: break;
        }
    }
}

}  // namespace sq_detail
}  // namespace nearly
