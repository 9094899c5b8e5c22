#include "nearly/half.h"

#include "nearly/simd.h"

namespace nearly {

void half_to_float(const uint16_t* src, size_t n, float* out) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return half_to_float_avx512(src, n, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return half_to_float_avx2(src, n, out);
#endif
        default: return half_to_float_scalar(src, n, out);
    }
}

}  // namespace nearly
