#include "nearly/index_eden.h"

#include <mutex>

#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

IndexEDEN::IndexEDEN(int d, MetricType metric, size_t nb_bits, bool biased)
    : IndexFlatCodes(d, metric), codec(size_t(d), nb_bits, biased) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "IndexEDEN: L2 or inner product only (faiss's EDEN too)");
    is_trained = false;
}

void IndexEDEN::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    check_finite(x, size_t(n) * d, "training data");
    std::vector<double> sum(d, 0.0);
    for (idx_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) sum[j] += x[size_t(i) * d + j];
    std::vector<float> mean(d, 0.f);
    for (int j = 0; j < d; j++) mean[j] = n ? float(sum[j] / double(n)) : 0.f;
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(ntotal == 0 || center == mean, "IndexEDEN: cannot train again once vectors are added "
                                                     "(their codes are relative to the center)");
    center = std::move(mean);
    is_trained = true;
}

void IndexEDEN::encode(size_t n, const float* x, uint8_t* codes) const {
    NEARLY_CHECK_ARG(!center.empty(), "IndexEDEN: not trained");
    codec.encode(n, x, center.data(), codes);
}

void IndexEDEN::decode(const uint8_t* code, float* out) const { codec.decode(1, code, center.data(), out); }

void IndexEDEN::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_with_scorers(n, x, k, D, I, sel, [&] { return EdenScorer(codec, metric_type, center.data()); });
}

void IndexEDEN::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                             const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t nb = size_t(ntotal), cs = code_size();
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    constexpr size_t kBlock = 1024;
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    InterruptPoll poll;
    parallel_for(size_t(n), [&](size_t q) {
        EdenScorer scorer(codec, metric_type, center.data());
        scorer.set_query(x + q * size_t(d));
        std::vector<float> s(kBlock);
        for (size_t j0 = 0; j0 < nb; j0 += kBlock) {
            const size_t m = std::min(kBlock, nb - j0);
            scorer.scores(codes_.data() + j0 * cs, m, s.data());
            for (size_t j = 0; j < m; j++)
                if ((ip ? s[j] > radius : s[j] < radius) && (!sel || sel->is_member(idx_t(j0 + j))))
                    hits[q].emplace_back(s[j], idx_t(j0 + j));
        }
        poll();
    });
    result.set(hits);
}

std::unique_ptr<DistanceComputer> IndexEDEN::get_distance_computer() const {
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    return std::make_unique<CodeDistanceComputer<IndexEDEN, EdenScorer>>(
        *this, EdenScorer(codec, metric_type, center.data()));
}

void IndexEDEN::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(int32_t(codec.bits()));
    w.pod<uint8_t>(codec.biased);
    w.vec(center);
}

void IndexEDEN::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint8_t>(is_trained);
    write_encoder_state(w);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

std::unique_ptr<IndexEDEN> IndexEDEN::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    const int bits = r.pod<int32_t>();
    const uint8_t biased = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && trained <= 1 && bits >= 1 &&
                bits <= 8 && biased <= 1,
            "bad EDEN header");
    auto index = std::make_unique<IndexEDEN>(d, MetricType(metric), size_t(bits), bool(biased));
    index->center = r.vec<float>();
    r.check(trained ? index->center.size() == size_t(d) : index->center.empty(), "EDEN center does not match d");
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->code_size(),
            "EDEN code count does not match ntotal");
    r.check(ntotal == 0 || trained, "EDEN holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

}  // namespace nearly
