// HNSW graph index (Malkov & Yashunin) over float vectors, faiss's
// IndexHNSWFlat API, with what faiss and hnswlib lack: real deletion with
// graph repair and slot reuse, filtered search that keeps its recall at any
// selectivity, and adds that are safe while other threads search.
//
// Speed comes from traversing on a compact int8 copy of each vector, kept in
// the same 64-byte-aligned block as the node's level-0 links (one memory
// region per hop, prefetched a hop ahead), and re-ranking the final
// candidates on the float vectors, so results carry exact distances. Under
// faiss's extra metrics (extra_distances.h; Flat storage) the walk scores
// the float vectors themselves, on metric_arg as set before add(). The
// graph itself (HNSWGraph) also serves the binary indexes (binary_hnsw.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/index.h"
#include "nearly/panorama.h"

namespace nearly {

class Reader;
class Writer;

struct SearchParametersHNSW : SearchParameters {
    int efSearch = 16;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersHNSW>(*this); }
};

// What results are scored on after the int8 graph walk: the float vectors
// (exact distances), an fp16 or bf16 copy (half the memory; bf16 keeps the
// float range, fp16 three more bits of precision), or nothing but the int8
// codes (a quarter of float storage; distances approximate, pair with
// IndexRefineFlat for exact ones).
enum class HNSWStorage : int { Flat = 0, SQ8 = 1, FP16 = 2, BF16 = 3 };

// faiss's HNSWStats (faiss.cvar.hnsw_stats): what the graph searches of this
// process have done, over every HNSW index (float, SQ, PQ, binary) and
// thread; adds are not counted. As faiss counts them: n1 the searches that
// reached level 0, n2 those whose candidate queue ran dry (rare here: a walk
// stops once its best candidate left is worse than its ef-th result, where
// faiss's bounded queue usually empties), ndis the scores
// computed by the walk (every neighbour on the upper levels, the unvisited
// ones on level 0; not the entry point's, not the final re-ranking), nhops
// the steps of the upper levels' greedy walk plus the nodes expanded on
// level 0. Searches add to it with atomic adds.
struct HNSWStats {
    size_t n1 = 0, n2 = 0, ndis = 0, nhops = 0;
    void reset() { *this = HNSWStats(); }
    void combine(const HNSWStats& other) {
        n1 += other.n1;
        n2 += other.n2;
        ndis += other.ndis;
        nhops += other.nhops;
    }
};
extern HNSWStats hnsw_stats;

// A whole HNSW graph built elsewhere (the GPU build, or graph_build.h from
// any k-NN graph) over rows 0..n-1 of the vectors it was built from.
struct HNSWLayers {
    std::vector<int8_t> levels;  // n: each row's top level
    // Per level l: the rows on level >= l, ascending (every row on level 0),
    // and their neighbour rows, nodes[l].size() x (l == 0 ? 2M : M), best
    // first, padded with -1.
    std::vector<std::vector<int32_t>> nodes, links;
    int32_t entry = -1;  // a row on the top level; -1 when n == 0

    int max_level() const { return int(nodes.size()) - 1; }
    // Throws InvalidArgument unless this is a well-formed graph for M: a
    // forged graph must not send a search out of bounds.
    void check(int M) const;
};

// The graph of an HNSW index, whatever its nodes hold: float indexes keep an
// int8 copy of each vector in the node's block (and the float vector apart,
// for re-ranking), binary indexes their code. Each block is
//     payload (payload_bytes, padded to 4) | u32 count | u32 links[2M]
// in one 64-byte-aligned region per node (one memory region per hop,
// prefetched a hop ahead); a per-node side copy (side_bytes) lives apart.
// The graph code (insert, beam search, neighbour selection, deletion with
// repair, persistence) is written once, templated on a "space" that scores
// one node's payload against a query (hnsw_graph.h, private to cpp/src).
class HNSWGraph {
   public:
    using slot_t = uint32_t;

    const int M;              // links per node on upper levels; 2 * M on level 0
    int efConstruction = 40;  // faiss's defaults
    int efSearch = 16;
    // faiss's keep_max_size_level0: level-0 lists the heuristic leaves short
    // are filled up to 2M with the nearest candidates it dropped (a denser
    // base layer, as CAGRA's; IndexHNSWCagra sets it). A build setting, not
    // saved.
    bool keep_max_size_level0 = false;
    // faiss's init_level0: false links, as vectors are added, only the nodes
    // drawn above level 0 (their level-0 lists among themselves); the others
    // are stored unlinked, out of the walks' reach, until
    // init_level_0_from_knngraph gives every node its level-0 list. A build
    // setting, not saved (faiss's neither).
    bool init_level0 = true;
    // faiss's HNSW::search_bounded_queue, kept for code that sets it: faiss
    // walks level 0 with a candidate queue bounded by efSearch unless it is
    // false; nearly's walk always keeps every candidate better than the
    // ef-th result (hnswlib's, faiss's unbounded one), whatever its value.
    bool search_bounded_queue = true;

    // False for an index read from a file written with IO_FLAG_SKIP_STORAGE:
    // the links without the vectors. Searching, adding, removing and
    // reconstructing raise until the vectors are put back
    // (IndexHNSWFlat::set_vectors).
    bool has_vectors() const { return !vectors_missing_.load(std::memory_order_acquire); }

    int max_level() const { return top().level; }
    idx_t entry_point() const;  // id (label) of the entry node, -1 when empty
    // Level of every slot (-1 for a free slot) and the neighbour ids of a node.
    std::vector<int> levels() const;
    std::vector<idx_t> neighbors(idx_t id, int level) const;
    std::vector<idx_t> ids() const;  // ids of the stored vectors, in slot order
    // faiss's flat view of the graph (HNSW::offsets / neighbors), over slots
    // (slot i holds the i-th vector added while nothing was removed; a freed
    // slot has no entries): node i's links on level l are
    // neighbors[offsets[i] + c[l] .. offsets[i] + c[l + 1]), c = 0, 2M, 3M, ...,
    // slot numbers padded with -1. neighbors may be null (offsets alone).
    void flat_links(std::vector<uint64_t>& offsets, std::vector<int32_t>* neighbors) const;

    struct Storage;  // node blocks, side copies, upper links (hnsw_graph.h)

   protected:
    HNSWGraph(int M, size_t payload_bytes, size_t side_bytes);
    ~HNSWGraph();

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

    // Defined in hnsw_graph.h for the spaces of the including file.
    // add_nodes: ids null gives next ids; fill(i, slot) writes vector i's
    // payload and side copy; make_space(storage) gives the space.
    template <class MakeSpace, class Fill>
    void add_nodes(idx_t n, const idx_t* ids, const MakeSpace& make_space, const Fill& fill, idx_t& ntotal,
                   bool verbose);
    template <class Space>
    void insert(const Space& sp, slot_t s, int level, size_t row);  // row: of the batch, for insert_query
    // Installs a graph built elsewhere into an empty index: fill(i, slot)
    // writes row i's payload and side copy, as for add_nodes.
    template <class Fill>
    void add_linked_nodes(const HNSWLayers& g, const Fill& fill, idx_t& ntotal);
    template <class MakeSpace>
    size_t remove_nodes(const IDSelector& sel, const MakeSpace& make_space, idx_t& ntotal);
    // faiss's init_level_0_from_knngraph: node r's level-0 list becomes its
    // k-NN row I[r] (ids; the node itself and entries after a -1 skipped),
    // scored again on the stored vectors and pruned by HNSW's heuristic to
    // 2M when longer (kept whole when not, as faiss). Rows are the ids,
    // which must be 0 .. ntotal-1.
    template <class MakeSpace>
    void set_level0_from_knn(idx_t n, int k, const idx_t* I, const MakeSpace& make_space);
    // faiss's reorder_links: each level-0 list sorted nearest first.
    template <class MakeSpace>
    void sort_level0_links(const MakeSpace& make_space);
    // Throws NotSupported (a RuntimeError) when the vectors are missing.
    void require_vectors(const char* what) const;
    // The search of an index whose walk scores are its results (PQ and SQ
    // codes), under the caller's read lock: with_query(q, scratch, run)
    // calls run(query) with the space's query for row q.
    template <class Space, class WithQuery>
    void search_scored(const Space& sp, idx_t n, idx_t k, float* D, idx_t* I, bool ip, float pad, int ef,
                       const IDSelector* sel, idx_t ntotal, const WithQuery& with_query) const;

    void reset_graph();
    // faiss's permute_entries: slot i takes the node of slot perm[i], links
    // renumbered. Needs ids 0 .. n-1 in slot order (no removal, no own ids):
    // the ids are the slots, as faiss's internal ids, before and after.
    void permute_slots(const idx_t* perm, idx_t ntotal);
    slot_t slot_of(idx_t label) const;
    size_t graph_memory_bytes() const;  // blocks, side copies, upper links, id map
    // Everything after the family's header: ids, levels, blocks, side copies,
    // upper links, free slots. read_graph checks every link (a forged file
    // must not send a search out of bounds) and sets ntotal.
    // With w.skip_storage (IO_FLAG_SKIP_STORAGE) or without vectors, the
    // links alone are written (a block size of 0 marks it); only a family
    // that can take its vectors back (can_skip_vectors) may be written so.
    void write_graph(Writer& w, bool can_skip_vectors = false) const;
    void read_graph(Reader& r, idx_t& ntotal, bool can_lack_vectors = false);

    std::unique_ptr<Storage> st_;
    std::unordered_map<idx_t, slot_t> slot_of_label_;
    std::vector<slot_t> free_slots_;
    idx_t next_label_ = 0;
    std::atomic<uint64_t> top_{pack({-1, -1})};
    std::atomic<bool> vectors_missing_{false};
    std::mutex entry_mutex_;  // held by an insert that raises the top level
    mutable std::mutex add_mutex_;  // one add at a time (each is parallel inside); serialization waits too
    // Searches hold it shared, writes exclusive.
    mutable SharedMutex graph_mutex_;
    std::mt19937_64 level_rng_{12345};
    double level_mult_;
    size_t payload_bytes_, side_bytes_;

   private:
    int random_level();
};

struct IndexHNSWFlat : Index, HNSWGraph {
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
    // Graph searches of k = max(efSearch, 16), then 2k, 4k, ... for the
    // queries whose k results all lie within radius, until one does not (or
    // k reaches ntotal): approximate like every HNSW answer, best first.
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    // Scores the stored vectors (their reconstructions; distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override {
        return std::make_unique<ReconstructDistanceComputer>(*this);
    }
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    // Adds n vectors with a graph built for them elsewhere (ids 0..n-1);
    // the index must be empty. efConstruction plays no part.
    void add_graph(idx_t n, const float* x, const HNSWLayers& graph);
    // faiss's `index.storage = ...`: the stored vectors replaced by x, one
    // row per node in slot order (ids order when the ids are 0 .. ntotal-1
    // and nothing was removed); the graph is kept. Puts back the vectors of
    // an index read without them (IO_FLAG_SKIP_STORAGE).
    void set_vectors(idx_t n, const float* x);
    // faiss's IndexHNSW::init_level_0_from_knngraph and reorder_links
    // (HNSWGraph::set_level0_from_knn, sort_level0_links).
    void init_level_0_from_knngraph(int k, const float* D, const idx_t* I);
    void reorder_links();
    bool has_native_ids() const override { return true; }
    void write_body(Writer& w) const override;
    // panorama_levels > 0: an IndexHNSWFlatPanorama's body (Flat storage);
    // cagra: an IndexHNSWCagra's (its own fields follow).
    static std::unique_ptr<IndexHNSWFlat> read_body(Reader& r, HNSWStorage storage, size_t panorama_levels = 0,
                                                    bool cagra = false);
    size_t memory_bytes() const;  // bytes held by vectors, codes, links and maps
    // Node i becomes the old node perm[i] (faiss's IndexHNSW::permute_entries):
    // the same graph and answers, ids renumbered. Needs ids 0 .. ntotal-1
    // (no removal, no add_with_ids).
    void permute_entries(const idx_t* perm);

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

   protected:
    // > 0: a search starts on level 0 from the best of this many nodes drawn
    // at random (IndexHNSWCagra), not from the entry node down the levels.
    virtual int random_entry_points() const { return 0; }
    // Panorama's levels (IndexHNSWFlatPanorama), n_levels 0 otherwise: each
    // node's side copy then holds its float vector followed by its n_levels +
    // 1 tail norms, so every write of the graph (add, slot reuse after a
    // removal, persistence, permute) carries them with no code of its own.
    IndexHNSWFlat(int d, int M, MetricType metric, const Panorama& pano);
    const Panorama pano_;
    const float* tail_norms(slot_t s) const;

   private:
    void add_impl(idx_t n, const float* x, const idx_t* ids);
};

// faiss's IndexHNSWCagra: an IndexHNSWFlat whose search may skip the upper
// levels (base_level_only), as CAGRA searches its flat graph: it starts on
// level 0 from the best of num_base_level_search_entrypoints nodes drawn at
// random. The draw is seeded by the query's bytes, so a query gets the same
// answer in any batch (faiss's draw is unseeded). While base_level_only is
// set, adding raises (faiss's rule: the upper levels would go stale). Built
// with keep_max_size_level0, as faiss's.
struct IndexHNSWCagra : IndexHNSWFlat {
    bool base_level_only = false;
    int num_base_level_search_entrypoints = 32;

    IndexHNSWCagra(int d, int M = 32, MetricType metric = METRIC_L2) : IndexHNSWFlat(d, M, metric) {
        keep_max_size_level0 = true;  // faiss's IndexHNSWCagra builds so
    }
    std::string type_name() const override { return "HNSWCagra"; }
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexHNSWCagra> read_body(Reader& r);

   protected:
    int random_entry_points() const override { return base_level_only ? num_base_level_search_entrypoints : 0; }
};

// faiss's IndexHNSWFlatPanorama. nearly's HNSW walks on int8 copies and
// scores only its best candidates on the float vectors (IndexHNSWFlat), so
// Panorama prunes that re-ranking: past the best k, each candidate is
// scored a level at a time and dropped once its Cauchy-Schwarz bound shows
// it cannot enter the k best. The answers are IndexHNSWFlat's (up to float
// rounding: a distance is summed level by level). Every candidate is still
// prefetched whole, as IndexHNSWFlat does (on random nodes the latency is
// what costs), so it saves arithmetic, not memory traffic, and runs as fast
// as IndexHNSWFlat, not faster. L2 and inner product (faiss: L2 only).
struct IndexHNSWFlatPanorama : IndexHNSWFlat {
    IndexHNSWFlatPanorama(int d, int M, size_t n_levels, MetricType metric = METRIC_L2);

    // The levels asked for; panorama().n_levels drops those that would be
    // empty (64 dims in 12 levels: 11 of 6), as faiss's pano.n_levels.
    const size_t num_panorama_levels;

    std::string type_name() const override { return "HNSWFlatPanorama"; }
    const Panorama& panorama() const { return pano_; }
    // The stored vectors' tail norms in slot order (faiss's cum_sums: ids 0..n-1 unless vectors
    // were removed), pano.n_levels + 1 a vector.
    std::vector<float> cum_sums() const;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexHNSWFlatPanorama> read_body(Reader& r);
};

// faiss's IndexHNSWSQ: QT_8bit -> SQ8 storage, QT_fp16 -> FP16, QT_bf16 -> BF16.
struct IndexHNSWSQ : IndexHNSWFlat {
    IndexHNSWSQ(int d, HNSWStorage storage, int M = 32, MetricType metric = METRIC_L2)
        : IndexHNSWFlat(d, M, metric, storage) {
        NEARLY_CHECK_ARG(storage != HNSWStorage::Flat,
                         "IndexHNSWSQ: the quantizer must be QT_8bit, QT_fp16 or QT_bf16");
    }
};

}  // namespace nearly
