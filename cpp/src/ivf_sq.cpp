#include "nearly/ivf_sq.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nearly/index_sq.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/sq_scan.h"

namespace nearly {

namespace {
struct IVFSQScanner : InvertedListScanner {
    const IndexIVFScalarQuantizer& ix;
    const SimdKernels& K = simd();
    const size_t d;
    const bool ip, residual;
    std::unique_ptr<SQScorer> scorer;  // integer codes: scored without decoding
    std::vector<float> qres, centroid;
    mutable std::vector<float> dec;
    const float* q = nullptr;
    const float* qeff = nullptr;
    float dis0 = 0.f;

    explicit IVFSQScanner(const IndexIVFScalarQuantizer& ix)
        : ix(ix), d(size_t(ix.d)), ip(ix.metric_type == METRIC_INNER_PRODUCT), residual(ix.by_residual) {
        if (SQScorer::supports(ix.sq)) scorer = std::make_unique<SQScorer>(ix.sq, ix.metric_type);
        if (residual && !ip) {
            qres.resize(d);
            centroid.resize(d);
        }
    }
    void set_query(const float* x) override {
        q = x;
        qeff = x;
        dis0 = 0.f;
        if (scorer && (ip || !residual)) scorer->set_query(x);
    }
    void set_list(size_t list_no, float coarse_dis) override {
        if (!residual) return;
        if (ip) {
            dis0 = coarse_dis;  // <q, c>
        } else {
            ix.quantizer->reconstruct(idx_t(list_no), centroid.data());
            for (size_t j = 0; j < d; j++) qres[j] = q[j] - centroid[j];
            qeff = qres.data();
            if (scorer) scorer->set_query(qeff);
        }
    }
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        if (scorer) {
            scorer->scores(codes, n, out);
        } else {
            // fp16 / bf16: a few codes at a time, so that the decoded floats
            // are still in L1 when the kernel reads them back.
            constexpr size_t kDecodeChunk = 16;
            if (dec.size() < kDecodeChunk * d) dec.resize(kDecodeChunk * d);
            for (size_t j0 = 0; j0 < n; j0 += kDecodeChunk) {
                const size_t m = std::min(kDecodeChunk, n - j0);
                ix.sq.decode(codes + j0 * ix.sq.code_size, dec.data(), m);
                if (ip)
                    K.inner_products_ny(qeff, dec.data(), d, m, out + j0);
                else
                    K.l2sqr_ny(qeff, dec.data(), d, m, out + j0);
            }
        }
        if (dis0 != 0.f)
            for (size_t j = 0; j < n; j++) out[j] += dis0;
    }
};
}  // namespace

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
    return std::make_unique<IVFSQScanner>(*this);
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
