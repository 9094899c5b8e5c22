// faiss's 1-bit binary indexes: codes of d bits (d % 8 == 0) as uint8 rows of
// code_size = d / 8 bytes, Hamming distances as int32, missing results as
// (2147483647, -1). IndexBinaryFlat scans exhaustively (hamming.h);
// IndexBinaryIDMap maps caller ids around any binary index.
#pragma once
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "nearly/index.h"

namespace nearly {

class Writer;
class Reader;

struct IndexBinary {
    int d;          // bits
    int code_size;  // bytes
    idx_t ntotal = 0;
    bool is_trained = true;
    MetricType metric_type = METRIC_L2;
    bool read_only = false;
    bool verbose = false;  // progress of training (IVF) and adding (HNSW), like faiss

    explicit IndexBinary(int d);
    virtual ~IndexBinary() = default;
    virtual std::string type_name() const = 0;
    virtual void train(idx_t n, const uint8_t* x) {}  // nothing to learn by default
    virtual void add(idx_t n, const uint8_t* x) = 0;
    virtual void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids);
    virtual void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                        const SearchParameters* params = nullptr) const = 0;
    virtual void reconstruct(idx_t key, uint8_t* out) const;
    // Every code at Hamming distance < radius (faiss's rule), by id; the
    // distances are whole numbers held as floats.
    virtual void range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                              const SearchParameters* params = nullptr) const;
    virtual size_t remove_ids(const IDSelector& sel);
    virtual void reset() = 0;
    virtual void write_body(Writer& w) const = 0;
    void check_writable() const;

   protected:
    mutable SharedMutex rw_mutex_;
};

using IndexBinaryPtr = std::shared_ptr<IndexBinary>;

// The checks every binary k-NN search starts with: n >= 0, k > 0.
void check_binary_search_args(idx_t n, idx_t k);

struct IndexBinaryFlat : IndexBinary {
    // faiss's switch between a heap and counting sort for the k smallest;
    // the results are the same either way, and nearly's selection picks its
    // own method, so the field is kept for faiss code and not read.
    bool use_heap = true;

    explicit IndexBinaryFlat(int d);
    std::string type_name() const override { return "BFlat"; }
    void add(idx_t n, const uint8_t* x) override;
    void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, uint8_t* out) const override;
    void range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    size_t remove_ids(const IDSelector& sel) override;  // compacts, later ids shift down
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryFlat> read_body(Reader& r);
    const std::vector<uint8_t>& codes() const { return xb_; }

   private:
    std::vector<uint8_t> xb_;
};

struct IndexBinaryIDMap : IndexBinary {
    IndexBinaryPtr index;
    // with_reverse_map: IndexBinaryIDMap2, which also reconstructs by id.
    explicit IndexBinaryIDMap(IndexBinaryPtr index, bool with_reverse_map = false);
    std::string type_name() const override { return reverse_ ? "BIDMap2" : "BIDMap"; }
    void train(idx_t n, const uint8_t* x) override;  // the wrapped index's
    // The code stored under an external id (IndexBinaryIDMap2 only, as in faiss).
    void reconstruct(idx_t key, uint8_t* out) const override;
    void add(idx_t n, const uint8_t* x) override;  // not implemented, like faiss
    void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
    void range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryIDMap> read_body(Reader& r, bool with_reverse_map = false);
    std::vector<idx_t> ids() const;

   private:
    void rebuild_reverse_map();
    std::unique_ptr<SearchParameters> translate(const SearchParameters* params) const;
    std::vector<idx_t> id_map_;
    bool reverse_ = false;
    std::unordered_map<idx_t, idx_t> rev_map_;  // external id -> position (IDMap2)
};

struct IndexBinaryIDMap2 : IndexBinaryIDMap {
    explicit IndexBinaryIDMap2(IndexBinaryPtr index) : IndexBinaryIDMap(std::move(index), true) {}
};

// A binary index as tag + body (inside another index's body, e.g. a quantizer).
void write_index_binary_payload(const IndexBinary& index, Writer& w);
IndexBinaryPtr read_index_binary_payload(Reader& r);

std::vector<uint8_t> serialize_index_binary(const IndexBinary& index);
IndexBinaryPtr deserialize_index_binary(const uint8_t* data, size_t n, bool read_only = false);
void write_index_binary(const IndexBinary& index, const std::string& path);
IndexBinaryPtr read_index_binary(const std::string& path, bool read_only = false);

}  // namespace nearly
