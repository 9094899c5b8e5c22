#include "nearly/ivf_independent_quantizer.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "nearly/io.h"

namespace nearly {

IndexIVFIndependentQuantizer::IndexIVFIndependentQuantizer(IndexPtr quantizer_, std::shared_ptr<IndexIVF> ivf,
                                                           TransformPtr vt_)
    : Index(quantizer_ ? quantizer_->d : 0, ivf ? ivf->metric_type : METRIC_L2),
      quantizer(std::move(quantizer_)),
      index_ivf(std::move(ivf)),
      vt(std::move(vt_)) {
    NEARLY_CHECK_ARG(quantizer && index_ivf, "IndexIVFIndependentQuantizer: the quantizer and the IVF index are needed");
    NEARLY_CHECK_ARG(quantizer.get() != index_ivf.get(), "IndexIVFIndependentQuantizer: the quantizer is the IVF index");
    if (vt)
        NEARLY_CHECK_ARG(vt->d_in == d && vt->d_out == index_ivf->d,
                         "invalid vector dimensions: the transform maps " + std::to_string(vt->d_in) + " to " +
                             std::to_string(vt->d_out) + " dimensions; the quantizer has d=" + std::to_string(d) +
                             ", the IVF index d=" + std::to_string(index_ivf->d));
    else
        NEARLY_CHECK_ARG(index_ivf->d == d, "invalid vector dimensions: the quantizer has d=" + std::to_string(d) +
                                                ", the IVF index d=" + std::to_string(index_ivf->d));
    if (quantizer->is_trained && quantizer->ntotal != 0)
        NEARLY_CHECK_ARG(size_t(quantizer->ntotal) == index_ivf->nlist,
                         "the quantizer holds " + std::to_string(quantizer->ntotal) + " centroids, the IVF index has "
                             "nlist = " + std::to_string(index_ivf->nlist));
    cp.niter = 10;
    cp.spherical = metric_type == METRIC_INNER_PRODUCT;
    sync_from_parts();
}

void IndexIVFIndependentQuantizer::sync_from_parts() {
    ntotal = index_ivf->ntotal;
    is_trained = quantizer_places_lists(*quantizer, index_ivf->nlist) && (!vt || vt->is_trained) &&
                 index_ivf->is_trained;
}

std::vector<float> IndexIVFIndependentQuantizer::transformed(idx_t n, const float* x) const {
    if (!vt) return std::vector<float>(x, x + size_t(n) * size_t(d));
    std::vector<float> out(size_t(n) * size_t(vt->d_out));
    vt->apply(n, x, out.data());
    return out;
}

void IndexIVFIndependentQuantizer::train(idx_t n, const float* x) {
    check_writable();
    NEARLY_CHECK_ARG(n > 0, "train: no training vectors");
    check_finite(x, size_t(n) * size_t(d), "the training vectors");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(index_ivf->ntotal == 0, "IndexIVFIndependentQuantizer: train before adding (its IVF index holds " +
                                                 std::to_string(index_ivf->ntotal) + " vectors)");
    const size_t nlist = index_ivf->nlist;
    if (!quantizer_places_lists(*quantizer, nlist)) {
        if (verbose) std::printf("IndexIVFIndependentQuantizer: train the quantizer (%zu centroids)\n", nlist);
        Clustering clus(d, int(nlist), cp);
        clus.train(n, x, quantizer->metric_type, nullptr, quantizer->metric_arg);
        quantizer->reset();
        if (!quantizer->is_trained) quantizer->train(idx_t(nlist), clus.centroids.data());
        quantizer->add(idx_t(nlist), clus.centroids.data());
    }
    if (vt && !vt->is_trained) {
        if (verbose) std::printf("IndexIVFIndependentQuantizer: train the VectorTransform\n");
        vt->train(n, x);
    }
    // The IVF index's quantizer: the centroids in its space.
    std::vector<float> centroids(nlist * size_t(d));
    list_centroids(*quantizer, nlist, 0, nlist, centroids.data());
    const std::vector<float> tc = transformed(idx_t(nlist), centroids.data());
    IndexPtr sub = index_ivf->get_quantizer();
    sub->reset();
    if (!sub->is_trained) sub->train(idx_t(nlist), tc.data());
    sub->add(idx_t(nlist), tc.data());
    if (verbose) std::printf("IndexIVFIndependentQuantizer: train the encoder\n");
    std::vector<idx_t> assign(static_cast<size_t>(n));
    std::vector<float> dis(static_cast<size_t>(n));
    quantizer->search(n, x, 1, dis.data(), assign.data());
    const std::vector<float> xt = transformed(n, x);
    index_ivf->train_encoder_with_assignment(n, xt.data(), assign.data());
    sync_from_parts();
}

void IndexIVFIndependentQuantizer::add_core(idx_t n, const float* x, const idx_t* ids) {
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");  // faiss's text
    check_add_args(n, x);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<idx_t> assign(static_cast<size_t>(n));
    std::vector<float> dis(static_cast<size_t>(n));
    if (n > 0) quantizer->search(n, x, 1, dis.data(), assign.data());
    const std::vector<float> xt = transformed(n, x);
    index_ivf->add_core(n, xt.data(), ids, assign.data());
    sync_from_parts();
}

void IndexIVFIndependentQuantizer::add(idx_t n, const float* x) { add_core(n, x, nullptr); }

void IndexIVFIndependentQuantizer::add_with_ids(idx_t n, const float* x, const idx_t* ids) { add_core(n, x, ids); }

std::vector<idx_t> IndexIVFIndependentQuantizer::probed_lists(idx_t n, const float* x, const SearchParameters* params,
                                                              size_t* np_out) const {
    if (!is_trained) throw NotSupported("Error: '!(is_trained)' failed: the index is not trained");
    size_t np = index_ivf->nprobe;
    if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) np = p->nprobe;
    NEARLY_CHECK_ARG(np > 0, "nprobe must be positive");
    np = std::min(np, index_ivf->nlist);
    *np_out = np;
    std::vector<idx_t> lists(size_t(n) * np);
    std::vector<float> dis(lists.size());
    if (n > 0) quantizer->search(n, x, idx_t(np), dis.data(), lists.data(), quantizer_params_of(params));
    return lists;
}

// The centroid scores are left to the IVF index (null): the quantizer's are
// distances in the input space, not in the one the IVF index scans.
void IndexIVFIndependentQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                          const SearchParameters* params) const {
    check_search_args(n, x, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    size_t np = 0;
    const std::vector<idx_t> lists = probed_lists(n, x, params, &np);
    const std::vector<float> xt = transformed(n, x);
    index_ivf->search_preassigned(n, xt.data(), k, np, lists.data(), nullptr, D, I, params);
}

void IndexIVFIndependentQuantizer::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                                const SearchParameters* params) const {
    check_search_args(n, x, 1);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    size_t np = 0;
    const std::vector<idx_t> lists = probed_lists(n, x, params, &np);
    const std::vector<float> xt = transformed(n, x);
    index_ivf->range_search_preassigned(n, xt.data(), radius, np, lists.data(), nullptr, result, params);
}

size_t IndexIVFIndependentQuantizer::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t removed = index_ivf->remove_ids(sel);
    sync_from_parts();
    return removed;
}

void IndexIVFIndependentQuantizer::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index_ivf->reset();
    sync_from_parts();
}

void IndexIVFIndependentQuantizer::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<uint8_t>(vt ? 1 : 0);
    if (vt) write_transform_payload(*vt, w);
    write_index_payload(*quantizer, w);
    write_index_payload(*index_ivf, w);
}

std::unique_ptr<IndexIVFIndependentQuantizer> IndexIVFIndependentQuantizer::read_body(Reader& r) {
    const uint8_t has_vt = r.pod<uint8_t>();
    r.check(has_vt <= 1, "bad IVFIndependentQuantizer header");
    TransformPtr vt = has_vt ? read_transform_payload(r) : nullptr;
    IndexPtr quantizer = read_index_payload(r);
    auto ivf = std::dynamic_pointer_cast<IndexIVF>(read_index_payload(r));
    r.check(ivf != nullptr, "IVFIndependentQuantizer: the inner index is not an IVF index");
    try {
        return std::make_unique<IndexIVFIndependentQuantizer>(std::move(quantizer), std::move(ivf), std::move(vt));
    } catch (const InvalidArgument& e) {
        throw CorruptData(std::string("cannot read index: ") + e.what());
    }
}

}  // namespace nearly
