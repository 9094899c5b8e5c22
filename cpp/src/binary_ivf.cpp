#include "nearly/binary_ivf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/hamming.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"
#include "sdc_pair.h"

namespace nearly {

// ---- IndexBinaryIVF ------------------------------------------------------------

bool binary_quantizer_places_lists(const IndexBinary& q, size_t nlist) {
    if (!q.is_trained || q.ntotal <= 0 || size_t(q.ntotal) > nlist) return false;
    const auto* m = dynamic_cast<const IndexBinaryIDMap*>(&q);
    if (!m) return size_t(q.ntotal) == nlist;
    if (size_t(q.ntotal) != nlist && m->type_name() != "BIDMap2") return false;
    std::vector<bool> seen(nlist);
    for (const idx_t id : m->ids()) {
        if (id < 0 || size_t(id) >= nlist || seen[size_t(id)]) return false;
        seen[size_t(id)] = true;
    }
    return true;
}

IndexBinaryIVF::IndexBinaryIVF(IndexBinaryPtr quantizer_, int d, size_t nlist_)
    : IndexBinary(d), quantizer(std::move(quantizer_)), nlist(nlist_), lists_(nlist_) {
    NEARLY_CHECK_ARG(quantizer != nullptr, "IndexBinaryIVF: the quantizer is None");
    if (quantizer->d != d)  // RuntimeError, faiss's text
        throw NotSupported("Error: 'd_ == static_cast<size_t>(quantizer_->d)' failed: the quantizer has d=" +
                           std::to_string(quantizer->d) + " bits, the index d=" + std::to_string(d));
    NEARLY_CHECK_ARG(nlist_ > 0, "IndexBinaryIVF: nlist must be positive");
    cp.niter = 10;
    is_trained = binary_quantizer_places_lists(*quantizer, nlist);
}

void IndexBinaryIVF::set_clustering_index(IndexPtr index) {
    NEARLY_CHECK_ARG(!index || index->d == d, "clustering_index has d=" + std::to_string(index ? index->d : 0) +
                                                  ", the binary IVF index d=" + std::to_string(d) + " bits");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    clustering_index_ = std::move(index);
}

IndexPtr IndexBinaryIVF::get_clustering_index() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return clustering_index_;
}

void IndexBinaryIVF::train(idx_t n, const uint8_t* x) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (!binary_quantizer_places_lists(*quantizer, nlist)) {
        // faiss: k-means on the codes decoded by IndexLSH (bit -> +-1), then
        // real_to_binary on the centroids.
        const size_t dd = size_t(d), cs = size_t(code_size);
        std::vector<float> xf(size_t(n) * dd);
        parallel_for((size_t(n) + 1023) / 1024, [&](size_t t) {
            for (size_t i = t * 1024; i < std::min(size_t(n), t * 1024 + 1024); i++)
                for (size_t j = 0; j < dd; j++) xf[i * dd + j] = (x[i * cs + j / 8] >> (j % 8)) & 1 ? 1.f : -1.f;
        });
        ClusteringParameters params = cp;
        params.verbose = params.verbose || verbose;
        Clustering clus(d, int(nlist), params);
        if (const IndexPtr ci = clustering_index_) {
            IndexAssignStep step(*ci);
            clus.train(n, xf.data(), ci->metric_type, &step, ci->metric_arg);
        } else {
            clus.train(n, xf.data(), METRIC_L2);
        }
        std::vector<uint8_t> centroids(nlist * cs, 0);
        for (size_t c = 0; c < nlist; c++)
            for (size_t j = 0; j < dd; j++)
                if (clus.centroids[c * dd + j] > 0) centroids[c * cs + j / 8] |= uint8_t(1u << (j % 8));
        quantizer->reset();
        quantizer->add(idx_t(nlist), centroids.data());
        quantizer->is_trained = true;
    }
    is_trained = true;
}

void IndexBinaryIVF::add(idx_t n, const uint8_t* x) { add_core(n, x, nullptr); }

void IndexBinaryIVF::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) { add_core(n, x, ids); }

void IndexBinaryIVF::check_assign(size_t count, const idx_t* assign, const char* what) const {
    for (size_t i = 0; i < count; i++)
        if (assign[i] < -1 || assign[i] >= idx_t(nlist))
            throw InvalidArgument(std::string(what) + ": list " + std::to_string(assign[i]) + " of an index with " +
                                  std::to_string(nlist) + " lists");
}

void IndexBinaryIVF::add_core(idx_t n, const uint8_t* x, const idx_t* ids, const idx_t* list_nos) {
    check_writable();
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed: the IVF index must be trained before adding");
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    if (n == 0) return;
    std::vector<idx_t> assign;
    if (list_nos) {
        check_assign(size_t(n), list_nos, "add_core");
        assign.assign(list_nos, list_nos + n);
    } else {
        std::vector<int32_t> dis(n);
        assign.resize(n);
        quantizer->search(n, x, 1, dis.data(), assign.data());
    }
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = size_t(code_size);
    for (idx_t i = 0; i < n; i++)
        if (assign[i] >= 0 && size_t(assign[i]) < nlist)
            lists_.append(size_t(assign[i]), x + size_t(i) * cs, CodeLayout{cs}, ids ? ids[i] : ntotal + i);
    ntotal += n;
}

// The lists each query probes (nprobe of them, or the parameters'), n x np.
std::vector<idx_t> IndexBinaryIVF::probed_lists(idx_t n, const uint8_t* x, const SearchParameters* params,
                                                size_t* np_out) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of queries must be non-negative");
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    size_t np = nprobe;
    if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) np = p->nprobe;
    NEARLY_CHECK_ARG(np > 0, "nprobe must be positive");
    np = std::min(np, nlist);
    *np_out = np;
    std::vector<int32_t> cdis(size_t(n) * np);
    std::vector<idx_t> coarse(size_t(n) * np);
    if (n > 0) quantizer->search(n, x, idx_t(np), cdis.data(), coarse.data(), quantizer_params_of(params));
    // A quantizer grown past nlist after training (codes added to a shared
    // one) names no list there: skipped, as faiss's scan skips it.
    for (idx_t& l : coarse)
        if (l >= idx_t(nlist)) l = -1;
    return coarse;
}

void IndexBinaryIVF::range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                                  const SearchParameters* params) const {
    size_t np = 0;
    const std::vector<idx_t> coarse = probed_lists(n, x, params, &np);
    range_search_preassigned(n, x, radius, np, coarse.data(), result, params);
}

void IndexBinaryIVF::range_search_preassigned(idx_t n, const uint8_t* x, int radius, size_t np,
                                              const idx_t* coarse, RangeSearchResult& result,
                                              const SearchParameters* params) const {
    NEARLY_CHECK_ARG(n >= 0 && np >= 1, "range_search_preassigned: n >= 0 queries and at least one list each");
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    check_assign(size_t(n) * np, coarse, "range_search_preassigned");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = size_t(code_size);
    const HammingNyFn ham = hamming_ny_kernel();
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    parallel_for(size_t(n), [&](size_t q) {
        constexpr size_t kChunk = 256;
        int32_t buf[kChunk];
        for (size_t p = 0; p < np; p++) {
            const idx_t l = coarse[q * np + p];
            if (l < 0 || size_t(l) >= nlist) continue;
            const InvertedLists::List& list = lists_[size_t(l)];
            const size_t size = list.ids.size();
            for (size_t j0 = 0; j0 < size; j0 += kChunk) {
                const size_t m = std::min(kChunk, size - j0);
                ham(x + q * cs, list.codes.data() + j0 * cs, cs, m, buf);
                for (size_t j = 0; j < m; j++)  // faiss's rule: strictly inside the radius
                    if (buf[j] < radius && (!sel || sel->is_member(list.ids[j0 + j])))
                        hits[q].emplace_back(float(buf[j]), list.ids[j0 + j]);
            }
        }
    });
    result.set(hits);
}

void IndexBinaryIVF::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                            const SearchParameters* params) const {
    NEARLY_CHECK_ARG(k > 0, "k must be positive (got " + std::to_string(k) + ")");
    size_t np = 0;
    const std::vector<idx_t> coarse = probed_lists(n, x, params, &np);
    search_preassigned(n, x, k, np, coarse.data(), D, I, params);
}

void IndexBinaryIVF::search_preassigned(idx_t n, const uint8_t* x, idx_t k, size_t np, const idx_t* coarse,
                                        int32_t* D, idx_t* I, const SearchParameters* params) const {
    NEARLY_CHECK_ARG(k > 0, "k must be positive (got " + std::to_string(k) + ")");
    NEARLY_CHECK_ARG(n >= 0 && np >= 1, "search_preassigned: n >= 0 queries and at least one list each");
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: IVF index is not trained");
    check_assign(size_t(n) * np, coarse, "search_preassigned");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    if (n == 0) return;

    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t kk = size_t(k), cs = size_t(code_size);
    const HammingNyFn ham = hamming_ny_kernel();
    InterruptPoll poll;
    constexpr size_t kChunk = 256, kQueriesPerTask = 8;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        int32_t buf[kChunk];
        std::vector<float> Dq(kk);
        for (size_t q = t * kQueriesPerTask; q < std::min(size_t(n), (t + 1) * kQueriesPerTask); q++) {
            idx_t* Iq = I + q * kk;
            TopK::init(Dq.data(), Iq, kk);
            const uint8_t* xq = x + q * cs;
            for (size_t p = 0; p < np; p++) {
                const idx_t l = coarse[q * np + p];
                if (l < 0 || size_t(l) >= nlist) continue;  // a quantizer grown past nlist after training
                const InvertedLists::List& list = lists_[size_t(l)];
                const size_t size = list.ids.size();
                for (size_t j0 = 0; j0 < size; j0 += kChunk) {
                    const size_t m = std::min(kChunk, size - j0);
                    ham(xq, list.codes.data() + j0 * cs, cs, m, buf);
                    // Strictly better than the current k-th only, in scan
                    // order (faiss's heap search), ties kept by smaller id.
                    for (size_t j = 0; j < m; j++) {
                        const float v = float(buf[j]);
                        if (!(v < Dq[0])) continue;
                        const idx_t id = list.ids[j0 + j];
                        if (sel && !sel->is_member(id)) continue;
                        TopK::push(Dq.data(), Iq, kk, v, id);
                    }
                }
            }
            TopK::sort(Dq.data(), Iq, kk);
            for (size_t i = 0; i < kk; i++) D[q * kk + i] = Iq[i] < 0 ? kHammingPad : int32_t(Dq[i]);
        }
        poll();
    });
}

void IndexBinaryIVF::reconstruct(idx_t key, uint8_t* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const auto where = lists_.locate(key);
    const uint8_t* c = lists_[where.first].codes.data() + where.second * size_t(code_size);
    std::copy(c, c + code_size, out);
}

void IndexBinaryIVF::reconstruct_n(idx_t n0, idx_t ni, uint8_t* out) const {
    NEARLY_CHECK_ARG(n0 >= 0 && ni >= 0, "reconstruct_n: n0 and ni must be non-negative");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = size_t(code_size);
    std::fill(out, out + size_t(ni) * cs, uint8_t(0));
    for (size_t l = 0; l < nlist; l++) {
        const auto& list = lists_[l];
        for (size_t j = 0; j < list.ids.size(); j++) {
            const idx_t id = list.ids[j];
            if (id >= n0 && id < n0 + ni)
                std::copy(list.codes.data() + j * cs, list.codes.data() + (j + 1) * cs, out + size_t(id - n0) * cs);
        }
    }
}

size_t IndexBinaryIVF::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t removed = lists_.remove(sel, CodeLayout{size_t(code_size)});
    ntotal -= idx_t(removed);
    return removed;
}

void IndexBinaryIVF::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    lists_.clear();
    ntotal = 0;
}

std::shared_ptr<IndexBinaryIVF> IndexBinaryIVF::shard(IndexBinaryPtr q, const std::vector<idx_t>& lists) const {
    NEARLY_CHECK_ARG(q && q->d == d, "shard: the quantizer must have d = " + std::to_string(d));
    auto out = std::make_shared<IndexBinaryIVF>(std::move(q), d, nlist);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    out->nprobe = nprobe;
    out->cp = cp;
    out->use_heap = use_heap;
    out->per_invlist_search = per_invlist_search;
    out->verbose = verbose;
    const CodeLayout lay{size_t(code_size)};
    for (const idx_t l : lists) {
        NEARLY_CHECK_ARG(l >= 0 && size_t(l) < nlist, "shard: list " + std::to_string(l) + " out of range");
        const InvertedLists::List& src = lists_[size_t(l)];
        if (src.ids.empty()) continue;
        NEARLY_CHECK_ARG(out->is_trained, "shard: entries of list " + std::to_string(l) +
                                              " need a quantizer that places them (an IndexBinaryIDMap2 of list "
                                              "numbers)");
        out->lists_.assign(size_t(l), src.ids.data(), src.ids.size(), src.codes.data(), lay);
        out->ntotal += idx_t(src.ids.size());
    }
    out->lists_.set_direct_map(lists_.has_direct_map());
    return out;
}

void IndexBinaryIVF::make_direct_map(bool enable) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    lists_.set_direct_map(enable);
}

size_t IndexBinaryIVF::list_size(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return lists_[list_no].ids.size();
}

std::vector<idx_t> IndexBinaryIVF::list_ids(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const auto& ids = lists_[list_no].ids;
    return std::vector<idx_t>(ids.begin(), ids.end());
}

std::vector<uint8_t> IndexBinaryIVF::list_codes(size_t list_no) const {
    NEARLY_CHECK_ARG(list_no < nlist, "list number out of range");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const auto& list = lists_[list_no];
    const uint8_t* c = list.codes.data();
    return std::vector<uint8_t>(c, c + list.ids.size() * size_t(code_size));
}

void IndexBinaryIVF::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<uint64_t>(nlist);
    w.pod<uint64_t>(nprobe);
    w.pod<int64_t>(ntotal);
    w.pod<uint8_t>(is_trained);
    write_index_binary_payload(*quantizer, w);
    lists_.write(w, 1);
}

std::unique_ptr<IndexBinaryIVF> IndexBinaryIVF::read_body(Reader& r) {
    const int d = r.pod<int32_t>();
    const uint64_t nlist = r.pod<uint64_t>(), nprobe = r.pod<uint64_t>();
    const idx_t ntotal = r.pod<int64_t>();
    const uint8_t trained = r.pod<uint8_t>();
    r.check(d > 0 && d % 8 == 0 && nlist > 0 && nlist <= r.remaining() / 16 && nprobe > 0 && ntotal >= 0 &&
                trained <= 1,
            "bad BIVF header");
    IndexBinaryPtr quantizer = read_index_binary_payload(r);
    r.check(quantizer->d == d, "BIVF quantizer dimension does not match");
    r.check(!trained || binary_quantizer_places_lists(*quantizer, size_t(nlist)),
            "BIVF quantizer does not hold nlist centroids");
    auto index = std::make_unique<IndexBinaryIVF>(quantizer, d, size_t(nlist));
    index->nprobe = size_t(nprobe);
    index->is_trained = trained != 0;
    index->lists_.read(r, 1, CodeLayout{size_t(index->code_size)}, ntotal, "BIVF");
    index->ntotal = ntotal;
    return index;
}

// ---- IndexIVFBinaryRecurrent ---------------------------------------------------

namespace {

// The queries of one search, encoded together.
struct EncodedQueries : IVFQueryBatch {
    std::vector<uint8_t> codes;
};

// A list entry: float term | canonical code, the term being
// IndexBinaryRecurrent's per-vector centering term.
struct RecurrentScanner : InvertedListScanner {
    const RecurrentEncoder& enc;
    const EncodedQueries* batch;
    const SimdKernels& K = simd();
    HammingNyFn ham = hamming_ny_kernel();
    bool l2;
    float a, mm, qterm = 0;
    std::vector<uint8_t> own;
    const uint8_t* qcode = nullptr;
    RecurrentScanner(const RecurrentEncoder& enc, bool l2, const EncodedQueries* batch)
        : enc(enc), batch(batch), l2(l2), own(enc.code_size()) {
        a = enc.alpha * enc.alpha * std::ldexp(1.f, -2 * (enc.nb - 1));
        mm = K.inner_product(enc.mean.data(), enc.mean.data(), enc.d);
    }
    void set_query(const float* x) override {
        const size_t d = size_t(enc.d);
        if (const std::ptrdiff_t row = batch ? batch->row_of(x, d) : -1; row >= 0) {
            qcode = batch->codes.data() + size_t(row) * enc.code_size();
        } else {
            enc.encode(1, x, own.data());
            qcode = own.data();
        }
        const float qm = K.inner_product(x, enc.mean.data(), enc.d);
        qterm = l2 ? K.inner_product(x, x, enc.d) - 2 * qm + 2 * mm : qm - mm;
    }
    void set_list(size_t, float) override {}
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        const size_t stride = sizeof(float) + enc.code_size();
        for (size_t j = 0; j < n; j++) {
            const uint8_t* c = codes + j * stride;
            float vt;
            std::memcpy(&vt, c, sizeof(float));
            const float S = float(sdc_pair_popcount(ham, qcode, c + sizeof(float), enc.m, enc.nb));
            out[j] = l2 ? qterm + vt - 2 * a * S : a * S + qterm + vt;  // IP: the inner product itself
        }
    }
};

}  // namespace

IndexIVFBinaryRecurrent::IndexIVFBinaryRecurrent(IndexPtr quantizer_, int d, size_t nlist_, int m, int nb,
                                                 MetricType metric)
    : IndexIVF(std::move(quantizer_), d, nlist_, sizeof(float) + sdc_code_size(m, nb), metric),
      encoder(std::make_shared<RecurrentEncoder>(d, m, nb)) {
    refresh_trained();
}

void IndexIVFBinaryRecurrent::train_encoder(idx_t n, const float* x, const idx_t*) { encoder->train(n, x); }

void IndexIVFBinaryRecurrent::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    const RecurrentEncoder& enc = *encoder;
    const size_t cs = enc.code_size(), dd = size_t(d);
    std::vector<uint8_t> raw(size_t(n) * cs);
    enc.encode(n, x, raw.data());
    const SimdKernels& K = simd();
    const bool l2 = metric_type == METRIC_L2;
    for (idx_t i = 0; i < n; i++) {
        const float* v = x + size_t(i) * dd;
        const float xm = K.inner_product(v, enc.mean.data(), d);
        const float term = l2 ? K.inner_product(v, v, d) - 2 * xm : xm;
        uint8_t* out = codes + size_t(i) * code_size;
        std::memcpy(out, &term, sizeof(float));
        std::memcpy(out + sizeof(float), raw.data() + size_t(i) * cs, cs);
    }
}

void IndexIVFBinaryRecurrent::decode_vector(size_t, const uint8_t* code, float* out) const {
    encoder->decode(1, code + sizeof(float), out);
}

std::unique_ptr<InvertedListScanner> IndexIVFBinaryRecurrent::get_scanner() const {
    return std::make_unique<RecurrentScanner>(*encoder, metric_type == METRIC_L2, nullptr);
}

std::unique_ptr<IVFQueryBatch> IndexIVFBinaryRecurrent::prepare_queries(idx_t n, const float* x, const SearchParameters*) const {
    auto batch = std::make_unique<EncodedQueries>();
    batch->x = x;
    batch->n = size_t(n);
    batch->codes.resize(size_t(n) * encoder->code_size());
    encoder->encode(n, x, batch->codes.data());
    return batch;
}

std::unique_ptr<InvertedListScanner> IndexIVFBinaryRecurrent::get_scanner_for(const QueryBatch* batch) const {
    return std::make_unique<RecurrentScanner>(*encoder, metric_type == METRIC_L2,
                                              dynamic_cast<const EncodedQueries*>(batch));
}

void IndexIVFBinaryRecurrent::write_encoder_state(Writer& w) const { encoder->write(w); }

void IndexIVFBinaryRecurrent::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    encoder->write(w);
    write_lists(w, 1);
}

std::unique_ptr<IndexIVFBinaryRecurrent> IndexIVFBinaryRecurrent::read_body(Reader& r) {
    Header h = read_header(r, "IVFBinaryRecurrent");
    auto enc = RecurrentEncoder::read(r);
    r.check(enc->d == h.d, "IVFBinaryRecurrent encoder dimension does not match");
    auto index = std::make_unique<IndexIVFBinaryRecurrent>(h.quantizer, h.d, h.nlist, enc->m, enc->nb, h.metric);
    index->encoder = enc;
    index->nprobe = h.nprobe;
    index->refresh_trained();
    index->read_lists(r, 1, h.ntotal, "IVFBinaryRecurrent");
    return index;
}

}  // namespace nearly
