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

void hamming_ny(const uint8_t* q, const uint8_t* x, size_t cs, size_t ny, int32_t* out) {
#if defined(NEARLY_HAVE_AVX2)
    if (hamming_vpopcntdq_native()) return hamming_ny_vpopcntdq(q, x, cs, ny, out);
    if (simd_level() == SimdLevel::avx2 || simd_level() == SimdLevel::avx512) return hamming_ny_popcnt(q, x, cs, ny, out);
#endif
    hamming_ny_scalar(q, x, cs, ny, out);
}

void knn_hamming(const uint8_t* xq, size_t nq, const uint8_t* xb, size_t nb, size_t cs, size_t k, int32_t* D,
                 idx_t* I, const IDSelector* sel, const idx_t* labels) {
    constexpr size_t kChunk = 4096;
    InterruptPoll poll;
    auto one = [&](size_t q, std::vector<int32_t>& dist, std::vector<float>& hd, std::vector<idx_t>& hi) {
        TopK::init(hd.data(), hi.data(), k);
        for (size_t j0 = 0; j0 < nb; j0 += kChunk) {
            const size_t n = std::min(kChunk, nb - j0);
            hamming_ny(xq + q * cs, xb + j0 * cs, cs, n, dist.data());
            for (size_t j = 0; j < n; j++) {
                idx_t id = labels ? labels[j0 + j] : idx_t(j0 + j);
                if (sel && !sel->is_member(id)) continue;
                TopK::push(hd.data(), hi.data(), k, float(dist[j]), id);
            }
        }
        TopK::sort(hd.data(), hi.data(), k);
        for (size_t i = 0; i < k; i++) {
            I[q * k + i] = hi[i];
            D[q * k + i] = hi[i] < 0 ? kHammingPad : int32_t(hd[i]);
        }
    };
    const size_t per = std::max<size_t>(1, std::min<size_t>(64, nq / (4 * size_t(get_num_threads())) + 1));
    const size_t ntasks = (nq + per - 1) / per;
    const bool par = nq > 1 && nq * nb * cs > (1u << 18);
    parallel_for(par ? ntasks : (nq ? 1 : 0), [&](size_t t) {
        std::vector<int32_t> dist(kChunk);
        std::vector<float> hd(k);
        std::vector<idx_t> hi(k);
        const size_t q0 = par ? t * per : 0, q1 = par ? std::min(nq, q0 + per) : nq;
        for (size_t q = q0; q < q1; q++) {
            one(q, dist, hd, hi);
            poll();
        }
    });
}

}  // namespace nearly
