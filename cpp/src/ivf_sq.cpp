#include "nearly/ivf_sq.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nearly/index_sq.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/sq_scan.h"
#include "residual_list_scanner.h"

namespace nearly {


IndexIVFScalarQuantizer::IndexIVFScalarQuantizer(IndexPtr quantizer_, int d, size_t nlist_,
                                                 ScalarQuantizer::QuantizerType qtype, MetricType metric,
                                                 bool by_residual_)
    : IndexIVF(std::move(quantizer_), d, nlist_, 0, metric), sq(size_t(d), qtype) {
    code_size = sq.code_size;
    by_residual = by_residual_;
    refresh_trained();
}

void IndexIVFScalarQuantizer::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    encode_each(n, x, list_nos, codes, [&](const float* v, uint8_t* code) { sq.encode(v, code); });
}

void IndexIVFScalarQuantizer::decode_vector(size_t list_no, const uint8_t* code, float* out) const {
    sq.decode(code, out, 1);
    if (!by_residual) return;
    std::vector<float> c(d);
    quantizer->reconstruct(idx_t(list_no), c.data());
    for (int j = 0; j < d; j++) out[j] += c[j];
}

void IndexIVFScalarQuantizer::train_encoder(idx_t n, const float* x, const idx_t*) {
    if (verbose) std::printf("training scalar quantizer on %lld vectors in %dD\n", (long long)n, d);
    NEARLY_CHECK_ARG(n > 0, "IndexIVFScalarQuantizer: cannot train on 0 vectors");
    sq.train(size_t(n), x);
}

std::unique_ptr<InvertedListScanner> IndexIVFScalarQuantizer::get_scanner() const {
    return std::make_unique<ResidualListScanner<SQScorer>>(*this, SQScorer(sq, metric_type));
}

void IndexIVFScalarQuantizer::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(sq.qtype);
    w.vec(sq.trained);
}

void IndexIVFScalarQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.pod<uint8_t>(by_residual);
    write_sq(w, sq);
    write_lists(w, 1);
}

std::unique_ptr<IndexIVFScalarQuantizer> IndexIVFScalarQuantizer::read_body(Reader& r) {
    Header h = read_header(r, "IVFScalarQuantizer");
    const uint8_t by_residual = r.pod<uint8_t>();
    r.check(by_residual <= 1, "bad IVFScalarQuantizer header");
    ScalarQuantizer sq = read_sq(r, h.d, "IVFScalarQuantizer");
    auto index = std::make_unique<IndexIVFScalarQuantizer>(h.quantizer, h.d, h.nlist, sq.qtype, h.metric,
                                                          bool(by_residual));
    index->nprobe = h.nprobe;
    index->sq = std::move(sq);
    index->read_lists(r, 1, h.ntotal, "IVFScalarQuantizer");
    r.check(h.ntotal == 0 || index->sq.is_trained(), "IVFScalarQuantizer holds codes but is not trained");
    index->refresh_trained();
    return index;
}

}  // namespace nearly
