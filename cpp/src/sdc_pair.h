// The SDC score of one pair of canonical recurrent codes in its bit-plane
// form (binary_sdc.h), for scores of scattered codes (graph walks, inverted
// lists) where the blocked scan does not apply:
//     S = sum_i sum_j 2^(u-i) 2^(u-j) (m - 2 popcount(q_i XOR x_j))
// one Hamming call per query plane against the nb consecutive planes of x.
// Private to cpp/src; equal to sdc_score_ref (tested through the indexes).
#pragma once
#include <cstdint>

#include "nearly/hamming.h"

namespace nearly {

inline int32_t sdc_pair_popcount(HammingNyFn ham, const uint8_t* q, const uint8_t* x, int m, int nb) {
    const size_t plane = size_t(m) / 8;
    const int u = nb - 1;
    int32_t h[4];
    int32_t S = 0;
    for (int i = 0; i < nb; i++) {
        ham(q + i * plane, x, plane, size_t(nb), h);
        for (int j = 0; j < nb; j++) S += (1 << (2 * u - i - j)) * (m - 2 * h[j]);
    }
    return S;
}

}  // namespace nearly
