// Optimized product quantization (Ge et al., CVPR 2013; faiss's OPQMatrix): an
// orthonormal d_out x d_in rotation learned so that a product quantizer with
// M subquantizers on the rotated vectors loses less. The non-parametric
// algorithm, with faiss's defaults: from a random rotation, alternate
// {train the PQ on the rotated training vectors, encode and decode them,
// replace the rotation by the orthogonal Procrustes solution that best maps
// the (centered) vectors onto their reconstructions} niter times.
#pragma once
#include "nearly/linear_transform.h"

namespace nearly {

struct OPQMatrix : LinearTransform {
    int M;
    int niter = 50;        // rotation updates
    int niter_pq = 4;      // k-means iterations of each codebook update...
    int niter_pq_0 = 40;   // ...and of the first one, from scratch
    size_t max_train_points = 256 * 256;  // a random subset above that (faiss's sampling)

    // d_out = -1: d_in. d_out must be a multiple of M (faiss fails only at
    // train time; nearly says so at construction).
    OPQMatrix(int d_in, int M, int d_out = -1);
    std::string type_name() const override { return "OPQ"; }
    // Starts from A when it is already set (d_out x d_in, d_out <= d_in), like
    // faiss, else from a random rotation (seed 1234).
    void train(idx_t n, const float* x) override;
    void write_body(Writer& w) const override;
    static std::shared_ptr<OPQMatrix> read(Reader& r, int d_in, int d_out);
};

}  // namespace nearly
