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

void Panorama::tail_norms(const float* v, float* tails) const {
    // From the last level back: each level's sum adds to the one after it.
    double sum = 0;
    tails[n_levels] = 0;
    for (size_t l = n_levels; l-- > 0;) {
        for (size_t j = level_begin(l); j < level_end(l); j++) sum += double(v[j]) * v[j];
        tails[l] = float(std::sqrt(sum));
    }
}

Panorama::Query Panorama::query(const float* x) const {
    Query q;
    q.x = x;
    q.tails.resize(n_levels + 1);
    tail_norms(x, q.tails.data());
    q.norm2 = q.tails[0] * q.tails[0];
    return q;
}

size_t Panorama::filter(const Query& q, bool l2, const float* xb, const float* tails, const float* norms2, idx_t* rows,
                        size_t n, float threshold, float* scores, uint64_t* scanned) const {
    const SimdKernels& K = simd();
    const size_t stride = n_levels + 1;
    // L2: |q|^2 + |v|^2 - 2 <q, v>; inner product: -<q, v>. The dimensions
    // not yet read add at least -f |q_rest| |v_rest| (Cauchy-Schwarz).
    const float f = l2 ? 2.f : 1.f;
    for (size_t i = 0; i < n; i++) {
        const size_t r = size_t(rows[i]);
        scores[i] = l2 ? q.norm2 + (norms2 ? norms2[r] : tails[r * stride] * tails[r * stride]) : 0.f;
    }
    size_t active = n;
    for (size_t l = 0; l < n_levels && active > 0; l++) {
        const size_t b = level_begin(l), w = level_end(l) - b;
        const float qrest = f * q.tails[l + 1];
        const float* ql = q.x + b;
        *scanned += active;
        size_t kept = 0;
        constexpr size_t kAhead = 4;  // rows scattered over the base: request the next slices early
        for (size_t i = 0; i < active; i++) {
            if (i + kAhead < active) {
                const char* p = reinterpret_cast<const char*>(xb + size_t(rows[i + kAhead]) * d + b);
                for (size_t o = 0; o < w * sizeof(float); o += 64) __builtin_prefetch(p + o);
            }
            const size_t r = size_t(rows[i]);
            const float s = scores[i] - f * K.inner_product(ql, xb + r * d + b, w);
            const float bound = s - qrest * tails[r * stride + l + 1];
            rows[kept] = rows[i];
            scores[kept] = s;
            kept += bound < threshold;
        }
        active = kept;
    }
    if (l2)
        for (size_t i = 0; i < active; i++) scores[i] = std::max(scores[i], 0.f);
    return active;
}

}  // namespace nearly
