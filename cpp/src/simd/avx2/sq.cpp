// The ScalarQuantizer decoder at this level (sq_decode.h compiled with the
// level's flags: bit-identical to the scalar reference) and the code scoring
// kernels (sq_avx2_scores.h).
#include "../../sq_decode.h"

#include "../sq_avx2_scores.h"
#include "nearly/half.h"
#include "nearly/sq_scan.h"

namespace nearly {

void sq_decode_avx2(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n) {
    sq_detail::decode(sq, codes, x, n, half_to_float_avx2);
}

void sq_scores_avx2(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
                    const float* r, float* out) {
    sq_scores_avx2_impl(kind, ip, codes, cs, n, d, w, r, out);
}

void sq_scores_gather_avx2(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d,
                           const float* w, const float* r, float* out) {
    sq_scores_gather_avx2_impl(kind, ip, codes, cs, n, d, w, r, out);
}

void sq_scores_group_avx2(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                          const float* const* w, const float* const* r, float* out) {
    sq_scores_group_avx2_impl(kind, ip, codes, cs, n, d, nq, w, r, out);
}

void sq8_int_scores_avx2(bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q,
                         float* out) {
    ip ? sq_avx2::int_scores<true>(codes, cs, n, d, q, out) : sq_avx2::int_scores<false>(codes, cs, n, d, q, out);
}

}  // namespace nearly
