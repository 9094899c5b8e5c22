// maxsim_update with AVX-512 (see maxsim.h): blocks of up to 24 document
// rows against 16 query vectors in one 16-lane register (or 12 rows against
// 32 in two), one multiply-add chain per row and register; the maxima are
// lane-wise, so no horizontal sums.
#include <immintrin.h>

#include <array>
#include <utility>

#include "nearly/maxsim.h"

namespace nearly {

namespace {

template <int NV, int JR>
void rows(const float* qt, size_t mp, size_t d, const float* x, __m512 (&best)[2], const char* pf, size_t pf_lines) {
    __m512 acc[JR][NV];
    for (int j = 0; j < JR; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i++) {
        __m512 qv[NV];
        for (int v = 0; v < NV; v++) qv[v] = _mm512_loadu_ps(qt + i * mp + 16 * v);
        if (i < pf_lines) _mm_prefetch(pf + 64 * i, _MM_HINT_T1);
        for (int j = 0; j < JR; j++) {
            const __m512 xb = _mm512_set1_ps(x[size_t(j) * d + i]);
            for (int v = 0; v < NV; v++) acc[j][v] = _mm512_fmadd_ps(xb, qv[v], acc[j][v]);
        }
    }
    for (int j = 0; j < JR; j++)
        for (int v = 0; v < NV; v++) best[v] = _mm512_max_ps(best[v], acc[j][v]);
    for (size_t i = d; i < pf_lines; i++) _mm_prefetch(pf + 64 * i, _MM_HINT_T1);
}

using RowsFn = void (*)(const float*, size_t, size_t, const float*, __m512 (&)[2], const char*, size_t);

template <int NV, size_t... J>
constexpr std::array<RowsFn, sizeof...(J)> rows_table(std::index_sequence<J...>) {
    return {{&rows<NV, int(J) + 1>...}};
}

// Rows per block, at most: an FMA takes 4 cycles and two issue per cycle,
// so a block needs 8 independent sums to keep up; more rows per block only
// cut the number of passes over the queries, up to the 32 registers.
template <int NV>
constexpr size_t kMaxRows = NV == 1 ? 24 : 12;

// The rows in as few blocks as possible, of near-equal sizes (17 rows: one
// block of 17 rather than 8 + 8 + 1, whose last pass would wait on latency).
template <int NV>
void lanes(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best, const char* pf,
           size_t pf_lines) {
    static constexpr auto table = rows_table<NV>(std::make_index_sequence<kMaxRows<NV>>{});
    __m512 b[2];
    for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_ps(best + 16 * v);
    size_t j = 0;
    while (j < n) {
        const size_t blocks = (n - j + kMaxRows<NV> - 1) / kMaxRows<NV>;
        const size_t rows_here = (n - j + blocks - 1) / blocks;
        // This block's share of the lines to prefetch.
        const size_t l0 = pf_lines * j / n, l1 = pf_lines * (j + rows_here) / n;
        table[rows_here - 1](qt, mp, d, x + j * d, b, pf + 64 * l0, l1 - l0);
        j += rows_here;
    }
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(best + 16 * v, b[v]);
}

}  // namespace

void maxsim_update_avx512(const float* qt, size_t mp, size_t d, const float* x, size_t n, float* best,
                          const void* next, size_t next_bytes) {
    // The prefetches go with the first pass over the rows.
    const char* pf = static_cast<const char*>(next);
    size_t pf_lines = next ? (next_bytes + 63) / 64 : 0;
    size_t a = 0;
    for (; a + 32 <= mp; a += 32, pf_lines = 0) lanes<2>(qt + a, mp, d, x, n, best + a, pf, pf_lines);
    if (a < mp) lanes<1>(qt + a, mp, d, x, n, best + a, pf, pf_lines);
}

}  // namespace nearly
