// faiss's IndexBinaryHash and IndexBinaryMultiHash: binary codes bucketed by
// b of their bits (faiss's bit strings, least significant bit first: the
// first b bits, or nhash successive slices of b). A search scores, by full
// Hamming distance, every code of the buckets within nflip bit flips of the
// query's own bits: exact within that radius of the hash, a fast filter for
// near duplicates. k-NN results are the k smallest (distance, id) among the
// codes reached; range results (distance < radius, faiss's rule) come in id
// order.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "nearly/binary_flat.h"

namespace nearly {

// faiss's indexBinaryHash_stats: counters summed over searches.
struct IndexBinaryHashStats {
    size_t nq = 0;     // queries
    size_t n0 = 0;     // probed hash values with no bucket (multi-hash)
    size_t nlist = 0;  // buckets scanned
    size_t ndis = 0;   // codes scored
    void reset() { *this = IndexBinaryHashStats(); }
};
extern IndexBinaryHashStats indexBinaryHash_stats;

// What the two share: the hash width, nflip, and the searches over the codes
// a query reaches (Derived::visit calls emit(distance, id) for each).
template <class Derived>
struct HashedBinaryIndex : IndexBinary {
    int b;          // bits of a hash: 1 .. min(d, 63)
    int nflip = 0;  // bit flips explored around the query's hash at search time

    HashedBinaryIndex(int d, int b) : IndexBinary(d), b(b) {}
    void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
};

struct IndexBinaryHash : HashedBinaryIndex<IndexBinaryHash> {
    struct Bucket {
        std::vector<idx_t> ids;
        std::vector<uint8_t> codes;
    };
    std::unordered_map<uint64_t, Bucket> buckets;

    IndexBinaryHash(int d, int b);
    std::string type_name() const override { return "BHash"; }
    void add(idx_t n, const uint8_t* x) override;
    void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
    void reset() override;
    size_t hashtable_size() const;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryHash> read_body(Reader& r);

   private:
    void insert(idx_t n, const uint8_t* x, const idx_t* ids);  // ids null: ntotal, ntotal + 1, ...
    friend struct HashedBinaryIndex<IndexBinaryHash>;
    // emit(distance, id) for every code a query reaches (binary_hash.cpp).
    template <class Emit>
    void visit(const uint8_t* xq, IndexBinaryHashStats& stats, const Emit& emit) const;
};

struct IndexBinaryMultiHash : HashedBinaryIndex<IndexBinaryMultiHash> {
    int nhash;  // tables, each hashing its own b-bit slice (nhash * b <= d)
    std::shared_ptr<IndexBinaryFlat> storage;  // the codes, scored by id
    std::vector<std::unordered_map<uint64_t, std::vector<idx_t>>> maps;

    IndexBinaryMultiHash(int d, int nhash, int b);
    std::string type_name() const override { return "BMultiHash"; }
    void add(idx_t n, const uint8_t* x) override;
    void reconstruct(idx_t key, uint8_t* out) const override { storage->reconstruct(key, out); }
    void reset() override;
    size_t hashtable_size() const;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryMultiHash> read_body(Reader& r);

   private:
    void index_codes(idx_t n, const uint8_t* x, idx_t first_id);
    friend struct HashedBinaryIndex<IndexBinaryMultiHash>;
    template <class Emit>
    void visit(const uint8_t* xq, IndexBinaryHashStats& stats, const Emit& emit) const;
};

}  // namespace nearly
