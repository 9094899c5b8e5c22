// Scalar reference of half_to_float (see half.h): the multi-vector store's
// lookup table.
#include "nearly/half.h"
#include "nearly/multivector.h"

namespace nearly {

void half_to_float_scalar(const uint16_t* src, size_t n, float* out) {
    for (size_t i = 0; i < n; i++) out[i] = fp16_to_float(src[i]);
}

}  // namespace nearly
