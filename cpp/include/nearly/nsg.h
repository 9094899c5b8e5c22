// faiss's IndexNSGFlat: the Navigating Spreading-out Graph (Fu et al., VLDB
// 2019) over float vectors. One flat graph of out-degree at most R, built in
// one add() from the exact k-NN graph (GK neighbours, brute force): each
// node's candidates are the nodes a search for it on the k-NN graph visits,
// plus its k-NN; MRNG pruning keeps a candidate only when no kept neighbour
// is closer to it than the node is; reverse links are offered and pruned
// the same way; a depth-first pass from the navigating node (the node
// nearest the data's mean) links every node it cannot reach to the nearest
// node with room. Searches are a beam search of width max(search_L, k) from
// the navigating node, exact distances.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/index.h"

namespace nearly {

class Reader;

struct SearchParametersNSG : SearchParameters {
    int search_L = 16;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersNSG>(*this); }
};

struct IndexNSGFlat : Index {
    const int R;        // out-degree
    int L;              // the build's search width (faiss: R + 32)
    int C;              // candidates the build's pruning considers (faiss: R + 100)
    int search_L = 16;  // the search's width (faiss's nsg.search_L)
    int GK = 64;        // neighbours in the k-NN graph the build starts from
    // How that graph is made: 0 exact (brute force, quadratic in n), 1 by
    // NN-descent (nn_descent.h) with these parameters (faiss's names; L 0:
    // GK + 50). Build settings, not saved with the index.
    int build_type = 0;
    int nndescent_S = 10, nndescent_R = 100, nndescent_L = 0, nndescent_iter = 10;

    IndexNSGFlat(int d, int R = 32, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "NSGFlat"; }
    // Builds the whole graph: NSG has no incremental addition (as faiss, a
    // second add raises; reset() empties the index).
    void add(idx_t n, const float* x) override;
    // faiss's IndexNSG::build: the graph from a k-NN graph made elsewhere (n
    // rows of gk ids; invalid entries are left out), on an empty index.
    void build(idx_t n, const float* x, const idx_t* knn_graph, int gk);
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    // Scores the stored vectors (their reconstructions; distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override {
        return std::make_unique<ReconstructDistanceComputer>(*this);
    }
    void reset() override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexNSGFlat> read_body(Reader& r);

    bool is_built() const { return ntotal > 0; }
    int32_t enterpoint() const { return enterpoint_; }
    // Node i's neighbours (rows), -1 padded to R.
    const std::vector<int32_t>& graph() const { return graph_; }
    // Marks in visited (ntotal flags) the nodes reachable from root that it
    // does not mark yet, and returns how many (faiss's NSG::dfs: a check that
    // the graph is connected).
    size_t mark_reachable(int32_t root, uint8_t* visited) const;

   private:
    void link(size_t nn, const float* x, const std::vector<int32_t>& knn, size_t kdeg);
    std::vector<float> xb_;
    std::vector<int32_t> graph_;  // ntotal x R
    int32_t enterpoint_ = -1;
};

}  // namespace nearly
