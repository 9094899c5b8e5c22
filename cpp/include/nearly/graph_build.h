// An HNSW graph from k-NN lists, all nodes at once, instead of inserting the
// vectors one by one: on each level, every node's nearest neighbours (among
// the nodes of that level) are pruned with HNSW's heuristic; the links kept
// are also offered in reverse; then each node's forward and reverse links
// are pruned again to the level's capacity (2M on level 0, M above), which is
// what an HNSW insert does to its neighbours' lists. Every step is a data-
// parallel map over nodes with no ordering between them, so this is how the
// GPU builds a graph (cuda/graph_build.cu runs each step as a kernel). The
// functions here are the reference those kernels are tested against, and
// build an IndexHNSWFlat on the CPU from any k-NN graph.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "nearly/common.h"
#include "nearly/hnsw.h"

namespace nearly {

// n rows of k (neighbour row, score) pairs, best first; the score is squared
// L2 or minus the inner product (smaller is better). Missing entries: row -1.
struct NeighborTable {
    int64_t n = 0;
    int k = 0;
    std::vector<int32_t> ids;
    std::vector<float> scores;

    NeighborTable() = default;
    NeighborTable(int64_t n, int k) : n(n), k(k), ids(size_t(n) * k, -1), scores(size_t(n) * k, 0.f) {}
};

// The score the graph build compares: squared L2, or minus the inner product.
float pair_score(const float* a, const float* b, int d, MetricType metric);

// HNSW's heuristic on each row of cands: a candidate is kept unless a link
// already kept is closer to it (pair_score) than the row's node is (its
// score in the table); at most cap links. A row with at most cap candidates
// keeps them all (faiss's rule). -1, the row itself and repeats of a row
// are skipped. x: the rows' vectors (n x d).
NeighborTable prune_links(const float* x, int d, MetricType metric, const NeighborTable& cands, int cap);

// Row v's candidates become its own links plus every row u that links to v
// (with the score of u -> v), each once, sorted by (score, row); only the
// best max_merge are kept (hubs), then pruned as above to cap.
NeighborTable merge_reverse_links(const float* x, int d, MetricType metric, const NeighborTable& links, int cap,
                                  int max_merge);

// Gives every row nobody links to one in-link: from its nearest candidate
// whose list has room or a link to a row with other in-links (the last such
// link is replaced). candidates_of(v, ids, scores) writes row v's kc
// candidates (only orphans are asked: the GPU keeps the table on the
// device). Returns how many rows it relinked.
using CandidatesOf = std::function<void(int64_t v, int32_t* ids, float* scores)>;
size_t link_orphans(NeighborTable& links, int kc, const CandidatesOf& candidates_of);

// A node's links on a level above are links on every level below too (in
// the room its list has left, after its own): k-NN lists of clustered data
// stay inside the clusters, and only the upper levels, built among fewer
// and farther nodes, bridge them. Applied top down, so level 0 gets them all.
void add_upper_links(HNSWLayers& g, int M);

// Each row's candidates and far candidates (the nearest nodes of the level
// above) as one table, sorted by score (stable: cands first on ties), -1
// last. Rows found in both appear twice: prune_links counts the first.
NeighborTable add_far_candidates(const NeighborTable& cands, const NeighborTable& far);

// The k nearest of the rows `up` for each of n rows x (itself excluded),
// exactly, on the CPU: the far candidates of a level, up being the rows
// that are on the level above too.
NeighborTable far_candidates(const float* x, int64_t n, int d, MetricType metric, const std::vector<int32_t>& up,
                             int k);

// HNSW's level draw, floor(-ln U / ln M) capped at 30, for n rows.
std::vector<int8_t> draw_levels(int64_t n, int M, uint64_t seed);

// The k nearest neighbours of each of n rows x (n x d) among the same rows,
// itself excluded, as a NeighborTable (exact or approximate).
using LevelKnn = std::function<NeighborTable(const float* x, int64_t n, int d, int k)>;

struct GraphBuildParams {
    int M = 32;           // links per node above level 0, 2M on level 0 (as HNSW's M)
    int knn_factor = 2;   // neighbours looked up per node: knn_factor x the level's capacity
    int merge_factor = 2; // forward and reverse links considered: merge_factor x the capacity
    int far_factor = 2;   // nearest nodes of the level above added as candidates: far_factor x the capacity
    uint64_t seed = 12345;
};

// The whole graph over x (n x d). knn finds each level's neighbours; level
// 0's may be given instead (level0: n x >= capacity, e.g. from the GPU).
//
// Every level but the top also gets far candidates: each node's nearest
// nodes of the level above (far_factor x the capacity). k-NN lists of data
// in well-separated clusters never leave a cluster; these bridge the gaps,
// as the long links of HNSW's early-inserted nodes do.
//
// Measured against HNSW insertion (efConstruction 100, same M = 16),
// searched by the same IndexHNSWFlat, recall@10 at efSearch 16/32/64/128:
// 100k real MiniLM vectors 0.854/0.923/0.965/0.988 vs 0.849/0.923/0.958/
// 0.982; 6k of them tiled with noise to 60k 0.860/0.931/0.976/0.993 vs
// 0.846/0.926/0.970/0.991. 60 well-separated Gaussian blobs (M = 12) at
// efSearch 16/64: 0.747/0.919 vs 0.735/0.950 (without far candidates
// 0.466/0.747).
HNSWLayers build_hnsw_layers(const float* x, int64_t n, int d, MetricType metric, const GraphBuildParams& p,
                             const LevelKnn& knn, const NeighborTable* level0 = nullptr);

// Exact k-NN of rows among themselves on the CPU (the reference LevelKnn).
NeighborTable exact_level_knn(const float* x, int64_t n, int d, int k, MetricType metric);

}  // namespace nearly
