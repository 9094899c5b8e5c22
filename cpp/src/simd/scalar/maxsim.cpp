// Scalar reference of maxsim_update (see maxsim.h).
#include <algorithm>
#include <vector>

#include "nearly/maxsim.h"

namespace nearly {

void maxsim_update_scalar(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best, const void*,
                          size_t) {
    std::vector<float> acc(mp);
    for (size_t j = 0; j < n; j++) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (size_t i = 0; i < d; i++) {
            const float xi = x[j * d + i];
            for (size_t a = 0; a < mp; a++) acc[a] += xi * qt[i * mp + a];
        }
        for (size_t a = 0; a < mp; a++) best[a] = std::max(best[a], acc[a]);
    }
}

}  // namespace nearly
