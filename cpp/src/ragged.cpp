#include "nearly/ragged.h"

#include <string>

#include "nearly/common.h"

namespace nearly {

std::vector<size_t> ragged_offsets(const int64_t* lengths, size_t n_sets, size_t n_vectors, const char* what) {
    std::vector<size_t> offsets(n_sets + 1, 0);
    bool too_many = false;
    for (size_t i = 0; i < n_sets; i++) {
        if (lengths[i] <= 0)
            throw InvalidArgument(std::string(what) + ": set " + std::to_string(i) + " has " +
                                  std::to_string(lengths[i]) + " vectors; every set needs at least one");
        // Past n_vectors the sum is only reported, so it cannot overflow.
        too_many = too_many || uint64_t(lengths[i]) > n_vectors - offsets[i];
        offsets[i + 1] = too_many ? n_vectors : offsets[i] + size_t(lengths[i]);
    }
    if (too_many || offsets[n_sets] != n_vectors) {
        double total = 0;
        for (size_t i = 0; i < n_sets; i++) total += double(lengths[i]);
        throw InvalidArgument(std::string(what) + ": the lengths sum to " + std::to_string(int64_t(total)) +
                              " but there are " + std::to_string(n_vectors) + " vectors");
    }
    return offsets;
}

}  // namespace nearly
