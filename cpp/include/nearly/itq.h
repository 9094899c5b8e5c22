// Iterative quantization (Gong & Lazebnik, CVPR 2011), faiss's ITQMatrix and
// ITQTransform: a rotation learned so that the signs of the rotated vectors
// lose as little as possible, for binary codes (ITQ64,LSHt: the rotated
// vectors' signs against learned thresholds).
#pragma once
#include <memory>
#include <vector>

#include "nearly/linear_transform.h"

namespace nearly {

class Reader;

// A d x d rotation R minimizing ||sign(X R^T) - X R^T||^2 over the training
// vectors X: from a random rotation (seed), max_iter rounds of taking the
// signs B, then the orthogonal Procrustes solution of B ~ X R^T (the polar
// factor of B^T X). Each round cannot raise the loss. (faiss's update takes
// its SVD's right factor untransposed, which is not this minimizer: its loss
// barely moves from the random start; nearly's does descend, so the two
// rotations differ.)
struct ITQMatrix : LinearTransform {
    int max_iter = 50;
    int seed = 123;
    std::vector<double> init_rotation;  // d x d rows to start from (empty: a random rotation)

    explicit ITQMatrix(int d) : LinearTransform(d, d, false) { is_trained = false; }
    std::string type_name() const override { return "ITQMatrix"; }
    void train(idx_t n, const float* x) override;
};

// faiss's ITQTransform: x - mean, scaled to unit norm, PCA to d_out (when
// do_pca), then the ITQ rotation; the last two merged into pca_then_itq.
// Trained on at most max(max_train_per_dim * d_in, 32768) vectors.
struct ITQTransform : VectorTransform {
    std::vector<float> mean;
    bool do_pca;
    int max_train_per_dim = 10;
    ITQMatrix itq;
    LinearTransform pca_then_itq;
    bool verbose = false;

    ITQTransform(int d_in, int d_out, bool do_pca);
    std::string type_name() const override { return "ITQTransform"; }
    void train(idx_t n, const float* x) override;
    void apply(idx_t n, const float* x, float* out) const override;
    void write_body(Writer& w) const override;
    static std::shared_ptr<ITQTransform> read(Reader& r, int d_in, int d_out);
};

}  // namespace nearly
