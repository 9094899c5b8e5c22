// nearest_transposed with AVX2: 8 centroids per vector, a running minimum
// and its index per lane (strict <, so each lane keeps its first minimum),
// lanes merged by value then index at the end. Multiply and add stay
// separate (the file is built with -ffp-contract=off) so every score has the
// reference's bits.
#include <immintrin.h>

#include "nearly/simd.h"

namespace nearly {

size_t nearest_transposed_avx2(const float* x, size_t d, const float* ct, const float* norms, size_t k,
                               float* score) {
    const size_t k8 = k & ~size_t(7);
    if (k8 == 0) return nearest_transposed_scalar(x, d, ct, norms, k, score);
    const __m256 two = _mm256_set1_ps(2.f);
    __m256 best = _mm256_set1_ps(0.f);
    __m256i best_i = _mm256_setzero_si256();
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step = _mm256_set1_epi32(8);
    auto update = [&](__m256 s, bool first) {
        if (first) {
            best = s;
            best_i = idx;
        } else {
            const __m256 lt = _mm256_cmp_ps(s, best, _CMP_LT_OQ);
            best = _mm256_blendv_ps(best, s, lt);
            best_i = _mm256_blendv_epi8(best_i, idx, _mm256_castps_si256(lt));
        }
        idx = _mm256_add_epi32(idx, step);
    };
    // Four blocks of 8 at a time, four add chains in flight (see the AVX-512
    // version); the same sums and the same order of updates.
    size_t c = 0;
    for (; c + 32 <= k8; c += 32) {
        __m256 ip0 = _mm256_setzero_ps(), ip1 = ip0, ip2 = ip0, ip3 = ip0;
        for (size_t i = 0; i < d; i++) {
            const __m256 xi = _mm256_set1_ps(x[i]);
            const float* row = ct + i * k + c;
            ip0 = _mm256_add_ps(ip0, _mm256_mul_ps(xi, _mm256_loadu_ps(row)));
            ip1 = _mm256_add_ps(ip1, _mm256_mul_ps(xi, _mm256_loadu_ps(row + 8)));
            ip2 = _mm256_add_ps(ip2, _mm256_mul_ps(xi, _mm256_loadu_ps(row + 16)));
            ip3 = _mm256_add_ps(ip3, _mm256_mul_ps(xi, _mm256_loadu_ps(row + 24)));
        }
        update(_mm256_sub_ps(_mm256_loadu_ps(norms + c), _mm256_mul_ps(two, ip0)), c == 0);
        update(_mm256_sub_ps(_mm256_loadu_ps(norms + c + 8), _mm256_mul_ps(two, ip1)), false);
        update(_mm256_sub_ps(_mm256_loadu_ps(norms + c + 16), _mm256_mul_ps(two, ip2)), false);
        update(_mm256_sub_ps(_mm256_loadu_ps(norms + c + 24), _mm256_mul_ps(two, ip3)), false);
    }
    for (; c < k8; c += 8) {
        __m256 ip = _mm256_setzero_ps();
        for (size_t i = 0; i < d; i++)
            ip = _mm256_add_ps(ip, _mm256_mul_ps(_mm256_set1_ps(x[i]), _mm256_loadu_ps(ct + i * k + c)));
        update(_mm256_sub_ps(_mm256_loadu_ps(norms + c), _mm256_mul_ps(two, ip)), c == 0);
    }
    alignas(32) float bv[8];
    alignas(32) int bi[8];
    _mm256_store_ps(bv, best);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bi), best_i);
    size_t b = 0;
    for (size_t l = 1; l < 8; l++)
        if (bv[l] < bv[b] || (bv[l] == bv[b] && bi[l] < bi[b])) b = l;
    size_t best_c = size_t(bi[b]);
    float best_s = bv[b];
    if (k8 < k) {  // the last k % 8 centroids, as the reference scores them
        for (size_t c = k8; c < k; c++) {
            float ip = 0.f;
            for (size_t i = 0; i < d; i++) ip += x[i] * ct[i * k + c];
            const float s = norms[c] - 2.f * ip;
            if (s < best_s) {
                best_s = s;
                best_c = c;
            }
        }
    }
    *score = best_s;
    return best_c;
}

}  // namespace nearly
