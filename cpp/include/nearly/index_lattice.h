// faiss's IndexLattice ("ZnLattice<nsq>x<r2>_<scale_nbit>"): each of nsq
// sub-vectors is stored as its norm, quantized uniformly in scale_nbit bits
// between the training set's smallest and largest sub-vector norms, and its
// direction, a point of the Z^dsq sphere of squared radius r2
// (ZnSphereCodecAlt). Codes are byte-equal to faiss's. Searched by the L2
// distance to every decoded vector.
#pragma once
#include <memory>
#include <vector>

#include "nearly/index_flat_codes.h"
#include "nearly/lattice.h"

namespace nearly {

class Reader;

struct IndexLattice : IndexFlatCodes {
    const int nsq;
    const size_t dsq;
    const ZnSphereCodecAlt zn_sphere_codec;
    const int scale_nbit;
    int lattice_nbit = 0;       // bits of a sphere point's number
    std::vector<float> trained;  // nsq smallest then nsq largest sub-vector norms

    IndexLattice(int d, int nsq, int scale_nbit, int r2);

    std::string type_name() const override { return "Lattice"; }
    void train(idx_t n, const float* x) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    size_t code_size() const override { return code_size_; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexLattice> read_body(Reader& r);

   protected:
    void write_encoder_state(Writer& w) const override;
    void encode(size_t n, const float* x, uint8_t* codes) const override;
    void decode(const uint8_t* code, float* out) const override;

   private:
    size_t code_size_ = 0;
};

}  // namespace nearly
