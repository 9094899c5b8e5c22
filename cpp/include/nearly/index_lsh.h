// faiss's IndexLSH: each vector becomes nbits sign bits of a projection
// (a random rotation, faiss's own matrix, or the first nbits components),
// optionally minus a per-bit median learned by train(); searched by Hamming
// distance. Codes, decoding and factory strings ("LSH", "LSH64rt") as faiss.
#pragma once
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/linear_transform.h"

namespace nearly {

class Reader;

struct IndexLSH : IndexFlatCodes {
    const int nbits;
    const bool rotate_data, train_thresholds;
    RandomRotationMatrix rrot;     // d -> nbits, drawn with faiss's seed 5 when rotate_data
    std::vector<float> thresholds;  // nbits medians, when train_thresholds

    IndexLSH(int d, int nbits, bool rotate_data = true, bool train_thresholds = false);

    std::string type_name() const override { return "LSH"; }
    void train(idx_t n, const float* x) override;
    // D: Hamming distances as floats, ascending, ties to the smaller id;
    // missing results are (2147483647, -1), faiss's own padding for this index.
    // range_search is IndexFlatCodes's, as in faiss: the metric between the
    // query and each decoded code, not a Hamming radius.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    size_t code_size() const override { return size_t(nbits + 7) / 8; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexLSH> read_body(Reader& r);

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    // +-1 per bit (plus the threshold), rotated back; without rotation the
    // components past nbits are 0.
    void decode(const uint8_t* code, float* out) const override;

   private:
    std::vector<float> project(size_t n, const float* x) const;  // n x nbits, thresholds subtracted
};

}  // namespace nearly
