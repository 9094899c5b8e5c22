#include "nearly/index_sq.h"
#include "nearly/turboquant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/sq_scan.h"
#include "nearly/topk.h"

namespace nearly {

void write_sq(Writer& w, const ScalarQuantizer& sq) {
    w.pod<int32_t>(sq.qtype);
    w.pod<int32_t>(sq.rangestat);
    w.pod<float>(sq.rangestat_arg);
    w.vec(sq.trained);
}

ScalarQuantizer read_sq(Reader& r, int d, const char* who) {
    const int qtype = r.pod<int32_t>();
    const int rs = r.pod<int32_t>();
    const float arg = r.pod<float>();
    r.check(d > 0 && ScalarQuantizer::valid_qtype(qtype) && ScalarQuantizer::valid_rangestat(rs) && std::isfinite(arg),
            (std::string("bad ") + who + " header").c_str());
    ScalarQuantizer sq{size_t(d), ScalarQuantizer::QuantizerType(qtype)};
    sq.rangestat = ScalarQuantizer::RangeStat(rs);
    sq.rangestat_arg = arg;
    sq.trained = r.vec<float>();
    r.check(sq.trained.empty() || sq.is_trained(), (std::string(who) + " ranges do not match d").c_str());
    if (sq.turboq() && !sq.trained.empty()) TurboQuantCodec::check_trained(sq.bits, sq.trained);
    return sq;
}

IndexScalarQuantizer::IndexScalarQuantizer(int d, ScalarQuantizer::QuantizerType qtype, MetricType metric)
    : IndexFlatCodes(d, metric), sq(size_t(d), qtype) {
    sq.check_standalone();
    is_trained = sq.is_trained();  // faiss: fp16 needs no training
}

void IndexScalarQuantizer::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "n must be non-negative");
    check_finite(x, size_t(n) * d, "training data");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (sq.needs_training()) {
        NEARLY_CHECK_ARG(n > 0 || sq.codebook() || sq.turboq(), "IndexScalarQuantizer: cannot train on 0 vectors");
        sq.train(size_t(n), x);
    }
    is_trained = true;
}

void IndexScalarQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                  const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_with_scorers(n, x, k, D, I, sel, [&] { return SQScorer(sq, metric_type); });
}

void IndexScalarQuantizer::encode(size_t n, const float* x, uint8_t* codes) const { sq.compute_codes(x, codes, n); }

void IndexScalarQuantizer::decode(const uint8_t* code, float* out) const { sq.decode(code, out, 1); }

void IndexScalarQuantizer::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(sq.qtype);
    w.vec(sq.trained);
}

void IndexScalarQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<uint8_t>(is_trained);
    write_sq(w, sq);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

std::unique_ptr<IndexScalarQuantizer> IndexScalarQuantizer::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const int metric = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && trained <= 1,
            "bad ScalarQuantizer header");
    ScalarQuantizer sq = read_sq(r, d, "ScalarQuantizer");
    auto index = std::make_unique<IndexScalarQuantizer>(d, sq.qtype, MetricType(metric));
    r.check(!trained || sq.is_trained(), "ScalarQuantizer marked trained without ranges");
    index->sq = std::move(sq);
    index->is_trained = trained;
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->sq.code_size,
            "ScalarQuantizer code count does not match ntotal");
    r.check(ntotal == 0 || trained, "ScalarQuantizer holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

std::unique_ptr<DistanceComputer> IndexScalarQuantizer::get_distance_computer() const {
    return std::make_unique<CodeDistanceComputer<IndexScalarQuantizer, SQScorer>>(*this, SQScorer(sq, metric_type));
}

void IndexScalarQuantizer::set_quantizer(const ScalarQuantizer& other) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    sq.check_replacement(other, "IndexScalarQuantizer", ntotal);
    sq = other;
    is_trained = sq.is_trained();
}

}  // namespace nearly
