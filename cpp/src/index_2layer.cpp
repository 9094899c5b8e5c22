#include "nearly/index_2layer.h"

#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/simd.h"

namespace nearly {

Index2Layer::Index2Layer(IndexPtr quantizer, size_t nlist, size_t M, size_t nbits, MetricType metric)
    : IndexFlatCodes(quantizer ? quantizer->d : 0, metric) {
    NEARLY_CHECK_ARG(quantizer != nullptr, "Index2Layer: a quantizer is needed");
    if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
        throw NotSupported("Index2Layer: L2 or inner product only");
    codec = std::make_shared<IndexIVFPQ>(std::move(quantizer), d, nlist, M, nbits, metric);
    code_size_1 = codec->coarse_code_size();
    code_size_2 = codec->code_size;
    is_trained = codec->is_trained;
}

void Index2Layer::train(idx_t n, const float* x) {
    check_writable();
    codec->verbose = verbose;
    codec->train(n, x);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    is_trained = codec->is_trained;
}

void Index2Layer::set_trained(bool trained) {
    check_writable();
    if (trained) codec->set_trained(true);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    is_trained = trained;
}

std::unique_ptr<DistanceComputer> Index2Layer::get_distance_computer() const {
    return std::make_unique<CodeDistanceComputer<Index2Layer, DecodedScorer>>(*this, DecodedScorer{this});
}

void Index2Layer::encode(size_t n, const float* x, uint8_t* codes) const { codec->sa_encode(idx_t(n), x, codes); }

void Index2Layer::decode(const uint8_t* code, float* out) const { codec->sa_decode(1, code, out); }

void Index2Layer::decode_block(const uint8_t* codes, size_t n, float* out) const {
    codec->sa_decode(idx_t(n), codes, out);
}

void Index2Layer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: Index2Layer is not trained");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    search_with_scorers(n, x, k, D, I, params ? params->sel.get() : nullptr, [&] { return DecodedScorer{this}; });
}

void Index2Layer::transfer_to_IVFPQ(IndexIVFPQ& other) const {
    NEARLY_CHECK_ARG(other.nlist == codec->nlist, "transfer_to_IVFPQ: the IVFPQ index must have the same nlist");
    NEARLY_CHECK_ARG(other.code_size == code_size_2, "transfer_to_IVFPQ: the IVFPQ index must have the same PQ code size");
    NEARLY_CHECK_ARG(other.ntotal == 0, "transfer_to_IVFPQ: the IVFPQ index must be empty");
    const std::vector<uint8_t> codes = get_codes();
    other.add_sa_codes(idx_t(codes.size() / code_size()), codes.data(), nullptr);
}

void Index2Layer::write_encoder_state(Writer& w) const { write_index_payload(*codec, w); }

void Index2Layer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<uint8_t>(is_trained);
    write_index_payload(*codec, w);
    w.pod<int64_t>(ntotal);
    w.array(codes_);
}

std::unique_ptr<Index2Layer> Index2Layer::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && trained <= 1, "bad 2Layer header");
    auto codec = std::dynamic_pointer_cast<IndexIVFPQ>(read_index_payload(r));
    r.check(codec && codec->type_name() == "IVFPQ" && codec->d == d && codec->ntotal == 0 && codec->by_residual,
            "2Layer: its codec is not an empty IVFPQ index of the same dimension");
    auto index = std::make_unique<Index2Layer>(codec->quantizer, codec->nlist, codec->pq.M, codec->pq.nbits,
                                               codec->metric_type);
    index->codec = std::move(codec);
    index->is_trained = trained;
    r.check(!trained || index->codec->is_trained, "2Layer marked trained with an untrained codec");
    const idx_t ntotal = r.pod<int64_t>();
    r.array(index->codes_);
    r.check(ntotal >= 0 && index->codes_.size() == size_t(ntotal) * index->code_size(),
            "2Layer code count does not match ntotal");
    r.check(ntotal == 0 || trained, "2Layer holds codes but is not trained");
    index->ntotal = ntotal;
    return index;
}

}  // namespace nearly
