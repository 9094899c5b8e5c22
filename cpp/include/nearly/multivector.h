// Storage and exact search of multi-vector documents (sets of token vectors):
// the ground truth IndexMultiVectorFlat and the re-ranking stage of
// IndexMuvera (python/nearly/multivector.py) both sit on MultiVectorStore.
//
// A store holds the documents' vectors back to back (float32, or IEEE fp16 to
// halve the memory; scores are always computed in float32), the row offsets
// of each document, the caller's id of each document and an internal key.
// Keys are handed out in increasing order at add and never reused, so they
// stay sorted through remove_ids (which compacts in order) and a key is
// looked up by binary search: IndexMuvera gives them to its inner index as
// ids, which keeps the inner index and the store in step across removals.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "nearly/common.h"
#include "nearly/index.h"
#include "nearly/selector.h"

namespace nearly {

class Writer;
class Reader;

enum class TokenDtype : uint32_t { Float32 = 0, Float16 = 1 };

class MultiVectorStore {
   public:
    MultiVectorStore(int d, TokenDtype dtype);

    int dim() const { return d_; }
    TokenDtype dtype() const { return dtype_; }
    size_t n_docs() const;
    size_t n_vectors() const;

    // Appends n_sets documents (ragged: lengths sum to n_vectors, each >= 1,
    // all finite). ids: the caller's ids, or null for ntotal, ntotal + 1, ...
    // keys_out (n_sets values, may be null) receives the keys given to them.
    void add(const float* x, size_t n_vectors, const int64_t* lengths, size_t n_sets, const idx_t* ids,
             idx_t* keys_out);

    // Exact Chamfer top-k over every document, best first: D (nq, k) scores,
    // I (nq, k) the documents' ids; missing results are -FLT_MAX / -1.
    void search(const float* q, size_t n_query_vectors, const int64_t* query_lengths, size_t nq, size_t k,
                float* D, idx_t* I) const;

    // Exact Chamfer re-ranking of candidates given by key (nq rows of nc
    // keys; negative keys and keys no longer stored are skipped), top k as in
    // search. Duplicate keys in a row count once.
    void rerank(const float* q, size_t n_query_vectors, const int64_t* query_lengths, size_t nq,
                const idx_t* cand_keys, size_t nc, size_t k, float* D, idx_t* I) const;

    // Removes the documents whose caller id the selector accepts; returns
    // the keys they had (so an inner index can drop them too).
    std::vector<idx_t> remove_ids(const IDSelector& sel);
    void reset();

    // The vectors of document `pos` (0 <= pos < n_docs) as float32.
    std::vector<float> document(size_t pos) const;
    const std::vector<idx_t>& ids() const { return ids_; }
    const std::vector<idx_t>& keys() const { return keys_; }
    std::vector<int64_t> lengths() const;

    // Calls fn, under the read lock, with the raw storage: the vectors as
    // stored (n_vectors() * dim() floats, or fp16 bits), the row offsets
    // (n_docs() + 1), the ids and the keys. For copies to a GPU without an
    // intermediate copy on the host.
    using RawVisitor = std::function<void(const void* vectors, const std::vector<size_t>& offsets,
                                          const std::vector<idx_t>& ids, const std::vector<idx_t>& keys)>;
    void visit_raw(const RawVisitor& fn) const;

    // An independent copy, taken under the read lock (plain memory copies:
    // far cheaper than a serialize round trip).
    MultiVectorStore clone() const;

    // Versioned, checksummed bytes ("NEARLYMV" magic, format version,
    // payload, checksum); deserialize throws CorruptData on anything wrong.
    std::vector<uint8_t> serialize() const;
    static MultiVectorStore deserialize(const uint8_t* data, size_t n);

    MultiVectorStore(MultiVectorStore&& o) noexcept;

   private:
    // Float32 copies of the vectors of documents [p0, p1) into out.
    void decode_rows(size_t p0, size_t p1, float* out) const;
    // Exact scores of one query set against documents at positions pos[].
    void score_positions(const float* q, size_t nqv, const size_t* pos, size_t n, float* scores) const;

    int d_;
    TokenDtype dtype_;
    std::vector<float> f32_;
    std::vector<uint16_t> f16_;
    std::vector<size_t> offsets_{0};  // n_docs + 1 row offsets
    std::vector<idx_t> ids_, keys_;
    idx_t next_key_ = 0;
    mutable SharedMutex mu_;
};

// Greedy ball carving of each query set (MUVERA, section 3): the vectors of a
// set are visited in order; a vector whose cosine similarity with the first
// vector (the centre) of an existing cluster of its set is at least tau
// joins the most similar such cluster, otherwise it starts a new cluster.
// Each cluster is replaced by the sum of its vectors. Returns the carved
// vectors in out_vectors ((sum of out_lengths), d) and the per-set counts.
void ball_carve(const float* x, size_t n_vectors, const int64_t* lengths, size_t n_sets, size_t d, float tau,
                std::vector<float>& out_vectors, std::vector<int64_t>& out_lengths);

uint16_t fp16_from_float(float f);
float fp16_to_float(uint16_t h);

}  // namespace nearly
