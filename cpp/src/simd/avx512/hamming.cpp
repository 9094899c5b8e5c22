// Hamming distances with AVX-512 VPOPCNTDQ: 64 bytes of a code per step
// (masked tail), 64-bit lane counts summed once per code. Compiled for
// VPOPCNTDQ in these functions only; chosen at run time.
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

#include "nearly/hamming.h"

namespace nearly {

namespace {
#define NEARLY_VPOPCNT __attribute__((target("avx512vpopcntdq,avx512bw,avx512f"), always_inline)) inline

// Lane i of the result: lanes 2i and 2i + 1 of a:b (a's lanes, then b's).
NEARLY_VPOPCNT __m512i add_lane_pairs(__m512i a, __m512i b) {
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    return _mm512_add_epi64(_mm512_permutex2var_epi64(a, even, b), _mm512_permutex2var_epi64(a, odd, b));
}

// Per 64-bit lane of q ^ y: its set bits (Hamming), or its nonzero bytes
// (faiss's generalized distance; no VPOPCNTDQ needed).
template <bool Generalized>
__attribute__((target("avx512vpopcntdq,avx512bw,avx512f"), always_inline)) inline __m512i lane_counts(__m512i d) {
    if (Generalized) return _mm512_sad_epu8(_mm512_min_epu8(d, _mm512_set1_epi8(1)), _mm512_setzero_si512());
    return _mm512_popcnt_epi64(d);
}

// Codes of W 64-bit words (8, 16, 32 or 64 bytes: PQ codes, short binary
// codes): eight codes per step, their W registers of word counts reduced to
// one register of eight code counts by pairwise lane sums, instead of one
// full reduction per code.
template <int W, bool Generalized = false>
__attribute__((target("avx512vpopcntdq,avx512bw,avx512f"))) size_t hamming_words(const uint8_t* q, const uint8_t* x,
                                                                                size_t ny, int32_t* out) {
    // the query repeated over a register (8 / W copies), or its W / 8 registers
    constexpr int R = W < 8 ? 1 : W / 8;
    __m512i qv[R];
    for (int r = 0; r < R; r++) {
        alignas(64) uint64_t lanes[8];
        for (int l = 0; l < 8; l++) std::memcpy(&lanes[l], q + 8 * ((r * 8 + l) % W), 8);
        qv[r] = _mm512_load_si512(lanes);
    }
    size_t j = 0;
    for (; j + 8 <= ny; j += 8) {
        const uint8_t* c = x + j * W * 8;
        __m512i p[W];
        for (int v = 0; v < W; v++)
            p[v] = lane_counts<Generalized>(_mm512_xor_si512(qv[v % R], _mm512_loadu_si512(c + 64 * v)));
        for (int width = W; width > 1; width /= 2)
            for (int v = 0; v < width / 2; v++) p[v] = add_lane_pairs(p[2 * v], p[2 * v + 1]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm512_cvtepi64_epi32(p[0]));
    }
    return j;
}
#undef NEARLY_VPOPCNT
}  // namespace

__attribute__((target("avx512vpopcntdq,avx512bw,avx512f"))) void hamming_ny_vpopcntdq(
    const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    size_t done = 0;
    switch (cs) {
        case 8: done = hamming_words<1>(q, x, ny, out); break;
        case 16: done = hamming_words<2>(q, x, ny, out); break;
        case 32: done = hamming_words<4>(q, x, ny, out); break;
        case 64: done = hamming_words<8>(q, x, ny, out); break;
        default: break;
    }
    x += done * cs;
    out += done;
    ny -= done;
    const size_t full = cs / 64, rest = cs % 64;
    const __mmask64 tm = rest ? (__mmask64)((~0ull) >> (64 - rest)) : 0;
    const __m512i qt = rest ? _mm512_maskz_loadu_epi8(tm, q + 64 * full) : _mm512_setzero_si512();
    size_t j = 0;
    // Two codes per step: independent chains, one reduction each.
    for (; j + 2 <= ny; j += 2) {
        const uint8_t* c0 = x + j * cs;
        const uint8_t* c1 = c0 + cs;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        for (size_t i = 0; i < full; i++) {
            __m512i qv = _mm512_loadu_si512(q + 64 * i);
            a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(c0 + 64 * i))));
            a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(c1 + 64 * i))));
        }
        if (rest) {
            a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(qt, _mm512_maskz_loadu_epi8(tm, c0 + 64 * full))));
            a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(_mm512_xor_si512(qt, _mm512_maskz_loadu_epi8(tm, c1 + 64 * full))));
        }
        out[j] = int32_t(_mm512_reduce_add_epi64(a0));
        out[j + 1] = int32_t(_mm512_reduce_add_epi64(a1));
    }
    for (; j < ny; j++) {
        const uint8_t* c0 = x + j * cs;
        __m512i a0 = _mm512_setzero_si512();
        for (size_t i = 0; i < full; i++)
            a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(q + 64 * i),
                                                                             _mm512_loadu_si512(c0 + 64 * i))));
        if (rest) a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(qt, _mm512_maskz_loadu_epi8(tm, c0 + 64 * full))));
        out[j] = int32_t(_mm512_reduce_add_epi64(a0));
    }
}

// faiss's generalized distance (bytes that differ): codes of 8, 16, 32 or
// 64 bytes eight at a time as above, the rest (and other sizes) by the AVX2
// kernel. Shares the Hamming kernel's code (built for VPOPCNTDQ), so chosen
// only where the CPU has it.
__attribute__((target("avx512vpopcntdq,avx512bw,avx512f"))) void generalized_hamming_ny_avx512(
    const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    size_t done = 0;
    switch (cs) {
        case 8: done = hamming_words<1, true>(q, x, ny, out); break;
        case 16: done = hamming_words<2, true>(q, x, ny, out); break;
        case 32: done = hamming_words<4, true>(q, x, ny, out); break;
        case 64: done = hamming_words<8, true>(q, x, ny, out); break;
        default: break;
    }
    if (done < ny) generalized_hamming_ny_avx2(q, x + done * cs, cs, ny - done, out + done);
}

bool cpu_has_avx512_vpopcntdq() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (c & (1u << 14)) != 0;  // AVX512_VPOPCNTDQ
}

}  // namespace nearly
