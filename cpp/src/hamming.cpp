#include "nearly/hamming.h"

#include <algorithm>
#include <vector>

#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/topk.h"

namespace nearly {

bool hamming_vpopcntdq_native() {
#if defined(NEARLY_HAVE_AVX512)
    static const bool has = cpu_has_avx512_vpopcntdq();
    return has && simd_level() == SimdLevel::avx512;
#else
    return false;
#endif
}

HammingNyFn hamming_ny_kernel() {
#if defined(NEARLY_HAVE_AVX2)
    if (hamming_vpopcntdq_native()) return hamming_ny_vpopcntdq;
    if (simd_level() == SimdLevel::avx2 || simd_level() == SimdLevel::avx512) return hamming_ny_popcnt;
#endif
#if defined(NEARLY_HAVE_NEON)
    if (simd_level() == SimdLevel::neon) return hamming_ny_neon;
#endif
    return hamming_ny_scalar;
}

void hamming_ny(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
    hamming_ny_kernel()(q, x, cs, ny, out);
}

void knn_hamming(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t cs, size_t k, int32_t* D,
                 idx_t* I, const IDSelector* sel, const idx_t* labels) {
    // Queries in groups of 16, the database in chunks that stay in cache
    // while every query of the group scans them.
    constexpr size_t kGroup = 16;
    const size_t chunk = std::max<size_t>(256, (size_t(1) << 17) / std::max<size_t>(cs, 1));
    InterruptPoll poll;
    const bool par = nq > 1 && nq * nb * cs > (1u << 18);
    const size_t ngroups = (nq + kGroup - 1) / kGroup;
    const size_t group = par && ngroups < size_t(get_num_threads()) ? 1 : kGroup;
    const size_t ntasks = (nq + group - 1) / group;
    parallel_for(par ? ntasks : (nq ? 1 : 0), [&](size_t t) {
        std::vector<int32_t> dist(chunk);
        std::vector<float> hd(kGroup * k);
        std::vector<idx_t> hi(kGroup * k);
        const size_t q0 = par ? t * group : 0, q1 = par ? std::min(nq, q0 + group) : nq;
        for (size_t g0 = q0; g0 < q1; g0 += kGroup) {
            const size_t g1 = std::min(q1, g0 + kGroup);
            for (size_t q = g0; q < g1; q++) TopK::init(&hd[(q - g0) * k], &hi[(q - g0) * k], k);
            for (size_t j0 = 0; j0 < nb; j0 += chunk) {
                const size_t n = std::min(chunk, nb - j0);
                for (size_t q = g0; q < g1; q++) {
                    float* Dq = &hd[(q - g0) * k];
                    idx_t* Iq = &hi[(q - g0) * k];
                    hamming_ny(xq + q * cs, xb + j0 * cs, cs, n, dist.data());
                    for (size_t j = 0; j < n; j++) {
                        const float v = float(dist[j]);
                        if (v > Dq[0]) continue;
                        idx_t id = labels ? labels[j0 + j] : idx_t(j0 + j);
                        if (!TopK::worse(Dq[0], Iq[0], v, id)) continue;
                        if (sel && !sel->is_member(id)) continue;
                        TopK::push(Dq, Iq, k, v, id);
                    }
                }
                poll();
            }
            for (size_t q = g0; q < g1; q++) {
                float* Dq = &hd[(q - g0) * k];
                idx_t* Iq = &hi[(q - g0) * k];
                TopK::sort(Dq, Iq, k);
                for (size_t i = 0; i < k; i++) {
                    I[q * k + i] = Iq[i];
                    D[q * k + i] = Iq[i] < 0 ? kHammingPad : int32_t(Dq[i]);
                }
            }
        }
    });
}

}  // namespace nearly
