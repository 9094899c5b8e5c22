#include "nearly/index_random.h"

#include <cstring>
#include <random>
#include <unordered_set>

#include "nearly/extra_distances.h"
#include "nearly/io.h"
#include "nearly/parallel.h"

namespace nearly {

namespace {

// faiss's RandomGenerator: std::mt19937 seeded with the seed's low 32 bits.
struct FaissRandom {
    std::mt19937 mt;
    explicit FaissRandom(int64_t seed) : mt(static_cast<unsigned>(seed)) {}
    int rand_int() { return int(mt() & 0x7fffffff); }
    int64_t rand_int64() { return int64_t(rand_int()) | int64_t(rand_int()) << 31; }
    float rand_float() { return float(mt()) / float(std::mt19937::max()); }
};

// faiss's ivec_checksum over the query's d floats read as 32-bit words.
uint64_t query_checksum(const float* x, size_t d) {
    uint64_t cs = 112909;
    while (d--) {
        uint32_t w;
        std::memcpy(&w, x + d, 4);
        cs = cs * 65713 + uint32_t(w * 1686049u);  // the product wraps at 32 bits, as faiss's
    }
    return cs;
}

}  // namespace

IndexRandom::IndexRandom(int d, idx_t ntotal_, int64_t seed_, MetricType metric) : Index(d, metric), seed(seed_) {
    NEARLY_CHECK_ARG(ntotal_ >= 0, "IndexRandom: ntotal must be non-negative");
    ntotal = ntotal_;
}

void IndexRandom::add(idx_t n, const float* x) {
    check_add_args(n, x);
    ntotal += n;
}

void IndexRandom::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
    check_search_args(n, x, k);
    if (params && params->sel) throw NotSupported("IndexRandom: search parameters (selectors) are not supported");
    NEARLY_CHECK_ARG(k <= ntotal, "IndexRandom: k = " + std::to_string(k) + " is more than the index's " +
                                      std::to_string(ntotal) + " vectors");
    const bool similarity = is_similarity_metric(metric_type);
    const size_t kk = size_t(k), dd = size_t(d);
    parallel_for(size_t(n), [&](size_t q) {
        FaissRandom rng(seed + int64_t(query_checksum(x + q * dd, dd)));
        idx_t* Iq = I + q * kk;
        float* Dq = D + q * kk;
        // Distinct ids by redrawing repeats: k is meant to be far below ntotal.
        std::unordered_set<idx_t> drawn;
        for (size_t j = 0; j < kk; j++) {
            idx_t id;
            do id = rng.rand_int64() % ntotal;
            while (drawn.count(id));
            drawn.insert(id);
            Iq[j] = id;
        }
        float acc = 0.f;
        for (size_t j = 0; j < kk; j++) {
            const float step = rng.rand_float();
            acc += similarity ? -step : step;
            Dq[j] = acc;
        }
    });
}

void IndexRandom::reconstruct(idx_t key, float* out) const {
    check_row_range(key, 1, ntotal);
    FaissRandom rng(seed + 123332 + key);
    for (int i = 0; i < d; i++) out[i] = rng.rand_float();
}

void IndexRandom::write_body(Writer& w) const {
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<int64_t>(ntotal);
    w.pod<int64_t>(seed);
}

std::unique_ptr<IndexRandom> IndexRandom::read_body(Reader& r) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const idx_t ntotal = r.pod<int64_t>();
    const int64_t seed = r.pod<int64_t>();
    r.check(d > 0 && (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) && ntotal >= 0, "bad IndexRandom header");
    return std::make_unique<IndexRandom>(d, ntotal, seed, MetricType(metric));
}

}  // namespace nearly
