// faiss's IndexFlatCodes: every vector stored as a code of code_size() bytes,
// one after the other. The families (IndexPQ, IndexScalarQuantizer) say how
// a vector is encoded and decoded and how codes are scanned; adding,
// reconstructing, removing and resetting are the same for all of them.
#pragma once
#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "nearly/code_layout.h"
#include "nearly/index.h"
#include "nearly/mapped_array.h"
#include "nearly/parallel.h"
#include "nearly/topk.h"

namespace nearly {

// A scorer type with a static scores_group(scorers, nq, codes, n, out)
// scores a group of queries over each block at once (SQScorer).
template <class T, class = void>
struct HasScoresGroup : std::false_type {};
template <class T>
struct HasScoresGroup<T, std::void_t<decltype(T::scores_group(std::declval<const T*>(), size_t(0),
                                                              std::declval<const uint8_t*>(), size_t(0),
                                                              std::declval<float*>()))>> : std::true_type {};

struct IndexFlatCodes;

// Scores a block of codes for a group of queries on the decoded vectors, the
// block decoded once for the group: the families whose codes have no faster
// scan (search_with_scorers, CodeDistanceComputer).
struct DecodedScorer {
    const IndexFlatCodes* index;
    const float* q = nullptr;
    void set_query(const float* x) { q = x; }
    void scores(const uint8_t* codes, size_t n, float* out) const { scores_group(this, 1, codes, n, out); }
    static void scores_group(const DecodedScorer* s, size_t nq, const uint8_t* codes, size_t n, float* out);
};

struct IndexFlatCodes : Index {
    IndexFlatCodes(int d, MetricType metric) : Index(d, metric) {}

    virtual size_t code_size() const = 0;
    // Encodes outside the lock (searches go on), then appends.
    void add(idx_t n, const float* x) override;
    // The codes as they are; ids are positions here, so ids must be null.
    void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
    void reconstruct(idx_t key, float* out) const override;
    // The codes gathered under one lock, then decoded (on this thread: a
    // graph prunes with batches of tens of rows).
    void reconstruct_batch(idx_t n, const idx_t* keys, float* out) const override;
    // The kept codes move down, so ids are renumbered (faiss's behaviour).
    size_t remove_ids(const IDSelector& sel) override;
    void reset() override;
    // Every stored vector within radius (L2: < radius, IP: > radius), scored
    // on its decoded vector, like faiss's flat-code distance computers.
    void range_search(idx_t n, const float* x, float radius, RangeSearchResult& result,
                      const SearchParameters* params = nullptr) const override;
    size_t sa_code_size() const override { return code_size(); }
    // Appends other's codes (other is left empty). Ids are positions here,
    // so add_id must be 0 (faiss's rule); the two must share the encoder.
    void merge_from(Index& other, idx_t add_id = 0) override;
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;
    std::vector<uint8_t> get_codes() const;  // a copy, ntotal x code_size(), one code after the other
    // A copy of the codes as they are stored: in layout(), the last block
    // padded (faiss's `codes` of a fast-scan index).
    std::vector<uint8_t> stored_codes() const;
    // The code of stored vector i (code_size() bytes); i out of range raises.
    void code_at(idx_t i, uint8_t* out) const;
    // The codes of ids[0..n), one after the other, under one lock; an id out of range raises.
    void gather_codes(const idx_t* ids, size_t n, uint8_t* out) const;
    // f(ptrs), ptrs[j] pointing at id ids[j]'s code where it is stored, all
    // under one read lock (so no add moves them meanwhile): scoring in place
    // spares gather_codes' copy. Plain layouts only: false, f not called,
    // for fast-scan blocks. An id out of range raises.
    template <class F>
    bool with_codes_in_place(const idx_t* ids, size_t n, std::vector<const uint8_t*>& ptrs, const F& f) const {
        std::shared_lock<SharedMutex> lk(rw_mutex_);
        if (code_block_ != 1) return false;
        const size_t cs = code_size();
        ptrs.resize(n);
        for (size_t j = 0; j < n; j++) {
            if (ids[j] < 0 || ids[j] >= ntotal) throw OutOfRange("key " + std::to_string(ids[j]) + " not found");
            ptrs[j] = codes_.data() + size_t(ids[j]) * cs;
        }
        f(ptrs.data());
        return true;
    }
    // Replaces the stored codes by n codes one after the other (faiss code
    // that writes index.codes itself: contrib's big_batch_search).
    void set_codes(const uint8_t* codes, size_t n);
    CodeLayout layout() const { return CodeLayout{code_size(), code_block_}; }
    // Decodes n codes one after the other (the decode of each, unless the
    // family decodes a batch faster).
    virtual void decode_block(const uint8_t* codes, size_t n, float* out) const;

   protected:
    // What two indexes of the family must share for their codes to mean the
    // same (codebooks, ranges, the rotation).
    virtual void write_encoder_state(Writer& w) const = 0;
    void encode_standalone(idx_t n, const float* x, uint8_t* bytes) const override { encode(size_t(n), x, bytes); }
    virtual void encode(size_t n, const float* x, uint8_t* codes) const = 0;
    virtual void decode(const uint8_t* code, float* out) const = 0;
    // get_codes() without the lock (the caller holds it), and its inverse:
    // n codes one after the other stored in layout() as the index's codes.
    std::vector<uint8_t> codes_in_order() const;
    // Appends n codes one after the other to the stored ones (the caller
    // holds the write lock).
    void append_codes(const uint8_t* codes, size_t n);
    void set_codes_in_order(const std::vector<uint8_t>& codes, size_t n);
    // search() for the families whose codes a Scorer scores one query at a
    // time (set_query(q), then scores(codes, n, out): distances, or inner
    // products): queries in groups of 8 share each block of codes while it
    // is in cache. make_scorer() builds one; the caller holds the read lock
    // and has checked the arguments.
    template <class MakeScorer>
    void search_with_scorers(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const IDSelector* sel,
                             const MakeScorer& make_scorer) const {
        constexpr size_t kQueriesPerTask = 8, kCodeBlock = 1024;
        const size_t dd = size_t(d), kk = size_t(k), nb = size_t(ntotal), cs = code_size();
        const bool ip = metric_type == METRIC_INNER_PRODUCT;
        const float pad = missing_distance(metric_type);
        InterruptPoll poll;
        parallel_for((size_t(n) + kQueriesPerTask - 1) / kQueriesPerTask, [&](size_t t) {
            const size_t q0 = t * kQueriesPerTask, q1 = std::min(size_t(n), q0 + kQueriesPerTask);
            std::vector<float> buf(kQueriesPerTask * kCodeBlock);
            // Fast-scan layouts (blocks of 32) are gathered into plain codes.
            std::vector<uint8_t> plain(code_block_ == 1 ? 0 : kCodeBlock * cs);
            using Scorer = decltype(make_scorer());
            std::vector<Scorer> scorers;
            for (size_t q = q0; q < q1; q++) {
                TopK::init(D + q * kk, I + q * kk, kk);  // L2, or the negated IP
                scorers.push_back(make_scorer());
                scorers.back().set_query(x + q * dd);
            }
            for (size_t j0 = 0; j0 < nb; j0 += kCodeBlock) {
                const size_t m = std::min(kCodeBlock, nb - j0);
                const uint8_t* block = codes_.data() + j0 * cs;
                if (code_block_ != 1) {
                    layout().gather(codes_.data(), j0, m, plain.data());
                    block = plain.data();
                }
                if constexpr (HasScoresGroup<Scorer>::value) {
                    Scorer::scores_group(scorers.data(), q1 - q0, block, m, buf.data());
                } else {
                    for (size_t q = q0; q < q1; q++) scorers[q - q0].scores(block, m, buf.data() + (q - q0) * m);
                }
                for (size_t q = q0; q < q1; q++) {
                    float* Dq = D + q * kk;
                    idx_t* Iq = I + q * kk;
                    const float* bq = buf.data() + (q - q0) * m;
                    for (size_t j = 0; j < m; j++) {
                        const float s = ip ? -bq[j] : bq[j];
                        if (s > Dq[0] || (sel && !sel->is_member(idx_t(j0 + j)))) continue;
                        TopK::push(Dq, Iq, kk, s, idx_t(j0 + j));
                    }
                }
            }
            for (size_t q = q0; q < q1; q++) TopK::finish(D + q * kk, I + q * kk, kk, ip, pad);
            poll();
        });
    }
    MappedArray<uint8_t> codes_;  // in layout(); a mapped file's bytes under IO_FLAG_MMAP
    size_t code_block_ = 1;        // 32 for fast-scan (code_layout.h)
};

}  // namespace nearly
