// Inverted files over binary codes, on the shared inverted lists (invlists.h):
//  - IndexBinaryIVF: faiss's IndexBinaryIVF. The coarse quantizer is a binary
//    index (IndexBinaryFlat) over nlist binary centroids; train() runs float
//    k-means on the codes' bits unpacked to +-1 (faiss's IndexLSH decode) and
//    binarizes the centroids (bit = centroid > 0), as faiss does, so from the
//    same data both libraries get the same lists. Lists hold the raw codes,
//    scanned by Hamming distance (int32; missing results (2147483647, -1)).
//  - IndexIVFBinaryRecurrent: the IVF family (ivf.h) whose codes are recurrent
//    binary codes (BEBR) scored by SDC, factory "IVF{n},RBE{m}x{bits}": a
//    float coarse quantizer, and in the lists IndexBinaryRecurrent's code and
//    centering term of each vector, so a scan gives that index's estimates.
#pragma once
#include <memory>

#include "nearly/binary_flat.h"
#include "nearly/binary_recurrent.h"
#include "nearly/invlists.h"
#include "nearly/ivf.h"
#include "nearly/kmeans.h"

namespace nearly {

// Whether a binary quantizer places vectors in nlist lists (see
// quantizer_places_lists: the nlist centroids, or an IndexBinaryIDMap2 whose
// ids are distinct list numbers).
bool binary_quantizer_places_lists(const IndexBinary& q, size_t nlist);

struct IndexBinaryIVF : IndexBinary {
    IndexBinaryPtr quantizer;
    size_t nlist;
    size_t nprobe = 1;  // clipped to nlist like faiss
    ClusteringParameters cp;  // faiss's IndexBinaryIVF default: 10 iterations
    // faiss's choices of how a search runs (a heap or a sort per query;
    // threads over lists rather than queries). Kept for faiss's API: nearly
    // picks its own way and the results are the same either way.
    bool use_heap = true;
    bool per_invlist_search = false;
    // faiss's clustering_index: a float index over d dimensions through
    // which the k-means on the codes' +-1 vectors assigns (see IndexIVF).
    void set_clustering_index(IndexPtr index);
    IndexPtr get_clustering_index() const;

    IndexBinaryIVF(IndexBinaryPtr quantizer, int d, size_t nlist);

    std::string type_name() const override { return "BIVF"; }
    void train(idx_t n, const uint8_t* x) override;
    void add(idx_t n, const uint8_t* x) override;  // ids ntotal, ntotal + 1, ...
    void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
    // params: SearchParametersIVF (nprobe, sel) or plain SearchParameters (sel).
    void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                const SearchParameters* params = nullptr) const override;
    void reconstruct(idx_t key, uint8_t* out) const override;  // needs make_direct_map(), like faiss
    // The codes of ids n0 .. n0 + ni - 1 (ni x code_size), found by walking
    // the lists: no direct map needed, as faiss's. Ids not stored: zeros.
    void reconstruct_n(idx_t n0, idx_t ni, uint8_t* out) const;
    void range_search(idx_t n, const uint8_t* x, int radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    // search / range_search over the lists given per query (coarse: n x np,
    // -1 skipped), e.g. chosen by another quantizer (faiss's).
    void search_preassigned(idx_t n, const uint8_t* x, idx_t k, size_t np, const idx_t* coarse, int32_t* D,
                            idx_t* I, const SearchParameters* params = nullptr) const;
    void range_search_preassigned(idx_t n, const uint8_t* x, int radius, size_t np, const idx_t* coarse,
                                  RangeSearchResult& result, const SearchParameters* params = nullptr) const;
    // add / add_with_ids (ids null: ntotal, ntotal + 1, ...), each vector in
    // list_nos[i] when given (-1: counted, not stored), else its nearest centroid's.
    void add_core(idx_t n, const uint8_t* x, const idx_t* ids, const idx_t* list_nos = nullptr);
    size_t remove_ids(const IDSelector& sel) override;         // the others keep their ids
    void reset() override;
    void make_direct_map(bool enable = true);
    // A shard of this index split by centroid (shard_binary_ivf_index_centroids):
    // its settings over quantizer q, holding the entries of the given lists.
    std::shared_ptr<IndexBinaryIVF> shard(IndexBinaryPtr q, const std::vector<idx_t>& lists) const;
    size_t list_size(size_t list_no) const;
    std::vector<idx_t> list_ids(size_t list_no) const;
    std::vector<uint8_t> list_codes(size_t list_no) const;  // list_size x code_size, in list order
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexBinaryIVF> read_body(Reader& r);

   private:
    std::vector<idx_t> probed_lists(idx_t n, const uint8_t* x, const SearchParameters* params, size_t* np) const;
    void check_assign(size_t count, const idx_t* assign, const char* what) const;
    InvertedLists lists_;
    IndexPtr clustering_index_;
};

struct IndexIVFBinaryRecurrent : IndexIVF {
    std::shared_ptr<RecurrentEncoder> encoder;

    IndexIVFBinaryRecurrent(IndexPtr quantizer, int d, size_t nlist, int m, int nb,
                            MetricType metric = METRIC_INNER_PRODUCT);

    std::string type_name() const override { return "IVFBinaryRecurrent"; }
    void write_body(Writer& w) const override;
    static std::unique_ptr<IndexIVFBinaryRecurrent> read_body(Reader& r);

   protected:
    void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
    void decode_vector(size_t list_no, const uint8_t* code, float* out) const override;
    std::unique_ptr<InvertedListScanner> get_scanner() const override;
    std::unique_ptr<QueryBatch> prepare_queries(idx_t n, const float* x, const SearchParameters* params) const override;
    std::unique_ptr<InvertedListScanner> get_scanner_for(const QueryBatch* batch) const override;
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
    void write_encoder_state(Writer& w) const override;
    idx_t train_encoder_num_vectors() const override { return 100000; }
    bool encoder_trained() const override { return encoder->is_trained; }
};

}  // namespace nearly
