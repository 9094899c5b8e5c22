#include "nearly/rabitq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <queue>
#include <string>
#include <utility>

#include "nearly/hamming.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

// The encoder and the estimates follow faiss's float operations one for
// one, so that codes and scores agree with faiss's to the last bit or two
// (the query's own sums are eight-lane: see dot8).

float load_f32(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
}
void store_f32(uint8_t* p, float v) { std::memcpy(p, &v, 4); }

// The best scale t for rounding |o| (unit norm) to ex_bits per component:
// the rounding whose cosine with |o| is largest, found by walking the
// critical values of t in increasing order (the extended-RaBitQ search).
float optimal_scale(const float* o_abs, size_t d, size_t ex_bits) {
    static constexpr float kTightStart[9] = {0.0f, 0.15f, 0.20f, 0.52f, 0.59f, 0.71f, 0.75f, 0.77f, 0.81f};
    constexpr double kEps = 1e-5;
    constexpr int kNEnum = 10;
    const int max_code = (1 << ex_bits) - 1;
    const float max_o = *std::max_element(o_abs, o_abs + d);
    const float t_end = static_cast<float>(max_code + kNEnum) / max_o;
    const float t_start = t_end * kTightStart[ex_bits];

    std::vector<float> inv(d);
    for (size_t i = 0; i < d; i++) inv[i] = 1.0f / o_abs[i];
    std::vector<int> cur(d);
    float sqr_denominator = static_cast<float>(d) * 0.25f;
    float numerator = 0.0f;
    for (size_t i = 0; i < d; i++) {
        const int c = static_cast<int>((t_start * o_abs[i]) + kEps);
        cur[i] = c;
        sqr_denominator += static_cast<float>(c * c + c);
        numerator += (c + 0.5f) * o_abs[i];
    }
    float inv_sqrt_denom = 1.0f / std::sqrt(sqr_denominator);

    using Step = std::pair<float, size_t>;
    std::priority_queue<Step, std::vector<Step>, std::greater<>> next;
    for (size_t i = 0; i < d; i++) {
        const float t_next = static_cast<float>(cur[i] + 1) * inv[i];
        if (t_next < t_end) next.emplace(t_next, i);
    }
    float max_ip = 0.0f, t = 0.0f;
    while (!next.empty()) {
        const auto [cur_t, i] = next.top();
        next.pop();
        const int o_bar = ++cur[i];
        const float delta = 2.0f * o_bar;
        sqr_denominator += delta;
        numerator += o_abs[i];
        const float old_denom = sqr_denominator - delta;
        inv_sqrt_denom = inv_sqrt_denom * (1.0f - 0.5f * delta / (old_denom + delta * 0.5f));
        const float ip = numerator * inv_sqrt_denom;
        if (ip > max_ip) {
            max_ip = ip;
            t = cur_t;
        }
        if (o_bar < max_code) {
            const float t_next = static_cast<float>(o_bar + 1) * inv[i];
            if (t_next < t_end) next.emplace(t_next, i);
        }
    }
    return t;
}

// The extra bits of residual r (ex_bits per component, packed little-endian
// in component order) and their two factors; norm_sqr = ||r||^2.
void encode_extra_bits(const float* r, float norm_sqr, const float* centroid, size_t d, size_t ex_bits,
                       MetricType metric, uint8_t* ex_code, uint8_t* ex_factors) {
    constexpr double kEps = 1e-5;
    const float norm = std::sqrt(norm_sqr);
    const size_t ex_bytes = (d * ex_bits + 7) / 8;
    std::memset(ex_code, 0, ex_bytes);
    if (norm < 1e-10f) {
        store_f32(ex_factors, 0.f);
        store_f32(ex_factors + 4, 0.f);
        return;
    }
    std::vector<float> o_abs(d);
    for (size_t i = 0; i < d; i++) o_abs[i] = std::abs(r[i] / norm);
    const float t = optimal_scale(o_abs.data(), d, ex_bits);
    const int max_code = (1 << ex_bits) - 1;
    double ipnorm = 0;
    size_t bit = 0;
    for (size_t i = 0; i < d; i++) {
        int c = std::min(static_cast<int>(t * o_abs[i] + kEps), max_code);
        ipnorm += (c + 0.5) * o_abs[i];
        if (r[i] < 0) c = (~c) & max_code;  // the sign bit says which way; negatives count down
        for (size_t b = 0; b < ex_bits; b++, bit++)
            if (c & (1 << b)) ex_code[bit / 8] |= uint8_t(1u << (bit % 8));
    }
    float ipnorm_inv = static_cast<float>(1.0 / ipnorm);
    if (!std::isnormal(ipnorm_inv)) ipnorm_inv = 1.0f;
    if (metric == METRIC_L2) {
        store_f32(ex_factors, norm * norm);
        store_f32(ex_factors + 4, ipnorm_inv * -2.0f * norm);
    } else {
        float c_dot_r = 0.f;
        if (centroid)
            for (size_t i = 0; i < d; i++) c_dot_r += r[i] * centroid[i];
        store_f32(ex_factors, c_dot_r);
        store_f32(ex_factors + 4, ipnorm_inv * norm);
    }
}

// Sum of a_i b_i in eight lanes (vectorized, and the same bits whatever
// the SIMD level: this is not a dispatched kernel).
float dot8(const float* a, const float* b, size_t d) {
    float acc[8] = {};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (size_t k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    for (; i < d; i++) acc[i % 8] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void min_max8(const float* a, size_t d, float& mn, float& mx) {
    float lo[8], hi[8];
    for (size_t k = 0; k < 8; k++) lo[k] = hi[k] = a[k % d];
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (size_t k = 0; k < 8; k++) {
            lo[k] = std::min(lo[k], a[i + k]);
            hi[k] = std::max(hi[k], a[i + k]);
        }
    for (; i < d; i++) {
        lo[0] = std::min(lo[0], a[i]);
        hi[0] = std::max(hi[0], a[i]);
    }
    mn = *std::min_element(lo, lo + 8);
    mx = *std::max_element(hi, hi + 8);
}

// faiss's radii of the centered query quantizer, for 1..8 bits.
constexpr float kZMaxByQb[8] = {0.79688f, 1.49375f, 2.05078f, 2.50938f, 2.91250f, 3.26406f, 3.59844f, 3.91016f};

}  // namespace

RaBitQuantizer::RaBitQuantizer(size_t d_, MetricType metric_, size_t nb_bits_)
    : d(d_), metric(metric_), nb_bits(nb_bits_) {
    // d < 2^24 keeps every bit dot product (at most 255 d) in 32 bits.
    NEARLY_CHECK_ARG(d > 0 && d < (size_t(1) << 24), "RaBitQuantizer: d must be in 1..2^24 - 1");
    NEARLY_CHECK_ARG(nb_bits >= 1 && nb_bits <= 9, "RaBitQuantizer: nb_bits must be in 1..9, got " +
                                                       std::to_string(nb_bits));
    if (metric != METRIC_L2 && metric != METRIC_INNER_PRODUCT)
        throw NotSupported("RaBitQ: only METRIC_L2 and METRIC_INNER_PRODUCT are implemented");
    code_size = sign_bytes() + (ex_bits() ? 12 + (d * ex_bits() + 7) / 8 + 8 : 8);
}

void RaBitQuantizer::encode(size_t n, const float* x, const float* centroid, uint8_t* codes) const {
    parallel_for_blocks(n, 256, [&](size_t i) { encode_one(x + i * d, centroid, codes + i * code_size); });
}

void RaBitQuantizer::encode_one(const float* xi, const float* centroid, uint8_t* code) const {
    const size_t nbytes = sign_bytes(), eb = ex_bits();
    const float inv_d_sqrt = 1.0f / std::sqrt(static_cast<float>(d));
    const float eps = std::numeric_limits<float>::epsilon();
    std::memset(code, 0, code_size);
    std::vector<float> r(d);
    float norm_L2sqr = 0.f, or_L2sqr = 0.f, dp_oO = 0.f;
    for (size_t j = 0; j < d; j++) {
        const float v = xi[j] - (centroid ? centroid[j] : 0.f);
        r[j] = v;
        norm_L2sqr += v * v;
        or_L2sqr += xi[j] * xi[j];
        dp_oO += v > 0.f ? v : -v;
        if (v > 0.f) code[j / 8] |= uint8_t(1u << (j % 8));
    }
    // The factors: ||x - c||^2 (minus ||x||^2 for IP, whose estimate adds
    // ||q||^2 back), and ||x - c|| / <x̄, o>, o the unit residual.
    const float sqrt_norm = std::sqrt(norm_L2sqr);
    const float inv_norm = norm_L2sqr < eps ? 1.0f : 1.0f / sqrt_norm;
    const float normalized_dp = dp_oO * inv_norm * inv_d_sqrt;
    const float inv_dp = std::abs(normalized_dp) < eps ? 1.0f : 1.0f / normalized_dp;
    store_f32(code + nbytes, metric == METRIC_INNER_PRODUCT ? norm_L2sqr - or_L2sqr : norm_L2sqr);
    store_f32(code + nbytes + 4, inv_dp * sqrt_norm);
    if (!eb) return;
    // The 1-bit estimate's error bound (the paper's constant 1.9), which
    // decides in a search whether the extra bits are worth reading.
    const float xu_cb_norm_sqr = static_cast<float>(d) * 0.25f;
    const float ip_resi_xucb = 0.5f * dp_oO;
    float tmp_error = 0.0f;
    if (std::abs(ip_resi_xucb) > eps) {
        const float ratio_sq = (norm_L2sqr * xu_cb_norm_sqr) / (ip_resi_xucb * ip_resi_xucb);
        if (ratio_sq > 1.0f)
            tmp_error = d == 1 ? sqrt_norm * 1.9f * std::sqrt(ratio_sq - 1.0f)
                               : sqrt_norm * 1.9f * std::sqrt((ratio_sq - 1.0f) / static_cast<float>(d - 1));
    }
    store_f32(code + nbytes + 8, metric == METRIC_L2 ? 2.0f * tmp_error : tmp_error);
    uint8_t* ex_code = code + nbytes + 12;
    encode_extra_bits(r.data(), norm_L2sqr, centroid, d, eb, metric, ex_code, ex_code + (d * eb + 7) / 8);
}

void RaBitQuantizer::decode(size_t n, const uint8_t* codes, const float* centroid, float* x) const {
    const float inv_d_sqrt = 1.0f / std::sqrt(static_cast<float>(d));
    parallel_for_blocks(n, 256, [&](size_t i) {
        const uint8_t* code = codes + i * code_size;
        const float dp = load_f32(code + sign_bytes() + 4);
        for (size_t j = 0; j < d; j++) {
            const float bit = (code[j / 8] >> (j % 8)) & 1 ? 1.f : 0.f;
            x[i * d + j] = (bit - 0.5f) * dp * 2 * inv_d_sqrt + (centroid ? centroid[j] : 0.f);
        }
    });
}

void RaBitQQuery::prepare(const RaBitQuantizer& q, const float* x, const float* centroid, int qb_, bool centered_) {
    NEARLY_CHECK_ARG(qb_ >= 0 && qb_ <= 8, "RaBitQ: qb must be in 0..8, got " + std::to_string(qb_));
    rq = &q;
    qb = qb_;
    centered = centered_ && qb_ > 0;
    const size_t d = q.d, nbytes = q.sign_bytes();
    // An IVF search prepares the query once per probed list, whose ~100
    // codes cost about as much to scan: this must stay cheap.
    rotated.resize(d);
    for (size_t i = 0; i < d; i++) rotated[i] = x[i] - (centroid ? centroid[i] : 0.f);
    qr_to_c_L2sqr = dot8(rotated.data(), rotated.data(), d);
    g_error = std::sqrt(qr_to_c_L2sqr);
    const float inv_d_sqrt = 1.0f / std::sqrt(static_cast<float>(d));
    qr_norm_L2sqr = q_dot_c = 0.f;
    if (q.metric == METRIC_INNER_PRODUCT) {
        qr_norm_L2sqr = centroid ? dot8(x, x, d) : qr_to_c_L2sqr;
        if (centroid) q_dot_c = dot8(x, centroid, d);
    }
    int_dot_scale = 1.f;
    if (qb == 0) {  // the query stays in float
        float sum_q = 0;
        for (size_t i = 0; i < d; i++) sum_q += rotated[i];
        c1 = 2 * inv_d_sqrt;
        c2 = 0;
        c34 = sum_q * inv_d_sqrt;
        planes.clear();
        return;
    }
    const uint8_t max_code = uint8_t((1 << qb) - 1);
    float v_min, v_max;
    if (centered) {
        const float radius = kZMaxByQb[qb - 1] * std::sqrt(qr_to_c_L2sqr / d);
        v_min = -radius;
        v_max = radius;
    } else {
        min_max8(rotated.data(), d, v_min, v_max);
    }
    const float delta = (v_max - v_min) / max_code;
    size_t sum_qq = 0;
    int64_t sum2_signed_odd = 0;
    values.assign(nbytes * 8, 0);  // padded to whole bytes with zeros
    if (delta <= 0.0f) {  // a constant query: every component codes to 0
        if (centered) sum2_signed_odd = int64_t(d) * max_code * max_code;
    } else {
        const float inv_delta = 1.0f / delta, top = float(max_code);
        const float* __restrict rot = rotated.data();
        uint8_t* __restrict vals = values.data();  // a local pointer: byte stores may alias the members
        // round_clamped without branches (the same values), so it vectorizes
        for (size_t i = 0; i < d; i++) {
            float t = (rot[i] - v_min) * inv_delta;
            t = t > 0.0f ? t : 0.0f;  // the maxss / minss patterns
            t = t < top ? t : top;
            vals[i] = uint8_t(int32_t(t + 0.5f));
        }
        uint64_t sum = 0, sum2 = 0;
        for (size_t i0 = 0; i0 < d; i0 += 65536) {  // 32-bit partial sums cannot overflow in a chunk
            uint32_t s1 = 0, s2 = 0;
            for (size_t i = i0; i < std::min(d, i0 + 65536); i++) {
                const int32_t t = 2 * int32_t(vals[i]) - max_code;
                s1 += vals[i];
                s2 += uint32_t(t * t);
            }
            sum += s1;
            sum2 += s2;
        }
        sum_qq = size_t(sum);
        sum2_signed_odd = int64_t(sum2);
    }
    // Bit b of eight values at once: mask it out of each byte, then one
    // multiply gathers the eight bits into the top byte.
    planes.resize(size_t(qb) * nbytes);
    uint8_t* __restrict pl = planes.data();
    const uint8_t* __restrict vals = values.data();
    const int nplanes = qb;  // a local: the loop's byte stores may alias the member
    for (size_t g = 0; g < nbytes; g++) {
        uint64_t w;
        std::memcpy(&w, vals + 8 * g, 8);
        for (int b = 0; b < nplanes; b++)
            pl[size_t(b) * nbytes + g] = uint8_t((((w >> b) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
    }
    planes_popcount = uint32_t(sum_qq);  // sum_b 2^b popcount(plane b) = sum_i v_i
    c1 = 2 * delta * inv_d_sqrt;
    c2 = 2 * v_min * inv_d_sqrt;
    c34 = inv_d_sqrt * (delta * sum_qq + d * v_min);
    if (centered) int_dot_scale = std::sqrt(qr_to_c_L2sqr / (sum2_signed_odd * d));
}

void RaBitQQuery::estimate(size_t n, const uint8_t* codes, float* out) const {
    const RaBitQuantizer& q = *rq;
    const size_t d = q.d, nbytes = q.sign_bytes(), cs = q.code_size;
    if (qb == 0) {  // the float query: a sum over the set bits
        for (size_t j = 0; j < n; j++) {
            const uint8_t* code = codes + j * cs;
            float dot_qo = 0;
            uint32_t sum_q = 0;
            for (size_t i = 0; i < d; i++)
                if ((code[i / 8] >> (i % 8)) & 1) {
                    dot_qo += rotated[i];
                    sum_q++;
                }
            out[j] = from_dot(c1 * dot_qo + c2 * float(sum_q) - c34, load_f32(code + nbytes), load_f32(code + nbytes + 4));
        }
        return;
    }
    constexpr size_t kChunk = 256;
    uint32_t dot[kChunk], pop[kChunk];
    const RaBitQDotsFn dots = rabitq_dots_kernel();
    for (size_t j0 = 0; j0 < n; j0 += kChunk) {
        const size_t m = std::min(kChunk, n - j0);
        const uint8_t* c0 = codes + j0 * cs;
        dots(planes.data(), size_t(qb), c0, nbytes, cs, m, dot, pop);
        for (size_t j = 0; j < m; j++)
            out[j0 + j] = from_ints(dot[j], pop[j], load_f32(c0 + j * cs + nbytes), load_f32(c0 + j * cs + nbytes + 4));
    }
}

int RaBitQQuery::nibble_parts() const {
    if (qb == 0) return 0;
    const int parts = qb <= 6 ? 1 : 2;
    const size_t entry_max = 4 * (parts == 1 ? (size_t(1) << qb) - 1 : 15);
    return 2 * rq->sign_bytes() * entry_max <= 65535 ? parts : 0;  // every sum fits 16 bits
}

void RaBitQQuery::nibble_tables(int part, uint8_t* out) const {
    const size_t M = 2 * rq->sign_bytes();
    const int shift = part == 0 ? 0 : 4;
    const unsigned mask = qb <= 6 ? 0xFFu : (part == 0 ? 0x0Fu : 0xFFu);
    for (size_t m = 0; m < M; m++) {
        unsigned v[4];
        for (size_t k = 0; k < 4; k++) v[k] = (unsigned(values[4 * m + k]) >> shift) & mask;  // zeros past d
        for (unsigned e = 0; e < 16; e++)
            out[m * 16 + e] = uint8_t((e & 1 ? v[0] : 0) + (e & 2 ? v[1] : 0) + (e & 4 ? v[2] : 0) + (e & 8 ? v[3] : 0));
    }
}

float RaBitQQuery::full(const uint8_t* code) const {
    const RaBitQuantizer& q = *rq;
    const size_t eb = q.ex_bits();
    if (!eb) {
        float e;
        estimate(1, code, &e);
        return e;
    }
    const size_t d = q.d;
    const uint8_t* ex_code = code + q.sign_bytes() + 12;
    const uint8_t* ex_fac = ex_code + (d * eb + 7) / 8;
    const float cb = -(static_cast<float>(1 << eb) - 0.5f);
    const uint64_t mask = (uint64_t(1) << eb) - 1;
    const float* __restrict rot = rotated.data();
    // Eight components at a time: their extra bits fill exactly eb bytes,
    // their sign bits one byte; eight sums side by side (not one chain).
    float acc[8] = {};
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        uint64_t w;  // 8 bytes, of which eb are these components' (the code's last 8 bytes are factors)
        std::memcpy(&w, ex_code + i / 8 * eb, 8);
        const unsigned signs = code[i / 8];
        for (size_t k = 0; k < 8; k++) {
            const uint64_t v = (uint64_t((signs >> k) & 1) << eb) | ((w >> (k * eb)) & mask);
            acc[k] += rot[i + k] * (static_cast<float>(int32_t(v)) + cb);  // int32: a cheap conversion
        }
    }
    for (; i < d; i++) {  // the last d % 8 components
        const uint64_t sb = (code[i / 8] >> (i % 8)) & 1;
        const size_t bit = i * eb;
        uint32_t raw = ex_code[bit / 8];
        if ((bit % 8) + eb > 8) raw |= uint32_t(ex_code[bit / 8 + 1]) << 8;  // straddles two bytes at most
        acc[i % 8] += rot[i] * (static_cast<float>(int32_t((sb << eb) | ((raw >> (bit % 8)) & mask))) + cb);
    }
    const float ex_ip = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    const float base = q.metric == METRIC_INNER_PRODUCT ? q_dot_c : qr_to_c_L2sqr;
    const float dist = base + load_f32(ex_fac) + load_f32(ex_fac + 4) * ex_ip;
    return q.metric == METRIC_L2 ? std::max(0.0f, dist) : dist;
}

RaBitQDotsFn rabitq_dots_kernel() {
#if defined(NEARLY_HAVE_AVX2)
    static const bool vpop = cpu_has_avx512_vpopcntdq();
    if (vpop && simd_level() == SimdLevel::avx512) return rabitq_dots_vpopcntdq;
    if (simd_level() == SimdLevel::avx2 || simd_level() == SimdLevel::avx512) return rabitq_dots_popcnt;
#endif
#if defined(NEARLY_HAVE_NEON)
    if (simd_level() == SimdLevel::neon) return rabitq_dots_neon;
#endif
    return rabitq_dots_scalar;
}

}  // namespace nearly
