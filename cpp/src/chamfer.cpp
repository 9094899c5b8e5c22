#include "nearly/chamfer.h"

#include <algorithm>
#include <cfloat>
#include <string>
#include <vector>

#include "nearly/distance.h"
#include "nearly/parallel.h"
#include "nearly/ragged.h"

namespace nearly {

namespace {
// A block multiplies up to this many query vectors by this many document
// vectors: a 1 MiB tile of inner products, reduced while still in cache.
constexpr size_t kQueryBlockRows = 256;
constexpr size_t kDocBlockRows = 1024;
// Below this many multiply-adds a call stays on the calling thread.
constexpr double kMinParallelWork = 1 << 20;

// Cuts consecutive sets into blocks of about `rows` vectors; a bigger set is
// a block of its own. Returns the first set of each block, then n_sets.
std::vector<size_t> blocks_of_sets(const std::vector<size_t>& offsets, size_t rows) {
    const size_t n_sets = offsets.size() - 1;
    std::vector<size_t> starts;
    for (size_t s = 0; s < n_sets;) {
        starts.push_back(s);
        size_t e = s + 1;
        while (e < n_sets && offsets[e + 1] - offsets[s] <= rows) e++;
        s = e;
    }
    starts.push_back(n_sets);
    return starts;
}

// Chamfer scores of query sets [q0, q1) (rows qoff[q] .. qoff[q + 1] of
// queries) against n_x_sets documents whose vectors lie back to back at x,
// document t at rows xoff[t] - xoff[0] ...; out[(q - q0) * ldo + t].
void score_block(const float* queries, const size_t* qoff, size_t q0, size_t q1, const float* x, const size_t* xoff,
                 size_t n_x_sets, size_t d, std::vector<float>& ip, float* out, size_t ldo) {
    const size_t nq = qoff[q1] - qoff[q0], nx = xoff[n_x_sets] - xoff[0];
    ip.resize(nq * nx);
    gemm_ip(queries + qoff[q0] * d, nq, x, nx, d, ip.data());
    for (size_t q = q0; q < q1; q++) {
        for (size_t t = 0; t < n_x_sets; t++) {
            const size_t c0 = xoff[t] - xoff[0], c1 = xoff[t + 1] - xoff[0];
            float sum = 0.f;
            for (size_t a = qoff[q]; a < qoff[q + 1]; a++) {
                const float* row = &ip[(a - qoff[q0]) * nx];
                float best = -FLT_MAX;
                for (size_t c = c0; c < c1; c++) best = std::max(best, row[c]);
                sum += best;
            }
            out[(q - q0) * ldo + t] = sum;
        }
    }
}

bool run_in_parallel(double work) { return get_num_threads() > 1 && work >= kMinParallelWork && !in_parallel_region(); }

// Runs fn(0) ... fn(n - 1), on the pool when the call is big enough.
template <class F>
void for_tasks(size_t n, double work, F&& fn) {
    if (run_in_parallel(work)) {
        parallel_for(n, fn);
    } else {
        for (size_t t = 0; t < n; t++) fn(t);
    }
}
}  // namespace

float chamfer_score_reference(const float* query, size_t n_query, const float* doc, size_t n_doc, size_t d) {
    float sum = 0.f;
    for (size_t a = 0; a < n_query; a++) {
        float best = -FLT_MAX;
        for (size_t c = 0; c < n_doc; c++) {
            float ip = 0.f;
            for (size_t k = 0; k < d; k++) ip += query[a * d + k] * doc[c * d + k];
            best = std::max(best, ip);
        }
        sum += best;
    }
    return sum;
}

void chamfer_scores(const float* queries, size_t n_query_vectors, const int64_t* query_lengths, size_t n_queries,
                    const float* docs, size_t n_doc_vectors, const int64_t* doc_lengths, size_t n_docs, size_t d,
                    float* scores) {
    NEARLY_CHECK_ARG(d > 0, "chamfer: the dimension must be positive");
    const std::vector<size_t> qoff = ragged_offsets(query_lengths, n_queries, n_query_vectors, "chamfer queries");
    const std::vector<size_t> xoff = ragged_offsets(doc_lengths, n_docs, n_doc_vectors, "chamfer documents");
    check_finite(queries, n_query_vectors * d, "the query vectors");
    check_finite(docs, n_doc_vectors * d, "the document vectors");
    if (n_queries == 0 || n_docs == 0) return;

    const std::vector<size_t> qblocks = blocks_of_sets(qoff, kQueryBlockRows);
    const std::vector<size_t> xblocks = blocks_of_sets(xoff, kDocBlockRows);
    const size_t nqb = qblocks.size() - 1, nxb = xblocks.size() - 1;
    InterruptPoll poll;
    for_tasks(nqb * nxb, double(n_query_vectors) * n_doc_vectors * d, [&](size_t task) {
        const size_t qb = task / nxb, xb = task % nxb;
        const size_t q0 = qblocks[qb], q1 = qblocks[qb + 1], x0 = xblocks[xb], x1 = xblocks[xb + 1];
        std::vector<float> ip;
        score_block(queries, qoff.data(), q0, q1, docs + xoff[x0] * d, &xoff[x0], x1 - x0, d, ip,
                    scores + q0 * n_docs + x0, n_docs);
        poll();
    });
}

void chamfer_scores_gather(const float* query, size_t n_query, const float* doc_vectors, const size_t* doc_offsets,
                           size_t n_docs, const idx_t* ids, size_t n_ids, size_t d, float* scores) {
    NEARLY_CHECK_ARG(d > 0, "chamfer: the dimension must be positive");
    NEARLY_CHECK_ARG(n_query > 0, "chamfer: the query set is empty");
    check_finite(query, n_query * d, "the query vectors");
    size_t rows = 0;
    for (size_t j = 0; j < n_ids; j++) {
        if (ids[j] < 0 || size_t(ids[j]) >= n_docs)
            throw InvalidArgument("chamfer: document id " + std::to_string(ids[j]) + " is not in [0, " +
                                  std::to_string(n_docs) + ")");
        rows += doc_offsets[ids[j] + 1] - doc_offsets[ids[j]];
    }
    if (n_ids == 0) return;

    // Candidates in fixed groups of about kDocBlockRows vectors, copied
    // together so that one multiply serves the whole group.
    std::vector<size_t> cand_off(n_ids + 1, 0);
    for (size_t j = 0; j < n_ids; j++) cand_off[j + 1] = cand_off[j] + doc_offsets[ids[j] + 1] - doc_offsets[ids[j]];
    const std::vector<size_t> groups = blocks_of_sets(cand_off, kDocBlockRows);
    const size_t qoff[2] = {0, n_query};
    InterruptPoll poll;
    for_tasks(groups.size() - 1, double(n_query) * rows * d, [&](size_t g) {
        const size_t j0 = groups[g], j1 = groups[g + 1];
        std::vector<float> x((cand_off[j1] - cand_off[j0]) * d), ip;
        for (size_t j = j0; j < j1; j++) {
            const float* src = doc_vectors + doc_offsets[ids[j]] * d;
            std::copy(src, src + (cand_off[j + 1] - cand_off[j]) * d, &x[(cand_off[j] - cand_off[j0]) * d]);
        }
        score_block(query, qoff, 0, 1, x.data(), &cand_off[j0], j1 - j0, d, ip, scores + j0, 0);
        poll();
    });
}

}  // namespace nearly
