// Scalar reference of half_to_float (see half.h): IEEE binary16 to binary32,
// which is exact, decoded from the bits (subnormals normalized, inf and NaN
// payloads kept), self-contained so the kernel files build on their own.
#include <cstring>

#include "nearly/half.h"

namespace nearly {

namespace {
float half_bits_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else {  // subnormal: m * 2^-24, renormalized
            uint32_t shift = 0;
            while (!(m & 0x400u)) {
                m <<= 1;
                shift++;
            }
            bits = sign | ((113u - shift) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (m << 13);
    } else {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
}  // namespace

void half_to_float_scalar(const uint16_t* src, size_t n, float* out) {
    for (size_t i = 0; i < n; i++) out[i] = half_bits_to_float(src[i]);
}

}  // namespace nearly
