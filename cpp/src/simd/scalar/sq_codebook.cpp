// The scalar reference of the codebook (TurboQuant) scoring kernels
// (sq_scan.h): each dimension's cell, its centroid, summed in dimension order.
#include "../sq_codes.h"
#include "nearly/sq_scan.h"

namespace nearly {

namespace {
template <bool IP, class Code>
void scores(const Code& code, size_t bits, size_t n, size_t d, const float* q, const float* t, float* out) {
    for (size_t i = 0; i < n; i++) out[i] = sq_codebook_tail<IP>(code(i), 0, d, q, t, bits);
}
}  // namespace

void sq_codebook_scores_scalar(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                               const float* q, const float* t, float* out) {
    const auto code = [codes, cs](size_t i) { return codes + i * cs; };
    ip ? scores<true>(code, bits, n, d, q, t, out) : scores<false>(code, bits, n, d, q, t, out);
}

void sq_codebook_scores_gather_scalar(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d,
                                      const float* q, const float* t, float* out) {
    const auto code = [codes](size_t i) { return codes[i]; };
    ip ? scores<true>(code, bits, n, d, q, t, out) : scores<false>(code, bits, n, d, q, t, out);
}

void sq_codebook_scores_group_scalar(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                     size_t nq, const float* const* q, const float* t, float* out) {
    for (size_t k = 0; k < nq; k++) sq_codebook_scores_scalar(bits, ip, codes, cs, n, d, q[k], t, out + k * n);
}

}  // namespace nearly
