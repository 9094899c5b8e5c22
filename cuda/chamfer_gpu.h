// Exact Chamfer (MaxSim) scores on the GPU, the twin of nearly/chamfer.h:
// chamfer(Q, X) = sum over q in Q of max over x in X of <q, x>.
//
// One thread block scores one (query set, document) pair: the query's
// vectors sit in shared memory (in chunks when the set is large), each warp
// walks its share of the document's vectors and reduces every inner product
// with a fixed butterfly, the per-warp maxima are merged (max is exact), and
// the maxima are summed over the query vectors in order. So a score does not
// depend on timing, only the inner products' rounding differs from the CPU's
// SIMD order: about 1e-6 relative per product, |score| * 1e-5 or so in all.
#pragma once
#include <cstdint>

#include "gpu_resources.h"

namespace nearly::gpu {

// Documents' vectors on the device, back to back (float32, or IEEE fp16 bits
// when fp16), with device row offsets: document j is rows offsets[j] ..
// offsets[j + 1] - 1, every document at least one row.
struct DeviceDocs {
    const void* vectors = nullptr;
    bool fp16 = false;
    const int64_t* offsets = nullptr;
    int64_t n_docs = 0;
    int d = 0;
};

// Device arrays only, queued on res.stream() (the caller holds the call lock):
// scores[i * n_cand + j] = chamfer(query set i, document cand[i * n_cand + j])
// for query sets given by device row offsets q_offsets (nq + 1 values, from
// 0). A negative candidate scores -FLT_MAX (an empty slot). cand == nullptr
// scores every document (n_cand == docs.n_docs). Candidates must be below
// docs.n_docs: callers check that. max_query_len: the longest query set
// (sizes the shared-memory chunks).
void chamfer_scores_device(GpuResources& res, const float* q, const int64_t* q_offsets, int64_t nq,
                           const DeviceDocs& docs, const int64_t* cand, int64_t n_cand, int64_t max_query_len,
                           float* scores);

// The whole call, for Python and tests: queries and documents ragged (host
// lengths, each >= 1; vectors on the host or the device, float32), cand
// null (every document: scores is nq x n_docs) or nq x n_cand document
// numbers on the host or the device (-1: an empty slot, scored -FLT_MAX; any
// other value outside [0, n_docs) raises). scores on the host or the device.
void chamfer_scores(GpuResources& res, const float* q, size_t n_query_vectors, const int64_t* query_lengths,
                    size_t nq, const float* docs, size_t n_doc_vectors, const int64_t* doc_lengths, size_t n_docs,
                    int d, const int64_t* cand, size_t n_cand, float* scores);

}  // namespace nearly::gpu
