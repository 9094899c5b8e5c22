#include "nearly/panorama.h"

#include <cmath>
#include <string>

#include "nearly/simd.h"

namespace nearly {

PanoramaStats panorama_stats;

Panorama::Panorama(size_t d_, size_t n_levels_) : d(d_) {
    NEARLY_CHECK_ARG(n_levels_ > 0, "Panorama: n_levels must be > 0");
    NEARLY_CHECK_ARG(n_levels_ <= d_, "Panorama: n_levels must be <= d (got " + std::to_string(n_levels_) +
                                          " levels for d = " + std::to_string(d_) + ")");
    width = (d + n_levels_ - 1) / n_levels_;
    n_levels = (d + width - 1) / width;
}

void panorama_tail_norms(const float* v, size_t d, size_t width, size_t n_levels, float* tails, size_t stride) {
    // From the last level back: each level's sum adds to the one after it.
    double sum = 0;
    for (size_t l = n_levels; l-- > 0;) {
        for (size_t j = l * width; j < std::min(d, (l + 1) * width); j++) sum += double(v[j]) * v[j];
        tails[l * stride] = float(std::sqrt(sum));
    }
}

void Panorama::tail_norms(const float* v, float* tails) const {
    panorama_tail_norms(v, d, width, n_levels, tails);
    tails[n_levels] = 0;
}

Panorama::Query Panorama::query(const float* x) const {
    Query q;
    set_query(q, x);
    return q;
}

void Panorama::set_query(Query& q, const float* x) const {
    q.x = x;
    q.tails.resize(n_levels + 1);
    tail_norms(x, q.tails.data());
    q.norm2 = q.tails[0] * q.tails[0];
}

Panorama::RowsFn Panorama::rows_kernel() { return simd().inner_products_rows; }

}  // namespace nearly
