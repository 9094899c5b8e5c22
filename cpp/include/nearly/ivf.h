// Inverted-file indexes (faiss's IndexIVF): a coarse quantizer (any Index,
// usually IndexFlat over nlist k-means centroids) sends each vector to its
// nearest centroid's list; a search scans only the nprobe lists nearest to
// the query. The lists hold codes of code_size bytes and ids; what a code is
// (the raw vector, a PQ code, ...) belongs to the family deriving from
// IndexIVF, which plugs in an encoder and a list scanner.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nearly/code_layout.h"
#include "nearly/index.h"
#include "nearly/invlists.h"
#include "nearly/kmeans.h"

namespace nearly {

struct PQ4Table;

class Reader;

// faiss's IndexIVFStats (faiss.cvar.indexIVF_stats): what the IVF searches
// of this process have done, summed over every index and thread. The counts
// are taken from the lists each query probes, so they do not depend on how a
// search is cut into tasks. nheap_updates is not counted (it stays 0): the
// scans select through reservoirs and batched merges, not one heap push at
// a time as faiss's do.
struct IndexIVFStats {
    size_t nq = 0;                  // queries searched
    size_t nlist = 0;               // non-empty inverted lists scanned
    size_t ndis = 0;                // codes scored
    size_t nheap_updates = 0;       // not counted: 0
    double quantization_time = 0;   // ms spent in the coarse quantizer
    double search_time = 0;         // ms spent in whole searches (the quantizer included)
    void reset() { *this = IndexIVFStats(); }
    void add(const IndexIVFStats& other);
};
extern IndexIVFStats indexIVF_stats;
// Adds s to indexIVF_stats under a lock (searches run concurrently).
void record_ivf_stats(const IndexIVFStats& s);

struct SearchParametersIVF : SearchParameters {
    size_t nprobe = 1;
    // faiss's budget: a query stops after scanning max_codes codes (0: no
    // limit; the last list scanned in part), counted after the selector;
    // ensure_topk_full makes it at least k codes that pass the selector,
    // scanning whole lists.
    size_t max_codes = 0;
    bool ensure_topk_full = false;
    // faiss's early stops. k-NN: a query visits at most max_lists_num of its
    // nprobe lists, the nearest (0: nprobe; with ensure_topk_full at least
    // k). Range search: a query stops after max_empty_result_buckets lists
    // in a row added nothing within the radius (0: never).
    size_t max_lists_num = 0;
    size_t max_empty_result_buckets = 0;
    // Passed to the coarse quantizer's search (faiss's quantizer_params):
    // efSearch of an HNSW quantizer, say.
    std::shared_ptr<const SearchParameters> quantizer_params;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersIVF>(*this); }
};

// The quantizer_params of IVF search parameters (null for other parameters).
const SearchParameters* quantizer_params_of(const SearchParameters* params);

// Scores one query against the codes of one list at a time (faiss's
// InvertedListScanner). One scanner per thread: it holds per-query state
// (lookup tables).
struct InvertedListScanner {
    virtual ~InvertedListScanner() = default;
    virtual void set_query(const float* x) = 0;
    // coarse_dis: the quantizer's score of the query against the list's
    // centroid (L2 distance or inner product), which residual codes build on.
    virtual void set_list(size_t list_no, float coarse_dis) = 0;
    // out[j] = distance (L2) or inner product (IP) of the query to code j.
    virtual void distances(size_t n, const uint8_t* codes, float* out) const = 0;
    // Pushes the size entries of the current list into the heap (D, I) of k
    // (scores lower is better: L2, or the negated inner product); labels are
    // ids[j], or positions j when labels_are_ids is false; sel is checked on
    // ids. By default through distances(), a chunk at a time; families with
    // a faster filter (fast-scan) override it.
    virtual void scan_codes(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids,
                            bool labels_are_ids, bool ip, const IDSelector* sel, float* D, idx_t* I, size_t k);
    // Range search in the current list: appends (id, score) for the entries
    // within radius (L2: distance < radius, IP: inner product > radius)
    // that sel accepts, in list order. By default through distances(), a
    // chunk at a time; codes start at a block edge, like scan_codes'.
    virtual void scan_range(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool ip,
                            float radius, const IDSelector* sel, std::vector<std::pair<idx_t, float>>& hits);
    // After the last list of a query: a scanner that collected candidates
    // elsewhere than in (D, I) puts them there.
    virtual void finish_query(float* D, idx_t* I, size_t k) {}

    // Set by IndexIVF when codes lie one after the other (not in blocks):
    // the default scan_codes then tests a selector first and, when it keeps
    // few codes of a chunk, scores only those (gathered), as faiss tests
    // ids before distances.
    bool codes_one_by_one = false;

   private:
    std::vector<uint8_t> gathered_;
    std::vector<uint32_t> kept_;
};

// What a family prepares once per search for its scanners (IndexIVF::prepare_queries).
struct IVFQueryBatch {
    virtual ~IVFQueryBatch() = default;
    // The search's n queries (set by prepare_queries), which a scanner's
    // set_query(q) looks q up among.
    const float* x = nullptr;
    size_t n = 0;
    // q's row among them (d floats each), or -1 when q is not one of them.
    std::ptrdiff_t row_of(const float* q, size_t d) const {
        if (!x || q < x || q >= x + n * d || size_t(q - x) % d != 0) return -1;
        return std::ptrdiff_t(size_t(q - x) / d);
    }
};

// Whether a quantizer places vectors in an IVF index's nlist lists: trained
// and holding the nlist centroids, or an IndexIDMap2 whose ids are distinct
// list numbers (a shard of an index split by centroid, holding some lists).
bool quantizer_places_lists(const Index& q, size_t nlist);
// The centroids of lists [l0, l0 + nl) into out (nl x d); the lists a shard's
// quantizer does not hold give zero rows (they are never probed).
void list_centroids(const Index& q, size_t nlist, size_t l0, size_t nl, float* out);

struct IndexIVF : Index {
    IndexPtr quantizer;
    size_t nlist;
    size_t nprobe = 1;  // lists scanned per query; clipped to nlist like faiss
    size_t max_codes = 0;  // codes scanned per query at most (0: no limit); see SearchParametersIVF
    // faiss's choice of what its OpenMP loop splits (queries, lists, both),
    // kept for code that sets it: nearly's scan picks its own split (by query
    // or by list, from the batch's shape), and the results are the same.
    int parallel_mode = 0;
    size_t code_size;   // bytes per stored vector
    size_t code_block = 1;  // how codes lie in a list (code_layout.h): 1, or 32 for fast-scan
    // Codes hold the residual x - centroid (set by families that need it).
    bool by_residual = false;
    // k-means settings for the coarse quantizer: faiss's IVF defaults (10
    // iterations, spherical for inner product).
    ClusteringParameters cp;
    // faiss's quantizer_trains_alone: 1 gives the training vectors to
    // quantizer->train() instead of k-means (a quantizer whose
    // trains_alone() is true always does: multi-index, residual coarse); 0 and 2 both run k-means with a flat assignment and add
    // the centroids to the quantizer. Read at train time, not stored.
    int quantizer_trains_alone = 0;
    // faiss's clustering_index: when set, the k-means assigns points through
    // it (IndexAssignStep: a GPU index, an HNSW for large nlist) instead of
    // exact search; its metric is the clustering's. Not stored. Set and read
    // under the index's lock (a train() may be running).
    void set_clustering_index(IndexPtr index);
    IndexPtr get_clustering_index() const;
    // faiss's `index.quantizer = q` (e.g. an HNSW over the trained flat
    // quantizer's centroids, for fast assignment with many lists): a
    // quantizer of the same d. Once the index is trained it must hold nlist
    // centroids, and once codes are stored relative to the centroids (by
    // residual) the same centroids: faiss would silently score those codes
    // against others. What a family derives from the centroids is rebuilt.
    // Takes the write lock.
    void set_quantizer(IndexPtr q);
    IndexPtr get_quantizer() const;  // under the read lock

    // extra_metrics: the family scans under faiss's extra metrics too
    // (extra_distances.h; IVF-Flat only).
    IndexIVF(IndexPtr quantizer, int d, size_t nlist, size_t code_size, MetricType metric, bool extra_metrics = false);

    // Trains the quantizer with k-means on x, unless it already holds nlist
    // centroids (then there is nothing to learn, as in faiss), then the
    // family's encoder on (a sample of) x or its residuals.
    void train(idx_t n, const float* x) override;
    // True needs a trained quantizer holding nlist centroids (faiss's users
    // fill it by hand, then set the flag) and a trained encoder.
    void set_trained(bool trained) override;
    // Before train(), on the families that score by metric_type at search
    // time (metric_settable), L2 or inner product.
    void set_metric_type(MetricType m) override;
    // Ids are ntotal, ntotal + 1, ... like faiss.
    void add(idx_t n, const float* x) override;
    void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
    // Codes with faiss's list-number prefix, each appended to its list.
    void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
    // params: SearchParametersIVF (nprobe, sel) or plain SearchParameters (sel).
    void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void search_unordered(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                          const SearchParameters* params = nullptr) const override;
    // faiss's search_preassigned: the lists each query scans are given
    // (assign: n x np list numbers, -1 skipped; e.g. from a coarse quantizer
    // that runs elsewhere), with the queries' scores against their centroids
    // (centroid_dis, n x np; null: computed here). params' nprobe plays no part.
    virtual void search_preassigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* assign,
                                    const float* centroid_dis, float* D, idx_t* I,
                                    const SearchParameters* params = nullptr) const;
    // range_search over given lists (faiss's range_search_preassigned; as
    // search_preassigned).
    void range_search_preassigned(idx_t n, const float* x, float radius, size_t np, const idx_t* assign,
                                  const float* centroid_dis, RangeSearchResult& result,
                                  const SearchParameters* params = nullptr) const;
    // All vectors of the nprobe nearest lists within radius (L2: < radius,
    // IP: > radius), in list-scan order per query.
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    // Removes the stored ids the selector accepts; the others keep their ids.
    size_t remove_ids(const IDSelector& sel) override;
    // faiss's check_ids_sorted: whether every list holds its ids in
    // ascending order (what IDSelectorRange's assume_sorted relies on).
    bool check_ids_sorted() const;
    // Moves other's entries into the same lists here, ids shifted by add_id
    // (other is left empty), like faiss: the way indexes built apart from one
    // trained index (on several machines, say) become one.
    void merge_from(Index& other, idx_t add_id = 0) override;
    // Throws unless other is an index of the same family with the same
    // coarse centroids and encoder, so that its codes mean the same here.
    void check_compatible_for_merge(const Index& other) const;
    void reset() override;
    // faiss's make_direct_map: an id -> (list, offset) table, kept up to date
    // by add, remove_ids and reset, so that reconstruct() can find a vector.
    // make_direct_map(false) drops it.
    virtual void make_direct_map(bool enable = true);
    bool has_direct_map() const { return lists_.has_direct_map(); }
    // The stored vector as the family decodes it (exact for Flat).
    void reconstruct(idx_t key, float* out) const override;
    // Ids i0 .. i0 + ni - 1, found by a scan of the lists when there is no
    // direct map (faiss does the same); an id no list holds gives a NaN row.
    void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
    // Finds the results' codes in the lists whether or not there is a direct
    // map (faiss does the same), so it needs no make_direct_map().
    void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* R,
                                const SearchParameters* params = nullptr) const override;
    // faiss's search_and_return_codes: the results' codes as stored (the
    // family's code_size bytes), with include_listnos the list number
    // before each (sa_decode's format); missing results are all 0xff.
    virtual void search_and_return_codes(idx_t n, const float* x, idx_t k, float* D, idx_t* I, uint8_t* codes,
                                         bool include_listnos, const SearchParameters* params = nullptr) const;
    // Standalone codes as faiss lays them out: the list number in
    // coarse_code_size() little-endian bytes, then the family's code.
    size_t coarse_code_size() const;
    size_t sa_code_size() const override { return coarse_code_size() + code_size; }
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;
    // The list numbers of n standalone codes (InvalidArgument naming `what`
    // when one is out of range).
    std::vector<size_t> lists_of_sa_codes(size_t n, const uint8_t* codes, const char* what) const;
    bool has_native_ids() const override { return true; }

    // How codes lie in a list; a family with a layout of its own (Panorama) overrides it.
    virtual CodeLayout layout() const { return CodeLayout{code_size, code_block}; }
    // The centroids of n lists (list_nos[i] < 0 gives a zero row) into out
    // (n x d), one reconstruct() each: quantizers with millions of (virtual)
    // cells are never copied whole.
    void centroids_of(size_t n, const idx_t* list_nos, float* out) const;

    // Inverted-list access, for the GPU converters and tests. The pointers
    // stay valid until the next write (add, remove_ids, reset).
    size_t list_size(size_t list_no) const;
    std::vector<idx_t> list_ids(size_t list_no) const;
    // The list's codes one after the other (whatever the layout), under the read lock.
    std::vector<uint8_t> list_codes_copy(size_t list_no) const;
    // The list's codes as stored (layout(): fast-scan blocks padded to whole blocks).
    std::vector<uint8_t> list_stored_copy(size_t list_no) const;
    const uint8_t* list_codes(size_t list_no) const;  // as stored (layout())
    const idx_t* list_ids_ptr(size_t list_no) const;
    // Appends n encoded entries to one list (the codes of this family one
    // after the other, ids as given): takes the write lock, updates ntotal and the direct map.
    virtual void add_entries(size_t list_no, size_t n, const uint8_t* codes, const idx_t* ids);
    // faiss's copy_subset_to: appends a subset of the entries to other (same
    // type, nlist and code size; its quantizer the user's business, as in
    // faiss). subset_type 0: ids in [a1, a2); 1: id % a1 == a2; 2: the share
    // [a1, a2) of ntotal, list by list; 3: part a2 of a1 of each list; 4:
    // the lists [a1, a2). Returns the number copied.
    virtual size_t copy_subset_to(IndexIVF& other, int subset_type, idx_t a1, idx_t a2) const;

    // add / add_with_ids with the lists given: list_nos[i] in [-1, nlist)
    // (-1: the vector is counted, not stored, as faiss). ids null: sequential;
    // list_nos null: the quantizer assigns.
    void add_core(idx_t n, const float* x, const idx_t* ids, const idx_t* list_nos = nullptr);
    // The encoder's training (train() after the quantizer's), each vector's
    // list given (assign[i] in [-1, nlist); e.g. chosen by another quantizer,
    // IndexIVFIndependentQuantizer's); the quantizer must hold its centroids.
    void train_encoder_with_assignment(idx_t n, const float* x, const idx_t* assign);
    // faiss's update_vectors: the stored vectors of n distinct ids become
    // x's rows, each re-assigned to its list; the ids stay. Needs the direct
    // map (make_direct_map(), faiss's rule); searches see the old entries or
    // the new ones, never neither (one write).
    virtual void update_vectors(idx_t n, const idx_t* ids, const float* x);

   protected:
    IndexPtr clustering_index_;
    using List = InvertedLists::List;
    InvertedLists lists_;

    // ---- for a family whose stored entry may stand for several ids
    // (IndexIVFFlatDedup: one entry per distinct vector) ----
    // Puts n encoded entries into their lists (list_of[i] < 0 or >= nlist:
    // counted, not stored, faiss's rule for vectors the quantizer cannot
    // place), codes stride apart, ids[i] or first_id + i. Called with the
    // write lock held; ntotal is the caller's. Returns the entries stored.
    virtual size_t store_entries(size_t n, const idx_t* list_of, const uint8_t* codes, size_t stride,
                                 const idx_t* ids, idx_t first_id);
    // The selector the lists' entries are tested with, for a search given
    // sel (null: sel itself). Called under the read lock.
    virtual std::unique_ptr<IDSelector> entry_selector(const IDSelector* sel) const { return nullptr; }
    // The last step of every k-NN search (n x k results in order, sel the
    // search's own selector) and range search (each query's hits), under
    // the read lock.
    virtual void finish_search(idx_t n, idx_t k, float* D, idx_t* I, const IDSelector* sel) const {}
    virtual void finish_range_search(std::vector<std::vector<std::pair<idx_t, float>>>& hits,
                                     const IDSelector* sel) const {}
    // merge_from's share of the family's own state (other's entries, ids
    // shifted by add_id, have joined these lists); under both write locks.
    virtual void merge_family_state(IndexIVF& other, idx_t add_id) {}
    // Appends n codes (code_size bytes each, stride apart) to lists
    // list_of[i] (checked by the caller), ids as given or ntotal, ntotal +
    // 1, ...; takes the write lock, updates ntotal.
    void append_codes(size_t n, const size_t* list_of, const uint8_t* codes, size_t stride, const idx_t* ids);
    // A standalone code's prefix: list_no in coarse_code_size() little-endian bytes.
    void put_list_number(uint8_t* b, size_t list_no) const;
    void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const override;
    // Throws unless assign holds n x np list numbers (or -1).
    void check_assign(idx_t n, size_t np, const idx_t* assign, const char* what) const;
    // dis (n x np): the query's score against each assigned centroid, in the index's metric.
    void coarse_scores(idx_t n, const float* x, size_t np, const idx_t* assign, float* dis) const;
    // The range scan of given lists, after the checks (read lock taken here).
    void range_search_lists(idx_t n, const float* x, float radius, size_t np, const idx_t* coarse,
                            const float* coarse_dis, RangeSearchResult& result, const SearchParameters* params) const;
    // What two indexes of the family must share for their codes to mean the
    // same (codebooks, ranges, the encoder); nothing for raw vectors.
    virtual void write_encoder_state(Writer& w) const {}

    // ---- what a family provides ----
    // Codes of n vectors assigned to list_nos (list_nos[i] >= 0).
    virtual void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const = 0;
    virtual void decode_vector(size_t list_no, const uint8_t* code, float* out) const = 0;
    // encode_vectors for codecs that take one vector at a time: each vector
    // (its residual from its list's centroid when by_residual) goes through
    // encode_one, in parallel; unassigned vectors (list -1) get zero codes.
    void encode_each(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes,
                     const std::function<void(const float*, uint8_t*)>& encode_one) const;
    // Learns the encoder from (a sample of) the training vectors, residuals
    // when by_residual. Nothing to learn by default.
    virtual void train_encoder(idx_t n, const float* x, const idx_t* assign) {}
    // At most this many vectors are given to train_encoder (0: no encoder to
    // train, the step is skipped).
    virtual idx_t train_encoder_num_vectors() const { return 0; }
    virtual bool encoder_trained() const { return true; }
    // Whether metric_type may change before training: a family that fixes
    // something by the metric when built (RaBitQ's factors, RQ's norms) says no.
    virtual bool metric_settable() const { return false; }
    // set_trained(true) with an encoder that train() did not learn: a family
    // whose codebook can be filled by hand (IVFPQ) takes it as learned; the
    // others refuse. The caller holds the write lock.
    virtual void assume_encoder_trained();
    virtual std::unique_ptr<InvertedListScanner> get_scanner() const = 0;
    // Rebuilds what the family derives from the coarse centroids (tables of
    // centroid-codeword products, norms) after set_quantizer; under the
    // write lock.
    virtual void rebuild_centroid_state() {}
    // permute_lists' share of the family's per-list state that is not
    // derived from the centroids (list i takes old list perm[i]'s); before
    // rebuild_centroid_state, under the write lock.
    virtual void permute_list_state(const idx_t* perm) {}
    // Whether the stored codes mean something only with these centroids
    // (residuals, thresholds at the centroids): set_quantizer then demands
    // the same centroids for every list that holds entries.
    virtual bool codes_depend_on_centroids() const { return by_residual; }
    // Work a family does once per search() before any list is scanned (the
    // recurrent binary family encodes all queries in one GEMM: one at a time
    // costs 20x more), or what it takes from the search's parameters
    // (RaBitQ's query bits). The scanners of that search come from
    // get_scanner_for(batch), whose set_query may look the query up in it.
    using QueryBatch = IVFQueryBatch;
    virtual std::unique_ptr<QueryBatch> prepare_queries(idx_t n, const float* x, const SearchParameters* params) const {
        return nullptr;
    }
    virtual std::unique_ptr<InvertedListScanner> get_scanner_for(const QueryBatch* batch) const { return get_scanner(); }
    // A family may scan a whole batch's lists its own way once the coarse
    // assignment is known (fast-scan: queries grouped by list, so one load of
    // the codes serves several queries' tables); false leaves the batch to
    // the generic strategies below. Called under the read lock. `sorted`:
    // false when the caller takes each query's k best in any order.
    virtual bool search_assigned(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse,
                                 const float* coarse_dis, const IDSelector* sel, float* D, idx_t* I,
                                 bool sorted) const {
        return false;
    }
    const InvertedLists::List& list_at(size_t l) const { return lists_[l]; }
    // search_assigned for the fast-scan families whose quantized query table
    // does not depend on the list: queries are taken in slices whose tables
    // (table_bytes each) stay in the L2 cache, each slice's (query, list)
    // pairs are grouped by list, and each list is scanned once for all its
    // queries (pq4_scan_queries), as faiss's implementation 12 does.
    // make_tables(q0, m, out) builds the tables of queries q0 .. q0 + m;
    // offset(j) is pair j's (query j / np, probe j % np) term added to the
    // table's score. False (nothing done) when too few queries share a list.
    using TableMaker = std::function<void(size_t, size_t, PQ4Table*)>;
    bool search_grouped(idx_t n, idx_t k, size_t np, const idx_t* coarse, const IDSelector* sel, float* D,
                        idx_t* I, bool sorted, size_t table_bytes, const TableMaker& make_tables,
                        const std::function<float(size_t)>& offset) const;
    // found(slot, list, code) for each result slot j < nk of I whose id the
    // lists hold (its first copy), under the read lock.
    void visit_result_codes(size_t nk, const idx_t* I,
                            const std::function<void(size_t, size_t, const uint8_t*)>& found) const;
    // The stretch [j0, j1) of a list that a search scans, and the selector
    // left to test in it: the whole list with sel; for an IDSelectorRange
    // with assume_sorted over a list whose ids are in order, only the ids in
    // range (a layout in blocks starts at a block edge and keeps the
    // selector for the edges).
    struct ListSpan {
        size_t j0, j1;
        const IDSelector* sel;
    };
    ListSpan list_span(const InvertedLists::List& list, const IDSelector* sel) const;
    // Batches with at least this many queries per probed list on average are
    // scanned list by list (scan_list_batch); 0: never.
    virtual size_t min_queries_per_list() const { return 0; }
    // nq gathered queries (xq, nq x d) against list l (size entries): the k
    // best per query as (score, position in the list), scores in the
    // metric's own sense, missing results as position -1.
    virtual void scan_list_batch(size_t l, const uint8_t* codes, const idx_t* ids, size_t size, size_t nq,
                                 const float* xq, const float* coarse_dis, size_t k, const IDSelector* sel,
                                 float* dis, idx_t* pos) const;

    // ---- persistence helpers for the families ----
    // Header: d, metric, nlist, nprobe, ntotal, the quantizer.
    struct Header {
        int d;
        MetricType metric;
        float metric_arg;  // written for the extra metrics only
        size_t nlist, nprobe;
        idx_t ntotal;
        IndexPtr quantizer;
    };
    void write_header(Writer& w) const;
    static Header read_header(Reader& r, const char* what);
    // Lists (ids, then codes counted in units of unit bytes), then the direct
    // map flag. The caller holds the read lock when writing.
    void write_lists(Writer& w, size_t unit) const;
    void read_lists(Reader& r, size_t unit, idx_t ntotal, const char* what);
    void refresh_trained();
    // Takes other's lists (ids, and codes of the same code_size re-laid into
    // this index's layout), ntotal and nprobe, into this new, empty index
    // (the layout conversions: IVFPQ to fast-scan). The caller holds other's
    // read lock; no direct map is carried over (faiss does not either).
    void copy_lists_from(const IndexIVF& other);

   public:
    // faiss's replace_invlists: these lists (nlist of them, codes of
    // code_size laid out by their_layout, re-laid into this family's) take
    // the place of the index's; ntotal follows them; the direct map, if
    // kept, is rebuilt.
    virtual void replace_lists(InvertedLists&& lists, const CodeLayout& their_layout);
    // faiss's permute_invlists on the index's lists: list i becomes the old
    // list perm[i]; what the family derives from the centroids is rebuilt
    // (the caller permutes the quantizer's centroids alike, as contrib's
    // ivf_tools.permute_invlists does).
    void permute_lists(const idx_t* perm);
    // faiss's set_invlist_range: lists l0 .. l0 + lists.nlist() become copies
    // of these (re-laid as above); ntotal follows; the direct map, if kept, is rebuilt.
    virtual void replace_list_range(size_t l0, const InvertedLists& lists, const CodeLayout& their_layout);
    // faiss code sets ntotal by hand before replace_invlists (merge_ondisk);
    // the value, checked against the lists given (-1: none).
    idx_t announced_ntotal = -1;
    // The file the lists live in (faiss's OnDiskInvertedLists), or null.
    std::shared_ptr<ListFile> lists_file() const { return lists_.file(); }
    // faiss's StopWordsInvertedLists and CappedInvertedLists over the index's
    // own lists, as limits on what a search scans of each list, applied in
    // order (innermost first): a stop-words limit skips a list of maxsize
    // entries or more, a cap scans its first maxsize entries. Adds, removals
    // and reads of the lists are not limited. Searches take them under the
    // read lock, so they change between searches, never during one.
    struct ListLimit {
        bool stop_words;  // false: a cap
        size_t maxsize;
    };
    void set_list_limits(std::vector<ListLimit> limits);
    std::vector<ListLimit> list_limits() const;
    // The entries of a list of n that a search scans.
    size_t searched_size(size_t n) const {
        for (const ListLimit& lim : list_limits_) n = lim.stop_words ? (n < lim.maxsize ? n : 0) : std::min(n, lim.maxsize);
        return n;
    }

   private:
    // Throws unless lists of their_layout have this index's code_size (what: the caller's name).
    void check_code_size(const CodeLayout& their_layout, const char* what) const;
    // After the lists were replaced: ntotal counted again, the direct map kept (rebuilt) or not.
    void recount_lists(bool direct_map);
    // Finds the entries whose id wanted() accepts without a direct map (the
    // lists scanned in parallel), then calls visit(list, id, code) for each,
    // in list order. The caller holds the read lock.
    void visit_entries(const std::function<bool(idx_t)>& wanted,
                       const std::function<void(size_t, idx_t, const uint8_t*)>& visit) const;
    size_t effective_nprobe(const SearchParameters* params) const;
    // train()'s encoder step (subsample, residuals, train_encoder) under the
    // write lock; assign null: the quantizer assigns.
    void train_encoder_locked(idx_t n, const float* x, const idx_t* assign);
    // The two scan strategies of search(); coarse: n * np list numbers.
    void search_sorted_or_not(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params,
                              bool sorted) const;
    // Under the read lock; counts the search in indexIVF_stats.
    void search_lists(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const float* coarse_dis,
                      const SearchParameters* params, float* D, idx_t* I, bool sorted) const;
    IndexIVFStats probe_stats(idx_t n, size_t np, const idx_t* coarse) const;
    size_t distinct_codes(idx_t n, size_t np, const idx_t* coarse) const;
    // A budget of codes per query (max_codes, ensure_topk_full), or none.
    struct CodeBudget {
        size_t max_codes = 0;
        bool whole_lists = false;
    };
    CodeBudget code_budget(const SearchParameters* params, size_t k) const;
    void search_by_query(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const float* coarse_dis,
                         const IDSelector* sel, float* D, idx_t* I, const QueryBatch* batch,
                         CodeBudget budget) const;
    void search_by_list(idx_t n, const float* x, idx_t k, size_t np, const idx_t* coarse, const float* coarse_dis,
                        const IDSelector* sel, float* D, idx_t* I) const;
    std::vector<ListLimit> list_limits_;
};

}  // namespace nearly
