#include "nearly/extra_distances.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

bool is_extra_metric(MetricType m) {
    switch (m) {
        case METRIC_L1: case METRIC_Linf: case METRIC_Lp: case METRIC_Canberra: case METRIC_BrayCurtis:
        case METRIC_JensenShannon: case METRIC_Jaccard: case METRIC_NaNEuclidean: case METRIC_GOWER:
            return true;
        default:
            return false;
    }
}

bool is_similarity_metric(MetricType m) { return m == METRIC_INNER_PRODUCT || m == METRIC_Jaccard; }

bool metric_accepts_nan(MetricType m) { return m == METRIC_NaNEuclidean || m == METRIC_GOWER; }

MetricType checked_metric(int metric) {
    const MetricType m = MetricType(metric);
    if (m != METRIC_L2 && m != METRIC_INNER_PRODUCT && !is_extra_metric(m))
        throw InvalidArgument("unknown metric " + std::to_string(metric));
    return m;
}

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

float one(MetricType m, float p, const float* x, const float* y, size_t d) {
    switch (m) {
        case METRIC_Lp: {
            float s = 0;
            for (size_t i = 0; i < d; i++) s += std::pow(std::fabs(x[i] - y[i]), p);
            return s;
        }
        case METRIC_Canberra: {
            float s = 0;
            for (size_t i = 0; i < d; i++) s += std::fabs(x[i] - y[i]) / (std::fabs(x[i]) + std::fabs(y[i]));
            return s;
        }
        case METRIC_BrayCurtis: {
            float num = 0, den = 0;
            for (size_t i = 0; i < d; i++) {
                num += std::fabs(x[i] - y[i]);
                den += std::fabs(x[i] + y[i]);
            }
            return num / den;
        }
        case METRIC_JensenShannon: {
            float s = 0;
            for (size_t i = 0; i < d; i++) {
                const float mi = float(0.5 * double(x[i] + y[i]));
                const float kl1 = float(-double(x[i]) * std::log(double(mi / x[i])));
                const float kl2 = float(-double(y[i]) * std::log(double(mi / y[i])));
                s += kl1 + kl2;
            }
            return float(0.5 * double(s));
        }
        case METRIC_Jaccard: {
            float num = 0, den = 0;
            for (size_t i = 0; i < d; i++) {
                num += std::fmin(x[i], y[i]);
                den += std::fmax(x[i], y[i]);
            }
            return num / den;
        }
        case METRIC_NaNEuclidean: {
            float s = 0;
            size_t present = 0;
            for (size_t i = 0; i < d; i++) {
                if (std::isnan(x[i]) || std::isnan(y[i])) continue;
                const float diff = x[i] - y[i];
                s += diff * diff;
                present++;
            }
            return present ? float(d) / float(present) * s : kNaN;
        }
        case METRIC_GOWER: {
            float s = 0;
            size_t valid = 0;
            for (size_t i = 0; i < d; i++) {
                if (std::isnan(x[i]) || std::isnan(y[i])) continue;
                if (x[i] >= 0 && y[i] >= 0) {  // numeric, in [0, 1]
                    if (x[i] > 1 || y[i] > 1) return kNaN;
                    s += std::fabs(x[i] - y[i]);
                } else if (x[i] < 0 && y[i] < 0) {  // categorical
                    s += x[i] != y[i] ? 1.f : 0.f;
                } else {
                    return kNaN;  // a category against a number
                }
                valid++;
            }
            return valid ? s / float(valid) : kNaN;
        }
        default:
            throw InvalidArgument("not an extra metric: " + std::to_string(int(m)));
    }
}

constexpr size_t kChunk = 1024;  // database rows scored at a time per query

}  // namespace

void extra_distances_ny(MetricType m, float metric_arg, const float* q, const float* x, size_t d, size_t ny,
                        float* out) {
    // The two cheap metrics have SIMD kernels (simd.h); the others are scalar, like faiss's.
    if (m == METRIC_L1) return simd().l1_ny(q, x, d, ny, out);
    if (m == METRIC_Linf) return simd().linf_ny(q, x, d, ny, out);
    for (size_t j = 0; j < ny; j++) out[j] = one(m, metric_arg, q, x + j * d, d);
}

float extra_score(MetricType m, float metric_arg, const float* q, const float* v, size_t d) {
    float r;
    extra_distances_ny(m, metric_arg, q, v, d, 1, &r);
    return extra_score_of(m, r);
}

void knn_extra(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType m, float metric_arg,
               size_t k, float* D, idx_t* I, const IDSelector* sel) {
    const bool sim = is_similarity_metric(m);
    InterruptPoll poll;
    parallel_for(nq, [&](size_t q) {
        float* Dq = D + q * k;
        idx_t* Iq = I + q * k;
        TopK::init(Dq, Iq, k);  // scores where smaller is better: a similarity negated
        std::vector<float> buf(kChunk);
        for (size_t j0 = 0; j0 < nb; j0 += kChunk) {
            const size_t n = std::min(kChunk, nb - j0);
            extra_distances_ny(m, metric_arg, xq + q * d, xb + j0 * d, d, n, buf.data());
            for (size_t j = 0; j < n; j++) {
                if (sel && !sel->is_member(idx_t(j0 + j))) continue;
                TopK::push(Dq, Iq, k, sim ? -buf[j] : buf[j], idx_t(j0 + j));
            }
        }
        TopK::sort(Dq, Iq, k);
        for (size_t i = 0; i < k; i++) Dq[i] = Iq[i] < 0 ? (sim ? -FLT_MAX : FLT_MAX) : (sim ? -Dq[i] : Dq[i]);
        poll();
    });
}

void range_extra(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType m, float metric_arg,
                 float radius, RangeSearchResult& result, const IDSelector* sel) {
    const bool sim = is_similarity_metric(m);
    RangeSearchResult::Hits hits(nq);
    InterruptPoll poll;
    parallel_for(nq, [&](size_t q) {
        std::vector<float> buf(kChunk);
        for (size_t j0 = 0; j0 < nb; j0 += kChunk) {
            const size_t n = std::min(kChunk, nb - j0);
            extra_distances_ny(m, metric_arg, xq + q * d, xb + j0 * d, d, n, buf.data());
            for (size_t j = 0; j < n; j++)
                if ((sim ? buf[j] > radius : buf[j] < radius) && (!sel || sel->is_member(idx_t(j0 + j))))
                    hits[q].emplace_back(buf[j], idx_t(j0 + j));
        }
        poll();
    });
    result.set(hits);
}

void pairwise_extra(const float* xq, size_t nq, const float* xb, size_t nb, size_t d, MetricType m,
                    float metric_arg, float* out) {
    parallel_for(nq, [&](size_t q) { extra_distances_ny(m, metric_arg, xq + q * d, xb, d, nb, out + q * nb); });
}

}  // namespace nearly
