#include "nearly/distance_computer.h"

#include "nearly/extra_distances.h"
#include "nearly/index.h"

namespace nearly {

ReconstructDistanceComputer::ReconstructDistanceComputer(const Index& index)
    : index_(index), a_(size_t(index.d)), b_(size_t(index.d)) {}

namespace {
// The index's metric as its search reports it: an extra metric's raw value
// (NaN where undefined), as faiss's extra-metric distance computer gives it.
float score_of(const Index& index, const float* a, const float* b, size_t d) {
    if (!is_extra_metric(index.metric_type)) return metric_score(index.metric_type, a, b, d);
    float r;
    extra_distances_ny(index.metric_type, index.metric_arg, a, b, d, 1, &r);
    return r;
}
}  // namespace

void ReconstructDistanceComputer::set_query(const float* x) { q_.assign(x, x + index_.d); }

void ReconstructDistanceComputer::check_query() const {
    if (q_.empty()) throw InvalidArgument("DistanceComputer: set_query(x) must come before scoring");
}

float ReconstructDistanceComputer::operator()(idx_t i) {
    check_query();
    index_.reconstruct(i, a_.data());
    return score_of(index_, q_.data(), a_.data(), a_.size());
}

float ReconstructDistanceComputer::symmetric_dis(idx_t i, idx_t j) {
    index_.reconstruct(i, a_.data());
    index_.reconstruct(j, b_.data());
    return score_of(index_, a_.data(), b_.data(), a_.size());
}

}  // namespace nearly
