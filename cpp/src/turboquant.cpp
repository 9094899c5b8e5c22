#include "nearly/turboquant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "nearly/common.h"
#include "nearly/scalar_quantizer.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
constexpr size_t kSeedSlots = 3;  // seed_lo, seed_hi, projection type

// The unnormalized Walsh-Hadamard transform of n (a power of two) values in
// place, butterflies in faiss's order (so the signs taken of it are faiss's,
// bit for bit).
void walsh_hadamard(float* buf, size_t n) {
    for (size_t h = 1; h < n; h <<= 1)
        for (size_t i = 0; i < n; i += h << 1)
            for (size_t j = i; j < i + h; j++) {
                const float a = buf[j], b = buf[j + h];
                buf[j] = a + b;
                buf[j + h] = a - b;
            }
}

float squared_norm(const float* x, size_t d) {
    float s = 0.f;
    for (size_t j = 0; j < d; j++) s += x[j] * x[j];
    return s;
}
}  // namespace

std::vector<float> TurboQuantCodec::trained_for(size_t bits, uint64_t seed) {
    std::vector<float> c, b;
    lloyd_max_codebook(bits - 1, 1.0, c, b);
    c.insert(c.end(), b.begin(), b.end());
    float s[2];
    std::memcpy(s, &seed, sizeof(seed));  // faiss packs the seed's bits into two floats
    c.push_back(s[0]);
    c.push_back(s[1]);
    c.push_back(0.f);  // the Hadamard projection
    return c;
}

void TurboQuantCodec::check_trained(size_t bits, const std::vector<float>& t) {
    const size_t k = size_t(1) << (bits - 1);
    NEARLY_CHECK_ARG(t.size() == 2 * k - 1 + kSeedSlots,
                     "TurboQuant: trained must hold " + std::to_string(2 * k - 1 + kSeedSlots) + " floats");
    for (size_t i = 0; i < 2 * k - 1; i++) NEARLY_CHECK_ARG(std::isfinite(t[i]), "TurboQuant: trained is not finite");
    for (size_t i = 1; i < k; i++)
        NEARLY_CHECK_ARG(t[i - 1] < t[i] && t[k + i - 1] > t[i - 1] && t[k + i - 1] < t[i],
                         "TurboQuant: the centroids must ascend with each midpoint between its two");
    const float type = t[2 * k - 1 + 2];
    if (type != 0.f)
        throw NotSupported("TurboQuant: projection type " + std::to_string(type) +
                           " not implemented in nearly (0, the randomized Hadamard transform, is)");
}

TurboQuantCodec::TurboQuantCodec(const ScalarQuantizer& sq) : d(sq.d) {
    NEARLY_CHECK_ARG(ScalarQuantizer::is_turboq_type(sq.qtype), "TurboQuantCodec: not a QT_*bit_tq type");
    NEARLY_CHECK_ARG(sq.is_trained(), "ScalarQuantizer: not trained");
    mse_bits = sq.bits - 1;
    check_trained(sq.bits, sq.trained);
    const size_t k = size_t(1) << mse_bits;
    plane_bytes = (d + 7) / 8;
    centroids_.assign(sq.trained.begin(), sq.trained.begin() + k);
    boundaries_.assign(sq.trained.begin() + k, sq.trained.begin() + 2 * k - 1);
    uint64_t seed;
    std::memcpy(&seed, &sq.trained[2 * k - 1], sizeof(seed));
    padded_d = 1;
    while (padded_d < d) padded_d <<= 1;
    // faiss's RandomGenerator(seed): std::mt19937 seeded with the low 32 bits.
    std::mt19937 mt{static_cast<uint32_t>(seed)};
    signs_.resize(padded_d);
    for (size_t i = 0; i < padded_d; i++) signs_[i] = mt() % 2 == 0 ? 1.f : -1.f;
    const float inv_sqrt_d = 1.0f / std::sqrt(float(d));
    table_.assign(16, 0.f);
    for (size_t i = 0; i < k; i++) table_[i] = centroids_[i] * inv_sqrt_d;
}

void TurboQuantCodec::transform(float* buf) const {
    for (size_t j = 0; j < padded_d; j++) buf[j] *= signs_[j];
    walsh_hadamard(buf, padded_d);
}

void TurboQuantCodec::encode(const float* x, uint8_t* code) const {
    std::memset(code, 0, factors_offset());
    const float sqrt_d = std::sqrt(float(d));
    const float inv_sqrt_d = 1.0f / sqrt_d;
    float norm = std::sqrt(squared_norm(x, d));
    if (norm < 1e-30f) norm = 1e-30f;
    std::vector<float> r(padded_d, 0.f);
    const size_t nb = boundaries_.size();
    for (size_t j = 0; j < d; j++) {
        const float v = x[j] / norm;
        const size_t idx = size_t(std::upper_bound(boundaries_.data(), boundaries_.data() + nb, v * sqrt_d) -
                                  boundaries_.data());
        for (size_t p = 0; p < mse_bits; p++)
            if (idx >> p & 1) code[p * plane_bytes + j / 8] |= uint8_t(1u << (j % 8));
        r[j] = v - centroids_[idx] * inv_sqrt_d;
    }
    const float gamma = std::sqrt(squared_norm(r.data(), d));
    transform(r.data());
    uint8_t* qjl = code + qjl_offset();
    for (size_t j = 0; j < d; j++)
        if (r[j] > 0.f) qjl[j / 8] |= uint8_t(1u << (j % 8));
    const float factors[2] = {norm, gamma};
    std::memcpy(code + factors_offset(), factors, sizeof(factors));
}

void TurboQuantCodec::decode(const uint8_t* code, float* x) const {
    float factors[2];
    std::memcpy(factors, code + factors_offset(), sizeof(factors));
    const float inv_sqrt_d = 1.0f / std::sqrt(float(d));
    const uint8_t* qjl = code + qjl_offset();
    // The QJL part: S^T applied to the signs (S = the transform's first d
    // rows, entries +-1; H is its own transpose, the sign flips come after).
    std::vector<float> s(padded_d, 0.f);
    for (size_t j = 0; j < d; j++) s[j] = (qjl[j / 8] >> (j % 8) & 1) ? 1.f : -1.f;
    walsh_hadamard(s.data(), padded_d);
    const float coeff = float(std::sqrt(M_PI / 2.0f) / float(d) * factors[1]);
    for (size_t j = 0; j < d; j++) {
        size_t idx = 0;
        for (size_t p = 0; p < mse_bits; p++) idx |= size_t(code[p * plane_bytes + j / 8] >> (j % 8) & 1) << p;
        const float v = centroids_[idx] * inv_sqrt_d + coeff * (s[j] * signs_[j]);
        x[j] = v * factors[0];
    }
}

void TurboQuantCodec::prepare_query(const float* q, float* qpad, float* p, float* psum) const {
    const size_t dp = padded(d);
    std::fill(qpad, qpad + dp, 0.f);
    std::copy(q, q + d, qpad);
    std::vector<float> buf(padded_d, 0.f);
    std::copy(q, q + d, buf.begin());
    transform(buf.data());
    std::fill(p, p + dp, 0.f);
    float s = 0.f;
    for (size_t j = 0; j < d; j++) {
        p[j] = buf[j];
        s += p[j];
    }
    *psum = s;
}

void tq_sums_scalar(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes,
                    const float* q, const float* p, const float* t, float* mse, float* qjl) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes[i];
        const uint8_t* s = c + mse_bits * plane_bytes;
        float a = 0.f, b = 0.f;
        for (size_t j = 0; j < d; j++) {
            size_t idx = 0;
            for (size_t pl = 0; pl < mse_bits; pl++) idx |= size_t(c[pl * plane_bytes + j / 8] >> (j % 8) & 1) << pl;
            a += q[j] * t[idx];
            if (s[j / 8] >> (j % 8) & 1) b += p[j];
        }
        mse[i] = a;
        qjl[i] = b;
    }
}

void tq_sums(size_t mse_bits, const uint8_t* const* codes, size_t n, size_t d, size_t plane_bytes, const float* q,
             const float* p, const float* t, float* mse, float* qjl) {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return tq_sums_avx512(mse_bits, codes, n, d, plane_bytes, q, p, t, mse, qjl);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return tq_sums_avx2(mse_bits, codes, n, d, plane_bytes, q, p, t, mse, qjl);
#endif
        default: return tq_sums_scalar(mse_bits, codes, n, d, plane_bytes, q, p, t, mse, qjl);
    }
}

void tq_sums_group(size_t mse_bits, const uint8_t* codes, size_t cs, size_t n, size_t d, size_t plane_bytes,
                   size_t nq, const float* const* q, const float* const* p, const float* t, float* mse, float* qjl) {
#if defined(NEARLY_HAVE_AVX512)
    if (simd_level() == SimdLevel::avx512)
        return tq_sums_group_avx512(mse_bits, codes, cs, n, d, plane_bytes, nq, q, p, t, mse, qjl);
#endif
#if defined(NEARLY_HAVE_AVX2)
    if (simd_level() == SimdLevel::avx2)
        return tq_sums_group_avx2(mse_bits, codes, cs, n, d, plane_bytes, nq, q, p, t, mse, qjl);
#endif
    std::vector<const uint8_t*> ptrs(n);
    for (size_t i = 0; i < n; i++) ptrs[i] = codes + i * cs;
    for (size_t u = 0; u < nq; u++) tq_sums(mse_bits, ptrs.data(), n, d, plane_bytes, q[u], p[u], t, mse + u * n, qjl + u * n);
}

}  // namespace nearly
