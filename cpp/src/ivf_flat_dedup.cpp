#include "nearly/ivf_flat_dedup.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>
#include <unordered_set>

#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

namespace {
// The first bytes of a code, as a key that sends equal codes to one bucket.
uint64_t code_prefix(const uint8_t* code, size_t code_size) {
    uint64_t key = 0;
    std::memcpy(&key, code, std::min<size_t>(code_size, sizeof(key)));
    return key;
}

// A stored entry passes when its own id or one of its copies' ids does.
struct EntrySelector : IDSelector {
    const IDSelector& sel;
    const std::unordered_map<idx_t, std::vector<idx_t>>& copies;
    EntrySelector(const IDSelector& sel, const std::unordered_map<idx_t, std::vector<idx_t>>& copies)
        : sel(sel), copies(copies) {}
    bool is_member(idx_t id) const override {
        if (sel.is_member(id)) return true;
        auto it = copies.find(id);
        if (it == copies.end()) return false;
        for (idx_t c : it->second)
            if (sel.is_member(c)) return true;
        return false;
    }
};

std::string not_with_copies(const char* what) {
    return std::string(what) + " is not supported by IndexIVFFlatDedup: the copies of a vector have no entry of "
                               "their own (faiss refuses it too)";
}
}  // namespace

IndexIVFFlatDedup::IndexIVFFlatDedup(IndexPtr quantizer_, int d, size_t nlist_, MetricType metric)
    : IndexIVFFlat(std::move(quantizer_), d, nlist_, metric) {
    if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
        throw NotSupported("IndexIVFFlatDedup: L2 or inner product only");
}

void IndexIVFFlatDedup::train(idx_t n, const float* x) {
    NEARLY_CHECK_ARG(n >= 0 && (n == 0 || x), "train: n vectors expected");
    std::unordered_set<std::string_view> seen;
    seen.reserve(size_t(n));
    std::vector<float> distinct;
    distinct.reserve(size_t(n) * size_t(d));
    for (idx_t i = 0; i < n; i++) {
        const float* row = x + size_t(i) * size_t(d);
        if (seen.emplace(reinterpret_cast<const char*>(row), code_size).second)
            distinct.insert(distinct.end(), row, row + d);
    }
    const idx_t n2 = idx_t(distinct.size() / size_t(d));
    if (verbose)
        std::printf("IndexIVFFlatDedup::train: train on %lld points after dedup (was %lld points)\n", (long long)n2,
                    (long long)n);
    IndexIVFFlat::train(n2, distinct.data());
}

// Each list with new entries is looked at once: its codes are indexed by
// their first bytes, then each new code is looked up (a hit compared in
// full) and either stored, or recorded as a copy. Lists go in parallel;
// within a list the entries keep their order, so a vector given twice in
// one batch is stored once.
size_t IndexIVFFlatDedup::store_entries(size_t n, const idx_t* list_of, const uint8_t* codes, size_t stride,
                                        const idx_t* ids, idx_t first_id) {
    std::vector<size_t> order;
    order.reserve(n);
    for (size_t i = 0; i < n; i++)
        if (list_of[i] >= 0 && size_t(list_of[i]) < nlist) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return list_of[a] < list_of[b]; });
    std::vector<size_t> starts;  // where each list's run begins in order
    for (size_t j = 0; j < order.size(); j++)
        if (j == 0 || list_of[order[j]] != list_of[order[j - 1]]) starts.push_back(j);
    starts.push_back(order.size());

    const CodeLayout lay = layout();
    // (position in the batch, stored id) of each copy, per list run
    std::vector<std::vector<std::pair<size_t, idx_t>>> found(starts.size() - 1);
    auto run = [&](size_t g) {
        const size_t l = size_t(list_of[order[starts[g]]]);
        std::unordered_multimap<uint64_t, size_t> by_prefix;
        const size_t old = lists_[l].ids.size();
        by_prefix.reserve(old + starts[g + 1] - starts[g]);
        for (size_t p = 0; p < old; p++) by_prefix.emplace(code_prefix(lists_[l].codes.data() + p * code_size, code_size), p);
        for (size_t j = starts[g]; j < starts[g + 1]; j++) {
            const size_t i = order[j];
            const uint8_t* code = codes + i * stride;
            const uint64_t key = code_prefix(code, code_size);
            idx_t stored = -1;
            for (auto [it, end] = by_prefix.equal_range(key); it != end; ++it)
                if (std::memcmp(lists_[l].codes.data() + it->second * code_size, code, code_size) == 0) {
                    stored = lists_[l].ids[it->second];
                    break;
                }
            if (stored >= 0) {
                found[g].emplace_back(i, stored);
            } else {
                by_prefix.emplace(key, lists_[l].ids.size());
                lists_.append(l, code, lay, ids ? ids[i] : first_id + idx_t(i));
            }
        }
    };
    // A list file grows under one writer; lists in memory are apart.
    if (lists_.file())
        for (size_t g = 0; g + 1 < starts.size(); g++) run(g);
    else
        parallel_for(starts.size() - 1, run);

    std::vector<std::pair<size_t, idx_t>> all;
    for (auto& f : found) all.insert(all.end(), f.begin(), f.end());
    std::sort(all.begin(), all.end());  // the copies of one vector in the order they came
    for (const auto& [i, stored] : all) copies_[stored].push_back(ids ? ids[i] : first_id + idx_t(i));
    if (verbose)
        std::printf("IndexIVFFlatDedup: %zu of %zu vectors are copies of stored ones\n", all.size(), order.size());
    return order.size() - all.size();
}

void IndexIVFFlatDedup::expand(idx_t stored, const IDSelector* sel, std::vector<idx_t>& out) const {
    out.clear();
    if (!sel || sel->is_member(stored)) out.push_back(stored);
    auto it = copies_.find(stored);
    if (it == copies_.end()) return;
    for (idx_t c : it->second)
        if (!sel || sel->is_member(c)) out.push_back(c);
}

std::unique_ptr<IDSelector> IndexIVFFlatDedup::entry_selector(const IDSelector* sel) const {
    if (!sel || copies_.empty()) return nullptr;
    return std::make_unique<EntrySelector>(*sel, copies_);
}

// The k results of the distinct vectors, each followed by its copies at its
// distance, cut at k: the k best of all vectors.
void IndexIVFFlatDedup::finish_search(idx_t n, idx_t k, float* D, idx_t* I, const IDSelector* sel) const {
    if (copies_.empty() && !sel) return;
    const size_t per_task = items_per_task(size_t(n), 64);
    parallel_for((size_t(n) + per_task - 1) / per_task, [&](size_t t) {
        std::vector<idx_t> ids, labels;
        std::vector<float> dis;
        for (size_t q = t * per_task; q < std::min(size_t(n), (t + 1) * per_task); q++) {
            float* Dq = D + q * size_t(k);
            idx_t* Iq = I + q * size_t(k);
            labels.clear();
            dis.clear();
            for (idx_t j = 0; j < k && idx_t(labels.size()) < k && Iq[j] >= 0; j++) {
                expand(Iq[j], sel, ids);
                for (idx_t id : ids) {
                    if (idx_t(labels.size()) == k) break;
                    labels.push_back(id);
                    dis.push_back(Dq[j]);
                }
            }
            // Missing results stay as the scan left them (-1).
            std::copy(labels.begin(), labels.end(), Iq);
            std::copy(dis.begin(), dis.end(), Dq);
        }
    });
}

void IndexIVFFlatDedup::finish_range_search(std::vector<std::vector<std::pair<idx_t, float>>>& hits,
                                            const IDSelector* sel) const {
    if (copies_.empty() && !sel) return;
    parallel_for(hits.size(), [&](size_t q) {
        std::vector<std::pair<idx_t, float>> out;
        std::vector<idx_t> ids;
        for (const auto& [stored, score] : hits[q]) {
            expand(stored, sel, ids);
            for (idx_t id : ids) out.emplace_back(id, score);
        }
        hits[q].swap(out);
    });
}

void IndexIVFFlatDedup::search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                         const SearchParameters* params) const {
    search(n, x, k, D, I, params);
}

size_t IndexIVFFlatDedup::remove_ids(const IDSelector& sel) {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    // A removed stored entry with a copy left takes that copy's id.
    std::unordered_map<idx_t, idx_t> renamed;
    std::unordered_map<idx_t, std::vector<idx_t>> kept;
    size_t copies_removed = 0;
    for (auto& [stored, list] : copies_) {
        std::vector<idx_t> left;
        for (idx_t c : list)
            if (!sel.is_member(c)) left.push_back(c);
        copies_removed += list.size() - left.size();
        idx_t key = stored;
        if (sel.is_member(stored) && !left.empty()) {
            key = left.front();
            renamed[stored] = key;
            left.erase(left.begin());
            copies_removed++;  // the stored id's vector leaves, its entry stays
        }
        if (!left.empty()) kept[key] = std::move(left);
    }
    if (!renamed.empty())
        for (size_t l = 0; l < nlist; l++) {
            auto& ids = lists_.lists[l].ids;
            for (size_t p = 0; p < ids.size(); p++)
                if (auto it = renamed.find(ids[p]); it != renamed.end()) ids[p] = it->second;
        }
    copies_ = std::move(kept);
    const size_t removed = lists_.remove(sel, layout()) + copies_removed;
    ntotal -= idx_t(removed);
    return removed;
}

void IndexIVFFlatDedup::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    lists_.clear();
    copies_.clear();
    ntotal = 0;
}

void IndexIVFFlatDedup::merge_family_state(IndexIVF& other_base, idx_t add_id) {
    auto& other = static_cast<IndexIVFFlatDedup&>(other_base);  // same type_name, checked by merge_from
    for (auto& [stored, list] : other.copies_) {
        auto& mine = copies_[stored + add_id];
        for (idx_t c : list) mine.push_back(c + add_id);
    }
    other.copies_.clear();
}

void IndexIVFFlatDedup::make_direct_map(bool enable) {
    if (enable) throw NotSupported(not_with_copies("a direct map (make_direct_map)"));
}

void IndexIVFFlatDedup::reconstruct_n(idx_t, idx_t, float*) const {
    throw NotSupported(not_with_copies("reconstruct_n"));
}

void IndexIVFFlatDedup::search_and_reconstruct(idx_t, const float*, idx_t, float*, idx_t*, float*,
                                               const SearchParameters*) const {
    throw NotSupported(not_with_copies("search_and_reconstruct"));
}

void IndexIVFFlatDedup::search_and_return_codes(idx_t, const float*, idx_t, float*, idx_t*, uint8_t*, bool,
                                                const SearchParameters*) const {
    throw NotSupported(not_with_copies("search_and_return_codes"));
}

size_t IndexIVFFlatDedup::copy_subset_to(IndexIVF&, int, idx_t, idx_t) const {
    throw NotSupported(not_with_copies("copy_subset_to"));
}

std::vector<std::pair<idx_t, idx_t>> IndexIVFFlatDedup::instances() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    std::vector<std::pair<idx_t, idx_t>> out;
    for (const auto& [stored, list] : copies_)
        for (idx_t c : list) out.emplace_back(stored, c);
    std::sort(out.begin(), out.end());
    return out;
}

// The header, the copies as (stored id, copy id) pairs, then IVFFlat's lists.
void IndexIVFFlatDedup::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    write_header(w);
    std::vector<idx_t> pairs;
    for (const auto& [stored, list] : copies_)
        for (idx_t c : list) pairs.insert(pairs.end(), {stored, c});
    w.vec(pairs);
    write_lists(w, sizeof(float));
}

std::unique_ptr<IndexIVFFlatDedup> IndexIVFFlatDedup::read_body(Reader& r) {
    Header h = read_header(r, "IVFFlatDedup");
    auto index = std::make_unique<IndexIVFFlatDedup>(h.quantizer, h.d, h.nlist, h.metric);
    index->nprobe = h.nprobe;
    const std::vector<idx_t> pairs = r.vec<idx_t>();
    const idx_t ncopies = idx_t(pairs.size() / 2);
    r.check(pairs.size() % 2 == 0 && ncopies <= h.ntotal, "IVFFlatDedup: corrupt copies table");
    // ntotal counts the copies: the lists hold the rest.
    index->read_lists(r, sizeof(float), h.ntotal - ncopies, "IVFFlatDedup");
    r.check(!index->has_direct_map(), "IVFFlatDedup: corrupt data (a direct map)");
    std::unordered_set<idx_t> stored;
    for (size_t l = 0; l < index->nlist; l++) {
        const auto& ids = index->lists_[l].ids;
        stored.insert(ids.data(), ids.data() + ids.size());
    }
    for (size_t j = 0; j < pairs.size(); j += 2) {
        r.check(stored.count(pairs[j]) > 0, "IVFFlatDedup: corrupt copies table (a copy of an id no list holds)");
        index->copies_[pairs[j]].push_back(pairs[j + 1]);
    }
    index->ntotal = h.ntotal;
    return index;
}

}  // namespace nearly
