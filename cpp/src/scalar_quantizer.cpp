#include "nearly/scalar_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "nearly/common.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e == 0xff) return uint16_t(sign | 0x7c00 | (m ? 0x200 : 0));
    int exp = int(e) - 127 + 15;
    if (exp >= 31) return uint16_t(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return uint16_t(sign);
        m |= 0x800000;
        uint32_t shift = uint32_t(14 - exp);
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return uint16_t(sign | h);
    }
    uint32_t h = (uint32_t(exp) << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else {
            int shift = 0;
            while (!(m & 0x400)) { m <<= 1; shift++; }
            x = sign | (uint32_t(127 - 15 + 1 - shift) << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000 | (m << 13);
    } else {
        x = sign | ((e - 15 + 127) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

ScalarQuantizer::ScalarQuantizer(size_t d_, QuantizerType qtype_) : d(d_), qtype(qtype_) {
    NEARLY_CHECK_ARG(d > 0, "ScalarQuantizer: d must be positive");
    NEARLY_CHECK_ARG(valid_qtype(qtype), "ScalarQuantizer: qtype " + std::to_string(int(qtype)) +
                                             " not implemented in nearly (QT_8bit to QT_8bit_direct_signed are)");
    switch (qtype) {
        case QT_4bit:
        case QT_4bit_uniform: bits = 4; code_size = (d + 1) / 2; break;
        case QT_6bit: bits = 6; code_size = (d * 6 + 7) / 8; break;
        case QT_fp16:
        case QT_bf16: bits = 16; code_size = 2 * d; break;
        default: bits = 8; code_size = d; break;
    }
}

namespace {

// faiss's train_Uniform: the range [vmin, vmin + vdiff] of n values for a
// code of k levels, by the range statistic rs. The arithmetic (float or
// double, in faiss's order) is faiss's, so that the ranges are its bits.
void train_uniform(ScalarQuantizer::RangeStat rs, float arg, size_t n, int k, const float* x, float& vmin_out,
                   float& vdiff_out) {
    float vmin, vmax;
    if (rs == ScalarQuantizer::RS_minmax) {
        vmin = HUGE_VALF;
        vmax = -HUGE_VALF;
        for (size_t i = 0; i < n; i++) {
            vmin = std::min(vmin, x[i]);
            vmax = std::max(vmax, x[i]);
        }
        const float vexp = (vmax - vmin) * arg;
        vmin -= vexp;
        vmax += vexp;
    } else if (rs == ScalarQuantizer::RS_meanstd) {
        double sum = 0, sum2 = 0;
        for (size_t i = 0; i < n; i++) {
            sum += x[i];
            sum2 += x[i] * x[i];
        }
        const float mean = float(sum / double(n));
        const float var = float(sum2 / double(n) - mean * mean);
        const float sd = var <= 0 ? 1.0f : std::sqrt(var);
        vmin = mean - sd * arg;
        vmax = mean + sd * arg;
    } else if (rs == ScalarQuantizer::RS_quantiles) {
        std::vector<float> v(x, x + n);
        const int64_t nn = int64_t(n);
        int64_t o = int64_t(arg * float(nn));
        if (o < 0) o = 0;
        if (o > nn - o) o = nn / 2;
        std::nth_element(v.begin(), v.begin() + o, v.end());
        vmin = v[size_t(o)];
        std::nth_element(v.begin(), v.begin() + (nn - 1 - o), v.end());
        vmax = v[size_t(nn - 1 - o)];
    } else {
        // RS_optim: faiss's alternation of assigning each value to its
        // nearest level and refitting (step a, offset b) by least squares,
        // but accumulated in double: faiss's float sums cancel catastrophically
        // (on 2,000 heavy-tailed values at 8 bits its range comes out NaN).
        // Each round cannot raise the error; the best fit seen is kept.
        double sx = 0;
        vmin = HUGE_VALF;
        vmax = -HUGE_VALF;
        for (size_t i = 0; i < n; i++) {
            vmin = std::min(vmin, x[i]);
            vmax = std::max(vmax, x[i]);
            sx += x[i];
        }
        double b = vmin, a = (double(vmax) - vmin) / (k - 1);
        double best_err = HUGE_VAL, best_a = a, best_b = b;
        for (int it = 0; it < 2000 && a > 0; it++) {
            double sn = 0, sn2 = 0, sxn = 0, err = 0;
            for (size_t i = 0; i < n; i++) {
                const double xi = x[i];
                double ni = std::floor((xi - b) / a + 0.5);
                ni = ni < 0 ? 0 : ni >= k ? k - 1 : ni;
                const double e = xi - (ni * a + b);
                err += e * e;
                sn += ni;
                sn2 += ni * ni;
                sxn += ni * xi;
            }
            if (!(err < best_err * (1 - 1e-12))) {
                if (err <= best_err) best_a = a, best_b = b, best_err = err;
                break;  // converged: no round gains any more
            }
            best_a = a, best_b = b, best_err = err;
            const double det = sn * sn - sn2 * double(n);
            if (det == 0) break;  // every value on one level: nothing to fit
            b = (sn * sxn - sn2 * sx) / det;
            a = (sn * sx - double(n) * sxn) / det;
        }
        vmin = float(best_b);
        vmax = float(best_b + best_a * (k - 1));
    }
    vmin_out = vmin;
    vdiff_out = vmax - vmin;
}

}  // namespace

void ScalarQuantizer::train(size_t n, const float* x) {
    if (!needs_training()) return;
    NEARLY_CHECK_ARG(n > 0, "ScalarQuantizer: cannot train on 0 vectors");
    NEARLY_CHECK_ARG(std::isfinite(rangestat_arg), "ScalarQuantizer: rangestat_arg must be finite");
    NEARLY_CHECK_ARG(valid_rangestat(rangestat), "ScalarQuantizer: unknown rangestat " + std::to_string(int(rangestat)));
    check_finite(x, n * d, "training data");
    const int k = 1 << (bits == 4 ? 4 : bits == 6 ? 6 : 8);
    std::vector<float> t(trained_size());
    if (uniform()) {
        train_uniform(rangestat, rangestat_arg, n * d, k, x, t[0], t[1]);
    } else if (rangestat == RS_minmax) {
        float* vmin = t.data();
        float* vmax = t.data() + d;
        std::memcpy(vmin, x, d * sizeof(float));
        std::memcpy(vmax, x, d * sizeof(float));
        for (size_t i = 1; i < n; i++) {
            const float* xi = x + i * d;
            for (size_t j = 0; j < d; j++) {
                vmin[j] = std::min(vmin[j], xi[j]);
                vmax[j] = std::max(vmax[j], xi[j]);
            }
        }
        for (size_t j = 0; j < d; j++) {
            const float vexp = (vmax[j] - vmin[j]) * rangestat_arg;
            vmin[j] -= vexp;
            vmax[j] += vexp;
            vmax[j] -= vmin[j];  // vdiff
        }
    } else {
        // Each dimension on its own column. (faiss's transpose skips row 0,
        // training on a zero in its place; every row counts here.)
        InterruptPoll poll;
        parallel_for(d, [&](size_t j) {
            std::vector<float> col(n);
            for (size_t i = 0; i < n; i++) col[i] = x[i * d + j];
            train_uniform(rangestat, rangestat_arg, n, k, col.data(), t[j], t[d + j]);
            poll();
        });
    }
    trained = std::move(t);
}

void ScalarQuantizer::encode(const float* x, uint8_t* code) const {
    switch (qtype) {
        case QT_fp16:
            for (size_t j = 0; j < d; j++) {
                const uint16_t h = float_to_half(x[j]);
                std::memcpy(code + 2 * j, &h, 2);
            }
            return;
        case QT_bf16:
            for (size_t j = 0; j < d; j++) {
                const uint16_t h = float_to_bf16(x[j]);
                std::memcpy(code + 2 * j, &h, 2);
            }
            return;
        case QT_8bit_direct:
        case QT_8bit_direct_signed: {
            const float shift = qtype == QT_8bit_direct ? 0.f : 128.f;
            for (size_t j = 0; j < d; j++) {
                const float v = std::trunc(x[j] + shift);
                code[j] = uint8_t(v <= 0.f ? 0.f : v >= 255.f ? 255.f : v);
            }
            return;
        }
        default: break;
    }
    const bool uni = uniform();
    const float* vmin = trained.data();
    const float* vdiff = trained.data() + (uni ? 1 : d);
    if (bits != 8) std::memset(code, 0, code_size);
    // The same division, clamping and truncation as faiss's encoder, value
    // for value (8 bits: a float product; 4 and 6 bits: a double product).
    for (size_t j = 0; j < d; j++) {
        const float lo = vmin[uni ? 0 : j], diff = vdiff[uni ? 0 : j];
        float t = (x[j] - lo) / (diff != 0.f ? diff : 1.f);
        t = diff != 0.f ? t : 0.f;
        t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
        if (bits == 8) {
            code[j] = uint8_t(int(255 * t));
        } else if (bits == 4) {
            code[j / 2] |= uint8_t(int(t * 15.0) << ((j & 1) * 4));
        } else {
            const uint32_t b = uint32_t(int(t * 63.0));
            uint8_t* g = code + (j >> 2) * 3;
            switch (j & 3) {
                case 0: g[0] |= uint8_t(b); break;
                case 1:
                    g[0] |= uint8_t(b << 6);
                    g[1] |= uint8_t(b >> 2);
                    break;
                case 2:
                    g[1] |= uint8_t(b << 4);
                    g[2] |= uint8_t(b >> 4);
                    break;
                default: g[2] |= uint8_t(b << 2); break;
            }
        }
    }
}

void ScalarQuantizer::compute_codes(const float* x, uint8_t* codes, size_t n) const {
    NEARLY_CHECK_ARG(is_trained(), "ScalarQuantizer: not trained");
    constexpr size_t kBlock = 1024;
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
        for (size_t i = t * kBlock; i < std::min(n, (t + 1) * kBlock); i++) encode(x + i * d, codes + i * code_size);
    });
}

void ScalarQuantizer::decode(const uint8_t* codes, float* x, size_t n) const {
    switch (simd_level()) {
#if defined(NEARLY_HAVE_AVX512)
        case SimdLevel::avx512: return sq_decode_avx512(*this, codes, x, n);
#endif
#if defined(NEARLY_HAVE_AVX2)
        case SimdLevel::avx2: return sq_decode_avx2(*this, codes, x, n);
#endif
        default: return sq_decode_scalar(*this, codes, x, n);
    }
}

void ScalarQuantizer::check_replacement(const ScalarQuantizer& other, const std::string& who, int64_t ntotal) const {
    NEARLY_CHECK_ARG(other.d == d && other.qtype == qtype,
                     who + ": the scalar quantizer must have d=" + std::to_string(d) + " and the index's qtype");
    if (ntotal > 0) throw NotSupported(who + ": the scalar quantizer can only be replaced while the index is empty");
    NEARLY_CHECK_ARG(other.trained.empty() || other.is_trained(), who + ": the ranges do not match d");
}

}  // namespace nearly
