// Scoring ScalarQuantizer codes against a query without decoding them to
// memory. Every decoder is affine per dimension, x_j = A_j + c_j * B_j, with
// c_j the integer code (4, 6 and 8 bits, uniform or not, direct) or the
// float an fp16 / bf16 code holds (A = 0, B = 1), so, with the per-query
// vectors below,
//   inner product: <q, x> = sum_j q_j A_j + sum_j (q_j B_j) c_j
//   squared L2:    |q - x|^2 = sum_j ((q_j - A_j) - B_j c_j)^2
// and a search reads the packed codes once, widening them in registers
// (cpp/src/simd/<isa>/sq.cpp). The scores equal the decoded vectors' up to
// float rounding (A + c B is within an ulp of faiss's decoder).
// The codebook (TurboQuant) types are not affine: their kernels
// (cpp/src/simd/<isa>/sq_codebook.cpp) widen each code to its cells and
// look the centroids up in registers (a permute of the 2 to 16 centroids,
// a gather of the 256 of 8 bits), scoring the query against them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nearly/index.h"
#include "nearly/scalar_quantizer.h"
#include "nearly/turboquant.h"

namespace nearly {

// What the kernels widen: 4-, 6- or 8-bit integer codes, bf16 or fp16.
// kSQturboq: TurboQuant's full codes, scored on their estimate (turboquant.h).
enum SQCodeKind : int { kSQ4 = 4, kSQ6 = 6, kSQ8 = 8, kSQbf16 = 16, kSQfp16 = 17, kSQcodebook = 32, kSQturboq = 33 };

class SQScorer {
   public:
    SQScorer(const ScalarQuantizer& sq, MetricType metric);
    // q: the query (or its residual to the list's centroid), d floats.
    void set_query(const float* q);
    // n codes' scores: squared L2 distances, or inner products.
    void scores(const uint8_t* codes, size_t n, float* out) const;
    // n codes at scattered addresses (a graph node's neighbours): the bits
    // scores() gives each of them.
    void scores_gather(const uint8_t* const* codes, size_t n, float* out) const;
    // The scores of nq scorers of one index over the same n codes (out: nq
    // rows of n), the codes widened once for all (flat search's groups of
    // queries; index_flat_codes.h).
    static void scores_group(const SQScorer* s, size_t nq, const uint8_t* codes, size_t n, float* out);
    // The decoder's affine form x_j = A_j + c_j B_j and the kernels' code kind
    // (the affine form is empty for the codebook types).
    const std::vector<float>& offsets() const { return A_; }
    const std::vector<float>& scales() const { return B_; }
    int kind() const { return kind_; }
    // The codebook types' centroids, zero-padded to 16 at least.
    const float* table() const { return table_.data(); }

   private:
    int kind_;
    bool ip_;
    size_t d_, code_size_;
    std::vector<float> A_, B_;
    std::vector<float> w_, r_;  // IP: w = q B; L2: w = B, r = q - A
    float c0_ = 0.f;            // IP: sum q A
    // 8-bit direct codes (B = 1) and a query of small integers (uint8 data,
    // as in BigANN): the scores in exact integer arithmetic, q16 = r (L2,
    // 0..255) or w (IP, -255..255). faiss scores these types in integers
    // too (truncating any query); here a query that is not such integers
    // keeps the float kernels.
    bool direct8_ = false, int_query_ = false;
    std::vector<int16_t> q16_;
    // Codebook types: bits per dimension and the centroids, zero-padded to
    // at least 16 (w holds the query).
    size_t cb_bits_ = 0;
    std::vector<float> table_;
    // TurboQuant's full codes: the codec (shared by copies), the padded
    // query and its transform (w_ and r_ hold them), |q|^2 and the sum of
    // the transform.
    std::shared_ptr<const TurboQuantCodec> tq_;
    float tq_qnorm_ = 0.f, tq_psum_ = 0.f, tq_coeff_ = 0.f;
    void turboq_scores(const uint8_t* const* codes, size_t n, float* out) const;
    // A code's score from its two sums (tq_sums) and its norm and gamma.
    float turboq_score(const uint8_t* code, float mse, float qjl) const;
};

// Codebook codes of `bits` (1, 2, 3, 4 or 8) bits per dimension, t the
// 2^bits centroids (padded to 16 floats at least): out[i] = sum_j q_j
// t[c_ij] (ip) or sum_j (q_j - t[c_ij])^2, over n codes in a row (code size
// cs) or at the addresses codes[0..n). One per SIMD level; every level gives
// the scalar reference's scores up to float rounding.
void sq_codebook_scores(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* q,
                        const float* t, float* out);
void sq_codebook_scores_gather(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d, const float* q,
                               const float* t, float* out);
// nq queries (q[0..nq)) over the same n codes in a row, out nq rows of n:
// each code's centroids looked up once for up to four queries.
void sq_codebook_scores_group(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                              const float* const* q, const float* t, float* out);
void sq_codebook_scores_group_scalar(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                     size_t nq, const float* const* q, const float* t, float* out);
void sq_codebook_scores_group_avx2(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                   size_t nq, const float* const* q, const float* t, float* out);
void sq_codebook_scores_group_avx512(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                                     size_t nq, const float* const* q, const float* t, float* out);
void sq_codebook_scores_scalar(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                               const float* q, const float* t, float* out);
void sq_codebook_scores_gather_scalar(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d,
                                      const float* q, const float* t, float* out);
void sq_codebook_scores_avx2(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                             const float* q, const float* t, float* out);
void sq_codebook_scores_gather_avx2(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d,
                                    const float* q, const float* t, float* out);
void sq_codebook_scores_avx512(size_t bits, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d,
                               const float* q, const float* t, float* out);
void sq_codebook_scores_gather_avx512(size_t bits, bool ip, const uint8_t* const* codes, size_t n, size_t d,
                                      const float* q, const float* t, float* out);

// One kernel per SIMD level: out[i] = sum_j w_j c_ij (ip) or
// sum_j (r_j - w_j c_ij)^2 for n codes of code_size cs of the given kind.
void sq_scores(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
               const float* r, float* out);
void sq_scores_scalar(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
                      const float* r, float* out);
void sq_scores_avx2(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
                    const float* r, float* out);
void sq_scores_avx512(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const float* w,
                      const float* r, float* out);

// The same over n codes at the addresses codes[0..n) (graph walks), each
// code's score the bits sq_scores gives it.
void sq_scores_gather(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d, const float* w,
                      const float* r, float* out);
void sq_scores_gather_scalar(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d,
                             const float* w, const float* r, float* out);
void sq_scores_gather_avx2(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d,
                           const float* w, const float* r, float* out);
void sq_scores_gather_avx512(int kind, bool ip, const uint8_t* const* codes, size_t cs, size_t n, size_t d,
                             const float* w, const float* r, float* out);

// Several queries of one index against the same codes (flat search): out
// holds nq rows of n scores; each code is widened once for up to 4 queries
// (the widening, not the FMAs, is what one query at a time is bound by: 1.6x
// to 1.9x faster flat searches for SQ4 / SQ8 / fp16 / bf16 on an AMD EPYC).
// Flat search sends every query through it, groups of one too, so that a
// query's scores do not depend on its batch.
void sq_scores_group(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                     const float* const* w, const float* const* r, float* out);
void sq_scores_group_scalar(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                            const float* const* w, const float* const* r, float* out);
void sq_scores_group_avx2(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                          const float* const* w, const float* const* r, float* out);
void sq_scores_group_avx512(int kind, bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t nq,
                            const float* const* w, const float* const* r, float* out);

// The integer kernels of SQScorer's direct path: out[i] = sum_j (q_j -
// c_ij)^2 (L2, q_j in 0..255) or sum_j q_j c_ij (IP, |q_j| <= 255) over
// 8-bit codes, exact as long as d <= 32768 (the sums fit 32 bits); the
// same values at every level.
void sq8_int_scores(bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q, float* out);
void sq8_int_scores_scalar(bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q,
                           float* out);
void sq8_int_scores_avx2(bool ip, const uint8_t* codes, size_t cs, size_t n, size_t d, const int16_t* q,
                         float* out);

}  // namespace nearly
