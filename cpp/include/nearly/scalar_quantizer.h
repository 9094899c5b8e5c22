// faiss's ScalarQuantizer codec (the subset nearly implements), byte for byte:
//   QT_8bit: per-dimension range [vmin, vmin + vdiff] learned in training
//            (faiss's default rangestat "min-max", rangestat_arg 0);
//            code = int(255 * clamp((x - vmin) / vdiff, 0, 1)), one byte per
//            dimension; decode = vmin + (code + 0.5) / 255 * vdiff.
//   QT_fp16: d IEEE halves (round to nearest even), no training.
// `trained` holds faiss's layout: vmin[d] then vdiff[d] for QT_8bit, empty
// for QT_fp16. Also home of the portable float <-> half conversions (HNSW's
// FP16 storage uses them too).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

// IEEE half precision, round to nearest even; portable (no F16C needed).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

struct ScalarQuantizer {
    // faiss's QuantizerType values.
    enum QuantizerType : int { QT_8bit = 0, QT_fp16 = 4 };

    size_t d;
    QuantizerType qtype;
    size_t code_size;
    std::vector<float> trained;

    ScalarQuantizer(size_t d, QuantizerType qtype);
    // Whether the type has a value to learn (QT_8bit).
    bool needs_training() const { return qtype == QT_8bit; }
    bool is_trained() const { return !needs_training() || trained.size() == 2 * d; }
    // Learns the per-dimension ranges from n vectors (nothing for fp16).
    void train(size_t n, const float* x);
    void compute_codes(const float* x, uint8_t* codes, size_t n) const;
    void encode(const float* x, uint8_t* code) const;
    void decode(const uint8_t* codes, float* x, size_t n) const;
    static bool valid_qtype(int qtype) { return qtype == QT_8bit || qtype == QT_fp16; }
};

}  // namespace nearly
