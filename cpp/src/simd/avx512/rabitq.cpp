// RaBitQ bit dot products with AVX-512 VPOPCNTDQ: 64 bytes of a code per
// step (masked tail). Each 64-bit lane carries popcount(x) in its low half
// and the weighted plane counts in its high half, so one reduction per code
// gives both. The plane loop is unrolled per qb (the planes stay in
// registers). Compiled for VPOPCNTDQ in these functions only; chosen at run time.
#include <immintrin.h>

#include "nearly/rabitq.h"
#include "nearly/simd.h"

#define NEARLY_VPOPCNT __attribute__((target("avx512vpopcntdq,avx512bw,avx512f")))

namespace nearly {

namespace {
template <size_t QB>
NEARLY_VPOPCNT void dots_qb(const uint8_t* planes, const uint8_t* codes, size_t nbytes, size_t stride, size_t n,
                            uint32_t* dot, uint32_t* pop) {
    const size_t steps = (nbytes + 63) / 64, rest = nbytes % 64;
    const __mmask64 tail = rest ? (__mmask64)((~0ull) >> (64 - rest)) : ~__mmask64(0);
    __m512i q[QB > 0 ? QB : 1];
    if (steps == 1)
        for (size_t b = 0; b < QB; b++) q[b] = _mm512_maskz_loadu_epi8(tail, planes + b * nbytes);
    for (size_t j = 0; j < n; j++) {
        const uint8_t* c = codes + j * stride;
        __m512i acc = _mm512_setzero_si512();
        for (size_t st = 0; st < steps; st++) {
            const __mmask64 m = st + 1 == steps ? tail : ~__mmask64(0);
            const __m512i x = _mm512_maskz_loadu_epi8(m, c + 64 * st);
            __m512i s = _mm512_setzero_si512();
            for (size_t b = 0; b < QB; b++) {
                const __m512i qv = steps == 1 ? q[b] : _mm512_maskz_loadu_epi8(m, planes + b * nbytes + 64 * st);
                s = _mm512_add_epi64(s, _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(qv, x)), unsigned(b)));
            }
            acc = _mm512_add_epi64(acc, _mm512_add_epi64(_mm512_popcnt_epi64(x), _mm512_slli_epi64(s, 32)));
        }
        const uint64_t t = uint64_t(_mm512_reduce_add_epi64(acc));
        dot[j] = uint32_t(t >> 32);
        pop[j] = uint32_t(t);
    }
}
}  // namespace

void rabitq_dots_vpopcntdq(const uint8_t* planes, size_t qb, const uint8_t* codes, size_t nbytes, size_t stride,
                           size_t n, uint32_t* dot, uint32_t* pop) {
    if (qb == 0) return dots_qb<0>(planes, codes, nbytes, stride, n, dot, pop);
    with_vector_count<8>(qb, [&](auto c) { dots_qb<decltype(c)::value>(planes, codes, nbytes, stride, n, dot, pop); });
}

}  // namespace nearly
