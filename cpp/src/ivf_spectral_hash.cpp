#include "nearly/ivf_spectral_hash.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nearly/hamming.h"
#include "nearly/index_lsh.h"
#include "nearly/io.h"
#include "nearly/linear_transform.h"
#include "nearly/parallel.h"

namespace nearly {

namespace {

size_t code_size_of(int nbit) {
    NEARLY_CHECK_ARG(nbit > 0 && nbit <= (1 << 20), "IndexIVFSpectralHash: nbit must be in [1, 2^20], got " +
                                                        std::to_string(nbit));
    return size_t(nbit + 7) / 8;
}

void check_period(float period) {
    NEARLY_CHECK_ARG(std::isfinite(period) && period != 0.f,
                     "IndexIVFSpectralHash: period must be a finite non-zero number (a negative one flips the "
                     "bits), got " + std::to_string(period));
}

// Rows transformed a slice at a time, so that encoding a billion vectors
// never holds all their transforms.
constexpr size_t kEncodeSlice = 1 << 16;

// The queries of one search, transformed together (one GEMM, not one per query).
struct TransformedQueries : IVFQueryBatch {
    std::vector<float> y;
};

// faiss's IVFScanner for this family: the query's bits against the list's
// thresholds, Hamming distances to the codes, as floats.
struct SpectralHashScanner : InvertedListScanner {
    const VectorTransform& vt;
    const float* thresholds;  // nlist x nbit, or null (Thresh_global)
    const size_t nbit, code_size, d;
    const float freq;
    const TransformedQueries* batch;
    const HammingNyFn ham = hamming_ny_kernel();
    std::vector<float> own;
    const float* y = nullptr;
    std::vector<uint8_t> qcode;
    mutable std::vector<int32_t> dis;

    SpectralHashScanner(const VectorTransform& vt, const float* thresholds, size_t nbit, size_t code_size,
                        float freq, const TransformedQueries* batch)
        : vt(vt), thresholds(thresholds), nbit(nbit), code_size(code_size), d(size_t(vt.d_in)), freq(freq),
          batch(batch), qcode(code_size) {}

    void set_query(const float* x) override {
        if (const std::ptrdiff_t row = batch ? batch->row_of(x, d) : -1; row >= 0) {
            y = batch->y.data() + size_t(row) * nbit;
        } else {
            own.resize(nbit);
            vt.apply(1, x, own.data());
            y = own.data();
        }
        if (!thresholds) binarize_with_freq(nbit, freq, y, nullptr, qcode.data());
    }
    void set_list(size_t list_no, float) override {
        if (thresholds) binarize_with_freq(nbit, freq, y, thresholds + list_no * nbit, qcode.data());
    }
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        dis.resize(n);
        ham(qcode.data(), codes, code_size, n, dis.data());
        for (size_t j = 0; j < n; j++) out[j] = float(dis[j]);
    }
};

// The median of v (sorted order's middle, or the mean of the two middles),
// reordering v; faiss's sort-based median, found in linear time.
float median_of(std::vector<float>& v) {
    const size_t n = v.size(), h = n / 2;
    std::nth_element(v.begin(), v.begin() + h, v.end());
    if (n % 2 == 1) return v[h];
    const float below = *std::max_element(v.begin(), v.begin() + h);
    return (below + v[h]) / 2;
}

}  // namespace

void binarize_with_freq(size_t nbit, float freq, const float* y, const float* c, uint8_t* code) {
    std::memset(code, 0, (nbit + 7) / 8);
    for (size_t j = 0; j < nbit; j++) {
        const float f = std::floor((y[j] - (c ? c[j] : 0.f)) * freq);
        // Past 2^62 a float is an even integer, and the cast would overflow.
        const int64_t bit = std::fabs(f) < 0x1p62f ? int64_t(f) & 1 : 0;
        code[j >> 3] |= uint8_t(bit << (j & 7));
    }
}

IndexIVFSpectralHash::IndexIVFSpectralHash(IndexPtr quantizer_, int d, size_t nlist_, int nbit_, float period)
    : IndexIVF(std::move(quantizer_), d, nlist_, code_size_of(nbit_), METRIC_L2), nbit(nbit_), period_(period) {
    check_period(period);
    auto rotation = std::make_shared<RandomRotationMatrix>(d, nbit);
    rotation->init(1234);  // faiss's seed for this index
    vt_ = rotation;
    refresh_trained();
}

TransformPtr IndexIVFSpectralHash::vt() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return vt_;
}

void IndexIVFSpectralHash::check_settable(const char* what) const {
    NEARLY_CHECK_ARG(ntotal == 0, std::string("IndexIVFSpectralHash: ") + what +
                                      " changes what the stored codes mean: reset() the index first");
}

void IndexIVFSpectralHash::replace_vt(TransformPtr t) {
    check_writable();
    NEARLY_CHECK_ARG(t != nullptr, "replace_vt: the transform cannot be None");
    NEARLY_CHECK_ARG(t->d_in == d && t->d_out == nbit,
                     "replace_vt: the transform must map d = " + std::to_string(d) + " to nbit = " +
                         std::to_string(nbit) + " dimensions, it maps " + std::to_string(t->d_in) + " to " +
                         std::to_string(t->d_out));
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    check_settable("replace_vt");
    vt_ = std::move(t);
    threshold_type_ = Thresh_global;
    trained_.clear();
    refresh_trained();
}

void IndexIVFSpectralHash::replace_vt(const IndexPreTransform& encoder) {
    NEARLY_CHECK_ARG(encoder.chain.size() == 1, "replace_vt: the encoder must hold one transform, it holds " +
                                                    std::to_string(encoder.chain.size()));
    const auto* lsh = dynamic_cast<const IndexLSH*>(encoder.index.get());
    NEARLY_CHECK_ARG(lsh != nullptr, "replace_vt: the encoder's index must be an IndexLSH");
    NEARLY_CHECK_ARG(lsh->nbits == nbit, "replace_vt: the encoder's IndexLSH has nbits = " +
                                             std::to_string(lsh->nbits) + ", this index nbit = " + std::to_string(nbit));
    NEARLY_CHECK_ARG(!lsh->rotate_data, "replace_vt: the encoder's IndexLSH must not rotate the data");
    NEARLY_CHECK_ARG(!lsh->train_thresholds, "replace_vt: the encoder's IndexLSH must not learn thresholds");
    replace_vt(encoder.chain[0]);
}

void IndexIVFSpectralHash::set_period(float period) {
    check_writable();
    check_period(period);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (period == period_) return;
    check_settable("setting period");
    period_ = period;
    if (threshold_type_ == Thresh_centroid_half) thresholds_from_centroids();
    refresh_trained();
}

void IndexIVFSpectralHash::set_threshold_type(ThresholdType t) {
    check_writable();
    NEARLY_CHECK_ARG(t >= Thresh_global && t <= Thresh_median,
                     "IndexIVFSpectralHash: threshold_type must be 0 to 3, got " + std::to_string(int(t)));
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (t == threshold_type_) return;
    check_settable("setting threshold_type");
    threshold_type_ = t;
    trained_.clear();
    if (t == Thresh_centroid || t == Thresh_centroid_half) thresholds_from_centroids();
    refresh_trained();
}

std::vector<float> IndexIVFSpectralHash::trained_thresholds() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return trained_;
}

void IndexIVFSpectralHash::thresholds_from_centroids() {
    trained_.clear();
    if (!vt_->is_trained || !quantizer_places_lists(*quantizer, nlist)) return;
    std::vector<float> centroids(nlist * size_t(d));
    list_centroids(*quantizer, nlist, 0, nlist, centroids.data());
    std::vector<float> t(nlist * size_t(nbit));
    vt_->apply(idx_t(nlist), centroids.data(), t.data());
    if (threshold_type_ == Thresh_centroid_half)
        for (float& v : t) v -= 0.25f * period_;
    trained_ = std::move(t);
}

void IndexIVFSpectralHash::rebuild_centroid_state() {
    if (threshold_type_ == Thresh_centroid || threshold_type_ == Thresh_centroid_half) thresholds_from_centroids();
    refresh_trained();
}

void IndexIVFSpectralHash::permute_list_state(const idx_t* perm) {
    if (threshold_type_ != Thresh_median || trained_.empty()) return;
    const size_t nb = size_t(nbit);
    std::vector<float> old(std::move(trained_));
    trained_.resize(old.size());
    for (size_t l = 0; l < nlist; l++)
        std::copy_n(old.data() + size_t(perm[l]) * nb, nb, trained_.data() + l * nb);
}

idx_t IndexIVFSpectralHash::train_encoder_num_vectors() const {
    return vt_->is_trained && threshold_type_ == Thresh_global ? 0 : idx_t(1) << 35;
}

bool IndexIVFSpectralHash::encoder_trained() const {
    return vt_->is_trained && (threshold_type_ == Thresh_global || trained_.size() == nlist * size_t(nbit));
}

void IndexIVFSpectralHash::assume_encoder_trained() {
    if (threshold_type_ == Thresh_centroid || threshold_type_ == Thresh_centroid_half) thresholds_from_centroids();
    IndexIVF::assume_encoder_trained();
}

void IndexIVFSpectralHash::train_encoder(idx_t n, const float* x, const idx_t* assign) {
    NEARLY_CHECK_ARG(n > 0, "IndexIVFSpectralHash: cannot train on 0 vectors");
    if (!vt_->is_trained) {
        if (verbose) std::printf("training the %s transform %d -> %d on %lld vectors\n", vt_->type_name().c_str(), d,
                                 nbit, (long long)n);
        vt_->train(n, x);
        if (!vt_->is_trained) throw NotSupported("IndexIVFSpectralHash: its transform (" + vt_->type_name() + ") did not train");
    }
    if (threshold_type_ != Thresh_median) {
        if (threshold_type_ == Thresh_global) trained_.clear();
        else thresholds_from_centroids();
        return;
    }
    // Per list and bit, the median of the list's training vectors' transforms.
    if (verbose) std::printf("training the medians of %zu lists x %d bits\n", nlist, nbit);
    const size_t nb = size_t(nbit), nt = size_t(n);
    std::vector<float> y(nt * nb);
    vt_->apply(n, x, y.data());
    std::vector<size_t> start(nlist + 1, 0);
    for (size_t i = 0; i < nt; i++)
        if (assign[i] >= 0 && size_t(assign[i]) < nlist) start[size_t(assign[i]) + 1]++;
    for (size_t l = 0; l < nlist; l++) start[l + 1] += start[l];
    std::vector<size_t> members(start[nlist]), fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < nt; i++)
        if (assign[i] >= 0 && size_t(assign[i]) < nlist) members[fill[size_t(assign[i])]++] = i;
    std::vector<float> t(nlist * nb, 0.f);  // a list without training vectors keeps 0, as in faiss
    parallel_for(nlist, [&](size_t l) {
        const size_t m = start[l + 1] - start[l];
        if (m == 0) return;
        std::vector<float> column(m);
        for (size_t j = 0; j < nb; j++) {
            for (size_t i = 0; i < m; i++) column[i] = y[members[start[l] + i] * nb + j];
            t[l * nb + j] = median_of(column);
        }
    });
    trained_ = std::move(t);
}

void IndexIVFSpectralHash::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    const size_t nb = size_t(nbit), dd = size_t(d);
    const float freq = frequency();
    const float* thresholds = threshold_type_ == Thresh_global ? nullptr : trained_.data();
    std::vector<float> y;
    for (size_t i0 = 0; i0 < size_t(n); i0 += kEncodeSlice) {
        const size_t m = std::min(kEncodeSlice, size_t(n) - i0);
        y.resize(m * nb);
        vt_->apply(idx_t(m), x + i0 * dd, y.data());
        parallel_for_blocks(m, 1024, [&](size_t i) {
            uint8_t* code = codes + (i0 + i) * code_size;
            const idx_t l = list_nos[i0 + i];
            if (l < 0) {
                std::memset(code, 0, code_size);
                return;
            }
            binarize_with_freq(nb, freq, y.data() + i * nb, thresholds ? thresholds + size_t(l) * nb : nullptr, code);
        });
    }
}

void IndexIVFSpectralHash::decode_vector(size_t, const uint8_t*, float*) const {
    throw NotSupported("IndexIVFSpectralHash: its codes are bits of intervals and cannot be decoded (reconstruct, "
                       "sa_decode); faiss cannot either");
}

std::unique_ptr<InvertedListScanner> IndexIVFSpectralHash::get_scanner() const { return get_scanner_for(nullptr); }

std::unique_ptr<IVFQueryBatch> IndexIVFSpectralHash::prepare_queries(idx_t n, const float* x,
                                                                    const SearchParameters*) const {
    auto batch = std::make_unique<TransformedQueries>();
    batch->x = x;
    batch->n = size_t(n);
    batch->y.resize(size_t(n) * size_t(nbit));
    vt_->apply(n, x, batch->y.data());
    return batch;
}

std::unique_ptr<InvertedListScanner> IndexIVFSpectralHash::get_scanner_for(const QueryBatch* batch) const {
    return std::make_unique<SpectralHashScanner>(*vt_, threshold_type_ == Thresh_global ? nullptr : trained_.data(),
                                                 size_t(nbit), code_size, frequency(),
                                                 dynamic_cast<const TransformedQueries*>(batch));
}

void IndexIVFSpectralHash::write_encoder_state(Writer& w) const {
    w.pod<int32_t>(nbit);
    w.pod<float>(period_);
    w.pod<int32_t>(threshold_type_);
    w.vec(trained_);
    write_transform_payload(*vt_, w);
}

void IndexIVFSpectralHash::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    write_encoder_state(w);
    write_lists(w, 1);
}

std::unique_ptr<IndexIVFSpectralHash> IndexIVFSpectralHash::read_body(Reader& r) {
    Header h = read_header(r, "IVFSpectralHash");
    const int32_t nbit = r.pod<int32_t>();
    const float period = r.pod<float>();
    const int32_t tt = r.pod<int32_t>();
    r.check(h.metric == METRIC_L2 && nbit > 0 && nbit <= (1 << 20) && std::isfinite(period) && period != 0.f &&
                tt >= Thresh_global && tt <= Thresh_median,
            "bad IVFSpectralHash header");
    std::vector<float> trained = r.vec<float>();
    r.check(trained.empty() || (tt != Thresh_global && trained.size() == h.nlist * size_t(nbit)),
            "bad IVFSpectralHash thresholds");
    TransformPtr vt = read_transform_payload(r);
    r.check(vt->d_in == h.d && vt->d_out == nbit, "IVFSpectralHash transform dimensions do not match");
    auto index = std::make_unique<IndexIVFSpectralHash>(h.quantizer, h.d, h.nlist, nbit, period);
    index->vt_ = std::move(vt);
    index->threshold_type_ = ThresholdType(tt);
    index->trained_ = std::move(trained);
    index->nprobe = h.nprobe;
    index->refresh_trained();
    index->read_lists(r, 1, h.ntotal, "IVFSpectralHash");
    r.check(h.ntotal == 0 || index->is_trained, "IVFSpectralHash holds codes but is not trained");
    return index;
}

}  // namespace nearly
