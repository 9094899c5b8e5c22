#include "nearly/binary_flat.h"

#include <algorithm>
#include <mutex>

#include "nearly/binary_from_float.h"
#include "nearly/binary_hash.h"
#include "nearly/binary_hnsw.h"
#include "nearly/binary_ivf.h"
#include "nearly/hamming.h"
#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

IndexBinary::IndexBinary(int d_) : d(d_), code_size(d_ / 8) {
    if (d <= 0 || d % 8 != 0)  // RuntimeError, like faiss's FAISS_THROW_IF_NOT
        throw NotSupported("Error: 'd % 8 == 0' failed: binary indexes need d (bits) to be a positive multiple of 8, got " +
                           std::to_string(d));
}

void IndexBinary::add_with_ids(idx_t, const uint8_t*, const idx_t*) {
    throw NotSupported("add_with_ids not implemented for this type of index");
}

void IndexBinary::reconstruct(idx_t, uint8_t*) const {
    throw NotSupported("reconstruct not implemented for this type of index");
}

void IndexBinary::range_search(idx_t, const uint8_t*, int, RangeSearchResult&, const SearchParameters*) const {
    throw NotSupported("range_search not implemented for this type of index");
}

size_t IndexBinary::remove_ids(const IDSelector&) {
    throw NotSupported("remove_ids not implemented for this type of index");
}

void IndexBinary::check_writable() const {
    if (read_only)
        throw NotSupported("this index was read with IO_FLAG_READ_ONLY or IO_FLAG_MMAP and cannot be modified");
}

void check_binary_search_args(idx_t n, idx_t k) {
    NEARLY_CHECK_ARG(n >= 0, "the number of queries must be non-negative");
    NEARLY_CHECK_ARG(k > 0, "k must be positive (got " + std::to_string(k) + ")");
}

// ---- IndexBinaryFlat ----------------------------------------------------------

IndexBinaryFlat::IndexBinaryFlat(int d) : IndexBinary(d) {}

void IndexBinaryFlat::add(idx_t n, const uint8_t* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    xb_.insert(xb_.end(), x, x + size_t(n) * code_size);
    ntotal += n;
}

void IndexBinaryFlat::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                             const SearchParameters* params) const {
    check_binary_search_args(n, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    knn_hamming(x, size_t(n), xb_.data(), size_t(ntotal), size_t(code_size), size_t(k), D, I,
                params ? params->sel.get() : nullptr);
}

void IndexBinaryFlat::range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                                   const SearchParameters* params) const {
    NEARLY_CHECK_ARG(n >= 0, "range_search: n must be non-negative");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    const size_t cs = size_t(code_size), nb = size_t(ntotal);
    const HammingNyFn hamming = hamming_ny_kernel();
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    parallel_for(size_t(n), [&](size_t q) {
        constexpr size_t kBlock = 1024;  // codes scored at once, the distances stay in L1
        int32_t dis[kBlock];
        for (size_t j0 = 0; j0 < nb; j0 += kBlock) {
            const size_t m = std::min(kBlock, nb - j0);
            hamming(x + q * cs, xb_.data() + j0 * cs, cs, m, dis);
            for (size_t j = 0; j < m; j++)
                if (dis[j] < radius && (!sel || sel->is_member(idx_t(j0 + j))))
                    hits[q].emplace_back(float(dis[j]), idx_t(j0 + j));
        }
    });
    result.set(hits);
}

void IndexBinaryFlat::reconstruct(idx_t key, uint8_t* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (key < 0 || key >= ntotal)
        throw OutOfRange("key " + std::to_string(key) + " is out of range for an index of " +
                         std::to_string(ntotal) + " vectors");
    std::copy(xb_.begin() + key * code_size, xb_.begin() + (key + 1) * code_size, out);
}

size_t IndexBinaryFlat::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = size_t(code_size);
    idx_t j = 0;
    for (idx_t i = 0; i < ntotal; i++) {
        if (sel.is_member(i)) continue;
        if (i != j) std::copy(xb_.begin() + i * cs, xb_.begin() + (i + 1) * cs, xb_.begin() + j * cs);
        j++;
    }
    size_t removed = size_t(ntotal - j);
    ntotal = j;
    xb_.resize(size_t(j) * cs);
    return removed;
}

void IndexBinaryFlat::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    xb_.clear();
    ntotal = 0;
}

void IndexBinaryFlat::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int64_t>(ntotal);
    w.vec(xb_);
}

std::unique_ptr<IndexBinaryFlat> IndexBinaryFlat::read_body(Reader& r) {
    int d = r.pod<int32_t>();
    idx_t n = r.pod<int64_t>();
    r.check(d > 0 && d % 8 == 0 && n >= 0, "bad BFlat header");
    auto index = std::make_unique<IndexBinaryFlat>(d);
    index->xb_ = r.vec<uint8_t>();
    r.check(index->xb_.size() == size_t(n) * size_t(d / 8), "BFlat code count does not match ntotal");
    index->ntotal = n;
    return index;
}

// ---- IndexBinaryIDMap ---------------------------------------------------------

IndexBinaryIDMap::IndexBinaryIDMap(IndexBinaryPtr inner, bool with_reverse_map)
    : IndexBinary(inner ? inner->d : 8), index(std::move(inner)), reverse_(with_reverse_map) {
    NEARLY_CHECK_ARG(index != nullptr, "IndexBinaryIDMap needs an index");
    NEARLY_CHECK_ARG(index->ntotal == 0, "index must be empty on input");
    is_trained = index->is_trained;
}

void IndexBinaryIDMap::train(idx_t n, const uint8_t* x) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->train(n, x);
    is_trained = index->is_trained;
}

void IndexBinaryIDMap::add(idx_t, const uint8_t*) {
    throw NotSupported("add does not make sense with IndexBinaryIDMap, use add_with_ids");
}

void IndexBinaryIDMap::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->add(n, x);
    id_map_.insert(id_map_.end(), ids, ids + n);
    if (reverse_)
        for (idx_t i = 0; i < n; i++) rev_map_[ids[i]] = ntotal + i;
    ntotal = index->ntotal;
}

void IndexBinaryIDMap::reconstruct(idx_t key, uint8_t* out) const {
    if (!reverse_) throw NotSupported("reconstruct not implemented for this type of index");
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto it = rev_map_.find(key);
    if (it == rev_map_.end()) throw OutOfRange("key " + std::to_string(key) + " not found");
    index->reconstruct(it->second, out);
}

void IndexBinaryIDMap::rebuild_reverse_map() {
    rev_map_.clear();
    for (size_t i = 0; i < id_map_.size(); i++) rev_map_[id_map_[i]] = idx_t(i);
}

namespace {
// A selector over the inner index's sequential ids that asks the caller's
// selector about the mapped ids.
struct MappedSelector : IDSelector {
    const IDSelector* sel;
    const std::vector<idx_t>* map;
    bool is_member(idx_t i) const override { return i >= 0 && size_t(i) < map->size() && sel->is_member((*map)[i]); }
};
}  // namespace

// The caller's parameters with the selector seen through id_map_ (the
// wrapped index numbers its vectors 0, 1, ...); null without a selector.
std::unique_ptr<SearchParameters> IndexBinaryIDMap::translate(const SearchParameters* params) const {
    if (!params || !params->sel) return nullptr;
    auto ms = std::make_shared<MappedSelector>();
    ms->sel = params->sel.get();
    ms->map = &id_map_;
    auto inner = params->clone();
    inner->sel = ms;
    return inner;
}

void IndexBinaryIDMap::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                              const SearchParameters* params) const {
    check_binary_search_args(n, k);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto inner = translate(params);
    index->search(n, x, k, D, I, inner ? inner.get() : params);
    for (size_t i = 0; i < size_t(n) * size_t(k); i++)
        if (I[i] >= 0) I[i] = id_map_[size_t(I[i])];
}

void IndexBinaryIDMap::range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                                    const SearchParameters* params) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    auto inner = translate(params);
    index->range_search(n, x, radius, result, inner ? inner.get() : params);
    for (idx_t& l : result.labels)
        if (l >= 0) l = id_map_[size_t(l)];
}

size_t IndexBinaryIDMap::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    MappedSelector ms;
    ms.sel = &sel;
    ms.map = &id_map_;
    std::vector<idx_t> keep;
    for (size_t i = 0; i < id_map_.size(); i++)
        if (!sel.is_member(id_map_[i])) keep.push_back(id_map_[i]);
    size_t removed = index->remove_ids(ms);
    id_map_ = std::move(keep);
    ntotal = index->ntotal;
    if (reverse_) rebuild_reverse_map();
    return removed;
}

void IndexBinaryIDMap::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    index->reset();
    id_map_.clear();
    rev_map_.clear();
    ntotal = 0;
}

std::vector<idx_t> IndexBinaryIDMap::ids() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return id_map_;
}

void write_index_binary_payload(const IndexBinary& index, Writer& w) {
    w.str(index.type_name());
    index.write_body(w);
}

IndexBinaryPtr read_index_binary_payload(Reader& r) {
    std::string tag = r.str();
    IndexBinaryPtr out;
    if (tag == "BFlat") out = IndexBinaryFlat::read_body(r);
    else if (tag == "BIDMap") out = IndexBinaryIDMap::read_body(r);
    else if (tag == "BIDMap2") out = IndexBinaryIDMap::read_body(r, true);
    else if (tag == "BHNSW") out = IndexBinaryHNSW::read_body(r);
    else if (tag == "BIVF") out = IndexBinaryIVF::read_body(r);
    else if (tag == "BHash") out = IndexBinaryHash::read_body(r);
    else if (tag == "BMultiHash") out = IndexBinaryMultiHash::read_body(r);
    else if (tag == "BFromFloat") out = IndexBinaryFromFloat::read_body(r);
    else throw CorruptData("cannot read index: unknown binary index type '" + printable(tag) + "'");
    out->read_only = r.read_only;
    return out;
}

void IndexBinaryIDMap::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.vec(id_map_);
    write_index_binary_payload(*index, w);
}

std::unique_ptr<IndexBinaryIDMap> IndexBinaryIDMap::read_body(Reader& r, bool with_reverse_map) {
    std::vector<idx_t> ids = r.vec<idx_t>();
    IndexBinaryPtr inner = read_index_binary_payload(r);
    r.check(size_t(inner->ntotal) == ids.size(), "BIDMap id count does not match the index");
    auto empty = std::make_shared<IndexBinaryFlat>(inner->d);
    std::unique_ptr<IndexBinaryIDMap> out(with_reverse_map ? new IndexBinaryIDMap2(empty) : new IndexBinaryIDMap(empty));
    out->index = inner;
    out->id_map_ = std::move(ids);
    out->ntotal = inner->ntotal;
    out->is_trained = inner->is_trained;
    if (with_reverse_map) out->rebuild_reverse_map();
    return out;
}

namespace {
void write_binary_payload(const IndexBinary& index, Writer& w) {
    w.str("binary");  // family marker: read_index on these bytes fails cleanly
    write_index_binary_payload(index, w);
}

IndexBinaryPtr read_binary_checked(Reader& r) {
    IndexBinaryPtr index;
    try {
        std::string family = r.str();
        if (family != "binary")
            throw CorruptData("cannot read index: not a binary index ('" + printable(family) +
                              "'); use read_index for float indexes");
        index = read_index_binary_payload(r);
    } catch (const InvalidArgument& e) {
        throw CorruptData(std::string("cannot read index: ") + e.what());
    } catch (const std::length_error&) {
        throw CorruptData("cannot read index: impossible sizes in the data");
    }
    r.check(r.remaining() == 0, "trailing bytes after the index");
    return index;
}
}  // namespace

std::vector<uint8_t> serialize_index_binary(const IndexBinary& index) {
    return serialize_framed([&](Writer& w) { write_binary_payload(index, w); });
}

IndexBinaryPtr deserialize_index_binary(const uint8_t* data, size_t n, bool read_only) {
    Reader r = unframe_payload(data, n);
    r.read_only = read_only;
    return read_binary_checked(r);
}

void write_index_binary(const IndexBinary& index, const std::string& path) {
    write_framed_file(path, [&](Writer& w) { write_binary_payload(index, w); });
}

IndexBinaryPtr read_index_binary(const std::string& path, bool read_only) {
    IndexBinaryPtr index;
    read_framed_file(path, read_only, [&](Reader& r) { index = read_binary_checked(r); });
    return index;
}

}  // namespace nearly
