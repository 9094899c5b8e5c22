#include "nearly/scalar_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "nearly/common.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"
#include "nearly/turboquant.h"

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
                                             " not implemented in nearly (QT_8bit to QT_0bit and the TurboQuant and EDEN types are)");
    switch (qtype) {
        case QT_4bit:
        case QT_4bit_uniform: bits = 4; code_size = (d + 1) / 2; break;
        case QT_6bit: bits = 6; code_size = (d * 6 + 7) / 8; break;
        case QT_fp16:
        case QT_bf16: bits = 16; code_size = 2 * d; break;
        case QT_1bit_tqmse: bits = 1; code_size = (d + 7) / 8; break;
        case QT_2bit_tqmse: bits = 2; code_size = (d * 2 + 7) / 8; break;
        case QT_3bit_tqmse: bits = 3; code_size = (d * 3 + 7) / 8; break;
        case QT_4bit_tqmse: bits = 4; code_size = (d + 1) / 2; break;
        case QT_0bit: bits = 0; code_size = 0; break;
        default: bits = 8; code_size = d; break;
    }
    if (is_eden_type(qtype)) {
        bits = size_t(qtype - QT_1bit_eden + 1);
        code_size = (d * bits + 7) / 8;
    }
    if (turboq()) {  // bits - 1 MSE planes, the QJL plane, norm and gamma
        bits = size_t(qtype - QT_2bit_tq + 2);
        code_size = bits * ((d + 7) / 8) + 2 * sizeof(float);
    }
}

namespace {

// The Lloyd-Max quantizers of the standard normal law with 2, 4, 8, 16 and
// 256 levels: their positive halves, each centroid the mean of the normal
// law over its cell (between the midpoints to its neighbours) to 1e-13,
// computed once offline (Newton's method on Lloyd's fixed point; the test
// test_sq_turboquant.py checks that each is the mean of its cell).
constexpr double kLloydMaxNormal1[] = {
    0.79788456080286541,
};
constexpr double kLloydMaxNormal2[] = {
    0.45278003463649202, 1.5104176084990948,
};
constexpr double kLloydMaxNormal3[] = {
    0.24509417894422139, 0.75600528120587684, 1.3439092785049993, 2.1519457045369861,
};
constexpr double kLloydMaxNormal4[] = {
    0.12839502985114687, 0.38804829949028952, 0.65675911853246183, 0.94234045648695919, 1.2562311973471718,
    1.6180463860218759, 2.0690172265313791, 2.7325895709951578,
};
constexpr double kLloydMaxNormal8[] = {
    0.0084461932227539727, 0.025339383099361297, 0.04223498380425867, 0.059134604340845748, 0.076039856392537103,
    0.092952355401222861, 0.10987372165231112, 0.12680558136809125, 0.14374956781151946, 0.16070732240217861,
    0.1776804958467014, 0.19467074928527978, 0.2116797554568256, 0.22870919988468183, 0.24576078208511148,
    0.26283621680093755, 0.27993723526284425, 0.29706558648052017, 0.31422303856670658, 0.33141138009626508,
    0.34863242150386514, 0.3658879965223934, 0.38317996366605728, 0.40051020776091678, 0.41788064152646398,
    0.43529320721214859, 0.45274987829228969, 0.47025266122389608, 0.48780359727156275, 0.50540476440399218,
    0.52305827926738835, 0.54076629924042718, 0.558531024576992, 0.57635470064214167, 0.59423962024797106,
    0.61218812609610573, 0.63020261333398364, 0.64828553223303853, 0.66643939099679517, 0.68466675870830385,
    0.70297026842619115, 0.72135262044018977, 0.73981658569698072, 0.75836500940875373, 0.77700081485749872,
    0.79572700740919311, 0.81454667875319187, 0.83346301138344359, 0.85247928333942902, 0.87159887322656915,
    0.89082526553726604, 0.91016205629532609, 0.92961295904961305, 0.94918181124375711, 0.96887258099223306,
    0.98868937429528703, 1.00863644272902, 1.0287181916491277, 1.0489391889522632, 1.0693041744417169,
    1.0898180698497779, 1.1104859895740442, 1.1313132521910241, 1.1523053928169449, 1.1734681763929218,
    1.1948076119809343, 1.2163299681641579, 1.2380417896596603, 1.2599499152589599, 1.2820614972295896,
    1.3043840223230549, 1.3269253345550409, 1.3496936599400502, 1.3726976333900396, 1.3959463280083444,
    1.4194492870429676, 1.4432165587971408, 1.467258734833454, 1.491586991856275, 1.5162131377081245,
    1.5411496619782989, 1.5664097917951498, 1.5920075534562319, 1.6179578406504198, 1.6442764901428473,
    1.6709803659298019, 1.698087453035789, 1.7256169623170805, 1.7535894478691247, 1.7820269389133672,
    1.8109530883727161, 1.8403933407518938, 1.8703751224310246, 1.9009280580829648, 1.9320842176655149,
    1.9638783993530666, 1.9963484549082251, 2.0295356654142451, 2.0634851770751297, 2.0982465090551732,
    2.1338741482208543, 2.1704282493661977, 2.2079754643299303, 2.2465899297305709, 2.2863544513969982,
    2.3273619347266159, 2.3697171252676452, 2.4135387444102845, 2.4589621335856062, 2.5061425604152872,
    2.5552593973806443, 2.6065214664589731, 2.6601739656939642, 2.7165075785769126, 2.7758706526980799,
    2.8386857867556117, 2.905472903663207, 2.9768821336995557, 3.0537420161674347, 3.1371325317004932,
    3.2285002105770051, 3.329848469998717, 3.4440716782124645, 3.5755879723898532, 3.7316662622224461,
    3.9256377839344578, 4.1865954428432239, 4.6035356124288533,
};

// 32, 64 and 128 levels (EDEN's 5, 6 and 7 bits), computed the same way,
// by Lloyd's iteration in double to a step of 1e-14 (faiss's tables stop
// short of the fixed point: its 7-bit tail centroid is 5e-5 from its
// cell's mean).
constexpr double kLloydMaxNormal5[] = {
    0.06588965977082331, 0.19805182966943488, 0.33137830576011806, 0.4666995229766879, 0.6049336240094413,
    0.7471357036878267, 0.8945651173883845, 1.0487833199232106, 1.211804380609281, 1.3863403395866412,
    1.5762280786122065, 1.7872332177032895, 2.0287283993955207, 2.3177394041947648, 2.6911195773766994,
    3.2607324934014335,
};
constexpr double kLloydMaxNormal6[] = {
    0.033409506370102246, 0.10027828930389081, 0.1672969033690042, 0.23456698533601927, 0.302192846371707,
    0.3702826452589535, 0.43894967165865717, 0.508313780898016, 0.5785030305188286, 0.6496555810635699,
    0.7219219405697099, 0.7954676558408966, 0.8704765865441545, 0.9471549447433414, 1.0257363490773788,
    1.1064882395373736, 1.189720141860923, 1.2757944864337925, 1.3651410198102552, 1.45827637469784,
    1.5558312247051715, 1.6585889004238978, 1.7675418829912617, 1.8839772405225135, 2.0096110425937694,
    2.1468102170559686, 2.2989812097604765, 2.471304797618382, 2.672273835255381, 2.917406790723113,
    3.240437055012316, 3.7441012708954418,
};
constexpr double kLloydMaxNormal7[] = {
    0.01682816945725979, 0.05049086396325702, 0.08417264205885404, 0.11788628230314285, 0.15164464790982476,
    0.1854607214256894, 0.21934764023852285, 0.2533187331701508, 0.2873875584246771, 0.3215679431806633,
    0.35587402513823513, 0.3903202963601079, 0.42492164977775954, 0.4596934287736226, 0.49465148029595635,
    0.5298122120179349, 0.5651926541164448, 0.600810526321891, 0.6366843109797792, 0.6728333329696706,
    0.7092778474520623, 0.746039136561252, 0.7831396163375692, 0.8206029554018126, 0.858454207124715,
    0.8967199573450898, 0.9354284900522956, 0.9746099738876243, 1.0142966728525655, 1.0545231852640986,
    1.0953267157984266, 1.1367473864540538, 1.1788285934944351, 1.2216174189679236, 1.2651651073358143,
    1.309527620189646, 1.3547662851654931, 1.4009485591853021, 1.4481489313719977, 1.4964499978135595,
    1.5459437493735517, 1.5967331257922703, 1.6489339055842915, 1.7026770234586401, 1.7581114377456322,
    1.8154077134960827, 1.8747625484935064, 1.9364045587164733, 2.000601771739248, 2.067671475611378,
    2.1379933780437104, 2.2120275175257555, 2.2903391620220495, 2.3736342698401534, 2.4628114331302577,
    2.5590405215209717, 2.663886538631651, 2.7795142579815004, 2.9090470736100946, 3.05724615060857,
    3.2319332042669955, 3.447430271104412, 3.7349366443637084, 4.18969415673379,
};

const double* lloyd_max_normal_half(size_t bits) {
    switch (bits) {
        case 1: return kLloydMaxNormal1;
        case 2: return kLloydMaxNormal2;
        case 3: return kLloydMaxNormal3;
        case 4: return kLloydMaxNormal4;
        case 5: return kLloydMaxNormal5;
        case 6: return kLloydMaxNormal6;
        case 7: return kLloydMaxNormal7;
        case 8: return kLloydMaxNormal8;
        default: throw InvalidArgument("Lloyd-Max codebook: bits must be 1 to 8");
    }
}

}  // namespace

void turboquant_codebook(size_t d, size_t bits, std::vector<float>& centroids, std::vector<float>& boundaries) {
    NEARLY_CHECK_ARG(bits <= 4 || bits == 8, "TurboQuant: bits must be 1, 2, 3, 4 or 8");
    lloyd_max_codebook(bits, 1.0 / std::sqrt(double(d)), centroids, boundaries);
}

void lloyd_max_codebook(size_t bits, double scale, std::vector<float>& centroids, std::vector<float>& boundaries) {
    const double* half = lloyd_max_normal_half(bits);
    const size_t k = size_t(1) << bits, h = k / 2;
    centroids.resize(k);
    for (size_t i = 0; i < h; i++) {
        centroids[h + i] = float(half[i] * scale);
        centroids[h - 1 - i] = -centroids[h + i];
    }
    boundaries.resize(k - 1);
    for (size_t i = 0; i + 1 < k; i++) boundaries[i] = 0.5f * (centroids[i] + centroids[i + 1]);
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
    if (turboq()) {  // no data needed (faiss's train): the codebook and faiss's default sign seed
        trained = TurboQuantCodec::trained_for(bits, 42);
        return;
    }
    if (codebook()) {  // no data needed: faiss accepts any training set
        std::vector<float> c, b;
        if (is_eden_type(qtype))
            lloyd_max_codebook(bits, 1.0, c, b);
        else
            turboquant_codebook(d, bits, c, b);
        c.insert(c.end(), b.begin(), b.end());
        trained = std::move(c);
        return;
    }
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

void ScalarQuantizer::check_standalone() const {
    if (zero_bit())
        throw NotSupported("QT_0bit does not support standalone quantization, use IndexIVFScalarQuantizer");
}

void ScalarQuantizer::encode(const float* x, uint8_t* code) const {
    check_standalone();
    if (turboq()) return TurboQuantCodec(*this).encode(x, code);
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
    if (codebook()) {
        // Each value's cell: the number of midpoints at or below it.
        std::memset(code, 0, code_size);
        const float* mid = boundaries();
        const size_t nmid = (size_t(1) << bits) - 1;
        for (size_t j = 0; j < d; j++) {
            // A value on a midpoint goes up (faiss-cpu 1.15's upper_bound, at
            // every bit count: a 0 is a 1 bit at 1 bit; faiss's later
            // AVX2/AVX-512 1-bit encoders compare x > midpoint instead).
            const uint32_t c = uint32_t(std::upper_bound(mid, mid + nmid, x[j]) - mid);
            const size_t bit = j * bits;
            const uint32_t v = c << (bit & 7);
            code[bit >> 3] |= uint8_t(v);
            if ((bit & 7) + bits > 8) code[(bit >> 3) + 1] |= uint8_t(v >> 8);
        }
        return;
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
    check_standalone();
    NEARLY_CHECK_ARG(is_trained(), "ScalarQuantizer: not trained");
    constexpr size_t kBlock = 1024;
    if (turboq()) {
        const TurboQuantCodec tq(*this);
        parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
            for (size_t i = t * kBlock; i < std::min(n, (t + 1) * kBlock); i++)
                tq.encode(x + i * d, codes + i * code_size);
        });
        return;
    }
    parallel_for((n + kBlock - 1) / kBlock, [&](size_t t) {
        for (size_t i = t * kBlock; i < std::min(n, (t + 1) * kBlock); i++) encode(x + i * d, codes + i * code_size);
    });
}

void ScalarQuantizer::decode(const uint8_t* codes, float* x, size_t n) const {
    check_standalone();
    if (turboq()) {
        const TurboQuantCodec tq(*this);
        parallel_for((n + 1023) / 1024, [&](size_t t) {
            for (size_t i = t * 1024; i < std::min(n, (t + 1) * 1024); i++) tq.decode(codes + i * code_size, x + i * d);
        });
        return;
    }
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
    if (other.turboq() && !other.trained.empty()) TurboQuantCodec::check_trained(other.bits, other.trained);
}

}  // namespace nearly
