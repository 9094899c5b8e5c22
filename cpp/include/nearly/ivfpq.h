// faiss's IndexIVFPQ: the IVF family whose code is the PQ code of the
// residual x - centroid (by_residual, faiss's default). The scan adds M table
// lookups to a per-list offset:
//   IP: <q, c + r> = <q, c> + sum_m <q_m, r_m>: one table per query;
//   L2: ||q - c - r||^2 = ||q - c||^2 + (||r||^2 + 2 <c, r>) - 2 <q, r>: the
//       middle term depends on the list only, so it is precomputed per list
//       (use_precomputed_table, as faiss does when it fits) and each list's
//       table is one addition of two tables instead of a new table.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "nearly/ivf.h"
#include "nearly/polysemous.h"
#include "nearly/pq.h"

namespace nearly {

struct MultiIndexQuantizer;

struct IndexIVFPQ : IndexIVF {
    ProductQuantizer pq;
    // faiss's values: -1 never, 0 decide at training (for L2 by residual: 2
    // over a MultiIndexQuantizer whose M divides the PQ's, else 1 when the
    // table fits in precomputed_table_max_bytes), 1 one table per list, 2
    // one per sub-quantizer centroid (MultiIndexQuantizer only).
    int use_precomputed_table = 0;
    // 1: nlist x M x ksub; 2: per sub-quantizer m' and centroid j, the
    // (M / M') x ksub rows of its block.
    std::vector<float> precomputed_table;
    static constexpr size_t precomputed_table_max_bytes = size_t(1) << 31;
    // Polysemous filtering (faiss's): with polysemous_ht > 0 only the codes
    // within Hamming distance < polysemous_ht of the query's code (of its
    // residual, by residual) get a PQ distance. Meaningful after a
    // polysemous training (do_polysemous_training; polysemous_training's
    // settings, faiss's defaults when null).
    int polysemous_ht = 0;
    bool do_polysemous_training = false;
    std::shared_ptr<PolysemousTraining> polysemous_training;
    // False for families whose scan has no Hamming filter (fast-scan).
    virtual bool has_polysemous_search() const { return true; }

    IndexIVFPQ(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits, MetricType metric = METRIC_L2);

    std::string type_name() const override { return "IVFPQ"; }
    // (Re)builds precomputed_table from the quantizer and the PQ (takes the
    // write lock).
    void precompute_table();
    // faiss lets by_residual change after training (the PQ then codes what
    // it was not trained on, but consistently): allowed while the index
    // holds no codes; the precomputed table follows. Takes the write lock.
    void set_by_residual(bool v);
    // Installs a codebook learned elsewhere (M x ksub x dsub floats, faiss's
    // layout; e.g. a GPU index copied back): the PQ counts as trained, the
    // precomputed table is rebuilt, is_trained follows the quantizer. Takes
    // the write lock.
    void set_pq_centroids(const float* centroids);
    // faiss's `index.pq = other.pq` (a codebook shared between shards): the
    // same d, M and nbits, only while the index holds no codes.
    void set_pq(const ProductQuantizer& other);
    void write_body(Writer& w) const override;
    void rebuild_centroid_state() override {
        if (pq_trained_ && by_residual) build_precomputed_table();
    }
    static std::unique_ptr<IndexIVFPQ> read_body(Reader& r);

   protected:
    // read_body into the index make(header, M, nbits) builds (a subclass
    // reads its own fields after).
    static void read_pq_body(Reader& r, const char* what,
                             const std::function<IndexIVFPQ*(const Header&, size_t, size_t)>& make);
    // For subclasses with other code widths (fast-scan: required_nbits 4).
    IndexIVFPQ(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits, MetricType metric,
               size_t required_nbits);
    bool pq_trained_ = false;
    void install_pq_centroids(const float* centroids);  // under the write lock
    // Everything of orig into this new index of the same d, nlist and PQ
    // shape (the fast-scan conversion): its quantizer (shared, as in faiss),
    // PQ, by_residual, precomputed table, k-means settings and lists.
    void copy_from(const IndexIVFPQ& orig);
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    void write_encoder_state(Writer& w) const override;
    idx_t train_encoder_num_vectors() const override { return idx_t(pq.cp.max_points_per_centroid) * idx_t(pq.ksub); }
    bool encoder_trained() const override { return pq_trained_; }
    bool metric_settable() const override { return true; }
    void assume_encoder_trained() override;  // pq.centroids set by hand
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    // The scanners of a search know its queries and compute their tables
    // four at a time (IVFPQScanner::set_query).
    std::unique_ptr<QueryBatch> prepare_queries(idx_t n, const float* x, const SearchParameters* params) const override;
    std::unique_ptr<InvertedListScanner> get_scanner_for(const QueryBatch* batch) const override;

   private:
    void build_precomputed_table();  // caller holds the write lock
};

// The queries of one search (rows of x).
struct IVFPQQueries : IVFQueryBatch {
    int polysemous_ht = 0;  // the search's: SearchParametersIVFPQ's, else the index's
};

// faiss's SearchParametersIVFPQ (IVFPQSearchParameters): polysemous_ht
// replaces the index's for one search (0: no filter, as in faiss).
struct SearchParametersIVFPQ : SearchParametersIVF {
    int polysemous_ht = 0;
    std::unique_ptr<SearchParameters> clone() const override { return std::make_unique<SearchParametersIVFPQ>(*this); }
};

// Per-query state of an IVFPQ scan: the float table the ADC sums read from
// (tab, M x ksub) and the per-list offset dis0 it adds, following the
// decomposition above. Fast-scan quantizes the same table.
struct IVFPQScanner : InvertedListScanner {
    const IndexIVFPQ& ix;
    const ProductQuantizer& pq;
    const bool ip, residual, coarse_ip, precomputed;
    const MultiIndexQuantizer* miq;  // set for precomputed tables of type 2
    std::vector<float> qtab, centroid, resid;
    const float* q = nullptr;
    const float* qt = nullptr;   // the query's own table (qtab, or a row of group)
    float dis0 = 0.f;
    // With precomputed tables a list's table (ltab) is built on first use:
    // a list of fewer than ksub / 16 codes is scored straight from the
    // precomputed and query tables (two lookups per field) instead of
    // building the M x ksub table (an IMI's cells hold a few codes each:
    // 2.3x faiss's QPS at nprobe 2048 instead of 1.3x; at ksub / 4, lists of
    // ~50 codes of IVF2048 ran at 0.7-0.9x the table's speed). Same sums, in
    // the same order, either way.
    // Subclasses that need the table in set_list clear lazy_table.
    bool lazy_table = true;
    mutable bool table_pending = false;
    mutable std::vector<float> ltab;
    mutable const float* tab = nullptr;  // the table the scan reads (qt, or ltab per list)
    size_t list_no = 0;
    // The search's queries, when known: their tables are computed kGroup at
    // a time (each subspace's centroids then come from memory once for the
    // group: a 48 x 256 codebook is 393 KB, read again for every query
    // otherwise).
    const IVFPQQueries* batch = nullptr;
    static constexpr size_t kGroup = 4;
    std::vector<float> group;
    size_t group_first = 0, group_size = 0;

    // Polysemous filtering: the threshold and the query's code (of its
    // residual to the current list's centroid, by residual).
    int ht = 0;
    std::vector<uint8_t> qcode;
    std::vector<int32_t> hd;
    std::vector<uint8_t> kept_codes;
    std::vector<uint32_t> kept;

    explicit IVFPQScanner(const IndexIVFPQ& ix);
    void set_query(const float* x) override;
    void set_list(size_t list_no, float coarse_dis) override;
    void distances(size_t n, const uint8_t* codes, float* out) const override;
    // With ht > 0: the Hamming filter, then PQ distances of what passed.
    void scan_codes(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool labels_are_ids,
                    bool ip, const IDSelector* sel, float* D, idx_t* I, size_t k) override;
    void scan_range(size_t size, const uint8_t* codes, size_t code_size, const idx_t* ids, bool ip, float radius,
                    const IDSelector* sel, std::vector<std::pair<idx_t, float>>& hits) override;

   protected:
    // Positions (in kept) of the n codes that pass the filter and sel;
    // their codes gathered in kept_codes.
    void filter(size_t n, const uint8_t* codes, const idx_t* ids, const IDSelector* sel);
    void compute_residual(size_t list);  // resid = q - the list's centroid
    void build_list_table() const;  // ltab of list_no from the precomputed and query tables
    // The precomputed row block of field m for the current list.
    const float* precomputed_rows(size_t m) const;
};

}  // namespace nearly
