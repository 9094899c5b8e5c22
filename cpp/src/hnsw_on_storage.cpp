#include "nearly/hnsw_on_storage.h"

#include <atomic>
#include <numeric>

#include "hnsw_graph.h"
#include "nearly/distance_computer.h"
#include "nearly/extra_distances.h"
#include "nearly/index_2layer.h"
#include "nearly/io.h"

namespace nearly {

using slot_t = HNSWGraph::slot_t;
using namespace hnsw_detail;

namespace {

// Each add or search is a generation: a thread's computers belong to the
// storage of one generation and are made again for the next. A computer
// holds its query (set_query), so each query in flight has its own, lent
// from the thread's pool.
std::atomic<uint64_t> next_generation{1};

struct ComputerPool {
    uint64_t generation = 0;
    std::vector<std::unique_ptr<DistanceComputer>> free;
    std::vector<idx_t> rows;      // score_batch's slots as rows
    std::vector<float> decoded;   // and their reconstructions
};
ComputerPool& thread_pool(uint64_t generation) {
    thread_local ComputerPool pool;
    if (pool.generation != generation) {
        pool.free.clear();
        pool.generation = generation;
    }
    return pool;
}

// A node's payload is nothing: node labels are storage rows, scored by the
// storage's computer. A query is the float vector being added or searched
// for, set on a computer. To prune a node's links (a few tens of scores),
// the node's reconstruction is the query: set on a computer too where that
// is cheap (scalar quantizer, RaBitQ, flat), scored against the others'
// reconstructions where the computer would build tables (PQ, additive
// quantizers; faiss's symmetric_dis). Either way, search's scores of the
// decoded node.
struct StorageSpace {
    const HNSWGraph::Storage& st;
    const Index& storage;
    bool similarity;     // scores are similarities: negated, smaller is better
    const float* batch;  // the rows being linked (insert_query), or null
    uint64_t generation;
    bool node_tables = false;  // the storage's computer builds tables per query: nodes are scored decoded

    StorageSpace(const HNSWGraph::Storage& st, const Index& storage, bool similarity, const float* batch,
                 uint64_t generation)
        : st(st), storage(storage), similarity(similarity), batch(batch), generation(generation) {
        node_tables = lend().dc->builds_query_tables();  // the computer goes back to the thread's pool
    }

    struct Query {
        std::unique_ptr<DistanceComputer> dc;  // a float query; null for a stored node
        std::vector<float> node;               // the stored node's reconstruction
        uint64_t generation = 0;
        Query() = default;
        Query(Query&&) = default;
        Query& operator=(Query&&) = default;
        ~Query() {
            if (dc) thread_pool(generation).free.push_back(std::move(dc));
        }
    };

    Query lend() const {
        Query q;
        ComputerPool& pool = thread_pool(generation);
        if (!pool.free.empty()) {
            q.dc = std::move(pool.free.back());
            pool.free.pop_back();
        } else {
            q.dc = storage.get_distance_computer();
        }
        q.generation = generation;
        return q;
    }
    Query query_for(const float* x) const {
        Query q = lend();
        q.dc->set_query(x);
        return q;
    }
    Query query_of(slot_t s) const {
        Query q;
        if (!node_tables) q = lend();
        q.node.resize(size_t(storage.d));
        storage.reconstruct(st.labels[s], q.node.data());
        if (q.dc) q.dc->set_query(q.node.data());
        return q;
    }
    Query insert_query(slot_t, size_t row, Scratch&) const { return query_for(batch + row * size_t(storage.d)); }
    float node_score(const float* node, const float* other) const {
        const float v = metric_score(storage.metric_type, node, other, size_t(storage.d));
        return similarity ? -v : v;
    }
    float score(const Query& q, slot_t s) const {
        if (!q.dc) {
            float out;
            score_batch(q, &s, 1, &out);
            return out;
        }
        const float v = (*q.dc)(st.labels[s]);
        return similarity ? -v : v;
    }
    void score_batch(const Query& q, const slot_t* slots, size_t n, float* out) const {
        ComputerPool& pool = thread_pool(generation);
        pool.rows.resize(n);
        for (size_t j = 0; j < n; j++) pool.rows[j] = st.labels[slots[j]];
        if (!q.dc) {
            const size_t d = size_t(storage.d);
            pool.decoded.resize(n * d);
            storage.reconstruct_batch(idx_t(n), pool.rows.data(), pool.decoded.data());
            for (size_t j = 0; j < n; j++) out[j] = node_score(q.node.data(), pool.decoded.data() + j * d);
            return;
        }
        q.dc->scores(pool.rows.data(), n, out);
        if (similarity)
            for (size_t j = 0; j < n; j++) out[j] = -out[j];
    }
};

}  // namespace

IndexHNSWOnStorage::IndexHNSWOnStorage(IndexPtr storage, int M)
    : IndexHNSWOnStorage(storage, storage ? storage->d : 1, storage ? storage->metric_type : METRIC_L2, M) {
    NEARLY_CHECK_ARG(storage_ != nullptr, "IndexHNSW: a storage index is needed");
}

IndexHNSWOnStorage::IndexHNSWOnStorage(IndexPtr storage, int d, MetricType metric, int M)
    : Index(d, metric), HNSWGraph(M, 0, 0), storage_(std::move(storage)) {
    is_trained = storage_ && storage_->is_trained;
}

IndexHNSWOnStorage::~IndexHNSWOnStorage() = default;

void IndexHNSWOnStorage::check_storage_rows(const char* what) const {
    if (!storage_ || !has_vectors())
        throw NotSupported(std::string("IndexHNSW: ") + what +
                           " needs the storage, which was not saved (IO_FLAG_SKIP_STORAGE): set index.storage first");
    if (storage_->ntotal < ntotal)
        throw InvalidArgument(std::string("IndexHNSW: ") + what + ": the storage holds " +
                              std::to_string(storage_->ntotal) + " vectors, fewer than the graph's " +
                              std::to_string(ntotal) + " nodes (was it reset, or replaced by a smaller one?)");
}

void IndexHNSWOnStorage::set_storage(IndexPtr storage) {
    check_writable();
    check_new_storage(*this, storage.get(), "IndexHNSW");
    std::lock_guard<std::mutex> wl(write_mutex_);
    std::unique_lock<SharedMutex> lk(graph_mutex_);
    NEARLY_CHECK_ARG(storage->ntotal >= ntotal, "IndexHNSW: the new storage holds " + std::to_string(storage->ntotal) +
                                                    " vectors; the graph links " + std::to_string(ntotal));
    storage_ = std::move(storage);
    is_trained = storage_->is_trained;
    vectors_missing_.store(false, std::memory_order_release);
}

void IndexHNSWOnStorage::train(idx_t n, const float* x) {
    check_writable();
    std::lock_guard<std::mutex> wl(write_mutex_);
    check_storage_rows("train");
    {
        std::unique_lock<SharedMutex> lk(graph_mutex_);
        storage_->verbose = verbose;
        storage_->train(n, x);
    }
    is_trained = storage_->is_trained;
}

void IndexHNSWOnStorage::add(idx_t n, const float* x) {
    if (storage_) is_trained = storage_->is_trained;  // trained through the caller's handle
    check_add_args(n, x);
    std::lock_guard<std::mutex> wl(write_mutex_);
    check_storage_rows("add");
    const idx_t n0 = ntotal, lag = storage_->ntotal - n0;
    {
        std::unique_lock<SharedMutex> lk(graph_mutex_);  // searches read the storage
        storage_->add(n, x);
    }
    const idx_t nlink = storage_->ntotal - n0;
    NEARLY_CHECK_ARG(nlink == lag + n, "IndexHNSW: the storage did not grow by the vectors added");
    if (nlink == 0) return;
    // The rows linked now: those the storage held beyond the graph (as stored), then x.
    std::vector<float> rows;
    const float* batch = x;
    if (lag > 0) {
        rows.resize(size_t(nlink) * size_t(d));
        storage_->reconstruct_n(n0, lag, rows.data());
        std::copy(x, x + size_t(n) * size_t(d), rows.begin() + ptrdiff_t(size_t(lag) * size_t(d)));
        batch = rows.data();
    }
    std::vector<idx_t> ids(static_cast<size_t>(nlink));
    std::iota(ids.begin(), ids.end(), n0);
    const bool similarity = is_similarity_metric(metric_type);
    const uint64_t generation = next_generation++;
    auto make_space = [&](const Storage& st) { return StorageSpace(st, *storage_, similarity, batch, generation); };
    add_nodes(nlink, ids.data(), make_space, [](size_t, slot_t) {}, ntotal, verbose);
}

void IndexHNSWOnStorage::add_with_ids(idx_t, const float*, const idx_t*) {
    throw NotSupported("IndexHNSW over a storage index: its ids are the storage's rows; wrap it in IndexIDMap for ids "
                       "of your own");
}

void IndexHNSWOnStorage::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                const SearchParameters* params) const {
    check_search_args(n, x, k);
    const int ef = ef_of(*this, params);
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    check_storage_rows("search");
    if (!storage_->is_trained) throw NotSupported("Error: 'is_trained' failed (the storage is not trained)");
    const bool similarity = is_similarity_metric(metric_type);
    const StorageSpace sp(*st_, *storage_, similarity, nullptr, next_generation++);
    search_scored(sp, n, k, D, I, similarity, missing_distance(metric_type), ef, params ? params->sel.get() : nullptr,
                  ntotal, [&](idx_t q, Scratch&, const auto& run) { run(sp.query_for(x + size_t(q) * size_t(d))); });
}

void IndexHNSWOnStorage::range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                                      const SearchParameters* params) const {
    check_search_args(n, x, 1);
    range_search_by_doubling_k(*this, ef_of(*this, params), n, x, radius, result, params);
}

void IndexHNSWOnStorage::reconstruct(idx_t key, float* out) const {
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    check_storage_rows("reconstruct");
    check_row_range(key, 1, ntotal);
    storage_->reconstruct(key, out);
}

std::unique_ptr<DistanceComputer> IndexHNSWOnStorage::get_distance_computer() const {
    check_storage_rows("get_distance_computer");
    return storage_->get_distance_computer();
}

size_t IndexHNSWOnStorage::remove_ids(const IDSelector&) {
    throw NotSupported("IndexHNSW over a storage index: remove_ids is not supported (node i is the storage's row i); "
                       "IndexHNSWFlat, IndexHNSWSQ and IndexHNSWPQ remove vectors");
}

void IndexHNSWOnStorage::reset() {
    check_writable();
    std::lock_guard<std::mutex> wl(write_mutex_);
    {
        std::unique_lock<SharedMutex> lk(graph_mutex_);
        if (storage_) storage_->reset();
    }
    reset_graph();
    ntotal = 0;
}

void IndexHNSWOnStorage::write_body(Writer& w) const {
    std::lock_guard<std::mutex> wl(write_mutex_);  // no add half done
    std::shared_lock<SharedMutex> lk(graph_mutex_);
    const bool with_storage = !w.skip_storage && storage_ && has_vectors();
    w.pod<int32_t>(d);
    w.pod<int32_t>(metric_type);
    w.pod<int32_t>(M);
    w.pod<int32_t>(efConstruction);
    w.pod<int32_t>(efSearch);
    w.pod<uint8_t>(with_storage);
    if (with_storage) write_index_payload(*storage_, w);
    write_graph(w, true);
}

template <class T, class Make>
std::unique_ptr<T> IndexHNSWOnStorage::read_as(Reader& r, const Make& make) {
    const int d = r.pod<int32_t>(), metric = r.pod<int32_t>();
    const int M = r.pod<int32_t>(), efc = r.pod<int32_t>(), efs = r.pod<int32_t>();
    const uint8_t with_storage = r.pod<uint8_t>();
    r.check(d > 0 && metric >= 0 && M >= 2 && M <= 256 && efc >= 1 && efs >= 1 && with_storage <= 1,
            "bad HNSW storage-graph header");
    IndexPtr storage = with_storage ? read_index_payload(r) : nullptr;
    r.check(!storage || (storage->d == d && storage->metric_type == metric), "HNSW: the storage does not match");
    std::unique_ptr<T> index = make(storage, d, MetricType(metric), M);
    index->efConstruction = efc;
    index->efSearch = efs;
    index->read_graph(r, index->ntotal, true);
    // Node labels are storage rows 0 .. ntotal-1, each once.
    const std::vector<idx_t> ids = index->ids();
    std::vector<char> seen(ids.size(), 0);
    for (idx_t id : ids) {
        r.check(id >= 0 && id < idx_t(ids.size()) && !seen[size_t(id)], "HNSW: node ids are not the storage rows");
        seen[size_t(id)] = 1;
    }
    r.check(!storage || storage->ntotal >= index->ntotal, "HNSW: the storage lacks rows the graph links");
    return index;
}

std::unique_ptr<IndexHNSWOnStorage> IndexHNSWOnStorage::read_body(Reader& r) {
    return read_as<IndexHNSWOnStorage>(r, [](IndexPtr storage, int d, MetricType metric, int M) {
        return std::unique_ptr<IndexHNSWOnStorage>(new IndexHNSWOnStorage(storage, d, metric, M));
    });
}

IndexHNSW2Level::IndexHNSW2Level(IndexPtr quantizer, size_t nlist, int m_pq, int M)
    : IndexHNSWOnStorage(std::make_shared<Index2Layer>(std::move(quantizer), nlist, size_t(m_pq)), M) {}

std::unique_ptr<IndexHNSW2Level> IndexHNSW2Level::read_body(Reader& r) {
    return read_as<IndexHNSW2Level>(r, [](IndexPtr storage, int d, MetricType metric, int M) {
        return std::unique_ptr<IndexHNSW2Level>(new IndexHNSW2Level(storage, d, metric, M));
    });
}

}  // namespace nearly
