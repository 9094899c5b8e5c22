// faiss's ScalarQuantizer codec, byte for byte, for faiss's classic types
// and its TurboQuant MSE types:
//   QT_8bit / QT_4bit / QT_6bit: per-dimension range [vmin, vmin + vdiff];
//       t = clamp((x - vmin) / vdiff, 0, 1), code = int(t * (2^bits - 1))
//       (truncation), decode = vmin + (code + 0.5) / (2^bits - 1) * vdiff.
//       4-bit packs two dimensions per byte (low nibble first), 6-bit four
//       dimensions per three bytes, as faiss.
//   QT_8bit_uniform / QT_4bit_uniform: the same with one range for all
//       dimensions.
//   QT_fp16: IEEE halves (round to nearest even). QT_bf16: the top 16 bits
//       of the float after adding 0x8000 (faiss's rounding).
//   QT_8bit_direct: code = x (uint8 data stored as is); QT_8bit_direct_signed:
//       code = x + 128 (int8 data). Values are truncated toward zero and,
//       where faiss's cast is undefined (outside 0..255), saturated.
//   QT_{1,2,3,4,8}bit_tqmse (TurboQuant, Zandieh et al. 2025): one codebook
//       of 2^bits values shared by all dimensions, the Lloyd-Max quantizer
//       of one coordinate of a random point on the unit sphere of R^d
//       (turboquant_codebook), so it depends on d and bits only: meant for
//       unit vectors after a random rotation
//       ("L2norm,RR,SQtqmse4"). code = the cell of x among the midpoints,
//       packed bits-wide, low bits first across bytes; decode = the cell's
//       centroid. trained = centroids[2^bits] then midpoints[2^bits - 1].
//   QT_{2..5}bit_tq: TurboQuant's full codes, an MSE code of b - 1 bits
//       plus a QJL sign per dimension and two floats per vector
//       (turboquant.h has the codec and its layout).
//   QT_{1..8}bit_eden: the same with the normal law's own Lloyd-Max
//       quantizer (unscaled), EDEN's codebook for coordinates scaled to
//       unit variance (eden.h adds the scaling and the per-vector factors).
// The ranges are learned by faiss's range statistics (RangeStat, with
// rangestat_arg): min-max widened by arg * (max - min), mean +- arg * std,
// the arg and 1 - arg quantiles, or faiss's alternating least-squares fit of
// the reconstruction error (RS_optim; summed in double here, where faiss's
// float sums can return NaN ranges, so its ranges are close to faiss's, not
// its bits). `trained` holds faiss's layout: vmin[d] then
// vdiff[d] (per-dimension types), vmin, vdiff (uniform types), nothing
// (fp16, bf16, direct). Also home of the portable float <-> half conversions
// (HNSW's FP16 storage uses them too).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace nearly {

// IEEE half precision, round to nearest even; portable (no F16C needed).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

// bfloat16: the top 16 bits of a float, rounded as faiss's encode_bf16 does
// (half up on the bits, not to even).
inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return uint16_t((u + 0x8000u) >> 16);
}
inline float bf16_to_float(uint16_t h) {
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

struct ScalarQuantizer {
    // faiss's QuantizerType values.
    enum QuantizerType : int {
        QT_8bit = 0,
        QT_4bit = 1,
        QT_8bit_uniform = 2,
        QT_4bit_uniform = 3,
        QT_fp16 = 4,
        QT_8bit_direct = 5,
        QT_6bit = 6,
        QT_bf16 = 7,
        QT_8bit_direct_signed = 8,
        QT_0bit = 9,  // no code: an IVF entry scores as its list's centroid
        QT_1bit_tqmse = 10,
        QT_2bit_tqmse = 11,
        QT_3bit_tqmse = 12,
        QT_4bit_tqmse = 13,
        QT_8bit_tqmse = 14,
        // TurboQuant's full codes (turboquant.h): b - 1 MSE bits and one QJL bit.
        QT_2bit_tq = 15,
        QT_5bit_tq = 18,
        // EDEN's codebook (eden.h): the normal law's Lloyd-Max quantizer
        // itself, for coordinates scaled to unit variance; 1 to 8 bits.
        QT_1bit_eden = 19,
        QT_8bit_eden = 26,
    };
    // faiss's RangeStat values.
    enum RangeStat : int { RS_minmax = 0, RS_meanstd = 1, RS_quantiles = 2, RS_optim = 3 };

    size_t d;
    QuantizerType qtype;
    RangeStat rangestat = RS_minmax;
    float rangestat_arg = 0.f;
    size_t bits;       // bits per dimension
    size_t code_size;  // bytes per vector
    std::vector<float> trained;

    ScalarQuantizer(size_t d, QuantizerType qtype);

    bool uniform() const { return qtype == QT_8bit_uniform || qtype == QT_4bit_uniform; }
    // A TurboQuant MSE type: a shared codebook, not per-dimension ranges.
    static bool is_codebook_type(int t) { return (t >= QT_1bit_tqmse && t <= QT_8bit_tqmse) || is_eden_type(t); }
    static bool is_eden_type(int t) { return t >= QT_1bit_eden && t <= QT_8bit_eden; }
    static bool is_turboq_type(int t) { return t >= QT_2bit_tq && t <= QT_5bit_tq; }
    bool turboq() const { return is_turboq_type(qtype); }
    static QuantizerType eden_type(size_t bits) { return QuantizerType(QT_1bit_eden + int(bits) - 1); }
    bool codebook() const { return is_codebook_type(qtype); }
    bool zero_bit() const { return qtype == QT_0bit; }
    // Whether the type has something to learn (ranges; or the codebook, which
    // takes no data, as faiss's train computes it).
    bool needs_training() const {
        return qtype == QT_8bit || qtype == QT_4bit || qtype == QT_6bit || uniform() || codebook() || turboq();
    }
    size_t trained_size() const {
        return !needs_training() ? 0
               : codebook()      ? (size_t(2) << bits) - 1
               : turboq()        ? (size_t(1) << bits) - 1 + 3  // the MSE codebook, the seed, the projection
               : uniform()       ? 2
                                 : 2 * d;
    }
    // The codebook types' centroids (2^bits, ascending) and the midpoints
    // between them (2^bits - 1), in `trained`.
    const float* centroids() const { return trained.data(); }
    const float* boundaries() const { return trained.data() + (size_t(1) << bits); }
    bool is_trained() const { return trained.size() == trained_size(); }
    // Learns the ranges from n vectors (nothing for the untrained types).
    void train(size_t n, const float* x);
    void compute_codes(const float* x, uint8_t* codes, size_t n) const;
    void encode(const float* x, uint8_t* code) const;  // writes every byte of code
    void decode(const uint8_t* codes, float* x, size_t n) const;
    // QT_0bit has no codes to make or read: NotSupported (faiss's text).
    void check_standalone() const;
    static bool valid_qtype(int qtype) {
        return (qtype >= QT_8bit && qtype <= QT_0bit) || is_codebook_type(qtype) || is_turboq_type(qtype);
    }
    static bool valid_rangestat(int rs) { return rs >= RS_minmax && rs <= RS_optim; }
    // Throws unless other can take this quantizer's place in the index `who`
    // holding ntotal codes: the same d and type, ranges that fit, and no
    // codes yet (they would decode with the wrong ranges).
    void check_replacement(const ScalarQuantizer& other, const std::string& who, int64_t ntotal) const;
};

// The decoder of each SIMD level (cpp/src/simd/<isa>/sq.cpp, one source
// compiled per level): every level gives the scalar reference's bits.
void sq_decode_scalar(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n);
void sq_decode_avx2(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n);
void sq_decode_avx512(const ScalarQuantizer& sq, const uint8_t* codes, float* x, size_t n);

// TurboQuant's codebook for unit vectors of R^d (bits 1, 2, 3, 4 or 8): a
// coordinate of a random unit vector is close to normal with variance 1/d,
// so the centroids are the normal law's Lloyd-Max quantizer scaled by
// 1/sqrt(d) (as faiss 1.15's: the same codes at 1 to 4 bits; at 8 bits
// faiss's table stops short of Lloyd's fixed point, nearly's is converged),
// the boundaries the midpoints between them.
void turboquant_codebook(size_t d, size_t bits, std::vector<float>& centroids, std::vector<float>& boundaries);
// The normal law's Lloyd-Max quantizer of 2^bits levels (bits 1 to 8) times
// scale: its centroids, ascending, and the midpoints between them.
void lloyd_max_codebook(size_t bits, double scale, std::vector<float>& centroids, std::vector<float>& boundaries);

}  // namespace nearly
