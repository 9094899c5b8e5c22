// Hamming distances with AVX-512 VPOPCNTDQ: 64 bytes of a code per step
// (masked tail), 64-bit lane counts summed once per code. Compiled for
// VPOPCNTDQ in these functions only; chosen at run time.
#include <cpuid.h>
#include <immintrin.h>

#include "nearly/hamming.h"

namespace nearly {

__attribute__((target("avx512vpopcntdq,avx512bw,avx512f"))) void hamming_ny_vpopcntdq(
    const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
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

bool cpu_has_avx512_vpopcntdq() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (c & (1u << 14)) != 0;  // AVX512_VPOPCNTDQ
}

}  // namespace nearly
