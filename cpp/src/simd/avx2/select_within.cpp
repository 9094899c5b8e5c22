// select_within with AVX2: 8 partial distances per step. AVX2 has no
// compress, so those within the limit are moved to the front of the
// register by a permutation looked up from the comparison's 8-bit mask, and
// the whole register is stored (idx and out have room for n + 16).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

namespace {
// For each mask, the lanes it keeps, in order (the rest: lane 0, never counted).
struct CompressTable {
    alignas(32) int32_t lanes[256][8];
    constexpr CompressTable() : lanes{} {
        for (int mask = 0; mask < 256; mask++) {
            int k = 0;
            for (int b = 0; b < 8; b++)
                if ((mask >> b) & 1) lanes[mask][k++] = b;
        }
    }
};
constexpr CompressTable kCompress;
}  // namespace

size_t select_within_avx2(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                          float* out) {
    const __m256 vbase = _mm256_set1_ps(base), vlimit = _mm256_set1_ps(limit), two = _mm256_set1_ps(2.f);
    const __m256i step = _mm256_set1_epi32(8);
    __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t m = 0, c = 0;
    for (; c + 8 <= n; c += 8) {
        // 2 ip is exact, so the one rounding of the subtraction is the scalar's.
        const __m256 v = _mm256_sub_ps(_mm256_add_ps(vbase, _mm256_loadu_ps(yn + c)),
                                       _mm256_mul_ps(two, _mm256_loadu_ps(ip + c)));
        const int keep = _mm256_movemask_ps(_mm256_cmp_ps(v, vlimit, _CMP_LE_OQ));
        const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[keep]));
        _mm256_storeu_ps(out + m, _mm256_permutevar8x32_ps(v, lanes));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + m), _mm256_permutevar8x32_epi32(iota, lanes));
        m += size_t(__builtin_popcount(unsigned(keep)));
        iota = _mm256_add_epi32(iota, step);
    }
    for (; c < n; c++) {
        const float partial = (base + yn[c]) - 2 * ip[c];
        idx[m] = int32_t(c);
        out[m] = partial;
        m += partial <= limit;
    }
    return m;
}

}  // namespace nearly
