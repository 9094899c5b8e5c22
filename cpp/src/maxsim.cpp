#include "nearly/maxsim.h"

#include "nearly/simd.h"

namespace nearly {

void maxsim_transpose_queries(const float* q, size_t m, size_t d, float* qt, size_t mp) {
    for (size_t i = 0; i < d; i++)
        for (size_t a = 0; a < mp; a++) qt[i * mp + a] = a < m ? q[a * d + i] : 0.f;
}

void maxsim_update(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best, const void* next,
                   size_t next_bytes) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return maxsim_update_avx512(qt, mp, d, x, n, best, next, next_bytes);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return maxsim_update_avx2(qt, mp, d, x, n, best, next, next_bytes);
#endif
        default: return maxsim_update_scalar(qt, mp, d, x, n, best, next, next_bytes);
    }
}

}  // namespace nearly
