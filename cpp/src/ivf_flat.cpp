#include "nearly/ivf_flat.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/extra_distances.h"
#include "nearly/flat.h"
#include "nearly/io.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
// The code is the vector: distances straight from the SIMD row kernels (or
// the extra metrics' kernels: a NaN score never enters a result).
struct FlatScanner : InvertedListScanner {
    const SimdKernels& K = simd();
    size_t d;
    MetricType metric;
    float arg;
    const float* q = nullptr;
    FlatScanner(size_t d, MetricType metric, float arg) : d(d), metric(metric), arg(arg) {}
    void set_query(const float* x) override { q = x; }
    void set_list(size_t, float) override {}
    void distances(size_t n, const uint8_t* codes, float* out) const override {
        // List codes are whole floats at float-aligned offsets (vector storage).
        const float* xb = reinterpret_cast<const float*>(codes);
        if (metric == METRIC_INNER_PRODUCT)
            K.inner_products_ny(q, xb, d, n, out);
        else if (metric == METRIC_L2)
            K.l2sqr_ny(q, xb, d, n, out);
        else
            extra_distances_ny(metric, arg, q, xb, d, n, out);
    }
};

// A selector on positions in one list, through the list's ids.
struct ListSelector : IDSelector {
    const idx_t* ids;
    size_t size;
    const IDSelector& sel;
    ListSelector(const idx_t* ids, size_t size, const IDSelector& sel) : ids(ids), size(size), sel(sel) {}
    bool is_member(idx_t i) const override { return i >= 0 && size_t(i) < size && sel.is_member(ids[i]); }
};
}  // namespace

IndexIVFFlat::IndexIVFFlat(IndexPtr quantizer_, int d, size_t nlist_, MetricType metric)
    : IndexIVF(std::move(quantizer_), d, nlist_, size_t(d) * sizeof(float), metric, /*extra_metrics=*/true) {
    refresh_trained();
}

void IndexIVFFlat::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
    std::memcpy(codes, x, size_t(n) * code_size);
}

void IndexIVFFlat::decode_vector(size_t, const uint8_t* code, float* out) const { std::memcpy(out, code, code_size); }

std::unique_ptr<InvertedListScanner> IndexIVFFlat::get_scanner() const {
    return std::make_unique<FlatScanner>(size_t(d), metric_type, metric_arg);
}

// The gathered queries against the list with the blocked GEMM engine of
// exact search (knn_exhaustive).
void IndexIVFFlat::scan_list_batch(size_t, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq,
                                   const float* xq, const float*, size_t k, const IDSelector* sel, float* dis,
                                   idx_t* pos) const {
    const float* rows = reinterpret_cast<const float*>(codes);
    if (sel) {
        // A selective filter: the rows it keeps, gathered, are all the GEMM
        // scores (faiss tests ids before distances too).
        std::vector<idx_t> kept;
        for (size_t j = 0; j < size; j++)
            if (sel->is_member(ids[j])) kept.push_back(idx_t(j));
        if (kept.size() * 2 <= size) {
            const size_t dd = d;
            std::vector<float> sub(kept.size() * dd);
            for (size_t i = 0; i < kept.size(); i++)
                std::memcpy(&sub[i * dd], rows + size_t(kept[i]) * dd, dd * sizeof(float));
            knn_exhaustive(xq, nq, sub.data(), kept.size(), dd, metric_type, k, dis, pos, nullptr);
            for (size_t i = 0; i < nq * k; i++)
                if (pos[i] >= 0) pos[i] = kept[size_t(pos[i])];
            return;
        }
    }
    std::unique_ptr<ListSelector> translated;
    if (sel) translated = std::make_unique<ListSelector>(ids, size, *sel);
    knn_exhaustive(xq, nq, rows, size, size_t(d), metric_type, k, dis, pos, translated.get());
}

// Same layout as before the IVF base existed: lists as ids + float vectors.
void IndexIVFFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    write_lists(w, sizeof(float));
}

std::unique_ptr<IndexIVFFlat> IndexIVFFlat::read_body(Reader& r) {
    Header h = read_header(r, "IVFFlat");
    auto index = std::make_unique<IndexIVFFlat>(h.quantizer, h.d, h.nlist, h.metric);
    index->metric_arg = h.metric_arg;
    index->nprobe = h.nprobe;
    index->read_lists(r, sizeof(float), h.ntotal, "IVFFlat");
    return index;
}

}  // namespace nearly
