// Ragged collections of vector sets (multi-vector documents and queries):
// all vectors back to back in one row-major (n_vectors, d) matrix, plus the
// number of vectors of each set.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

// Row offsets of the sets (n_sets + 1 values, the last one n_vectors).
// Throws InvalidArgument, naming `what`, when a set is empty or the lengths
// do not sum to n_vectors.
std::vector<size_t> ragged_offsets(const int64_t* lengths, size_t n_sets, size_t n_vectors, const char* what);

}  // namespace nearly
