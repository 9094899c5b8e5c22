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
    : IndexResidualQuantizer(d, std::vector<size_t>(M, nbits), metric, search_type) {}

IndexResidualQuantizer::IndexResidualQuantizer(int d, const std::vector<size_t>& nbits, MetricType metric,
                                               ResidualQuantizer::SearchType search_type)
    : IndexFlatCodes(d, metric), rq(size_t(std::max(d, 1)), nbits, search_type) {
    is_trained = false;
}

void IndexResidualQuantizer::copy_from(const IndexResidualQuantizer& orig) {
    std::shared_lock<SharedMutex> theirs(orig.rw_mutex_);
    std::unique_lock<SharedMutex> mine(rw_mutex_);
    NEARLY_CHECK_ARG(orig.d == d && orig.rq.M == rq.M && orig.rq.nbits == rq.nbits && ntotal == 0,
                     "IndexResidualQuantizer::copy_from: into an empty index of the same shape");
    rq = orig.rq;
    set_codes_in_order(orig.codes_in_order(), size_t(orig.ntotal));
    ntotal = orig.ntotal;
    is_trained = orig.is_trained;
    verbose = orig.verbose;
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

void IndexResidualQuantizer::set_trained(bool trained) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (trained && !rq.is_trained)
        throw NotSupported(type_name() + ": is_trained = True needs its quantizer trained (or its codebooks "
                                         "assigned and rq.is_trained set)");
    is_trained = trained;
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
    return read_with(r, "ResidualQuantizer", [](int d, MetricType metric, const ResidualQuantizer& rq) {
        return std::make_unique<IndexResidualQuantizer>(d, rq.nbits, metric, rq.search_type);
    });
}

std::unique_ptr<IndexResidualQuantizer> IndexResidualQuantizer::read_with(Reader& r, const char* what,
                                                                          const Maker& make) {
    const std::string who(what);
    const int d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && trained <= 1,
            ("bad " + who + " header").c_str());
    ResidualQuantizer rq = ResidualQuantizer::read(r, what);
    r.check(rq.d == size_t(d), (who + " d does not match the index").c_str());
    r.check(!trained || rq.is_trained, (who + " index marked trained without codebooks").c_str());
    std::unique_ptr<IndexResidualQuantizer> index;
    try {
        index = make(d, MetricType(metric), rq);
    } catch (const std::exception& e) {  // a quantizer this class refuses
        r.check(false, (who + ": " + e.what()).c_str());
        throw;
    }
    index->rq = std::move(rq);
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == index->layout().bytes(size_t(ntotal)),
            (who + " code count does not match ntotal").c_str());
    r.check(ntotal == 0 || trained, (who + " holds codes but is not trained").c_str());
    index->ntotal = ntotal;
    return index;
}

std::unique_ptr<DistanceComputer> IndexResidualQuantizer::get_distance_computer() const {
    return std::make_unique<CodeDistanceComputer<IndexResidualQuantizer, RQScanner>>(*this, RQScanner(rq, metric_type),
                                                                                     true);
}

}  // namespace nearly
