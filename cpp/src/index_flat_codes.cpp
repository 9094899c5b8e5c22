#include "nearly/index_flat_codes.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

void IndexFlatCodes::add(idx_t n, const float* x) {
    check_writable();
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    check_add_args(n, x);
    if (n == 0) return;
    std::vector<uint8_t> codes(size_t(n) * code_size());
    // A block at a time: Ctrl-C is seen between blocks (nothing is added
    // then), and verbose shows progress (the multi-bit RaBitQ encoder takes
    // about 50 us a vector).
    constexpr size_t kBlock = 8192;
    InterruptPoll poll;
    for (size_t i0 = 0; i0 < size_t(n); i0 += kBlock) {
        const size_t m = std::min(kBlock, size_t(n) - i0);
        encode(m, x + i0 * d, codes.data() + i0 * code_size());
        poll();
        if (verbose && size_t(n) > kBlock)
            std::printf("Index%s::add: encoded %zu / %lld vectors\n", type_name().c_str(), i0 + m, (long long)n);
    }
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    append_codes(codes.data(), size_t(n));
    if (verbose) std::printf("Index%s::add: added %lld vectors\n", type_name().c_str(), (long long)n);
}

void IndexFlatCodes::append_codes(const uint8_t* codes, size_t n) {
    const CodeLayout lay = layout();
    if (lay.block == 1) {
        codes_.append(codes, codes + n * lay.code_size);
    } else {
        codes_.resize(lay.bytes(size_t(ntotal) + n));
        for (size_t i = 0; i < n; i++) lay.put(codes_.data(), size_t(ntotal) + i, codes + i * lay.code_size);
    }
    ntotal += idx_t(n);
}

void IndexFlatCodes::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    if (ids)
        throw InvalidArgument(type_name() + ": add_sa_codes takes no ids (its ids are positions); wrap it in an "
                                            "IndexIDMap to give ids");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    append_codes(codes, size_t(n));
}

void IndexFlatCodes::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of codes must be non-negative");
    if (!is_trained) throw NotSupported("the index is not trained: call train() before sa_decode()");
    const size_t cs = code_size();
    parallel_for_blocks(size_t(n), 256, [&](size_t i) { decode(bytes + i * cs, x + i * d); });
}

void IndexFlatCodes::decode_block(const uint8_t* codes, size_t n, float* out) const {
    const size_t cs = code_size();
    for (size_t i = 0; i < n; i++) decode(codes + i * cs, out + i * size_t(d));
}

void DecodedScorer::scores_group(const DecodedScorer* s, size_t nq, const uint8_t* codes, size_t n, float* out) {
    const IndexFlatCodes& index = *s[0].index;
    const size_t d = size_t(index.d);
    thread_local std::vector<float> decoded;
    decoded.resize(n * d);
    index.decode_block(codes, n, decoded.data());
    const SimdKernels& K = simd();
    for (size_t i = 0; i < nq; i++) {
        if (index.metric_type == METRIC_INNER_PRODUCT)
            K.inner_products_ny(s[i].q, decoded.data(), d, n, out + i * n);
        else
            K.l2sqr_ny(s[i].q, decoded.data(), d, n, out + i * n);
    }
}

void IndexFlatCodes::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                  const SearchParameters* params) const {
    check_search_args(n, x, 1);
    if (!is_trained) throw NotSupported("Error: 'is_trained' failed");
    const IDSelector* sel = params ? params->sel.get() : nullptr;
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const size_t dd = d, nb = size_t(ntotal), cs = code_size();
    const bool ip = metric_type == METRIC_INNER_PRODUCT;
    const CodeLayout lay = layout();
    const SimdKernels& K = simd();
    constexpr size_t kBlock = 1024, kGroup = 64;
    const size_t nblocks = (nb + kBlock - 1) / kBlock;
    // Queries a group at a time (bounded bookkeeping: a hit list per block and
    // query of the group); each block of codes decoded once per group.
    RangeSearchResult::Hits per_query(static_cast<size_t>(n));
    std::vector<std::vector<std::vector<std::pair<float, idx_t>>>> hits(nblocks);
    InterruptPoll poll;
    for (size_t g0 = 0; g0 < size_t(n); g0 += kGroup) {
        const size_t g1 = std::min(size_t(n), g0 + kGroup);
        parallel_for(nblocks, [&](size_t b) {
            const size_t j0 = b * kBlock, m = std::min(kBlock, nb - j0);
            std::vector<float> dec(m * dd), s(m);
            std::vector<uint8_t> code(cs);
            for (size_t j = 0; j < m; j++) {
                lay.get(codes_.data(), j0 + j, code.data());
                decode(code.data(), &dec[j * dd]);
            }
            hits[b].assign(g1 - g0, {});
            for (size_t q = g0; q < g1; q++) {
                if (ip)
                    K.inner_products_ny(x + q * dd, dec.data(), dd, m, s.data());
                else
                    K.l2sqr_ny(x + q * dd, dec.data(), dd, m, s.data());
                for (size_t j = 0; j < m; j++)
                    if ((ip ? s[j] > radius : s[j] < radius) && (!sel || sel->is_member(idx_t(j0 + j))))
                        hits[b][q - g0].emplace_back(s[j], idx_t(j0 + j));
            }
        });
        for (size_t q = g0; q < g1; q++)
            for (auto& h : hits) per_query[q].insert(per_query[q].end(), h[q - g0].begin(), h[q - g0].end());
        poll();
    }
    result.set(per_query);
}

void IndexFlatCodes::merge_from(Index& other_base, idx_t add_id) {
    check_writable();
    other_base.check_writable();
    auto* other = dynamic_cast<IndexFlatCodes*>(&other_base);
    if (!other || other == this || other->type_name() != type_name() || other->d != d ||
        other->metric_type != metric_type || other->code_size() != code_size())
        throw NotSupported("merge_from: the other index must be another Index" + type_name() + " of the same kind");
    if (add_id != 0) throw NotSupported("merge_from: cannot set ids in a flat-codes index (add_id must be 0)");
    Writer a, b;
    write_encoder_state(a);
    other->write_encoder_state(b);
    if (a.buffer() != b.buffer()) throw NotSupported("merge_from: the two indexes were trained apart (different encoders)");
    std::scoped_lock lk(rw_mutex_, other->rw_mutex_);
    const CodeLayout lay = layout();
    std::vector<uint8_t> code(lay.code_size);
    codes_.resize(lay.bytes(size_t(ntotal + other->ntotal)));
    for (size_t i = 0; i < size_t(other->ntotal); i++) {
        lay.get(other->codes_.data(), i, code.data());
        lay.put(codes_.data(), size_t(ntotal) + i, code.data());
    }
    ntotal += other->ntotal;
    other->codes_.clear();
    other->ntotal = 0;
}

void IndexFlatCodes::reconstruct(idx_t key, float* out) const {
    thread_local std::vector<uint8_t> code;  // reconstruct is called once per score by distance computers
    code.resize(code_size());
    code_at(key, code.data());
    decode(code.data(), out);
}

void IndexFlatCodes::reconstruct_batch(idx_t n, const idx_t* keys, float* out) const {
    NEARLY_CHECK_ARG(n >= 0, "the number of keys must be non-negative");
    if (n > 4096) return Index::reconstruct_batch(n, keys, out);  // large batches: in parallel
    thread_local std::vector<uint8_t> codes;
    const size_t cs = code_size();
    codes.resize(size_t(n) * cs);
    gather_codes(keys, size_t(n), codes.data());
    for (idx_t i = 0; i < n; i++) decode(codes.data() + size_t(i) * cs, out + size_t(i) * size_t(d));
}

size_t IndexFlatCodes::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    std::vector<uint8_t> code(lay.code_size);
    size_t keep = 0;
    for (size_t i = 0; i < size_t(ntotal); i++) {
        if (sel.is_member(idx_t(i))) continue;
        if (keep != i) {
            lay.get(codes_.data(), i, code.data());
            lay.put(codes_.data(), keep, code.data());
        }
        keep++;
    }
    const size_t removed = size_t(ntotal) - keep;
    codes_.resize(lay.bytes(keep));
    ntotal = idx_t(keep);
    return removed;
}

void IndexFlatCodes::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    codes_.clear();
    ntotal = 0;
}

std::vector<uint8_t> IndexFlatCodes::get_codes() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return codes_in_order();
}

std::vector<uint8_t> IndexFlatCodes::codes_in_order() const {
    const CodeLayout lay = layout();
    if (lay.block == 1) return std::vector<uint8_t>(codes_.begin(), codes_.end());
    std::vector<uint8_t> out(size_t(ntotal) * lay.code_size);
    lay.gather(codes_.data(), 0, size_t(ntotal), out.data());
    return out;
}

void IndexFlatCodes::code_at(idx_t i, uint8_t* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    if (i < 0 || i >= ntotal) throw OutOfRange("key " + std::to_string(i) + " not found");
    layout().get(codes_.data(), size_t(i), out);
}

void IndexFlatCodes::gather_codes(const idx_t* ids, size_t n, uint8_t* out) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    const CodeLayout lay = layout();
    for (size_t j = 0; j < n; j++) {
        if (ids[j] < 0 || ids[j] >= ntotal) throw OutOfRange("key " + std::to_string(ids[j]) + " not found");
        lay.get(codes_.data(), size_t(ids[j]), out + j * lay.code_size);
    }
}

void IndexFlatCodes::set_codes(const uint8_t* codes, size_t n) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    set_codes_in_order(std::vector<uint8_t>(codes, codes + n * code_size()), n);
    ntotal = idx_t(n);
}

std::vector<uint8_t> IndexFlatCodes::stored_codes() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return std::vector<uint8_t>(codes_.begin(), codes_.end());
}

void IndexFlatCodes::set_codes_in_order(const std::vector<uint8_t>& codes, size_t n) {
    const CodeLayout lay = layout();
    if (lay.block == 1) {
        codes_ = std::vector<uint8_t>(codes);
        return;
    }
    codes_ = std::vector<uint8_t>(lay.bytes(n), 0);
    for (size_t i = 0; i < n; i++) lay.put(codes_.data(), i, &codes[i * lay.code_size]);
}

}  // namespace nearly
