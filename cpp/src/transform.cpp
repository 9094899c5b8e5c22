#include "nearly/hadamard_rotation.h"
#include "nearly/transform.h"

#include <algorithm>
#include <functional>
#include <mutex>

#include "nearly/distance.h"
#include "nearly/distance_computer.h"
#include "nearly/io.h"
#include "nearly/linear_transform.h"
#include "nearly/itq.h"
#include "nearly/opq.h"
#include "nearly/pca.h"

namespace nearly {

void VectorTransform::reverse(idx_t, const float*, float*) const {
    throw NotSupported("reverse transform not implemented for this type of transform");
}

void NormalizationTransform::apply(idx_t n, const float* x, float* out) const {
    std::copy(x, x + size_t(n) * d_in, out);
    normalize_L2(out, n, d_in);
}

void NormalizationTransform::reverse(idx_t n, const float* x, float* out) const {
    std::copy(x, x + size_t(n) * d_in, out);
}

IndexPreTransform::IndexPreTransform(TransformPtr transform, IndexPtr inner)
    : IndexPreTransform(std::vector<TransformPtr>{std::move(transform)}, std::move(inner)) {}

IndexPreTransform::IndexPreTransform(std::vector<TransformPtr> transforms, IndexPtr inner)
    : Index(!transforms.empty() && transforms[0] ? transforms[0]->d_in : inner ? inner->d : 1,
            inner ? inner->metric_type : METRIC_L2, true),
      chain(std::move(transforms)), index(std::move(inner)) {
    NEARLY_CHECK_ARG(index != nullptr, "IndexPreTransform needs an index");
    // An empty chain is faiss's IndexPreTransform(index), filled by prepend_transform.
    for (size_t i = 0; i < chain.size(); i++) {
        NEARLY_CHECK_ARG(chain[i] != nullptr, "IndexPreTransform: null transform");
        if (i > 0) NEARLY_CHECK_ARG(chain[i]->d_in == chain[i - 1]->d_out, "IndexPreTransform: transform dimensions do not chain");
    }
    NEARLY_CHECK_ARG(chain.empty() || chain.back()->d_out == index->d,
                     "IndexPreTransform: the last transform's output dimension must equal the index's d");
    sync_from_inner();
}

void IndexPreTransform::prepend_transform(TransformPtr t) {
    NEARLY_CHECK_ARG(t != nullptr, "IndexPreTransform: null transform");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    NEARLY_CHECK_ARG(t->d_out == d, "IndexPreTransform::prepend_transform: the transform's output dimension (" +
                                        std::to_string(t->d_out) + ") must be the index's d (" + std::to_string(d) + ")");
    chain.insert(chain.begin(), std::move(t));
    d = chain.front()->d_in;
    sync_from_inner();
}

// faiss code trains the transforms and the inner index one by one (they do
// not tell this index), then sets is_trained: accepted when every part is
// trained, refused naming the part that is not.
void IndexPreTransform::set_trained(bool trained) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    sync_from_inner();
    if (trained == is_trained) return;
    if (!trained) throw NotSupported("PreTransform: is_trained follows its parts here; it cannot be set to False");
    for (size_t i = 0; i < chain.size(); i++)
        if (!chain[i]->is_trained)
            throw NotSupported("PreTransform: transform " + std::to_string(i) + " of the chain is not trained");
    throw NotSupported("PreTransform: the inner index is not trained");
}

void IndexPreTransform::refresh_from_inner() {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    sync_from_inner();
}

void IndexPreTransform::sync_from_inner() {
    ntotal = index->ntotal;
    is_trained = index->is_trained;
    for (auto& t : chain) is_trained = is_trained && t->is_trained;
}

namespace {
// The query goes through the chain; the inner index scores it (faiss's).
class TransformedDistanceComputer : public DistanceComputer {
   public:
    using Transform = std::function<std::vector<float>(const float*)>;
    TransformedDistanceComputer(std::unique_ptr<DistanceComputer> inner, Transform transform)
        : inner_(std::move(inner)), transform_(std::move(transform)) {}
    void set_query(const float* x) override { inner_->set_query(transform_(x).data()); }
    float operator()(idx_t i) override { return (*inner_)(i); }
    float symmetric_dis(idx_t i, idx_t j) override { return inner_->symmetric_dis(i, j); }

   private:
    std::unique_ptr<DistanceComputer> inner_;
    Transform transform_;
};
}  // namespace

std::unique_ptr<DistanceComputer> IndexPreTransform::get_distance_computer() const {
    return std::make_unique<TransformedDistanceComputer>(index->get_distance_computer(),
                                                         [this](const float* x) { return apply_chain(1, x); });
}

std::vector<float> IndexPreTransform::apply_chain(idx_t n, const float* x) const {
    std::vector<float> cur(x, x + size_t(n) * d), next;
    for (auto& t : chain) {
        next.resize(size_t(n) * t->d_out);
        t->apply(n, cur.data(), next.data());
        cur.swap(next);
    }
    return cur;
}

void IndexPreTransform::train(idx_t n, const float* x) {
    check_finite(x, size_t(n) * d, "the training vectors");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> cur(x, x + size_t(n) * d), next;
    for (auto& t : chain) {
        if (!t->is_trained) t->train(n, cur.data());
        next.resize(size_t(n) * t->d_out);
        t->apply(n, cur.data(), next.data());
        cur.swap(next);
    }
    index->train(n, cur.data());
    sync_from_inner();
}

void IndexPreTransform::add(idx_t n, const float* x) {
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");  // faiss's text
    check_add_args(n, x);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xt = apply_chain(n, x);
    index->add(n, xt.data());
    sync_from_inner();
}

void IndexPreTransform::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");  // faiss's text
    check_add_args(n, x);
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xt = apply_chain(n, x);
    index->add_with_ids(n, xt.data(), ids);
    sync_from_inner();
}

void IndexPreTransform::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                               const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xt = apply_chain(n, x);
    index->search(n, xt.data(), k, D, I, params);
}

void IndexPreTransform::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                     const SearchParameters* params) const {
    check_search_args(n, x, 1);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xt = apply_chain(n, x);
    index->range_search(n, xt.data(), radius, result, params);
}

void IndexPreTransform::reconstruct(idx_t key, float* out) const { reconstruct_n(key, 1, out); }

void IndexPreTransform::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> y(size_t(ni) * index->d);
    index->reconstruct_n(i0, ni, y.data());
    std::vector<float> x = reverse_chain(ni, std::move(y));
    std::copy(x.begin(), x.end(), out);
}

std::vector<float> IndexPreTransform::reverse_chain(idx_t n, std::vector<float> cur) const {
    std::vector<float> next;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        next.resize(size_t(n) * (*it)->d_in);
        (*it)->reverse(n, cur.data(), next.data());
        cur.swap(next);
    }
    return cur;
}

void IndexPreTransform::encode_standalone(idx_t n, const float* x, uint8_t* bytes) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> xt = apply_chain(n, x);
    index->sa_encode(n, xt.data(), bytes);
}

void IndexPreTransform::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<float> y(size_t(n) * index->d);
    index->sa_decode(n, bytes, y.data());
    std::vector<float> out = reverse_chain(n, std::move(y));
    std::copy(out.begin(), out.end(), x);
}

size_t IndexPreTransform::remove_ids(const IDSelector& sel) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    size_t removed = index->remove_ids(sel);
    sync_from_inner();
    return removed;
}

void IndexPreTransform::reset() {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->reset();
    sync_from_inner();
}

void IndexPreTransform::merge_from(Index& other_base, idx_t add_id) {
    auto* other = dynamic_cast<IndexPreTransform*>(&other_base);
    if (!other || other == this || other->chain.size() != chain.size())
        throw NotSupported("merge_from: the other index must be an IndexPreTransform with the same transforms");
    std::scoped_lock lk(rw_mutex_, other->rw_mutex_);
    index->merge_from(*other->index, add_id);
    other->sync_from_inner();
    sync_from_inner();
}

void IndexPreTransform::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<uint32_t>(uint32_t(chain.size()));
    for (auto& t : chain) write_transform_payload(*t, w);
    write_index_payload(*index, w);
}

void write_transform_payload(const VectorTransform& t, Writer& w) {
    w.str(t.type_name());
    w.pod<int32_t>(t.d_in);
    w.pod<int32_t>(t.d_out);
    t.write_body(w);
}

TransformPtr read_transform_payload(Reader& r) {
    std::string tag = r.str();
    int d_in = r.pod<int32_t>(), d_out = r.pod<int32_t>();
    r.check(d_in > 0 && d_out > 0, "bad transform dimensions");
    if (tag == "L2norm") {
        r.check(d_in == d_out, "bad L2norm dimensions");
        return std::make_shared<NormalizationTransform>(d_in);
    }
    if (tag == "LinearTransform" || tag == "RandomRotation") {
        std::shared_ptr<LinearTransform> t;
        if (tag == "RandomRotation")
            t = std::make_shared<RandomRotationMatrix>(d_in, d_out);
        else
            t = std::make_shared<LinearTransform>(d_in, d_out);
        t->read_linear_body(r);
        return t;
    }
    if (tag == "HadamardRotation") return HadamardRotation::read(r, d_in, d_out);
    if (tag == "OPQ") return OPQMatrix::read(r, d_in, d_out);
    if (tag == "PCA") return PCAMatrix::read(r, d_in, d_out);
    if (tag == "ITQTransform") return ITQTransform::read(r, d_in, d_out);
    throw CorruptData("cannot read index: unknown transform '" + printable(tag) + "'");
}

std::unique_ptr<IndexPreTransform> IndexPreTransform::read_body(Reader& r) {
    uint32_t n = r.pod<uint32_t>();
    r.check(n < 64, "bad transform count");
    std::vector<TransformPtr> transforms;
    for (uint32_t i = 0; i < n; i++) transforms.push_back(read_transform_payload(r));
    IndexPtr inner = read_index_payload(r);
    try {
        return std::make_unique<IndexPreTransform>(std::move(transforms), std::move(inner));
    } catch (const InvalidArgument& e) {
        throw CorruptData(std::string("cannot read index: ") + e.what());
    }
}

}  // namespace nearly
