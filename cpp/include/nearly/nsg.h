// faiss's IndexNSG family: the Navigating Spreading-out Graph (Fu et al.,
// VLDB 2019). One flat graph of out-degree at most R, built in one add()
// from a k-NN graph (GK neighbours: exact by brute force, or NN-descent):
// each node's candidates are the nodes a search for it on the k-NN graph
// visits, plus its k-NN; MRNG pruning keeps a candidate only when no kept
// neighbour is closer to it than the node is; reverse links are offered and
// pruned the same way; a depth-first pass from the navigating node (the
// node nearest the data's mean) links every node it cannot reach to the
// nearest node with room. Searches are a beam search of width
// max(search_L, k) from the navigating node.
//
// IndexNSG holds the graph and its build; where the vectors live is the
// subclass's: IndexNSGFlat keeps the floats (the exact scorer inlined),
// IndexNSGOnStorage hands them to another index (faiss's IndexNSG(storage,
// R): IndexNSGPQ, IndexNSGSQ) and searches through its DistanceComputer.
// The graph is always built on the vectors given to add(), not on their
// codes: the build sees true neighbourhoods, the search scores codes.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nearly/distance_computer.h"
#include "nearly/index.h"
#include "nearly/scalar_quantizer.h"

namespace nearly {

class Reader;

struct SearchParametersNSG : SearchParameters {
    int search_L = 16;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersNSG>(*this); }
};

struct IndexNSG : Index {
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

    // Builds the whole graph: NSG has no incremental addition (as faiss, a
    // second add raises; reset() empties the index).
    void add(idx_t n, const float* x) override;
    // faiss's IndexNSG::build: the graph from a k-NN graph made elsewhere (n
    // rows of gk ids; invalid entries are left out), on an empty index.
    void build(idx_t n, const float* x, const idx_t* knn_graph, int gk);
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reset() override;

    bool is_built() const { return ntotal > 0; }
    int32_t enterpoint() const { return enterpoint_; }
    // Node i's neighbours (rows), -1 padded to R.
    const std::vector<int32_t>& graph() const { return graph_; }
    // Marks in visited (ntotal flags) the nodes reachable from root that it
    // does not mark yet, and returns how many (faiss's NSG::dfs: a check that
    // the graph is connected).
    size_t mark_reachable(int32_t root, uint8_t* visited) const;

   protected:
    // extra_metrics: the kind scores plain float vectors and takes any of
    // IndexFlat's metrics (IndexNSGFlat).
    IndexNSG(int d, int R, MetricType metric, bool extra_metrics = false);
    // Where the vectors go. check_store runs before the build (an untrained
    // storage refuses then, not after minutes of linking); store(n, x) after
    // it, under the write lock, before the graph is committed.
    virtual void sync_trained() {}  // a storage trained through the caller's handle
    virtual void check_store(idx_t n) const = 0;
    virtual void store(idx_t n, const float* x) = 0;
    virtual void clear_vectors() = 0;
    // Scores one query batch (search's lock held): q rows of x in [q0, q1).
    virtual void search_range(size_t q0, size_t q1, const float* x, size_t k, size_t width, const IDSelector* sel,
                              float* D, idx_t* I) const = 0;
    // The header every NSG file starts with, and the graph after the vectors.
    void write_header(Writer& w) const;
    struct Header {
        int d, metric, R, L, C, search_L, GK;
        float metric_arg;  // written for the extra metrics only
        idx_t ntotal;
        int32_t entry;
    };
    static Header read_header(Reader& r);
    void read_graph(Reader& r, const Header& h);
    std::vector<int32_t> graph_;  // ntotal x R
    int32_t enterpoint_ = -1;

   private:
    void link_and_store(size_t nn, const float* x, const std::vector<int32_t>& knn, size_t kdeg);
};

struct IndexNSGFlat : IndexNSG {
    IndexNSGFlat(int d, int R = 32, MetricType metric = METRIC_L2);
    std::string type_name() const override { return "NSGFlat"; }
    void reconstruct(idx_t key, float* out) const override;
    // Scores the stored vectors (their reconstructions; distance_computer.h).
    std::unique_ptr<DistanceComputer> get_distance_computer() const override {
        return std::make_unique<ReconstructDistanceComputer>(*this);
    }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexNSGFlat> read_body(Reader& r);

   protected:
    void check_store(idx_t) const override {}
    void store(idx_t n, const float* x) override { xb_.assign(x, x + size_t(n) * size_t(d)); }
    void clear_vectors() override { xb_.clear(); }
    void search_range(size_t q0, size_t q1, const float* x, size_t k, size_t width, const IDSelector* sel, float* D,
                      idx_t* I) const override;

   private:
    std::vector<float> xb_;
};

// faiss's IndexNSG(storage, R): the graph over the vectors another index
// stores (node i is its row i, and its id), searched with its
// DistanceComputer, so searches report the storage's distances. As in
// faiss the storage is shared (the caller's handle) and must be empty when
// the graph is built; train() trains it.
struct IndexNSGOnStorage : IndexNSG {
    IndexNSGOnStorage(IndexPtr storage, int R = 32);
    std::string type_name() const override { return "NSGOnStorage"; }
    const IndexPtr& storage() const { return storage_; }
    // faiss's `index.storage = other`: other holds (at least) the rows the
    // graph links, in the same order; same d and metric (build over exact
    // vectors, then search over codes of the same rows).
    void set_storage(IndexPtr storage);
    void train(idx_t n, const float* x) override;
    void reconstruct(idx_t key, float* out) const override;
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexNSGOnStorage> read_body(Reader& r);

   protected:
    IndexNSGOnStorage(IndexPtr storage, int d, MetricType metric, int R);
    template <class T>
    static std::unique_ptr<T> read_as(Reader& r);
    void sync_trained() override {
        if (storage_) is_trained = storage_->is_trained;
    }
    void check_store(idx_t n) const override;
    void store(idx_t n, const float* x) override;
    void clear_vectors() override;
    void search_range(size_t q0, size_t q1, const float* x, size_t k, size_t width, const IDSelector* sel, float* D,
                      idx_t* I) const override;

   private:
    void check_storage_rows(const char* what) const;
    IndexPtr storage_;
};

// faiss's IndexNSGPQ(d, pq_m, R, pq_nbits): over an IndexPQ (faiss's is
// L2 whatever the factory was asked; nearly keeps the metric).
struct IndexNSGPQ : IndexNSGOnStorage {
    IndexNSGPQ(int d, int pq_m, int R = 32, int pq_nbits = 8, MetricType metric = METRIC_L2);
    std::string type_name() const override { return "NSGPQ"; }
    static std::unique_ptr<IndexNSGPQ> read_body(Reader& r);

   private:
    friend struct IndexNSGOnStorage;
    IndexNSGPQ(IndexPtr storage, int d, MetricType metric, int R) : IndexNSGOnStorage(storage, d, metric, R) {}
};

// faiss's IndexNSGSQ(d, qtype, R, metric): over an IndexScalarQuantizer.
struct IndexNSGSQ : IndexNSGOnStorage {
    IndexNSGSQ(int d, ScalarQuantizer::QuantizerType qtype, int R = 32, MetricType metric = METRIC_L2);
    std::string type_name() const override { return "NSGSQ"; }
    static std::unique_ptr<IndexNSGSQ> read_body(Reader& r);

   private:
    friend struct IndexNSGOnStorage;
    IndexNSGSQ(IndexPtr storage, int d, MetricType metric, int R) : IndexNSGOnStorage(storage, d, metric, R) {}
};

}  // namespace nearly
