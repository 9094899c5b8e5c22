#include "nearly/binary_hash.h"

#include <algorithm>
#include <mutex>

#include "nearly/bitstring.h"
#include "nearly/hamming.h"
#include "nearly/io.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

IndexBinaryHashStats indexBinaryHash_stats;

namespace {

std::mutex stats_mutex;

void record(const IndexBinaryHashStats& s) {
    std::lock_guard<std::mutex> lk(stats_mutex);
    indexBinaryHash_stats.nq += s.nq;
    indexBinaryHash_stats.n0 += s.n0;
    indexBinaryHash_stats.nlist += s.nlist;
    indexBinaryHash_stats.ndis += s.ndis;
}

void check_hash_bits(int d, int b) {
    NEARLY_CHECK_ARG(b >= 1 && b <= std::min(d, 63),
                     "the hash must take 1 to min(d, 63) bits, got b=" + std::to_string(b));
}

void check_nflip(int nflip, int b) {
    NEARLY_CHECK_ARG(nflip >= 0 && nflip <= b,
                     "nflip must be in 0..b=" + std::to_string(b) + ", got " + std::to_string(nflip));
}

// How many b-bit values lie within nflip flips of one: sum_f C(b, f),
// saturated (it only decides between enumerating them and scanning a table).
uint64_t values_within(int b, int nflip) {
    uint64_t total = 0, c = 1;  // c = C(b, f)
    for (int f = 0; f <= nflip; f++) {
        total += c;
        if (total > (uint64_t(1) << 62)) return uint64_t(1) << 62;
        c = c * uint64_t(b - f) / uint64_t(f + 1);
    }
    return total;
}

// Calls visit(entry) for each entry of map whose hash is within nflip flips
// of q: by enumerating the flipped values (each popcount in turn, Gosper's
// next-combination step) or, when those outnumber the entries, by checking
// every entry, which keeps a large nflip from running for ever. The caller's
// results do not depend on the order. Returns the values probed that had no
// entry.
template <class Map, class Visit>
size_t for_each_within(const Map& map, uint64_t q, int b, int nflip, Visit&& visit) {
    const uint64_t probes = values_within(b, nflip);
    size_t found = 0;
    if (probes > map.size()) {
        for (const auto& entry : map)
            if (__builtin_popcountll(entry.first ^ q) <= nflip) {
                visit(entry.second);
                found++;
            }
        return size_t(probes - found);
    }
    auto probe = [&](uint64_t h) {
        auto it = map.find(h);
        if (it == map.end()) return;
        visit(it->second);
        found++;
    };
    probe(q);
    const uint64_t limit = uint64_t(1) << b;
    for (int f = 1; f <= nflip; f++) {
        for (uint64_t m = (uint64_t(1) << f) - 1; m < limit;) {
            probe(q ^ m);
            const uint64_t low = m & (~m + 1), up = m + low;
            m = (((up ^ m) >> 2) / low) | up;
        }
    }
    return size_t(probes - found);
}

// One query's k best (distance, id), ties to the smaller id.
struct KnnCollector {
    std::vector<float> D;
    idx_t* I;
    size_t k;
    KnnCollector(size_t k, idx_t* I) : D(k), I(I), k(k) { TopK::init(D.data(), I, k); }
    void add(int32_t dis, idx_t id) {
        if (float(dis) <= D[0]) TopK::push(D.data(), I, k, float(dis), id);
    }
    void finish(int32_t* out) {
        TopK::sort(D.data(), I, k);
        for (size_t i = 0; i < k; i++) out[i] = I[i] < 0 ? kHammingPad : int32_t(D[i]);
    }
};

constexpr size_t kQueriesPerTask = 16;

// The two searches over the codes a query reaches: visit(xq, stats, emit)
// calls emit(distance, id) for each of them, whatever the index's tables.
template <class Visit>
void knn_over(idx_t n, const uint8_t* x, size_t cs, idx_t k, const IDSelector* sel, int32_t* D, idx_t* I,
              const Visit& visit) {
    const size_t kk = size_t(k);
    InterruptPoll poll;
    parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
        IndexBinaryHashStats stats;
        for (size_t q = t * kQueriesPerTask; q < std::min(size_t(n), (t + 1) * kQueriesPerTask); q++) {
            KnnCollector best(kk, I + q * kk);
            visit(x + q * cs, stats, [&](int32_t dis, idx_t id) {
                if (!sel || sel->is_member(id)) best.add(dis, id);
            });
            best.finish(D + q * kk);
            stats.nq++;
        }
        record(stats);
        poll();
    });
}

template <class Visit>
void range_over(idx_t n, const uint8_t* x, size_t cs, int radius, const IDSelector* sel, RangeSearchResult& result,
                const Visit& visit) {
    RangeSearchResult::Hits hits(static_cast<size_t>(n));
    InterruptPoll poll;
    parallel_for(size_t(n), [&](size_t q) {
        IndexBinaryHashStats stats;
        visit(x + q * cs, stats, [&](int32_t dis, idx_t id) {
            if (dis < radius && (!sel || sel->is_member(id))) hits[q].emplace_back(float(dis), id);
        });
        std::sort(hits[q].begin(), hits[q].end(), [](const auto& a, const auto& c) { return a.second < c.second; });
        stats.nq = 1;
        record(stats);
        poll();
    });
    result.set(hits);
}

}  // namespace

// ---- the searches of both ------------------------------------------------

template <class Derived>
void HashedBinaryIndex<Derived>::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                                        const SearchParameters* params) const {
    check_binary_search_args(n, k);
    check_nflip(nflip, b);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    knn_over(n, x, size_t(code_size), k, params ? params->sel.get() : nullptr, D, I,
             [&](const uint8_t* xq, IndexBinaryHashStats& stats, const auto& emit) {
                 static_cast<const Derived*>(this)->visit(xq, stats, emit);
             });
}

template <class Derived>
void HashedBinaryIndex<Derived>::range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                                              const SearchParameters* params) const {
    NEARLY_CHECK_ARG(n >= 0, "range_search: n must be non-negative");
    check_nflip(nflip, b);
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    range_over(n, x, size_t(code_size), radius, params ? params->sel.get() : nullptr, result,
               [&](const uint8_t* xq, IndexBinaryHashStats& stats, const auto& emit) {
                   static_cast<const Derived*>(this)->visit(xq, stats, emit);
               });
}

// ---- IndexBinaryHash ------------------------------------------------------

IndexBinaryHash::IndexBinaryHash(int d, int b_) : HashedBinaryIndex(d, b_) { check_hash_bits(d, b); }

void IndexBinaryHash::add(idx_t n, const uint8_t* x) { insert(n, x, nullptr); }

void IndexBinaryHash::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) { insert(n, x, ids); }

void IndexBinaryHash::insert(idx_t n, const uint8_t* x, const idx_t* ids) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    const size_t cs = size_t(code_size);
    for (idx_t i = 0; i < n; i++) {
        const uint8_t* code = x + size_t(i) * cs;
        Bucket& bucket = buckets[BitReader{code}.read(size_t(b))];
        bucket.ids.push_back(ids ? ids[i] : ntotal + i);
        bucket.codes.insert(bucket.codes.end(), code, code + cs);
    }
    ntotal += n;
}

// Every code of the buckets within nflip flips of the query's hash.
template <class Emit>
void IndexBinaryHash::visit(const uint8_t* xq, IndexBinaryHashStats& stats, const Emit& emit) const {
    const size_t cs = size_t(code_size);
    const HammingNyFn hamming = hamming_ny_kernel();
    std::vector<int32_t> dis;
    stats.n0 += for_each_within(buckets, BitReader{xq}.read(size_t(b)), b, nflip, [&](const Bucket& bk) {
        const size_t m = bk.ids.size();
        dis.resize(m);
        hamming(xq, bk.codes.data(), cs, m, dis.data());
        for (size_t j = 0; j < m; j++) emit(dis[j], bk.ids[j]);
        stats.nlist++;
        stats.ndis += m;
    });
}

void IndexBinaryHash::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    buckets.clear();
    ntotal = 0;
}

size_t IndexBinaryHash::hashtable_size() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    return buckets.size();
}

void IndexBinaryHash::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(b);
    w.pod<int32_t>(nflip);
    w.pod<int64_t>(ntotal);
    // Buckets in hash order, each with its entries in insertion order: a
    // file is a function of the index, and reading puts them back as they were.
    std::vector<uint64_t> hashes;
    hashes.reserve(buckets.size());
    for (const auto& e : buckets) hashes.push_back(e.first);
    std::sort(hashes.begin(), hashes.end());
    w.pod<uint64_t>(hashes.size());
    for (uint64_t h : hashes) {
        const Bucket& bk = buckets.at(h);
        w.vec(bk.ids);
        w.vec(bk.codes);
    }
}

std::unique_ptr<IndexBinaryHash> IndexBinaryHash::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), b = r.pod<int32_t>(), nflip = r.pod<int32_t>();
    const int64_t ntotal = r.pod<int64_t>();
    r.check(d > 0 && d % 8 == 0 && b >= 1 && b <= std::min(d, 63) && nflip >= 0 && nflip <= b && ntotal >= 0,
            "bad BHash header");
    auto index = std::make_unique<IndexBinaryHash>(d, b);
    index->nflip = nflip;
    const uint64_t nbuckets = r.pod<uint64_t>();
    r.check(nbuckets <= uint64_t(ntotal), "BHash bucket count exceeds ntotal");
    const size_t cs = size_t(index->code_size);
    int64_t seen = 0;
    for (uint64_t i = 0; i < nbuckets; i++) {
        Bucket bk;
        bk.ids = r.vec<idx_t>();
        bk.codes = r.vec<uint8_t>();
        r.check(!bk.ids.empty() && bk.codes.size() == bk.ids.size() * cs, "BHash bucket sizes do not match");
        const uint64_t h = BitReader{bk.codes.data()}.read(size_t(b));
        for (size_t j = 1; j < bk.ids.size(); j++)
            r.check(BitReader{bk.codes.data() + j * cs}.read(size_t(b)) == h, "BHash code in the wrong bucket");
        r.check(index->buckets.count(h) == 0, "BHash bucket repeated");
        seen += int64_t(bk.ids.size());
        index->buckets.emplace(h, std::move(bk));
    }
    r.check(seen == ntotal, "BHash entry count does not match ntotal");
    index->ntotal = ntotal;
    return index;
}

// ---- IndexBinaryMultiHash -------------------------------------------------

IndexBinaryMultiHash::IndexBinaryMultiHash(int d, int nhash_, int b_)
    : HashedBinaryIndex(d, b_), nhash(nhash_), storage(std::make_shared<IndexBinaryFlat>(d)) {
    check_hash_bits(d, b);
    NEARLY_CHECK_ARG(nhash >= 1 && int64_t(nhash) * b <= d,
                     "IndexBinaryMultiHash: nhash * b must be at most d (nhash=" + std::to_string(nhash) +
                         ", b=" + std::to_string(b) + ", d=" + std::to_string(d) + ")");
    maps.resize(size_t(nhash));
}

void IndexBinaryMultiHash::index_codes(idx_t n, const uint8_t* x, idx_t first_id) {
    for (idx_t i = 0; i < n; i++) {
        BitReader br{x + size_t(i) * size_t(code_size)};
        for (int h = 0; h < nhash; h++) maps[size_t(h)][br.read(size_t(b))].push_back(first_id + i);
    }
}

void IndexBinaryMultiHash::add(idx_t n, const uint8_t* x) {
    check_writable();
    NEARLY_CHECK_ARG(n >= 0, "the number of vectors must be non-negative");
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    storage->add(n, x);
    index_codes(n, x, ntotal);
    ntotal += n;
}

namespace {
// The ids reached through any of the tables, each once, in id order.
std::vector<idx_t> shortlist(const IndexBinaryMultiHash& ix, const uint8_t* xq, IndexBinaryHashStats& stats) {
    std::vector<idx_t> ids;
    BitReader br{xq};
    for (int h = 0; h < ix.nhash; h++)
        stats.n0 += for_each_within(ix.maps[size_t(h)], br.read(size_t(ix.b)), ix.b, ix.nflip,
                                    [&](const std::vector<idx_t>& v) {
                                        ids.insert(ids.end(), v.begin(), v.end());
                                        stats.nlist++;
                                    });
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    stats.ndis += ids.size();
    return ids;
}
}  // namespace

// Every code reached through any table, scored once.
template <class Emit>
void IndexBinaryMultiHash::visit(const uint8_t* xq, IndexBinaryHashStats& stats, const Emit& emit) const {
    const size_t cs = size_t(code_size);
    const uint8_t* codes = storage->codes().data();
    const HammingNyFn hamming = hamming_ny_kernel();
    for (idx_t id : shortlist(*this, xq, stats)) {
        int32_t dis;
        hamming(xq, codes + size_t(id) * cs, cs, 1, &dis);
        emit(dis, id);
    }
}

void IndexBinaryMultiHash::reset() {
    check_writable();
    std::unique_lock<SharedMutex> lk(rw_mutex_);
    storage->reset();
    for (auto& m : maps) m.clear();
    ntotal = 0;
}

size_t IndexBinaryMultiHash::hashtable_size() const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    size_t total = 0;
    for (const auto& m : maps) total += m.size();
    return total;
}

void IndexBinaryMultiHash::write_body(Writer& w) const {
    std::shared_lock<SharedMutex> lk(rw_mutex_);
    w.pod<int32_t>(d);
    w.pod<int32_t>(nhash);
    w.pod<int32_t>(b);
    w.pod<int32_t>(nflip);
    storage->write_body(w);  // the tables are rebuilt from the codes
}

std::unique_ptr<IndexBinaryMultiHash> IndexBinaryMultiHash::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), nhash = r.pod<int32_t>(), b = r.pod<int32_t>(), nflip = r.pod<int32_t>();
    r.check(d > 0 && d % 8 == 0 && b >= 1 && b <= std::min(d, 63) && nhash >= 1 && int64_t(nhash) * b <= d &&
                nflip >= 0 && nflip <= b,
            "bad BMultiHash header");
    auto index = std::make_unique<IndexBinaryMultiHash>(d, nhash, b);
    index->nflip = nflip;
    std::unique_ptr<IndexBinaryFlat> codes = IndexBinaryFlat::read_body(r);
    r.check(codes->d == d, "BMultiHash storage dimension does not match");
    index->storage = std::move(codes);
    index->ntotal = index->storage->ntotal;
    index->index_codes(index->ntotal, index->storage->codes().data(), 0);
    return index;
}

// After both visit() definitions: the searches are instantiated with them.
template struct HashedBinaryIndex<IndexBinaryHash>;
template struct HashedBinaryIndex<IndexBinaryMultiHash>;

}  // namespace nearly
