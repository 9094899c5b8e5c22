#include "nearly/index_residual_quantizer.h"

#include <algorithm>
#include <mutex>

#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

IndexResidualQuantizer::IndexResidualQuantizer(int d, size_t M, size_t nbits, MetricType metric,
                                               ResidualQuantizer::SearchType search_type)
    : IndexFlatCodes(d, metric), rq(size_t(std::max(d, 1)), M, nbits, search_type) {
    is_trained = false;
}

void IndexResidualQuantizer::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(ntotal == 0, "IndexResidualQuantizer: train() on a filled index would leave its codes "
                                  "meaningless; reset() first");
    rq.verbose = verbose;
    rq.train(size_t(n), x);
    is_trained = true;
}

void IndexResidualQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                    const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_with_scorers(n, x, k, D, I, sel, [&] { return RQScanner(rq, metric_type); });
}

void IndexResidualQuantizer::encode(size_t n, const float* x, uint8_t* codes) const { rq.compute_codes(x, codes, n); }

void IndexResidualQuantizer::decode(const uint8_t* code, float* out) const { rq.decode(code, out, 1); }

void IndexResidualQuantizer::write_encoder_state(Writer& w) const { rq.write(w); }

void IndexResidualQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint8_t>(is_trained);
    rq.write(w);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

std::unique_ptr<IndexResidualQuantizer> IndexResidualQuantizer::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && trained <= 1,
            "bad ResidualQuantizer header");
    ResidualQuantizer rq = ResidualQuantizer::read(r, "ResidualQuantizer");
    r.check(rq.d == size_t(d), "ResidualQuantizer d does not match the index");
    r.check(!trained || rq.is_trained, "ResidualQuantizer index marked trained without codebooks");
    auto index = std::make_unique<IndexResidualQuantizer>(d, rq.M, rq.nbits, MetricType(metric), rq.search_type);
    index->rq = std::move(rq);
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->rq.code_size,
            "ResidualQuantizer code count does not match ntotal");
    r.check(ntotal == 0 || trained, "ResidualQuantizer holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

std::unique_ptr<DistanceComputer> IndexResidualQuantizer::get_distance_computer() const {
    return std::make_unique<CodeDistanceComputer<IndexResidualQuantizer, RQScanner>>(*this, RQScanner(rq, metric_type));
}

}  // namespace nearly
