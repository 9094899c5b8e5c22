// faiss's IndexRandom(d, ntotal, seed, metric): an index of ntotal
// imaginary vectors that answers each query with k distinct random ids and
// increasing random distances (decreasing for inner product), the same for
// the same query and seed. It stores nothing, so ntotal may be 10^9: a
// stand-in for a huge index when timing what surrounds a search (sharding,
// result merging, re-ranking). Its answers and reconstructions are faiss's,
// value for value (faiss's RandomGenerator seeded with seed plus a checksum
// of the query's bits).
#pragma once
#include <memory>

#include "nearly/index.h"

namespace nearly {

class Reader;

struct IndexRandom : Index {
    int64_t seed;

    IndexRandom(int d, idx_t ntotal = 0, int64_t seed = 1234, MetricType metric = METRIC_L2);
    std::string type_name() const override { return "Random"; }
    void add(idx_t n, const float* x) override;  // counts n more vectors, stores none
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, float* out) const override;  // random floats in [0, 1], the same for a key
    void reset() override { ntotal = 0; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexRandom> read_body(Reader& r);
};

}  // namespace nearly
