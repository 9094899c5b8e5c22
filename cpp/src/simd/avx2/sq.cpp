// The ScalarQuantizer decoder at this level: sq_decode.h compiled with the
// level's flags (bit-identical to the scalar reference; see CMakeLists.txt).
#include "../../sq_decode.h"

#include "nearly/half.h"

namespace nearly {

void sq_decode_avx2(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n) {
    sq_detail::decode(sq, codes, x, n, half_to_float_avx2);
}

}  // namespace nearly
