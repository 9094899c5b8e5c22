#include "nearly/ivf_rabitq.h"

#include <algorithm>
#include <mutex>
#include <vector>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

namespace {
constexpr size_t kChunk = 256;

struct QueryBits : IVFQueryBatch {
    int qb;
    bool centered;
};

struct IVFRaBitQScanner : InvertedListScanner {
    const IndexIVFRaBitQ& ix;
    const int qb;
    const bool centered;
    std::vector<float> centroid;
    const float* q = nullptr;
    RaBitQQuery rq;

    IVFRaBitQScanner(const IndexIVFRaBitQ& ix, int qb, bool centered)
        : ix(ix), qb(qb), centered(centered), centroid(size_t(ix.d)) {}

    void set_query(const float* x) override { q = x; }
    void set_list(size_t list_no, float) override {
        ix.quantizer->reconstruct(idx_t(list_no), centroid.data());
        rq.prepare(ix.rabitq, q, centroid.data(), qb, centered);
    }
    // The full estimates (range search).
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        if (ix.rabitq.nb_bits == 1) {
            rq.estimate(n, codes, out);
            return;
        }
        for (size_t j = 0; j < n; j++) out[j] = rq.full(codes + j * ix.code_size);
    }
    void scan_codes(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool labels_are_ids,
                    bool ip, const IDSelector* sel, float* D, idx_t* I, size_t k) override {
        const bool multibit = ix.rabitq.nb_bits > 1;
        float est[kChunk];
        for (size_t j0 = 0; j0 < size; j0 += kChunk) {
            const size_t m = std::min(kChunk, size - j0);
            const uint8_t* c0 = codes + j0 * code_size;
            rq.estimate(m, c0, est);
            for (size_t j = 0; j < m; j++) {
                float s = est[j];
                if (multibit) {
                    // Only codes whose bound can beat the k-th best get the full estimate.
                    if (!rq.may_beat(c0 + j * code_size, s, ip ? -D[0] : D[0])) continue;
                    if (sel && !sel->is_member(ids[j0 + j])) continue;
                    s = rq.full(c0 + j * code_size);
                }
                if (ip) s = -s;
                if (s > D[0] || (!multibit && sel && !sel->is_member(ids[j0 + j]))) continue;
                TopK::push(D, I, k, s, labels_are_ids ? ids[j0 + j] : idx_t(j0 + j));
            }
        }
    }
};
}  // namespace

IndexIVFRaBitQ::IndexIVFRaBitQ(IndexPtr quantizer_, int d, size_t nlist_, MetricType metric, int nb_bits)
    : IndexIVF(std::move(quantizer_), d, nlist_, 0, metric),
      rabitq(size_t(std::max(d, 1)), metric, size_t(std::max(nb_bits, 0))) {
    code_size = rabitq.code_size;
    by_residual = true;  // by design, as in faiss: codes are always against the list's centroid
    refresh_trained();
}

void IndexIVFRaBitQ::copy_from(const IndexIVFRaBitQ& orig) {
    std::shared_lock<SharedMutex> lk(orig.rw_mutex_);
    NEARLY_CHECK_ARG(orig.d == d && orig.nlist == nlist && orig.code_size == code_size,
                     "IndexIVFRaBitQ::copy_from: a different shape");
    {
        std::unique_lock<SharedMutex> mine(rw_mutex_);
        quantizer = orig.quantizer;
        qb = orig.qb;
        centered = orig.centered;
        cp = orig.cp;
        verbose = orig.verbose;
    }
    copy_lists_from(orig);
    std::unique_lock<SharedMutex> mine(rw_mutex_);
    is_trained = orig.is_trained;
}

void IndexIVFRaBitQ::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    const size_t dd = d;
    // Multi-bit codes take ~0.2 ms each (the search for the best scale):
    // Ctrl-C is checked every 256 codes, not only between add()'s blocks.
    InterruptPoll poll;
    parallel_for((size_t(n) + 255) / 256, [&](size_t t) {
        const size_t i0 = t * 256, i1 = std::min(size_t(n), i0 + 256);
        std::vector<float> centroids((i1 - i0) * dd);
        centroids_of(i1 - i0, list_nos + i0, centroids.data());
        for (size_t i = i0; i < i1; i++) {
            uint8_t* code = codes + i * code_size;
            if (list_nos[i] < 0) {  // not stored
                std::fill(code, code + code_size, uint8_t(0));
                continue;
            }
            rabitq.encode_one(x + i * dd, &centroids[(i - i0) * dd], code);
        }
        poll();
    });
}

void IndexIVFRaBitQ::decode_vector(size_t list_no, const uint8_t* code, float* out) const {
    std::vector<float> c(d);
    quantizer->reconstruct(idx_t(list_no), c.data());
    rabitq.decode(1, code, c.data(), out);
}

std::unique_ptr<InvertedListScanner> IndexIVFRaBitQ::get_scanner() const {
    return std::make_unique<IVFRaBitQScanner>(*this, qb, centered);
}

std::unique_ptr<IVFQueryBatch> IndexIVFRaBitQ::prepare_queries(idx_t, const float*,
                                                               const SearchParameters* params) const {
    auto bits = std::make_unique<QueryBits>();
    bits->qb = qb;
    bits->centered = centered;
    if (auto* p = dynamic_cast<const IVFRaBitQSearchParameters*>(params)) {
        bits->qb = p->qb;
        bits->centered = p->centered;
    }
    NEARLY_CHECK_ARG(bits->qb >= 0 && bits->qb <= 8, "RaBitQ: qb must be in 0..8, got " + std::to_string(bits->qb));
    return bits;
}

std::unique_ptr<InvertedListScanner> IndexIVFRaBitQ::get_scanner_for(const QueryBatch* batch) const {
    auto* bits = dynamic_cast<const QueryBits*>(batch);
    if (!bits) return get_scanner();
    return std::make_unique<IVFRaBitQScanner>(*this, bits->qb, bits->centered);
}

void IndexIVFRaBitQ::write_encoder_state(Writer& w) const { w.pod<uint64_t>(rabitq.nb_bits); }

void IndexIVFRaBitQ::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    w.pod<int32_t>(int32_t(rabitq.nb_bits));
    w.pod<int32_t>(qb);
    write_lists(w, 1);
}

template <class T>
std::unique_ptr<T> IndexIVFRaBitQ::read_as(Reader& r) {
    Header h = read_header(r, "IVFRaBitQ");
    const int nb_bits = r.pod<int32_t>(), qb = r.pod<int32_t>();
    r.check(nb_bits >= 1 && nb_bits <= 9 && qb >= 0 && qb <= 8, "bad IVFRaBitQ header");
    r.check(h.metric == METRIC_L2 || h.metric == METRIC_INNER_PRODUCT, "bad IVFRaBitQ metric");
    auto index = std::make_unique<T>(h.quantizer, h.d, h.nlist, h.metric, nb_bits);
    index->nprobe = h.nprobe;
    index->qb = qb;
    index->read_lists(r, 1, h.ntotal, "IVFRaBitQ");
    index->refresh_trained();
    return index;
}

template std::unique_ptr<IndexIVFRaBitQ> IndexIVFRaBitQ::read_as<IndexIVFRaBitQ>(Reader&);
template std::unique_ptr<IndexIVFRaBitQFastScan> IndexIVFRaBitQ::read_as<IndexIVFRaBitQFastScan>(Reader&);

}  // namespace nearly
