// The inverted-list scanner of the IVF families whose codes are those of
// x - centroid (by_residual) or of x, scored by a Scorer (set_query(q),
// scores(codes, n, out)) that knows nothing of lists:
//   L2, by residual: the query's residual q - c per list, ||(q - c) - r||^2;
//   IP, by residual: <q, c + r> = <q, c> (the coarse score) + <q, r>, the
//   query set once.
// Private to cpp/src (the SQ and RQ families use it).
#pragma once
#include <vector>

#include "nearly/ivf.h"

namespace nearly {

template <class Scorer>
struct ResidualListScanner : InvertedListScanner {
    const IndexIVF& ix;
    Scorer scorer;
    const size_t d;
    const bool ip, residual;
    std::vector<float> qres;
    const float* q = nullptr;
    float dis0 = 0.f;

    ResidualListScanner(const IndexIVF& ix, Scorer s)
        : ix(ix),
          scorer(std::move(s)),
          d(size_t(ix.d)),
          ip(ix.metric_type == METRIC_INNER_PRODUCT),
          residual(ix.by_residual) {
        if (residual && !ip) qres.resize(d);
    }
    void set_query(const float* x) override {
        q = x;
        dis0 = 0.f;
        if (ip || !residual) scorer.set_query(x);
    }
    void set_list(size_t list_no, float coarse_dis) override {
        if (!residual) return;
        if (ip) {
            dis0 = coarse_dis;
            return;
        }
        ix.quantizer->reconstruct(idx_t(list_no), qres.data());
        for (size_t j = 0; j < d; j++) qres[j] = q[j] - qres[j];
        scorer.set_query(qres.data());
    }
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        scorer.scores(codes, n, out);
        if (dis0 != 0.f)
            for (size_t j = 0; j < n; j++) out[j] += dis0;
    }
};

}  // namespace nearly
