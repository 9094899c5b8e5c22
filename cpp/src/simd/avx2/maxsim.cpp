// maxsim_update with AVX2 (see maxsim.h and the AVX-512 version): 4 document
// rows against 16 query vectors in two 8-lane registers at a time.
#include <immintrin.h>

#include "nearly/maxsim.h"

namespace nearly {

namespace {

template <int JR>
void rows(const float* qt, size_t mp, size_t d, const float* x, __m256 (&best)[2]) {
    __m256 acc[JR][2];
    for (int j = 0; j < JR; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    for (size_t i = 0; i < d; i++) {
        const __m256 q0 = _mm256_loadu_ps(qt + i * mp), q1 = _mm256_loadu_ps(qt + i * mp + 8);
        for (int j = 0; j < JR; j++) {
            const __m256 xb = _mm256_broadcast_ss(x + size_t(j) * d + i);
            acc[j][0] = _mm256_fmadd_ps(xb, q0, acc[j][0]);
            acc[j][1] = _mm256_fmadd_ps(xb, q1, acc[j][1]);
        }
    }
    for (int j = 0; j < JR; j++) {
        best[0] = _mm256_max_ps(best[0], acc[j][0]);
        best[1] = _mm256_max_ps(best[1], acc[j][1]);
    }
}

}  // namespace

void maxsim_update_avx2(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best, const void*,
                        size_t) {
    for (size_t a = 0; a < mp; a += 16) {
        __m256 b[2] = {_mm256_loadu_ps(best + a), _mm256_loadu_ps(best + a + 8)};
        size_t j = 0;
        for (; j + 4 <= n; j += 4) rows<4>(qt + a, mp, d, x + j * d, b);
        for (; j < n; j++) rows<1>(qt + a, mp, d, x + j * d, b);
        _mm256_storeu_ps(best + a, b[0]);
        _mm256_storeu_ps(best + a + 8, b[1]);
    }
}

}  // namespace nearly
