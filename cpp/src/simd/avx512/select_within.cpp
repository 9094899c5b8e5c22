// select_within with AVX-512: 16 partial distances per step, those within
// the limit packed in a register and stored whole (idx and out have room
// for n + 16): a compress straight to memory is microcoded on AMD's Zen 4,
// 1.3x slower than the scalar loop there.
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

size_t select_within_avx512(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                            float* out) {
    const __m512 vbase = _mm512_set1_ps(base), vlimit = _mm512_set1_ps(limit), two = _mm512_set1_ps(2.f);
    const __m512i step = _mm512_set1_epi32(16);
    __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t m = 0, c = 0;
    for (; c + 16 <= n; c += 16) {
        // 2 ip is exact, so the one rounding of the subtraction is the scalar's.
        const __m512 v = _mm512_sub_ps(_mm512_add_ps(vbase, _mm512_loadu_ps(yn + c)),
                                       _mm512_mul_ps(two, _mm512_loadu_ps(ip + c)));
        const __mmask16 keep = _mm512_cmp_ps_mask(v, vlimit, _CMP_LE_OQ);
        _mm512_storeu_ps(out + m, _mm512_maskz_compress_ps(keep, v));
        _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, iota));
        m += size_t(__builtin_popcount(keep));
        iota = _mm512_add_epi32(iota, step);
    }
    if (c < n) {
        const __mmask16 live = __mmask16((1u << (n - c)) - 1);
        const __m512 v = _mm512_sub_ps(_mm512_add_ps(vbase, _mm512_maskz_loadu_ps(live, yn + c)),
                                       _mm512_mul_ps(two, _mm512_maskz_loadu_ps(live, ip + c)));
        const __mmask16 keep = _mm512_cmp_ps_mask(v, vlimit, _CMP_LE_OQ) & live;
        _mm512_storeu_ps(out + m, _mm512_maskz_compress_ps(keep, v));
        _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, iota));
        m += size_t(__builtin_popcount(keep));
    }
    return m;
}

}  // namespace nearly
