// Runtime SIMD dispatch: one table of kernels per instruction set, chosen once
// (from the CPU's features, or NEARLY_SIMD) and switchable for tests.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>
#include "nearly/common.h"

namespace nearly {

// Runs f(std::integral_constant<int, V>{}) for V = min(nv, Max), nv >= 1:
// how a kernel templated on its number of vector registers picks one at run
// time.
template <int Max, int V = 1, class F>
inline void with_vector_count(size_t nv, F&& f) {
    if constexpr (V >= Max)
        f(std::integral_constant<int, Max>{});
    else if (nv <= size_t(V))
        f(std::integral_constant<int, V>{});
    else
        with_vector_count<Max, V + 1>(nv, f);
}

enum class SimdLevel { scalar = 0, neon = 1, avx2 = 2, avx512 = 3 };

// Tile shape of the inner-product micro-kernel of one SIMD level: it computes
// an mr x nr block of Q * X^T from mr query rows (row stride d) and one packed
// panel of X (d x nr, column j of the panel is database vector j).
struct GemmShape {
    int mr;
    int nr;
};

// The last pairs of a 4-bit fast-scan table whose lookups are multiplied by
// small integers before they are added (faiss's norm_scale: an additive
// quantizer's two norm tables are quantized s times coarser, so that they do
// not take the byte range from the inner-product tables). mult[t][0] / [1]:
// the low / high nibble of pair npairs - npairs_tail + t. Sums stay 16-bit.
struct PQ4Tail {
    size_t npairs = 0;  // 0, 1 or 2
    uint16_t mult[2][2] = {{1, 1}, {1, 1}};
};

struct SimdKernels {
    SimdLevel level;
    float (*inner_product)(const float* x, const float* y, size_t d);
    float (*l2sqr)(const float* x, const float* y, size_t d);
    // out[j] = <q, x_j> / ||q - x_j||^2 for ny rows of x (row stride d).
    void (*inner_products_ny)(const float* q, const float* x, size_t d, size_t ny, float* out);
    void (*l2sqr_ny)(const float* q, const float* x, size_t d, size_t ny, float* out);
    // out[i] = <q, rows[i]> for n rows anywhere in memory (Panorama's level
    // slices of candidates): several rows at once share each load of q and
    // their sums' reductions.
    void (*inner_products_rows)(const float* q, const float* const* rows, size_t d, size_t n, float* out);
    // Integer dot product of int8 codes (graph traversal on compact copies).
    int32_t (*dot_i8)(const int8_t* a, const int8_t* b, size_t d);
    GemmShape gemm;
    // out[i * ldo + j] = sum_k q[i * d + k] * panel[k * nr + j], i < mr, j < nr.
    void (*gemm_micro)(const float* q, const float* panel, size_t d, float* out, size_t ldo);
    // out[j] = sum over i < d of x[i] * w[i * n + j], j < n, each sum in order
    // i = 0, 1, ... with the product rounded before the add (never fused):
    // the same bits at every level (FDE SimHash signs, see fde.cpp).
    void (*vecmat_unfused)(const float* x, size_t d, const float* w, size_t n, float* out);
    // The same sums with each step one fused multiply-add (half the
    // floating-point work; PQ distance tables). The same bits at every level.
    void (*vecmat_fused)(const float* x, size_t d, const float* w, size_t n, float* out);
    // out[i * ldo + j] = <q_i, x_j> for 4 query rows (stride d) and ny database
    // rows: small batches read each database row once for four queries,
    // without the packing the gemm path needs.
    void (*ip_4q)(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo);
    // The same for squared L2 distances, summed from the differences (not
    // from norms and inner products): small batches get faiss's direct-path
    // precision.
    void (*l2sqr_4q)(const float* q, const float* x, size_t d, size_t ny, float* out, size_t ldo);
    // PQ asymmetric distances of n 8-bit codes of M bytes (row-major):
    // out[j] = sum over m < M of tab[m * 256 + codes[j * M + m]], added in
    // order m = 0, 1, ...: only additions, so the same bits at every level.
    void (*pq_adc8)(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out);
    // Nearest of k centroids given transposed (ct: d x k) with squared norms:
    // s_c = norms[c] - 2 * ip_c, ip_c = sum over i < d of x[i] * ct[i * k + c]
    // (each product rounded before its add, in order i), returns the first c
    // of minimal s_c and stores s_c in *score. Norms all zero: the largest
    // inner product. k-means on few dimensions and PQ encoding. The same bits
    // and index at every level.
    size_t (*nearest_transposed)(const float* x, size_t d, const float* ct, const float* norms, size_t k,
                                 float* score);
    // 4-bit fast-scan (pq_fast_scan.h). pq4_pack_lut lays out byte tables
    // (2 * npairs x 16) for this level's pq4_scan_block (npairs * 64 bytes,
    // 64-byte aligned). pq4_scan_block sums each of nq queries' tables
    // (packed[q]) over the 32 codes of one block (npairs x 32 bytes, low
    // nibble = even subquantizer) in 16-bit arithmetic (mod 2^16), writes
    // query q's sums in entry order at sums + 32 q and the mask of its
    // entries whose sum is <= thr[q] at masks[q]; the lookups of the tail's
    // pairs (PQ4Tail, the same for all nq queries) are multiplied first.
    // Queries scanned together share each load of the codes. The same bits
    // at every level.
    void (*pq4_pack_lut)(const uint8_t* lut, size_t npairs, size_t ntail, uint8_t* packed);
    void (*pq4_scan_block)(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                           const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail);
    // out[j] = sum_i |q_i - x_ji| (METRIC_L1) / max_i |q_i - x_ji| (METRIC_Linf)
    // for ny rows of x (row stride d). Linf is exact at every level; L1's
    // sums are in the level's order.
    void (*l1_ny)(const float* q, const float* x, size_t d, size_t ny, float* out);
    void (*linf_ny)(const float* q, const float* x, size_t d, size_t ny, float* out);
    // PQ code to code (symmetric) score of two 8-bit codes of M bytes from the
    // centroids C (M x 256 x dsub): the sum over m of ||C[m][a[m]] -
    // C[m][b[m]]||^2, or of their inner products when ip. Sums in the level's
    // order (HNSW pruning on codes, hnsw_pq.cpp).
    float (*pq_sdc8)(const float* C, size_t dsub, size_t M, const uint8_t* a, const uint8_t* b, bool ip);
    // SuperKMeans's test (super_kmeans.h): the c < n whose partial distance
    // (base + yn[c]) - 2 ip[c] is <= limit, their indexes in idx (ascending)
    // and partial distances in out (both with room for n + 16: a level may
    // write a whole vector past the last one kept); returns how many. The
    // same values at every level.
    size_t (*select_within)(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                            float* out);
};

// The vecmat kernels of each level (cpp/src/simd/<isa>/vecmat.cpp, compiled
// with -ffp-contract=off).
void vecmat_unfused_scalar(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_unfused_avx2(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_unfused_avx512(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_unfused_neon(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_fused_scalar(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_fused_avx2(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_fused_avx512(const float* x, size_t d, const float* w, size_t n, float* out);
void vecmat_fused_neon(const float* x, size_t d, const float* w, size_t n, float* out);

// The pq_adc8 kernel of each level (cpp/src/simd/<isa>/pq.cpp); NEON uses
// the scalar one.
void pq_adc8_scalar(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out);
void pq_adc8_avx2(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out);
void pq_adc8_avx512(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out);
// The pq_sdc8 kernel of each level (cpp/src/simd/<isa>/pq.cpp); AVX-512 uses
// the AVX2 one (dsub 8, the usual width, fills one 256-bit register), NEON
// the scalar one.
float pq_sdc8_scalar(const float* C, size_t dsub, size_t M, const uint8_t* a, const uint8_t* b, bool ip);
float pq_sdc8_avx2(const float* C, size_t dsub, size_t M, const uint8_t* a, const uint8_t* b, bool ip);
// The gather variant that pq_adc8_avx512 picks on CPUs where it is faster
// (tested on its own, whichever the CPU picks).
void pq_adc8_avx512_gathers(const float* tab, const uint8_t* codes, size_t M, size_t n, float* out);

// The 4-bit fast-scan kernels of each level (cpp/src/simd/<isa>/pq_fast_scan.cpp);
// NEON uses the scalar ones.
void pq4_pack_lut_scalar(const uint8_t* lut, size_t npairs, size_t ntail, uint8_t* packed);
void pq4_scan_block_scalar(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                           const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail);
void pq4_scan_block_avx2(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                         const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail);
void pq4_pack_lut_avx512(const uint8_t* lut, size_t npairs, size_t ntail, uint8_t* packed);
void pq4_scan_block_avx512(const uint8_t* block, size_t npairs, const uint8_t* const* packed, size_t nq,
                           const uint16_t* thr, uint16_t* sums, uint32_t* masks, const PQ4Tail& tail);

size_t select_within_scalar(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                            float* out);
size_t select_within_avx2(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                          float* out);
size_t select_within_avx512(const float* ip, const float* yn, size_t n, float base, float limit, int32_t* idx,
                            float* out);

size_t nearest_transposed_scalar(const float* x, size_t d, const float* ct, const float* norms, size_t k, float* score);
size_t nearest_transposed_avx2(const float* x, size_t d, const float* ct, const float* norms, size_t k, float* score);
size_t nearest_transposed_avx512(const float* x, size_t d, const float* ct, const float* norms, size_t k, float* score);

const SimdKernels& simd();  // the active table
SimdLevel simd_level();
std::string simd_level_name(SimdLevel level);
std::vector<SimdLevel> simd_levels_supported();
// Throws InvalidArgument for unknown names and levels this CPU cannot run.
void set_simd_level(const std::string& name);

// Kernel tables, one per compiled ISA (defined in cpp/src/simd/<isa>/).
const SimdKernels& kernels_scalar();
#if defined(NEARLY_HAVE_AVX2)
const SimdKernels& kernels_avx2();
#endif
#if defined(NEARLY_HAVE_AVX512)
const SimdKernels& kernels_avx512();
#endif
#if defined(NEARLY_HAVE_NEON)
const SimdKernels& kernels_neon();
#endif

}  // namespace nearly
