// The ScalarQuantizer decoder (sq_decode.h) and the scalar reference of the
// code scoring kernels (sq_scan.h): plain loops in dimension order, no FMA
// contraction (see CMakeLists.txt).
#include "../../sq_decode.h"

#include <type_traits>

#include "../sq_codes.h"
#include "nearly/half.h"
#include "nearly/sq_scan.h"

namespace nearly {

void sq_decode_scalar(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n) {
    sq_detail::decode(sq, codes, x, n, half_to_float_scalar);
}

namespace {
// code(i): the i-th code's address (codes in a row, or gathered).
template <int Kind, bool IP, class Code>
void scores(const Code& code, size_t n, size_t d, const float* w, const float* r, float* out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = code(i);
        float s = 0.f;
        for (size_t j = 0; j < d; j++) {
            const float v = sq_value<Kind>(c, j);
            if constexpr (IP) {
                s += w[j] * v;
            } else {
                const float t = r[j] - w[j] * v;
                s += t * t;
            }
        }
        out[i] = s;
    }
}
}  // namespace

void sq_scores_group_scalar(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                            const float* const* w, const float* const* r, float* out) {
    for (size_t q = 0; q < nq; q++) sq_scores_scalar(kind, ip, codes, cs, n, d, w[q], r[q], out + q * n);
}

void sq8_int_scores_scalar(bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q,
                           float* out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * cs;
        int32_t s = 0;
        for (size_t j = 0; j < d; j++) {
            const int32_t t = ip ? int32_t(q[j]) * c[j] : int32_t(q[j]) - c[j];
            s += ip ? t : t * t;
        }
        out[i] = float(s);
    }
}

void sq_scores_scalar(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
                      const float* r, float* out) {
    const auto code = [codes, cs](size_t i) { return codes + i * cs; };
    with_sq_kind(kind, [&](auto k) {
        constexpr int K = decltype(k)::value;
        ip ? scores<K, true>(code, n, d, w, r, out) : scores<K, false>(code, n, d, w, r, out);
    });
}

void sq_scores_gather_scalar(int kind, bool ip, const uint8_t* const* codes, size_t, size_t n, size_t d,
                             const float* w, const float* r, float* out) {
    const auto code = [codes](size_t i) { return codes[i]; };
    with_sq_kind(kind, [&](auto k) {
        constexpr int K = decltype(k)::value;
        ip ? scores<K, true>(code, n, d, w, r, out) : scores<K, false>(code, n, d, w, r, out);
    });
}

}  // namespace nearly
