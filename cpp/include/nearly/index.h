// The Index interface every family implements, with faiss's semantics:
// squared L2 ascending, inner product descending, missing results as id -1
// with +FLT_MAX (L2) / -FLT_MAX (IP).
#pragma once
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "nearly/common.h"
#include "nearly/selector.h"

namespace nearly {

class Writer;
struct DistanceComputer;

// A reader-writer lock that does not starve writers: a writer waiting at the
// gate stops new readers, so an add() gets in even under a constant stream of
// overlapping searches (glibc's rwlock prefers readers).
class SharedMutex {
   public:
    void lock() {
        std::lock_guard<std::mutex> g(gate_);
        rw_.lock();
    }
    bool try_lock() {
        if (!gate_.try_lock()) return false;
        bool ok = rw_.try_lock();
        gate_.unlock();
        return ok;
    }
    void unlock() { rw_.unlock(); }
    void lock_shared() {
        { std::lock_guard<std::mutex> g(gate_); }
        rw_.lock_shared();
    }
    void unlock_shared() { rw_.unlock_shared(); }

   private:
    std::mutex gate_;
    std::shared_mutex rw_;
};

struct SearchParameters {
    virtual ~SearchParameters() = default;
    SelectorPtr sel;  // only ids it accepts are returned
    // A copy of the same type (wrappers swap the selector, keep the rest).
    virtual std::unique_ptr<SearchParameters> clone() const { return std::make_unique<SearchParameters>(*this); }
};

struct RangeSearchResult {
    std::vector<size_t> lims;  // nq + 1 offsets into distances / labels
    std::vector<float> distances;
    std::vector<idx_t> labels;

    using Hits = std::vector<std::vector<std::pair<float, idx_t>>>;
    // Sets the result from each query's (score, id) list, in list order.
    void set(const Hits& hits);
};

struct Index {
    int d;
    idx_t ntotal = 0;
    MetricType metric_type;
    float metric_arg = 0;  // p of METRIC_Lp (faiss's field)
    bool is_trained = true;
    bool verbose = false;
    // Set by read_index with IO_FLAG_READ_ONLY or IO_FLAG_MMAP: every write
    // (add, remove_ids, reset, merge_from) raises instead.
    bool read_only = false;

    // metric: L2 or inner product, or, where extra_metrics is set (exact
    // indexes and wrappers), any of extra_distances.h.
    Index(int d, MetricType metric, bool extra_metrics = false);
    virtual ~Index() = default;

    virtual std::string type_name() const = 0;  // also the tag in serialized files

    virtual void train(idx_t n, const float* x);
    // `index.is_trained = True` after filling a codebook or a coarse
    // quantizer by hand is a faiss idiom; each index checks that its state
    // allows it (the default accepts only the value it has).
    virtual void set_trained(bool trained);
    // `index.metric_type = m` (faiss lets any index change it): the default
    // accepts only the metric the index has; the IVF families whose codes do
    // not depend on it take L2 or inner product before training.
    virtual void set_metric_type(MetricType m);
    virtual void add(idx_t n, const float* x) = 0;
    virtual void add_with_ids(idx_t n, const float* x, const idx_t* ids);
    // faiss's add_sa_codes: n standalone codes (sa_encode's, sa_code_size()
    // bytes each, of this index's encoder) stored as they are, with ids
    // where the index keeps ids (null: ntotal, ntotal + 1, ...).
    virtual void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids);
    // D, I: n * k, filled completely (padding where fewer than k results).
    virtual void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                        const SearchParameters* params = nullptr) const = 0;
    // The same k best per query, in any order (padding still last), for
    // callers that re-rank them (IndexRefineFlat): an index may skip sorting.
    virtual void search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                  const SearchParameters* params = nullptr) const {
        search(n, x, k, D, I, params);
    }
    virtual void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                              const SearchParameters* params = nullptr) const;
    virtual void reconstruct(idx_t key, float* out) const;
    virtual void reconstruct_n(idx_t i0, idx_t ni, float* out) const;
    // reconstruct() of each key, in parallel (faiss's reconstruct_batch).
    virtual void reconstruct_batch(idx_t n, const idx_t* keys, float* out) const;
    // search, then the vector of every result into R (n * k * d); a missing
    // result's row is NaN (faiss fills it with 0xff bytes).
    virtual void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                        const SearchParameters* params = nullptr) const;
    // faiss's standalone codec: the code this index would store for a
    // vector, without adding it, and the vector a code decodes to. Codes are
    // sa_code_size() bytes, byte-compatible with faiss's for the same index
    // string and training. Families without a codec raise NotSupported.
    virtual size_t sa_code_size() const;
    void sa_encode(idx_t n, const float* x, uint8_t* bytes) const;  // checks x, then encode_standalone
    virtual void sa_decode(idx_t n, const uint8_t* bytes, float* x) const;
    virtual size_t remove_ids(const IDSelector& sel);
    virtual void reset() = 0;
    // faiss's get_distance_computer (distance_computer.h): scores a query
    // against stored vectors by position, as search does. The default
    // scores reconstruct(i) (faiss's GenericDistanceComputer; L2 and inner
    // product); families with codes override it with their own scorer.
    virtual std::unique_ptr<DistanceComputer> get_distance_computer() const;
    // Moves other's vectors into this index (other is left empty), like faiss.
    virtual void merge_from(Index& other, idx_t add_id = 0);

    void check_writable() const;  // throws when read_only

    // True when the index stores caller-given ids itself (add_with_ids,
    // stable ids across remove_ids): IndexIDMap then passes ids through.
    virtual bool has_native_ids() const { return false; }
    // A coarse quantizer whose centroids come from its own training (a
    // multi-index, a residual coarse quantizer), not from the IVF's k-means.
    virtual bool trains_alone() const { return false; }

    // Serialized body after the type tag (see io.h).
    virtual void write_body(Writer& w) const = 0;

   protected:
    virtual void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const;

    // Searches hold it shared, writes exclusive: a write waits for running
    // searches instead of pulling memory from under them.
    mutable SharedMutex rw_mutex_;

    // Checks common to every search: k >= 1, finite queries.
    void check_search_args(idx_t n, const float* x, idx_t k) const;
    void check_add_args(idx_t n, const float* x) const;
};

using IndexPtr = std::shared_ptr<Index>;

// Padding written for a missing result.
float missing_distance(MetricType metric);

// Raises unless perm[0..n) holds each of 0 .. n - 1 once (permute_entries).
void check_permutation(const idx_t* perm, idx_t n);
// Raises unless rows i0 .. i0 + ni - 1 exist among ntotal (reconstruct_n).
void check_row_range(idx_t i0, idx_t ni, idx_t ntotal);
// A graph index's new storage (faiss's `index.storage = other`): an index,
// not the graph itself, of the graph's d and metric; `who` names the graph
// in the message. (That it holds the graph's rows is checked under the
// graph's lock.)
void check_new_storage(const Index& graph, const Index* storage, const char* who);

}  // namespace nearly
