// faiss's IndexHNSW(storage, M): an HNSW graph over the vectors another
// index stores, whatever it is (residual or product-residual quantizer
// codes, LSQ, PQ, scalar quantizer, RaBitQ, a flat index ...), scored
// through that index's DistanceComputer. Node i is the storage's row i, and
// its id. Searches return the storage's distances.
//
// nearly's own HNSW classes (hnsw.h, hnsw_sq.h, hnsw_pq.h) keep their
// vectors in the graph's node blocks and walk on inlined kernels; this one
// calls the storage's computer (a virtual call per batch of neighbours, the
// codes gathered under one lock), so it is the way to put a graph over a
// codec those classes do not hold, not a faster IndexHNSWFlat. Building
// prunes a node's links on reconstructions (faiss's symmetric_dis), so the
// storage must reconstruct (faiss's RaBitQ cannot be built on; nearly's can).
//
// As in faiss: the storage is shared (the caller's handle sees every add),
// ids are the rows (add_with_ids raises: wrap in IndexIDMap) and
// nothing is removed (rows are ids; IndexHNSWFlat / SQ / PQ remove). The
// storage may be swapped for another holding the same rows (faiss's
// `index.storage = ...`): build on exact vectors, search on codes. Rows the
// storage holds beyond the graph's nodes (a storage filled before, an add
// interrupted by Ctrl-C) are linked by the next add().
#pragma once
#include <memory>
#include <mutex>

#include "nearly/hnsw.h"
#include "nearly/index.h"

namespace nearly {

struct IndexHNSWOnStorage : Index, HNSWGraph {
    IndexHNSWOnStorage(IndexPtr storage, int M = 32);
    ~IndexHNSWOnStorage() override;

    std::string type_name() const override { return "HNSWOnStorage"; }
    const IndexPtr& storage() const { return storage_; }
    // faiss's `index.storage = other`: other holds (at least) the rows the
    // graph links, in the same order; same d and metric.
    void set_storage(IndexPtr storage);

    void train(idx_t n, const float* x) override;  // trains the storage
    // Appends to the storage, then links every row the graph does not hold yet.
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;  // raises
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;
    std::unique_ptr<DistanceComputer> get_distance_computer() const override;
    size_t remove_ids(const IDSelector& sel) override;  // raises
    void reset() override;  // the graph and the storage
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexHNSWOnStorage> read_body(Reader& r);
    size_t graph_memory() const { return graph_memory_bytes(); }  // links and id map, not the storage

   protected:
    // storage may be null (read without it): it then waits for set_storage.
    IndexHNSWOnStorage(IndexPtr storage, int d, MetricType metric, int M);
    // The body after its header (d, metric, M, ...): into an index made by make(storage, d, metric, M).
    template <class T, class Make>
    static std::unique_ptr<T> read_as(Reader& r, const Make& make);

   private:
    void check_storage_rows(const char* what) const;
    IndexPtr storage_;
    mutable std::mutex write_mutex_;  // one add / reset / swap at a time, storage write and linking together
};

// faiss's IndexHNSW2Level(quantizer, nlist, m_pq, M) (factory
// HNSW{M}_{nlist}+PQ{m_pq}, HNSW{M}_2x{nbits}+PQ{m_pq}): the graph over an
// Index2Layer storage (a coarse list number and a PQ code of the residual
// per vector), scored on its reconstructions. faiss's mixed search over an
// IndexIVFPQ storage (`index.storage = ivfpq`) walks the graph from the IVF
// search's candidates; here the graph is walked on the IVF-PQ storage's
// reconstructions, as over any storage (it needs a direct map, as faiss's).
struct IndexHNSW2Level : IndexHNSWOnStorage {
    IndexHNSW2Level(IndexPtr quantizer, size_t nlist, int m_pq, int M = 32);
    std::string type_name() const override { return "HNSW2Level"; }
    static std::unique_ptr<IndexHNSW2Level> read_body(Reader& r);

   private:
    IndexHNSW2Level(IndexPtr storage, int d, MetricType metric, int M) : IndexHNSWOnStorage(storage, d, metric, M) {}
};

}  // namespace nearly
