// faiss's PCAMatrix: a linear transform learned by principal component
// analysis, y = A (x - mean), the d_out leading eigenvectors of the training
// vectors' scatter matrix as the rows of A. Optionally each component scaled
// by eigenvalue^eigen_power (-0.5 whitens), followed by a random rotation
// (spreads the variance evenly over the outputs, for PQ), or reordered into
// balanced_bins groups of equal total variance.
#pragma once
#include "nearly/linear_transform.h"

namespace nearly {

struct PCAMatrix : LinearTransform {
    float eigen_power;
    float epsilon = 0;  // added to the eigenvalues before the power
    bool random_rotation;
    size_t max_points_per_d = 1000;  // a random subset above max_points_per_d * d_in
    int balanced_bins = 0;
    std::vector<float> mean;         // d_in
    std::vector<float> eigenvalues;  // of the scatter sum (x - mean)(x - mean)^T, decreasing
    std::vector<float> PCAMat;       // d_in x d_in (rows: eigenvectors), fewer rows when trained on n < d_in

    PCAMatrix(int d_in, int d_out, float eigen_power = 0, bool random_rotation = false);
    std::string type_name() const override { return "PCA"; }
    void train(idx_t n, const float* x) override;
    // A and b from PCAMat, eigenvalues and mean (after changing eigen_power,
    // epsilon, balanced_bins or random_rotation of a trained transform).
    void prepare_Ab();
    void write_body(Writer& w) const override;
    static std::shared_ptr<PCAMatrix> read(Reader& r, int d_in, int d_out);
};

}  // namespace nearly
