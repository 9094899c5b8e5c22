// nearest_transposed with AVX-512: 16 centroids per vector, as the AVX2
// version (running minimum and index per lane, strict <, merged by value then
// index; multiply and add kept separate by -ffp-contract=off).
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

size_t nearest_transposed_avx512(const float* x, size_t d, const float* ct, const float* norms, size_t k,
                                 float* score) {
    const size_t k16 = k & ~size_t(15);
    if (k16 == 0) return nearest_transposed_avx2(x, d, ct, norms, k, score);
    const __m512 two = _mm512_set1_ps(2.f);
    __m512 best = _mm512_setzero_ps();
    __m512i best_i = _mm512_setzero_si512();
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    auto update = [&](__m512 s, bool first) {
        if (first) {
            best = s;
            best_i = idx;
        } else {
            const __mmask16 lt = _mm512_cmp_ps_mask(s, best, _CMP_LT_OQ);
            best = _mm512_mask_blend_ps(lt, best, s);
            best_i = _mm512_mask_blend_epi32(lt, best_i, idx);
        }
        idx = _mm512_add_epi32(idx, step);
    };
    // Four blocks of 16 centroids at a time: each block's sum over the d
    // dimensions is a chain of dependent adds, and four chains in flight
    // keep the adder busy (one chain at a time waited on each add: 3x slower
    // at d = 12). Each score is still summed in order i, and the blocks
    // update the minimum in order c, so the answer is the one-block one.
    size_t c = 0;
    for (; c + 64 <= k16; c += 64) {
        __m512 ip0 = _mm512_setzero_ps(), ip1 = ip0, ip2 = ip0, ip3 = ip0;
        for (size_t i = 0; i < d; i++) {
            const __m512 xi = _mm512_set1_ps(x[i]);
            const float* row = ct + i * k + c;
            ip0 = _mm512_add_ps(ip0, _mm512_mul_ps(xi, _mm512_loadu_ps(row)));
            ip1 = _mm512_add_ps(ip1, _mm512_mul_ps(xi, _mm512_loadu_ps(row + 16)));
            ip2 = _mm512_add_ps(ip2, _mm512_mul_ps(xi, _mm512_loadu_ps(row + 32)));
            ip3 = _mm512_add_ps(ip3, _mm512_mul_ps(xi, _mm512_loadu_ps(row + 48)));
        }
        update(_mm512_sub_ps(_mm512_loadu_ps(norms + c), _mm512_mul_ps(two, ip0)), c == 0);
        update(_mm512_sub_ps(_mm512_loadu_ps(norms + c + 16), _mm512_mul_ps(two, ip1)), false);
        update(_mm512_sub_ps(_mm512_loadu_ps(norms + c + 32), _mm512_mul_ps(two, ip2)), false);
        update(_mm512_sub_ps(_mm512_loadu_ps(norms + c + 48), _mm512_mul_ps(two, ip3)), false);
    }
    for (; c < k16; c += 16) {
        __m512 ip = _mm512_setzero_ps();
        for (size_t i = 0; i < d; i++)
            ip = _mm512_add_ps(ip, _mm512_mul_ps(_mm512_set1_ps(x[i]), _mm512_loadu_ps(ct + i * k + c)));
        update(_mm512_sub_ps(_mm512_loadu_ps(norms + c), _mm512_mul_ps(two, ip)), c == 0);
    }
    alignas(64) float bv[16];
    alignas(64) int bi[16];
    _mm512_store_ps(bv, best);
    _mm512_store_si512(bi, best_i);
    size_t b = 0;
    for (size_t l = 1; l < 16; l++)
        if (bv[l] < bv[b] || (bv[l] == bv[b] && bi[l] < bi[b])) b = l;
    size_t best_c = size_t(bi[b]);
    float best_s = bv[b];
    for (size_t c = k16; c < k; c++) {  // the last k % 16 centroids, as the reference scores them
        float ip = 0.f;
        for (size_t i = 0; i < d; i++) ip += x[i] * ct[i * k + c];
        const float s = norms[c] - 2.f * ip;
        if (s < best_s) {
            best_s = s;
            best_c = c;
        }
    }
    *score = best_s;
    return best_c;
}

}  // namespace nearly
