#include "nearly/idmap.h"

#include <mutex>

#include "nearly/hnsw.h"
#include "nearly/io.h"

namespace nearly {

IndexIDMap::IndexIDMap(IndexPtr inner, bool with_reverse_map)
    : Index(inner ? inner->d : 1, inner ? inner->metric_type : METRIC_L2, true), index(std::move(inner)),
      reverse_(with_reverse_map) {
    NEARLY_CHECK_ARG(index != nullptr, "IndexIDMap needs an index to wrap");
    if (index->ntotal != 0) throw InvalidArgument("IndexIDMap: the wrapped index must be empty");
    sync_from_inner();
}

IndexIDMap::IndexIDMap(IndexPtr inner, bool with_reverse_map, std::vector<idx_t> ids)
    : Index(inner->d, inner->metric_type, true), index(std::move(inner)), id_map(std::move(ids)), reverse_(with_reverse_map) {
    sync_from_inner();
    if (reverse_) rebuild_reverse_map();
}

void IndexIDMap::sync_from_inner() {
    is_trained = index->is_trained;
    ntotal = index->ntotal;
}

void IndexIDMap::train(idx_t n, const float* x) {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->train(n, x);
    sync_from_inner();
}

void IndexIDMap::add(idx_t, const float*) {
    throw NotSupported("add does not make sense with IndexIDMap, use add_with_ids");
}

void IndexIDMap::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
    check_add_args(n, x);
    add_mapped(n, ids, [&](const idx_t* native) {
        if (native)
            index->add_with_ids(n, x, native);
        else
            index->add(n, x);
    });
}

void IndexIDMap::add_mapped(idx_t n, const idx_t* ids, const std::function<void(const idx_t*)>& add_inner) {
    if (index->has_native_ids()) {  // the wrapped index keeps the ids itself
        add_inner(ids);
        sync_from_inner();
        return;
    }
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    if (index->ntotal != idx_t(id_map.size()))
        throw NotSupported("IndexIDMap: the wrapped index was modified directly; its ids no longer match");
    add_inner(nullptr);
    id_map.insert(id_map.end(), ids, ids + n);
    if (reverse_)
        for (idx_t i = 0; i < n; i++) rev_map_[ids[i]] = ntotal + i;
    sync_from_inner();
}

void IndexIDMap::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    NEARLY_CHECK_ARG(ids || n == 0, "IndexIDMap: add_sa_codes needs the ids of the codes");
    add_mapped(n, ids, [&](const idx_t* native) { index->add_sa_codes(n, codes, native); });
}

// The caller filters on external ids, the inner index sees positions: the
// same parameters (efSearch, nprobe, ...) with the selector translated.
std::unique_ptr<SearchParameters> IndexIDMap::translate(const SearchParameters* params) const {
    if (!params || !params->sel) return nullptr;
    if (auto* t = dynamic_cast<const IDSelectorTranslatedShared*>(params->sel.get()); t && t->id_map.get() == &id_map)
        return params->clone();  // already maps our positions to ids (faiss's IDSelectorTranslated(index, sel))
    auto p = params->clone();
    p->sel = std::make_shared<IDSelectorTranslated>(id_map, *params->sel);
    return p;
}

// The wrapped index keeps the ids itself: a translation built from this
// IDMap is undone (its selector applies to the ids as they are).
std::unique_ptr<SearchParameters> IndexIDMap::untranslated(const SearchParameters* params) const {
    if (!params) return nullptr;
    auto* t = dynamic_cast<const IDSelectorTranslatedShared*>(params->sel.get());
    if (!t || t->id_map.get() != &id_map) return nullptr;
    auto p = params->clone();
    p->sel = t->sel;
    return p;
}

void IndexIDMap::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (index->has_native_ids()) {
        auto own = untranslated(params);
        return index->search(n, x, k, D, I, own ? own.get() : params);
    }
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto translated = translate(params);
    index->search(n, x, k, D, I, translated ? translated.get() : params);
    for (idx_t i = 0; i < n * k; i++)
        if (I[i] >= 0) I[i] = id_map[I[i]];
}

void IndexIDMap::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                              const SearchParameters* params) const {
    if (index->has_native_ids()) {
        auto own = untranslated(params);
        return index->range_search(n, x, radius, result, own ? own.get() : params);
    }
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto translated = translate(params);
    index->range_search(n, x, radius, result, translated ? translated.get() : params);
    for (idx_t& l : result.labels)
        if (l >= 0) l = id_map[l];
}

void IndexIDMap::reconstruct(idx_t key, float* out) const {
    if (!reverse_) throw NotSupported("reconstruct not implemented for this type of index");
    if (index->has_native_ids()) return index->reconstruct(key, out);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto it = rev_map_.find(key);
    if (it == rev_map_.end()) throw OutOfRange("key " + std::to_string(key) + " not found");
    index->reconstruct(it->second, out);
}

void IndexIDMap::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
    if (!reverse_) throw NotSupported("reconstruct not implemented for this type of index");
    for (idx_t i = 0; i < ni; i++) reconstruct(i0 + i, out + i * d);
}

size_t IndexIDMap::remove_ids(const IDSelector& sel) {
    if (index->has_native_ids()) {
        size_t removed = index->remove_ids(sel);
        sync_from_inner();
        return removed;
    }
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    // Decide on the external ids first: the inner index compacts in order,
    // and id_map must be compacted the same way.
    std::vector<bool> gone(id_map.size());
    for (size_t i = 0; i < id_map.size(); i++) gone[i] = sel.is_member(id_map[i]);
    IDSelectorTranslated tsel(id_map, sel);
    size_t removed = index->remove_ids(tsel);
    size_t j = 0;
    for (size_t i = 0; i < id_map.size(); i++)
        if (!gone[i]) id_map[j++] = id_map[i];
    id_map.resize(j);
    sync_from_inner();
    if (reverse_) rebuild_reverse_map();
    return removed;
}

void IndexIDMap::reset() {
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->reset();
    id_map.clear();
    rev_map_.clear();
    sync_from_inner();
}

void IndexIDMap::merge_from(Index& other_base, idx_t add_id) {
    auto* other = dynamic_cast<IndexIDMap*>(&other_base);
    if (!other || other == this) throw NotSupported("merge_from: the other index must be another IndexIDMap");
    std::scoped_lock lk(rw_mutex_, other->rw_mutex_);
    if (index->has_native_ids()) {  // the ids live in the wrapped index (IVF, HNSW): it shifts them
        index->merge_from(*other->index, add_id);
        other->sync_from_inner();
        sync_from_inner();
        if (reverse_) rebuild_reverse_map();
        return;
    }
    index->merge_from(*other->index, 0);
    for (idx_t id : other->id_map) id_map.push_back(id + add_id);
    other->id_map.clear();
    other->rev_map_.clear();
    other->sync_from_inner();
    sync_from_inner();
    if (reverse_) rebuild_reverse_map();
}

void IndexIDMap::rebuild_reverse_map() {
    rev_map_.clear();
    for (size_t i = 0; i < id_map.size(); i++) rev_map_[id_map[i]] = idx_t(i);
}

std::vector<idx_t> IndexIDMap::ids() const {
    if (auto* h = dynamic_cast<const IndexHNSWFlat*>(index.get())) return h->ids();
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return id_map;
}

void IndexIDMap::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.vec(id_map);
    write_index_payload(*index, w);
}

std::unique_ptr<IndexIDMap> IndexIDMap::read_body(Reader& r, bool with_reverse_map) {
    std::vector<idx_t> ids = r.vec<idx_t>();
    IndexPtr inner = read_index_payload(r);
    r.check(inner->has_native_ids() ? ids.empty() : inner->ntotal == idx_t(ids.size()),
            "IDMap id count does not match the wrapped index");
    if (with_reverse_map) return std::unique_ptr<IndexIDMap>(new IndexIDMap2(std::move(inner), std::move(ids)));
    return std::unique_ptr<IndexIDMap>(new IndexIDMap(std::move(inner), false, std::move(ids)));
}

void IndexIDMap::check_consistency() const {
    if (!reverse_) return;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (rev_map_.size() != id_map.size())
        throw CorruptData("IndexIDMap2: the reverse map holds " + std::to_string(rev_map_.size()) + " ids for " +
                          std::to_string(id_map.size()) + " rows");
    for (size_t row = 0; row < id_map.size(); row++) {
        auto it = rev_map_.find(id_map[row]);
        if (it == rev_map_.end() || it->second != idx_t(row))
            throw CorruptData("IndexIDMap2: id " + std::to_string(id_map[row]) + " of row " + std::to_string(row) +
                              " is not mapped back to it");
    }
}

}  // namespace nearly
