#include "nearly/distance_computer.h"

#include "nearly/index.h"

namespace nearly {

ReconstructDistanceComputer::ReconstructDistanceComputer(const Index& index)
    : index_(index), a_(size_t(index.d)), b_(size_t(index.d)) {
    if (index.metric_type != METRIC_L2 && index.metric_type != METRIC_INNER_PRODUCT)
        throw NotSupported("get_distance_computer: only METRIC_L2 and METRIC_INNER_PRODUCT indexes have one in nearly");
}

void ReconstructDistanceComputer::set_query(const float* x) { q_.assign(x, x + index_.d); }

void ReconstructDistanceComputer::check_query() const {
    if (q_.empty()) throw InvalidArgument("DistanceComputer: set_query(x) must come before scoring");
}

float ReconstructDistanceComputer::operator()(idx_t i) {
    check_query();
    index_.reconstruct(i, a_.data());
    return metric_score(index_.metric_type, q_.data(), a_.data(), a_.size());
}

float ReconstructDistanceComputer::symmetric_dis(idx_t i, idx_t j) {
    index_.reconstruct(i, a_.data());
    index_.reconstruct(j, b_.data());
    return metric_score(index_.metric_type, a_.data(), b_.data(), a_.size());
}

}  // namespace nearly
