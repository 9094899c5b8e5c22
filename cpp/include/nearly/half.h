// IEEE half precision to float, n values at a time (fp16 token vectors of
// the multi-vector store). Every half is exactly a float, so all levels give
// the same bits; the SIMD ones use the F16C conversion instruction.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nearly {

void half_to_float(const uint16_t* src, size_t n, float* out);

void half_to_float_scalar(const uint16_t* src, size_t n, float* out);
void half_to_float_avx2(const uint16_t* src, size_t n, float* out);
void half_to_float_avx512(const uint16_t* src, size_t n, float* out);

}  // namespace nearly
