#include "nearly/ivf_eden.h"

#include <mutex>

#include "nearly/io.h"
#include "residual_list_scanner.h"

namespace nearly {

IndexIVFEDEN::IndexIVFEDEN(IndexPtr quantizer_, int d, size_t nlist_, MetricType metric, size_t nb_bits, bool biased)
    : IndexIVF(std::move(quantizer_), d, nlist_, 0, metric), codec(size_t(d), nb_bits, biased) {
    NEARLY_CHECK_ARG(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                     "IndexIVFEDEN: L2 or inner product only (faiss's EDEN too)");
    code_size = codec.code_size();
    by_residual = true;
    refresh_trained();
}

void IndexIVFEDEN::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    // encode_each hands the residual x - c: its EDEN code around the origin
    // is x's around c.
    encode_each(n, x, list_nos, codes, [&](const float* r, uint8_t* code) { codec.encode(1, r, nullptr, code); });
}

void IndexIVFEDEN::decode_vector(size_t list_no, const uint8_t* code, float* out) const {
    std::vector<float> c(d);
    quantizer->reconstruct(idx_t(list_no), c.data());
    codec.decode(1, code, c.data(), out);
}

std::unique_ptr<InvertedListScanner> IndexIVFEDEN::get_scanner() const {
    return std::make_unique<ResidualListScanner<EdenScorer>>(*this, EdenScorer(codec, metric_type, nullptr));
}

void IndexIVFEDEN::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(int32_t(codec.bits()));
    w.pod<uint8_t>(codec.biased);
}

void IndexIVFEDEN::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    write_encoder_state(w);
    write_lists(w, 1);
}

std::unique_ptr<IndexIVFEDEN> IndexIVFEDEN::read_body(Reader& r) {
    Header h = read_header(r, "IVFEDEN");
    const int bits = r.pod<int32_t>();
    const uint8_t biased = r.pod<uint8_t>();
    r.check(bits >= 1 && bits <= 8 && biased <= 1 && (h.metric == METRIC_L2 || h.metric == METRIC_INNER_PRODUCT),
            "bad IVFEDEN header");
    auto index = std::make_unique<IndexIVFEDEN>(h.quantizer, h.d, h.nlist, h.metric, size_t(bits), bool(biased));
    index->nprobe = h.nprobe;
    index->read_lists(r, 1, h.ntotal, "IVFEDEN");
    index->refresh_trained();
    return index;
}

}  // namespace nearly
