#include "nearly/ams_sketch.h"

#include "nearly/simd.h"

namespace nearly {

void ams_sketch_block(const float* points, size_t m, size_t d, float* t, const uint32_t* start,
                      const uint32_t* input, const float* sign, size_t n_out, float* out) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return ams_sketch_block_avx512(points, m, d, t, start, input, sign, n_out, out);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return ams_sketch_block_avx2(points, m, d, t, start, input, sign, n_out, out);
#endif
        default: return ams_sketch_block_scalar(points, m, d, t, start, input, sign, n_out, out);
    }
}

}  // namespace nearly
