// faiss's IndexBinaryFromFloat: a binary index served by a float index over
// the codes' +-1 vectors (bit 1 -> +1, bit 0 -> -1, faiss's binary_to_real).
// On such vectors the squared L2 distance is 4x the Hamming distance, so an
// L2 float index answers Hamming queries; its most common use is a float
// coarse quantizer (HNSW, IMI) for IndexBinaryIVF.
#pragma once
#include <memory>

#include "nearly/binary_flat.h"

namespace nearly {

struct IndexBinaryFromFloat : IndexBinary {
    IndexPtr index;  // d dimensions, one per bit

    explicit IndexBinaryFromFloat(IndexPtr index);
    std::string type_name() const override { return "BFromFloat"; }
    void train(idx_t n, const uint8_t* x) override;
    void add(idx_t n, const uint8_t* x) override;
    // Distances: the float index's, divided by 4 and rounded (faiss's).
    void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, uint8_t* out) const override;  // the signs of the stored vector
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryFromFloat> read_body(Reader& r);

   private:
    void sync();  // ntotal and is_trained are the float index's
};

// faiss's binary_to_real / real_to_binary: n * 8 * code_size values.
void binary_to_real(size_t nbits, const uint8_t* codes, float* out);
void real_to_binary(size_t nbits, const float* x, uint8_t* codes);

}  // namespace nearly
