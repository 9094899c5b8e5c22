#include "nearly/scalar_quantizer.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "nearly/common.h"
#include "nearly/parallel.h"

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
    NEARLY_CHECK_ARG(valid_qtype(qtype),
                     "ScalarQuantizer: qtype " + std::to_string(int(qtype)) +
                         " not implemented in nearly (QT_8bit and QT_fp16 are)");
    code_size = qtype == QT_8bit ? d : 2 * d;
}

// faiss's train_NonUniform with RS_minmax, rangestat_arg 0.
void ScalarQuantizer::train(size_t n, const float* x) {
    if (!needs_training()) return;
    NEARLY_CHECK_ARG(n > 0, "ScalarQuantizer: cannot train on 0 vectors");
    check_finite(x, n * d, "training data");
    std::vector<float> t(2 * d);
    float* vmin = t.data();
    float* vmax = t.data() + d;
    std::memcpy(vmin, x, d * sizeof(float));
    std::memcpy(vmax, x, d * sizeof(float));
    for (size_t i = 1; i < n; i++) {
        const float* xi = x + i * d;
        for (size_t j = 0; j < d; j++) {
            if (xi[j] < vmin[j]) vmin[j] = xi[j];
            if (xi[j] > vmax[j]) vmax[j] = xi[j];
        }
    }
    for (size_t j = 0; j < d; j++) vmax[j] -= vmin[j];  // vdiff
    trained = std::move(t);
}

void ScalarQuantizer::encode(const float* x, uint8_t* code) const {
    if (qtype == QT_fp16) {
        for (size_t j = 0; j < d; j++) {
            const uint16_t h = float_to_half(x[j]);
            std::memcpy(code + 2 * j, &h, 2);
        }
        return;
    }
    const float* vmin = trained.data();
    const float* vdiff = trained.data() + d;
    // Branch-free, so that the loop vectorizes; the same division and
    // clamping as faiss's, value for value.
    for (size_t j = 0; j < d; j++) {
        const float diff = vdiff[j];
        float xi = (x[j] - vmin[j]) / (diff != 0.f ? diff : 1.f);
        xi = diff != 0.f ? xi : 0.f;
        xi = xi < 0.f ? 0.f : (xi > 1.f ? 1.f : xi);
        code[j] = uint8_t(int(255 * xi));  // truncation, like faiss's Codec8bit
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
    if (qtype == QT_fp16) {
        for (size_t i = 0; i < n * d; i++) {
            uint16_t h;
            std::memcpy(&h, codes + 2 * i, 2);
            x[i] = half_to_float(h);
        }
        return;
    }
    const float* vmin = trained.data();
    const float* vdiff = trained.data() + d;
    for (size_t i = 0; i < n; i++) {
        const uint8_t* c = codes + i * d;
        float* xi = x + i * d;
        for (size_t j = 0; j < d; j++) xi[j] = vmin[j] + ((c[j] + 0.5f) / 255.0f) * vdiff[j];
    }
}

}  // namespace nearly
