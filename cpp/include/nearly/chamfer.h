// Exact Chamfer similarity of vector sets (MaxSim, ColBERT's late
// interaction): chamfer(Q, X) = sum over q in Q of max over x in X of <q, x>.
// Not symmetric. The ground truth that MUVERA's encodings approximate, and
// the re-ranker of multi-vector search.
#pragma once
#include <cstddef>
#include <cstdint>

#include "nearly/common.h"

namespace nearly {

// Scalar reference: plain loops, float sums in coordinate order.
float chamfer_score_reference(const float* query, size_t n_query, const float* doc, size_t n_doc, size_t d);

// scores[i * n_docs + j] = chamfer(query set i, document j), for ragged query
// sets and documents (vectors back to back, lengths per set, each >= 1).
// Inner products go through the active SIMD level's packed micro-kernel;
// the work is split into fixed blocks of query sets and documents, so the
// result does not depend on the thread count.
void chamfer_scores(const float* queries, size_t n_query_vectors, const int64_t* query_lengths, size_t n_queries,
                    const float* docs, size_t n_doc_vectors, const int64_t* doc_lengths, size_t n_docs, size_t d,
                    float* scores);

// scores[j] = chamfer(query, document ids[j]) for documents stored back to
// back with row offsets doc_offsets (n_docs + 1 values): the re-ranking of
// candidates. Ids must be in [0, n_docs).
void chamfer_scores_gather(const float* query, size_t n_query, const float* doc_vectors, const size_t* doc_offsets,
                           size_t n_docs, const idx_t* ids, size_t n_ids, size_t d, float* scores);

}  // namespace nearly
