// NN-descent (Dong, Charikar & Li, "Efficient K-Nearest Neighbor Graph
// Construction for Generic Similarity Measures", WWW 2011): an approximate
// k-NN graph without a k-NN search per node. A neighbour of a neighbour is
// likely a neighbour, so each round compares, for every node, the pairs
// among its recent neighbours and its reverse neighbours (a "local join")
// and offers each pair to both pools; a few rounds converge.
//
// IndexNNDescentFlat is faiss's index of the same name: the vectors, their
// NN-descent graph (rebuilt over all vectors at each add, as faiss does),
// searched best first from search_L random nodes.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/index.h"

namespace nearly {

class Reader;
class Writer;

struct NNDescentParams {
    int K = 32;     // neighbours per node in the graph
    int S = 10;     // new neighbours each node joins per round
    int R = 100;    // reverse neighbours each node joins per round at most (0: none)
    int L = 82;     // candidates kept per node while building (at least K; faiss: K + 50)
    int iter = 10;  // rounds
    int random_seed = 2021;
};

// The approximate k-NN graph of n vectors under any of IndexFlat's metrics
// (a similarity's largest first; metric_arg: Lp's p): n rows of K node
// numbers, nearest first, the node itself left out, padded with -1 when
// n - 1 < K. verbose prints each round's updates.
std::vector<int32_t> nn_descent(const float* x, size_t n, size_t d, MetricType metric, float metric_arg,
                                const NNDescentParams& p, bool verbose);

struct IndexNNDescentFlat : Index {
    NNDescentParams nndescent;
    int search_L = 0;  // the search's pool: max(search_L, k) nodes

    IndexNNDescentFlat(int d, int K = 32, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "NNDescentFlat"; }
    // Stores the vectors and builds the graph over all of them (a second add
    // rebuilds it, as in faiss).
    void add(idx_t n, const float* x) override;
    // Best first from max(search_L, k) random nodes (the same for every
    // query) until no pool entry has unexpanded neighbours; exact distances.
    // A selector keeps the walk on the whole graph and admits only passing
    // nodes to the results.
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    // Scores the stored vectors (their reconstructions; distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override {
        return std::make_unique<ReconstructDistanceComputer>(*this);
    }
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexNNDescentFlat> read_body(Reader& r);

    bool has_built() const { return built_; }
    const std::vector<int32_t>& graph() const { return graph_; }  // ntotal x K, -1 padded

   private:
    std::vector<float> xb_;
    std::vector<int32_t> graph_;
    bool built_ = false;
};

}  // namespace nearly
