// faiss's full TurboQuant codes (QT_2bit_tq .. QT_5bit_tq; Zandieh, Daliri,
// Hadian & Mirrokni 2025): b bits per dimension, b - 1 of them an MSE code
// and one a QJL sign of what it left, so that inner products are estimated
// without bias. A vector x is coded as
//   norm  = |x|, v = x / norm (a unit vector);
//   MSE   each v_j * sqrt(d) quantized by the normal law's Lloyd-Max
//         codebook of b - 1 bits (a coordinate of a random unit vector is
//         about N(0, 1/d)); r = v - centroid(idx) / sqrt(d), gamma = |r|;
//   QJL   the signs of the first d outputs of a randomized Hadamard
//         transform of r (r times random signs, zero-padded to the next
//         power of two pd, then the unnormalized Walsh-Hadamard transform).
// Layout (faiss's): b - 1 bit planes of ceil(d / 8) bytes (plane p holds
// bit p of every dimension's cell, dimension j at bit j % 8 of byte j / 8),
// the QJL plane, then the floats norm and gamma. `trained` (faiss's) is the
// 2^(b-1) centroids, the 2^(b-1) - 1 midpoints, the 64-bit sign seed as two
// floats' bits and the projection type (0: the Hadamard transform, the only
// one faiss's Python API can pick; its dense random rotation is refused).
// The signs come from faiss's RandomGenerator(seed) (std::mt19937, one
// draw mod 2 each), so the codes are faiss's.
//
// The estimate for a query q, with p = S q (the same transform's first d
// outputs, S a d x pd matrix of +-1 entries), P = sum_j p_j:
//   <q, x> ~ norm * (sum_j q_j c(idx_j) / sqrt(d)
//                    + sqrt(pi / 2) / d * gamma * (2 sum_{j: sign_j = +} p_j - P))
//   |q - x|^2 ~ |q|^2 + norm^2 - 2 <q, x>,
// and the decoded vector is the one whose inner products these are. This is
// the paper's QJL estimator: E[sign(S r)_j (S q)_j] = sqrt(2 / pi) <r, q> / |r|
// for each row, so the second term is <q, r> in expectation over the signs
// and the estimate is unbiased. faiss 1.15 divides S q (and, decoding, S^T
// of the signs) by sqrt(pd) as well, which shrinks the QJL correction by
// that factor (to 1/8 of it at d = 64): its estimates are biased toward the
// MSE code's. nearly writes faiss's codes bit for bit and scores them with
// the unbiased estimate (tested; on the real embeddings recall@10 rises, see
// bench/sq_turboquant.py).
// A search computes the two sums per code from the bit planes (tq_sums, one
// kernel per SIMD level).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

struct ScalarQuantizer;

class TurboQuantCodec {
   public:
    // sq: a trained QT_{2..5}bit_tq quantizer (throws otherwise).
    explicit TurboQuantCodec(const ScalarQuantizer& sq);

    size_t d, mse_bits, plane_bytes, padded_d;
    size_t qjl_offset() const { return mse_bits * plane_bytes; }
    size_t factors_offset() const { return (mse_bits + 1) * plane_bytes; }

    void encode(const float* x, uint8_t* code) const;  // writes every byte of code
    void decode(const uint8_t* code, float* x) const;
    // The query side: q padded with zeros to padded(d), p (its transform,
    // padded the same way), and P = sum p.
    void prepare_query(const float* q, float* qpad, float* p, float* psum) const;
    // The centroids over sqrt(d), zero-padded to 16 (the kernels' table).
    const float* table() const { return table_.data(); }
    // Rows the kernels read: d rounded up to 16.
    static size_t padded(size_t d) { return (d + 15) / 16 * 16; }

    // faiss's trained layout for b bits (1 + mse_bits) and a sign seed.
    static std::vector<float> trained_for(size_t bits, uint64_t seed);
    // Throws InvalidArgument unless t is a usable trained vector for bits.
    static void check_trained(size_t bits, const std::vector<float>& t);

   private:
    std::vector<float> centroids_, boundaries_, signs_, table_;
    void transform(float* buf) const;  // in place over padded_d, signs applied first
};

// The two sums of the estimate above for n codes (code size cs) at
// codes[0..n): mse[i] = sum_j q_j t[idx_ij], qjl[i] = sum over the set QJL
// bits of p_j. q and p hold padded(d) floats (zeros past d), t 16.
void tq_sums(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes, const float* q,
             const float* p, const float* t, float* mse, float* qjl);
void tq_sums_scalar(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes,
                    const float* q, const float* p, const float* t, float* mse, float* qjl);
void tq_sums_avx2(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes,
                  const float* q, const float* p, const float* t, float* mse, float* qjl);
void tq_sums_avx512(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes,
                    const float* q, const float* p, const float* t, float* mse, float* qjl);
// nq queries (q[u], p[u]) over the same n codes in a row (code size cs):
// mse and qjl are nq rows of n. Each code is read once for up to four
// queries (AVX2, AVX-512); at the scalar level one query after the other.
void tq_sums_group(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t plane_bytes,
                   size_t nq, const float* const* q, const float* const* p, const float* t, float* mse, float* qjl);
void tq_sums_group_avx2(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t plane_bytes,
                        size_t nq, const float* const* q, const float* const* p, const float* t, float* mse,
                        float* qjl);
void tq_sums_group_avx512(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t plane_bytes,
                          size_t nq, const float* const* q, const float* const* p, const float* t, float* mse,
                          float* qjl);

}  // namespace nearly
