// faiss's DistanceComputer: set a query, then score stored vectors one at a
// time by position, as the index's search scores them (squared L2
// distances, or inner products). faiss code uses it to re-rank, to walk its
// own graphs and to check an index's distances.
#pragma once
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "nearly/common.h"
#include "nearly/simd.h"

namespace nearly {

struct Index;

struct DistanceComputer {
    virtual ~DistanceComputer() = default;
    virtual void set_query(const float* x) = 0;
    virtual float operator()(idx_t i) = 0;
    // Between two stored vectors (on their reconstructions).
    virtual float symmetric_dis(idx_t i, idx_t j) = 0;
    // operator() of n stored vectors at once (a graph walk scores a node's
    // neighbours so): one call, one lock of the index for all of them.
    virtual void scores(const idx_t* ids, size_t n, float* out) {
        for (size_t j = 0; j < n; j++) out[j] = (*this)(ids[j]);
    }
    // Whether set_query builds per-query tables (PQ, additive quantizers:
    // ksub x d work, dear next to a few tens of scores), so that a caller
    // scoring few vectors per query does better decoding them.
    virtual bool builds_query_tables() const { return false; }
};

// The metric between two float vectors: what the index's search reports.
inline float metric_score(MetricType metric, const float* a, const float* b, size_t d) {
    return metric == METRIC_INNER_PRODUCT ? simd().inner_product(a, b, d) : simd().l2sqr(a, b, d);
}

// Scores the stored vector itself (index.reconstruct): exact for the
// indexes that keep float vectors (Flat, HNSW over Flat).
class ReconstructDistanceComputer : public DistanceComputer {
   public:
    explicit ReconstructDistanceComputer(const Index& index);
    void set_query(const float* x) override;
    float operator()(idx_t i) override;
    float symmetric_dis(idx_t i, idx_t j) override;

   protected:
    void check_query() const;  // set_query came first
    const Index& index_;
    std::vector<float> q_, a_, b_;
};

// A scorer with scores_gather(code pointers, n, out), the bits scores()
// gives each code (SQScorer).
template <class T, class = void>
struct HasScoresGather : std::false_type {};
template <class T>
struct HasScoresGather<T, std::void_t<decltype(std::declval<const T&>().scores_gather(
                              std::declval<const uint8_t* const*>(), size_t(0), std::declval<float*>()))>>
    : std::true_type {};

// Scores a code of a flat-code index with the family's own scorer (the one
// its search runs: ADC tables, SQ kernels, RQ tables), so dc(i) is the
// distance search reports for i. Index provides ntotal, metric_type,
// code_size(), code_at(i, out) and reconstruct().
template <class IndexT, class Scorer>
class CodeDistanceComputer : public ReconstructDistanceComputer {
   public:
    CodeDistanceComputer(const IndexT& index, Scorer scorer, bool builds_tables = false)
        : ReconstructDistanceComputer(index),
          codes_(index),
          scorer_(std::move(scorer)),
          code_(index.code_size()),
          builds_tables_(builds_tables) {}
    bool builds_query_tables() const override { return builds_tables_; }
    void set_query(const float* x) override {
        ReconstructDistanceComputer::set_query(x);
        scorer_.set_query(q_.data());
    }
    float operator()(idx_t i) override {
        check_query();
        codes_.code_at(i, code_.data());
        float s = 0.f;
        scorer_.scores(code_.data(), 1, &s);
        return s;
    }
    void scores(const idx_t* ids, size_t n, float* out) override {
        check_query();
        if constexpr (HasScoresGather<Scorer>::value) {  // scored where the codes lie (the same bits)
            if (codes_.with_codes_in_place(ids, n, ptrs_,
                                           [&](const uint8_t* const* p) { scorer_.scores_gather(p, n, out); }))
                return;
        }
        gathered_.resize(n * code_.size());
        codes_.gather_codes(ids, n, gathered_.data());
        scorer_.scores(gathered_.data(), n, out);
    }

   private:
    const IndexT& codes_;
    Scorer scorer_;
    std::vector<uint8_t> code_, gathered_;
    std::vector<const uint8_t*> ptrs_;
    bool builds_tables_;
};

}  // namespace nearly
