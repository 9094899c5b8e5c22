#include "nearly/refine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <tuple>
#include <vector>

#include "nearly/flat_panorama.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

IndexRefine::IndexRefine(IndexPtr base, IndexPtr refine)
    : Index(base ? base->d : 1, base ? base->metric_type : METRIC_L2), base_index(std::move(base)),
      refine_index(std::move(refine)) {
    NEARLY_CHECK_ARG(base_index != nullptr && refine_index != nullptr, "IndexRefine needs a base and a refine index");
    NEARLY_CHECK_ARG(refine_index->d == d && refine_index->metric_type == metric_type,
                     "IndexRefine: the refine index must have the base index's d and metric");
    // Filled indexes are accepted as faiss does, when they hold the same
    // vectors in the same order (ids 0..ntotal-1 in both): equal counts.
    NEARLY_CHECK_ARG(base_index->ntotal == refine_index->ntotal,
                     "IndexRefine: the base and refine indexes must hold the same number of vectors (got " +
                         std::to_string(base_index->ntotal) + " and " + std::to_string(refine_index->ntotal) + ")");
    sync();
}

IndexRefineFlat::IndexRefineFlat(IndexPtr base)
    : IndexRefine(base, std::make_shared<IndexFlat>(base ? base->d : 1, base ? base->metric_type : METRIC_L2)) {}

void IndexRefine::sync() {
    is_trained = base_index->is_trained && refine_index->is_trained;
    ntotal = refine_index->ntotal;
}

void IndexRefine::train(idx_t n, const float* x) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    base_index->train(n, x);
    if (!refine_index->is_trained) refine_index->train(n, x);
    sync();
}

void IndexRefine::add(idx_t n, const float* x) {
    check_add_args(n, x);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (!refine_index->is_trained) throw NotSupported("Error: 'is_trained' failed: the refine index is not trained");
    // The base index must number vectors 0, 1, ... like the refine index.
    if (base_index->ntotal != refine_index->ntotal)
        throw NotSupported("IndexRefine: the base index was modified directly; ids no longer match");
    base_index->add(n, x);
    refine_index->add(n, x);
    sync();
}

void IndexRefine::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                         const SearchParameters* params) const {
    check_search_args(n, x, k);
    float kf = k_factor;
    const SearchParameters* base_params = params;
    if (auto* rp = dynamic_cast<const IndexRefineSearchParameters*>(params)) {
        kf = rp->k_factor;
        base_params = rp->base_index_params.get();
    }
    NEARLY_CHECK_ARG(kf >= 1, "IndexRefine: k_factor must be at least 1");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const idx_t kb = std::max<idx_t>(k, idx_t(std::ceil(double(k) * kf)));
    // Not value-initialized: the base search writes every slot.
    std::unique_ptr<float[]> bD(new float[size_t(n) * kb]);
    std::unique_ptr<idx_t[]> bI(new idx_t[size_t(n) * kb]);
    // A Panorama refine index scores the candidates level by level and drops
    // those that cannot make the k best (the same results, fewer reads); it
    // prunes best when the base's best candidates come first.
    if (const auto* pano = dynamic_cast<const IndexFlatPanorama*>(refine_index.get())) {
        base_index->search(n, x, kb, bD.get(), bI.get(), base_params);
        return pano->search_subset(n, x, kb, bI.get(), k, D, I);
    }
    // In any order: every candidate is re-scored, and ties are broken by id.
    base_index->search_unordered(n, x, kb, bD.get(), bI.get(), base_params);
    // Float rows are read in place; any other refine index decodes each
    // candidate (reconstruct) into a buffer first.
    const auto* flat = dynamic_cast<const IndexFlat*>(refine_index.get());
    const float* xb = flat ? flat->vectors().data() : nullptr;
    const idx_t nrefine = refine_index->ntotal;
    const size_t dd = size_t(d), kk = size_t(k);
    const SimdKernels& K = simd();
    const float pad = missing_distance(metric_type);
    // Tasks of up to 16 queries: neighbouring queries' results share cache
    // lines, which threads taking alternate queries would pass back and
    // forth; fewer when that leaves threads idle.
    const size_t kPerTask = items_per_task(size_t(n), 16);
    const bool par = size_t(n) * kb * dd > (1u << 18);
    parallel_for(par ? (size_t(n) + kPerTask - 1) / kPerTask : 1, [&](size_t t) {
        const size_t q0 = par ? t * kPerTask : 0, q1 = par ? std::min(size_t(n), q0 + kPerTask) : size_t(n);
        std::vector<float> decoded(flat ? 0 : dd);
        for (size_t q = q0; q < q1; q++) {
            float* Dq = D + q * kk;
            idx_t* Iq = I + q * kk;
            TopK::init(Dq, Iq, kk);
            const idx_t* cand = bI.get() + q * kb;
            // Candidates are scattered over the float vectors: their rows are
            // requested a few candidates ahead so the reads overlap.
            constexpr idx_t kAhead = 4;
            auto prefetch_row = [&](idx_t j) {
                const idx_t id = cand[j];
                if (!flat || id < 0 || id >= nrefine) return;
                const char* row = reinterpret_cast<const char*>(xb + size_t(id) * dd);
                for (size_t b = 0; b < dd * sizeof(float); b += 64) __builtin_prefetch(row + b);
            };
            for (idx_t j = 0; j < std::min(kAhead, kb); j++) prefetch_row(j);
            for (idx_t j = 0; j < kb; j++) {
                if (j + kAhead < kb) prefetch_row(j + kAhead);
                idx_t id = cand[j];
                if (id < 0 || id >= nrefine) continue;
                const float* v = xb ? xb + size_t(id) * dd : decoded.data();
                if (!xb) refine_index->reconstruct(id, decoded.data());
                float s = metric_type == METRIC_L2 ? K.l2sqr(x + q * dd, v, dd) : -K.inner_product(x + q * dd, v, dd);
                TopK::push(Dq, Iq, kk, s, id);
            }
            TopK::sort(Dq, Iq, kk);
            for (size_t i = 0; i < kk; i++) Dq[i] = Iq[i] < 0 ? pad : (metric_type == METRIC_L2 ? Dq[i] : -Dq[i]);
        }
    });
}

void IndexRefine::reconstruct(idx_t key, float* out) const { refine_index->reconstruct(key, out); }

void IndexRefine::reset() {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    base_index->reset();
    refine_index->reset();
    sync();
}

void IndexRefine::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<float>(k_factor);
    write_index_payload(*base_index, w);
    write_index_payload(*refine_index, w);
}

namespace {
// k_factor, then the two parts, as write_body wrote them.
template <class Check>
std::tuple<float, IndexPtr, IndexPtr> read_parts(Reader& r, Check&& check_refine) {
    float kf = r.pod<float>();
    r.check(kf >= 1 && kf < 1e6f, "bad k_factor");
    IndexPtr base = read_index_payload(r);
    IndexPtr refine = read_index_payload(r);
    r.check(refine->d == base->d && refine->metric_type == base->metric_type && refine->ntotal == base->ntotal &&
                check_refine(*refine),
            "Refine parts do not match");
    return {kf, base, refine};
}
}  // namespace

std::unique_ptr<IndexRefine> IndexRefine::read_body(Reader& r) {
    auto [kf, base, refine] = read_parts(r, [](const Index&) { return true; });
    // Built around empty twins, then the loaded parts put in place.
    auto out = std::make_unique<IndexRefine>(std::make_shared<IndexFlat>(base->d, base->metric_type),
                                             std::make_shared<IndexFlat>(base->d, base->metric_type));
    out->base_index = base;
    out->refine_index = refine;
    out->k_factor = kf;
    out->sync();
    return out;
}

std::unique_ptr<IndexRefinePanorama> IndexRefinePanorama::read_body(Reader& r) {
    auto [kf, base, refine] = read_parts(r, [](const Index&) { return true; });
    auto out = std::make_unique<IndexRefinePanorama>(base, refine);
    out->k_factor = kf;
    return out;
}

std::unique_ptr<IndexRefineFlat> IndexRefineFlat::read_body(Reader& r) {
    auto [kf, base, refine] = read_parts(r, [](const Index& i) { return dynamic_cast<const IndexFlat*>(&i) != nullptr; });
    auto out = std::make_unique<IndexRefineFlat>(std::make_shared<IndexFlat>(base->d, base->metric_type));
    out->base_index = base;
    out->refine_index = refine;
    out->k_factor = kf;
    out->sync();
    return out;
}

void IndexRefine::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                               const SearchParameters* params) const {
    check_search_args(n, x, 1);
    const SearchParameters* base_params = params;
    if (auto* rp = dynamic_cast<const IndexRefineSearchParameters*>(params)) base_params = rp->base_index_params.get();
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    RangeSearchResult base;
    base_index->range_search(n, x, radius, base, base_params);
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const size_t dd = d;
    const SimdKernels& K = simd();
    std::vector<float> exact(base.labels.size());
    parallel_for(size_t(n), [&](size_t q) {
        std::vector<float> v(dd);
        for (size_t j = base.lims[q]; j < base.lims[q + 1]; j++) {
            refine_index->reconstruct(base.labels[j], v.data());
            exact[j] = ip ? K.inner_product(x + q * dd, v.data(), dd) : K.l2sqr(x + q * dd, v.data(), dd);
        }
    });
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    for (size_t q = 0; q < size_t(n); q++)
        for (size_t j = base.lims[q]; j < base.lims[q + 1]; j++)
            if (ip ? exact[j] > radius : exact[j] < radius) hits[q].emplace_back(exact[j], base.labels[j]);
    result.set(hits);
}

void IndexRefine::encode_standalone(idx_t n, const float* x, uint8_t* bytes) const {
    const size_t c1 = base_index->sa_code_size(), c2 = refine_index->sa_code_size();
    std::vector<uint8_t> b1(size_t(n) * c1), b2(size_t(n) * c2);
    base_index->sa_encode(n, x, b1.data());
    refine_index->sa_encode(n, x, b2.data());
    for (size_t i = 0; i < size_t(n); i++) {
        std::memcpy(bytes + i * (c1 + c2), &b1[i * c1], c1);
        std::memcpy(bytes + i * (c1 + c2) + c1, &b2[i * c2], c2);
    }
}

void IndexRefine::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    const size_t c1 = base_index->sa_code_size(), c2 = refine_index->sa_code_size();
    std::vector<uint8_t> b2(size_t(n) * c2);
    for (size_t i = 0; i < size_t(n); i++) std::memcpy(&b2[i * c2], bytes + i * (c1 + c2) + c1, c2);
    refine_index->sa_decode(n, b2.data(), x);
}

}  // namespace nearly
