// faiss's HadamardRotation ("HR" in the factory): a pseudo-random rotation
// in O(d log d) instead of a dense matrix's O(d^2). The vector is padded with
// zeros to d_out, the next power of 2, then three times multiplied by a fixed
// random sign per dimension and Walsh-Hadamard transformed; the result is
// scaled by d_out^-3/2, so norms and distances are kept. The signs come from
// SplitMix64(seed) as in faiss: the same seed gives faiss's rotation.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nearly/transform.h"

namespace nearly {

struct HadamardRotation : VectorTransform {
    uint32_t seed = 12345;
    std::vector<float> signs1, signs2, signs3;  // d_out each, +1 or -1

    explicit HadamardRotation(int d, uint32_t seed = 12345);
    void init(uint32_t seed);  // draws the signs
    std::string type_name() const override { return "HadamardRotation"; }
    void train(idx_t, const float*) override { init(seed != 0 ? seed : 12345); }
    void apply(idx_t n, const float* x, float* out) const override;
    // The exact inverse (the transpose), cut back to d_in dimensions.
    void reverse(idx_t n, const float* y, float* x) const override;
    void write_body(Writer& w) const override;
    static std::shared_ptr<HadamardRotation> read(class Reader& r, int d_in, int d_out);
};

}  // namespace nearly
