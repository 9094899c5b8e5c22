// MUVERA Fixed Dimensional Encodings (Dhulipala et al., NeurIPS 2024): a set
// of vectors becomes one vector whose inner products approximate the Chamfer
// similarity of the sets. Same algorithm, same random matrices and same output
// layout as Google's reference (google/graph-mining,
// sketching/point_cloud/fixed_dimensional_encoding.cc), so encodings made by
// either can be mixed.
//
// Per repetition r (random generator seeded with seed + r):
//   - k = num_simhash_projections Gaussian directions (a d x k matrix) cut
//     space into 2^k partitions by the signs of a point's projections;
//   - each point is projected to the block dimension: itself (identity) or a
//     sparse +-1 AMS sketch (every input coordinate added, with a random
//     sign, to one random output coordinate);
//   - projected points are summed per partition (queries) or averaged
//     (documents; empty partitions optionally take the point nearest to them).
// Output layout: repetition, partition, coordinate; then optionally a
// Count-Sketch of the whole vector down to final_projection_dimension.
//
// Partition numbering follows the reference: partition i holds the points
// whose sign word (projection 0 the most significant bit) is the Gray code
// i ^ (i >> 1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

enum class FdeProjection { identity = 0, ams_sketch = 1 };

// Query encodings sum the points of a partition, document encodings average
// them (the reference's DEFAULT_SUM and AVERAGE).
enum class FdeEncoding { query_sum = 0, document_average = 1 };

struct FdeConfig {
    int dimension = 0;
    int num_repetitions = 1;
    int num_simhash_projections = 0;  // 0 <= k < 31; 0 means one partition
    int32_t seed = 1;
    FdeProjection projection = FdeProjection::identity;
    int projection_dimension = 0;        // ams_sketch only
    bool fill_empty_partitions = false;  // document encodings only
    int final_projection_dimension = 0;  // 0: no final Count-Sketch

    // Throws InvalidArgument naming the first bad field.
    void validate() const;
    size_t num_partitions() const { return size_t(1) << num_simhash_projections; }
    size_t block_dimension() const {  // coordinates per partition
        return projection == FdeProjection::identity ? size_t(dimension) : size_t(projection_dimension);
    }
    size_t raw_dimension() const { return size_t(num_repetitions) * num_partitions() * block_dimension(); }
    size_t output_dimension() const {
        return final_projection_dimension > 0 ? size_t(final_projection_dimension) : raw_dimension();
    }
};

// The random matrices of one config, drawn once; encodes any number of point
// sets with them. Immutable after construction: safe to share across threads.
class FdeEncoder {
   public:
    explicit FdeEncoder(const FdeConfig& config);
    const FdeConfig& config() const { return config_; }
    size_t output_dimension() const { return config_.output_dimension(); }

    // Encodes n_sets point sets stored back to back: vectors is
    // (sum of lengths) x dimension, row-major; set i has lengths[i] >= 1
    // rows. out: n_sets x output_dimension(). Sets are encoded in parallel;
    // every set's result is independent of the thread count.
    void encode(FdeEncoding encoding, const float* vectors, size_t n_vectors, const int64_t* lengths,
                size_t n_sets, float* out) const;

    // The drawn matrices, for the GPU encoder (cuda/fde_gpu.cu), which must
    // reproduce encode() bit for bit.
    const std::vector<float>& simhash() const { return simhash_; }
    const std::vector<uint32_t>& ams_start() const { return ams_start_; }
    const std::vector<uint32_t>& ams_input() const { return ams_input_; }
    const std::vector<float>& ams_sign() const { return ams_sign_; }
    const std::vector<uint32_t>& final_target() const { return final_target_; }
    const std::vector<float>& final_sign() const { return final_sign_; }

   private:
    struct Scratch;
    void encode_one(FdeEncoding encoding, const float* points, size_t n_points, float* out, Scratch& s) const;

    FdeConfig config_;
    // The SimHash matrices of all repetitions side by side: d x (R * k),
    // row i holds coordinate i's weight in projection j of repetition r at
    // r * k + j. One vector-matrix product gives a point's every sign.
    std::vector<float> simhash_;
    std::vector<float> simhash_norms_;  // column norms of simhash_, for fde_signs
    // AMS sketches, per repetition and output coordinate c, the input
    // coordinates added into c in increasing order (the reference's order)
    // and their signs: entries ams_start_[r * B + c] .. ams_start_[r * B + c + 1].
    std::vector<uint32_t> ams_start_;
    std::vector<uint32_t> ams_input_;
    std::vector<float> ams_sign_;
    std::vector<uint32_t> final_target_;  // Count-Sketch: per raw coordinate its output coordinate
    std::vector<float> final_sign_;
};

// The reference's building blocks, for tests against its outputs.
// SimHash matrix, d x k column-major (what the reference fills first).
std::vector<float> fde_simhash_matrix(uint32_t seed, size_t dimension, size_t num_projections);
// Dense AMS projection matrix, d x projection_dim column-major.
std::vector<float> fde_ams_matrix(uint32_t seed, size_t dimension, size_t projection_dim);
// Count-Sketch of x (n values) to final_dimension values.
std::vector<float> fde_count_sketch(const float* x, size_t n, size_t final_dimension, uint32_t seed);

// The partition index of a sign word (projection 0 the most significant of
// k bits): the number whose Gray code is the word.
inline uint32_t fde_partition_of_sign_word(uint32_t word) {
    uint32_t index = word;
    for (uint32_t shift = 1; shift < 32; shift <<= 1) index ^= index >> shift;
    return index;
}
// The sign word of partition i.
inline uint32_t fde_sign_word_of_partition(uint32_t index) { return index ^ (index >> 1); }

}  // namespace nearly
