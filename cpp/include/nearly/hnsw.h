// HNSW graph index (Malkov & Yashunin) over float vectors, faiss's
// IndexHNSWFlat API, with what faiss and hnswlib lack: real deletion with
// graph repair and slot reuse, filtered search that keeps its recall at any
// selectivity, and adds that are safe while other threads search.
//
// Speed comes from traversing on a compact int8 copy of each vector, kept in
// the same 64-byte-aligned block as the node's level-0 links (one memory
// region per hop, prefetched a hop ahead), and re-ranking the final
// candidates on the float vectors, so results carry exact distances.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include "nearly/index.h"

namespace nearly {

class Reader;

struct SearchParametersHNSW : SearchParameters {
    int efSearch = 16;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersHNSW>(*this); }
};

// What results are scored on after the int8 graph walk: the float vectors
// (exact distances), an fp16 copy (half the memory), or nothing but the int8
// codes (a quarter of float storage; distances approximate, pair with
// IndexRefineFlat for exact ones).
enum class HNSWStorage : int { Flat = 0, SQ8 = 1, FP16 = 2 };

struct IndexHNSWFlat : Index {
    using slot_t = uint32_t;

    const int M;             // links per node on upper levels; 2 * M on level 0
    int efConstruction = 40;  // faiss's defaults
    int efSearch = 16;

    const HNSWStorage storage;

    IndexHNSWFlat(int d, int M = 32, MetricType metric = METRIC_L2, HNSWStorage storage = HNSWStorage::Flat);
    ~IndexHNSWFlat() override;

    std::string type_name() const override { return storage == HNSWStorage::Flat ? "HNSWFlat" : "HNSWSQ"; }
    // Ids continue from the largest id ever assigned + 1 (after a removal too,
    // so an id never names two vectors).
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    bool has_native_ids() const override { return true; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexHNSWFlat> read_body(Reader& r, HNSWStorage storage);
    std::vector<idx_t> ids() const;  // ids of the stored vectors, in slot order

    int max_level() const { return top().level; }
    idx_t entry_point() const;  // id (label) of the entry node, -1 when empty
    // Level of every slot (-1 for a free slot) and the neighbour ids of a node.
    std::vector<int> levels() const;
    std::vector<idx_t> neighbors(idx_t id, int level) const;
    size_t memory_bytes() const;  // bytes held by vectors, codes, links and maps

    // The base layer as a fixed-degree table, for the GPU graph search: the
    // live nodes in slot order (their ids and float vectors), each node's
    // level-0 neighbours as row numbers padded with -1 to 2 * M, and the row
    // of the entry node (-1 when empty).
    struct BaseGraph {
        std::vector<idx_t> ids;
        std::vector<float> vectors;
        std::vector<int32_t> neighbors;
        int degree = 0;
        int32_t entry = -1;
    };
    BaseGraph base_graph() const;

    struct Storage;  // node blocks, vectors, upper links (hnsw.cpp)

   private:
    void add_impl(idx_t n, const float* x, const idx_t* ids);
    void insert(slot_t s, int level);
    int random_level();
    slot_t slot_of(idx_t label) const;

    std::unique_ptr<Storage> st_;
    std::unordered_map<idx_t, slot_t> slot_of_label_;
    std::vector<slot_t> free_slots_;
    idx_t next_label_ = 0;
    // Entry slot and top level change together, so readers load them as one
    // word: a new top level with the old entry node would walk levels that
    // node does not have.
    struct Top {
        int64_t entry;  // slot, -1 when empty
        int level;
    };
    static uint64_t pack(Top t) { return (uint64_t(uint32_t(t.level + 1)) << 32) | uint32_t(t.entry + 1); }
    Top top() const {
        uint64_t v = top_.load(std::memory_order_acquire);
        return {int64_t(uint32_t(v)) - 1, int(v >> 32) - 1};
    }
    void set_top(Top t) { top_.store(pack(t), std::memory_order_release); }
    std::atomic<uint64_t> top_{pack({-1, -1})};
    std::mutex entry_mutex_;  // held by an insert that raises the top level
    mutable std::mutex add_mutex_;  // one add at a time (each is parallel inside); serialization waits too
    std::mt19937_64 level_rng_{12345};
    double level_mult_;
};

// faiss's IndexHNSWSQ: QT_8bit -> SQ8 storage, QT_fp16 -> FP16.
struct IndexHNSWSQ : IndexHNSWFlat {
    IndexHNSWSQ(int d, HNSWStorage storage, int M = 32, MetricType metric = METRIC_L2)
        : IndexHNSWFlat(d, M, metric, storage) {
        NEARLY_CHECK_ARG(storage != HNSWStorage::Flat, "IndexHNSWSQ: the quantizer must be QT_8bit or QT_fp16");
    }
};

}  // namespace nearly
