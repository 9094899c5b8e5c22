#include "nearly/ivf_sq.h"
#include "nearly/turboquant.h"

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
    // faiss stores TurboQuant's full codes of the vectors themselves (its
    // scanner ignores the list's centroid), so it turns by_residual off; a
    // QT_0bit entry is its centroid.
    by_residual = by_residual_ && !sq.turboq() && !sq.zero_bit();
    refresh_trained();
}

void IndexIVFScalarQuantizer::set_sq(const ScalarQuantizer& other) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    sq.check_replacement(other, "IndexIVFScalarQuantizer", ntotal);
    sq = other;
    refresh_trained();
}

void IndexIVFScalarQuantizer::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    if (sq.zero_bit()) return;  // no bytes: the list number is the whole code
    if (sq.turboq()) {  // one codec (its signs drawn once) for the batch
        const TurboQuantCodec tq(sq);
        encode_each(n, x, list_nos, codes, [&](const float* v, uint8_t* code) { tq.encode(v, code); });
        return;
    }
    encode_each(n, x, list_nos, codes, [&](const float* v, uint8_t* code) { sq.encode(v, code); });
}

void IndexIVFScalarQuantizer::decode_vector(size_t list_no, const uint8_t* code, float* out) const {
    if (sq.zero_bit()) {  // faiss's QT_0bit decodes to the centroid
        quantizer->reconstruct(idx_t(list_no), out);
        return;
    }
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

namespace {
// QT_0bit: every entry of a list scores as its centroid, the quantizer's
// score of the query (faiss's IVFCoarseDistanceScanner).
struct CoarseDistanceScanner : InvertedListScanner {
    float coarse = 0.f;
    void set_query(const float*) override {}
    void set_list(size_t, float coarse_dis) override { coarse = coarse_dis; }
    void distances(size_t n, const uint8_t*, float* out) const override { std::fill(out, out + n, coarse); }
};
}  // namespace

std::unique_ptr<InvertedListScanner> IndexIVFScalarQuantizer::get_scanner() const {
    if (sq.zero_bit()) return std::make_unique<CoarseDistanceScanner>();
    return std::make_unique<ResidualListScanner<SQScorer>>(*this, SQScorer(sq, metric_type));
}

void IndexIVFScalarQuantizer::scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size,
                                              size_t nq, const float* xq, const float* coarse_dis, size_t k,
                                              const IDSelector* sel, float* dis, idx_t* pos) const {
    constexpr size_t kGroup = 8, kCodeBlock = 1024;
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const size_t dd = size_t(d);
    // As ResidualListScanner: L2 by residual scores q - c; IP by residual
    // adds the coarse score <q, c> to <q, r>.
    std::vector<float> centroid, res(dd);
    if (by_residual && !ip) {
        centroid.resize(dd);
        quantizer->reconstruct(idx_t(l), centroid.data());
    }
    std::vector<float> buf(kGroup * kCodeBlock);
    std::vector<SQScorer> scorers(std::min(kGroup, nq), SQScorer(sq, metric_type));
    for (size_t g0 = 0; g0 < nq; g0 += kGroup) {
        const size_t g = std::min(kGroup, nq - g0);
        for (size_t i = g0; i < g0 + g; i++) {
            const float* q = xq + i * dd;
            if (!centroid.empty()) {
                for (size_t j = 0; j < dd; j++) res[j] = q[j] - centroid[j];
                q = res.data();
            }
            scorers[i - g0].set_query(q);
            TopK::init(dis + i * k, pos + i * k, k);
        }
        for (size_t j0 = 0; j0 < size; j0 += kCodeBlock) {
            const size_t m = std::min(kCodeBlock, size - j0);
            SQScorer::scores_group(scorers.data(), g, codes + j0 * code_size, m, buf.data());
            for (size_t i = 0; i < g; i++) {
                float* Dq = dis + (g0 + i) * k;
                idx_t* Iq = pos + (g0 + i) * k;
                const float dis0 = by_residual && ip ? coarse_dis[g0 + i] : 0.f;
                const float* bq = buf.data() + i * m;
                for (size_t j = 0; j < m; j++) {
                    const float s = ip ? -(bq[j] + dis0) : bq[j];
                    if (s > Dq[0] || (sel && !sel->is_member(ids[j0 + j]))) continue;
                    TopK::push(Dq, Iq, k, s, idx_t(j0 + j));
                }
            }
        }
        for (size_t i = g0; i < g0 + g; i++) {
            TopK::sort(dis + i * k, pos + i * k, k);
            if (ip)
                for (size_t j = 0; j < k; j++) dis[i * k + j] = -dis[i * k + j];
        }
    }
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
