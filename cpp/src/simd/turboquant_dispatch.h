// The switches from a run-time MSE bit count and group size to the
// compile-time kernels of each level's turboquant.cpp. K (one per level, in
// its file's anonymous namespace) has
//   template <int B> static void one(codes, n, d, pb, q, p, t, mse, qjl);
//   template <int B, int NQ> static void group(codes, cs, n, d, pb, q, p, t, mse, qjl);
#pragma once
#include <cstddef>
#include <cstdint>

namespace nearly {
namespace tq_detail {

template <class K>
void sums(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t pb, const float* q, const float* p,
          const float* t, float* mse, float* qjl) {
    switch (mse_bits) {
        case 1: return K::template one<1>(codes, n, d, pb, q, p, t, mse, qjl);
        case 2: return K::template one<2>(codes, n, d, pb, q, p, t, mse, qjl);
        case 3: return K::template one<3>(codes, n, d, pb, q, p, t, mse, qjl);
        default: return K::template one<4>(codes, n, d, pb, q, p, t, mse, qjl);
    }
}

// Queries four at a time (the kernels' register budget), the rest after.
template <class K, int B>
void groups_of_four(const uint8_t* codes, size_t cs, size_t n, size_t d, size_t pb, size_t nq, const float* const* q,
                    const float* const* p, const float* t, float* mse, float* qjl) {
    for (size_t u0 = 0; u0 < nq; u0 += 4) {
        const size_t m = nq - u0 < 4 ? nq - u0 : 4;
        float* mo = mse + u0 * n;
        float* qo = qjl + u0 * n;
        switch (m) {
            case 1: K::template group<B, 1>(codes, cs, n, d, pb, q + u0, p + u0, t, mo, qo); break;
            case 2: K::template group<B, 2>(codes, cs, n, d, pb, q + u0, p + u0, t, mo, qo); break;
            case 3: K::template group<B, 3>(codes, cs, n, d, pb, q + u0, p + u0, t, mo, qo); break;
            default: K::template group<B, 4>(codes, cs, n, d, pb, q + u0, p + u0, t, mo, qo); break;
        }
    }
}

template <class K>
void sums_group(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t pb, size_t nq,
                const float* const* q, const float* const* p, const float* t, float* mse, float* qjl) {
    switch (mse_bits) {
        case 1: return groups_of_four<K, 1>(codes, cs, n, d, pb, nq, q, p, t, mse, qjl);
        case 2: return groups_of_four<K, 2>(codes, cs, n, d, pb, nq, q, p, t, mse, qjl);
        case 3: return groups_of_four<K, 3>(codes, cs, n, d, pb, nq, q, p, t, mse, qjl);
        default: return groups_of_four<K, 4>(codes, cs, n, d, pb, nq, q, p, t, mse, qjl);
    }
}

}  // namespace tq_detail
}  // namespace nearly
