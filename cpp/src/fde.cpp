// Compiled with -ffp-contract=off (CMakeLists.txt): sums are plain
// multiply-then-add in index order, as in the reference built for x86-64
// without FMA, so the results do not depend on the compiler's contraction.
#include "nearly/fde.h"

#include <algorithm>
#include <string>

#include "nearly/common.h"
#include "nearly/libstdcxx_random.h"
#include "nearly/parallel.h"
#include "nearly/ragged.h"
#include "nearly/simd.h"

namespace nearly {

namespace {
// Below this many multiply-adds an encode call stays on the calling thread.
constexpr double kMinParallelWork = 1 << 18;
// Largest encoding we agree to build (coordinates per set, before the final
// projection): guards against configs that would allocate terabytes.
constexpr size_t kMaxRawDimension = size_t(1) << 27;
}  // namespace

void FdeConfig::validate() const {
    auto fail = [](const std::string& msg) { throw InvalidArgument("FDE config: " + msg); };
    if (dimension <= 0) fail("dimension must be positive (got " + std::to_string(dimension) + ")");
    if (num_repetitions <= 0) fail("num_repetitions must be positive (got " + std::to_string(num_repetitions) + ")");
    if (num_simhash_projections < 0 || num_simhash_projections >= 31)
        fail("num_simhash_projections must be in [0, 30] (got " + std::to_string(num_simhash_projections) + ")");
    if (projection != FdeProjection::identity && projection != FdeProjection::ams_sketch)
        fail("unknown projection type");
    if (projection == FdeProjection::ams_sketch && projection_dimension <= 0)
        fail("projection_type ams_sketch needs a positive projection_dimension (got " +
             std::to_string(projection_dimension) + ")");
    if (final_projection_dimension < 0)
        fail("final_projection_dimension must be positive when set (got " +
             std::to_string(final_projection_dimension) + ")");
    const double raw = double(num_repetitions) * double(num_partitions()) * double(block_dimension());
    if (raw > double(kMaxRawDimension))
        fail("num_repetitions x 2^num_simhash_projections x block dimension is " +
             std::to_string(int64_t(raw)) + " coordinates, more than the 2^27 supported");
}

// ---- the reference's random matrices ------------------------------------

std::vector<float> fde_simhash_matrix(uint32_t seed, size_t dimension, size_t num_projections) {
    Mt19937 gen(seed);
    NormalFloat normal(0.f, 1.f);
    // The reference fills a column-major Eigen matrix in storage order.
    std::vector<float> m(dimension * num_projections);
    for (float& v : m) v = normal(gen);
    return m;
}

namespace {
// Per input coordinate: the output coordinate and the sign of the AMS sketch.
// One uniform draw then one Bernoulli draw per coordinate, in this order.
void ams_draws(uint32_t seed, size_t dimension, size_t projection_dim, std::vector<uint32_t>& target,
               std::vector<float>& sign) {
    Mt19937 gen(seed);
    target.resize(dimension);
    sign.resize(dimension);
    for (size_t i = 0; i < dimension; i++) {
        target[i] = uniform_below(gen, projection_dim);
        sign[i] = bernoulli(gen, 0.5) ? 1.f : -1.f;
    }
}
}  // namespace

std::vector<float> fde_ams_matrix(uint32_t seed, size_t dimension, size_t projection_dim) {
    NEARLY_CHECK_ARG(projection_dim > 0, "projection_dim must be positive");
    std::vector<uint32_t> target;
    std::vector<float> sign;
    ams_draws(seed, dimension, projection_dim, target, sign);
    std::vector<float> m(dimension * projection_dim, 0.f);
    for (size_t i = 0; i < dimension; i++) m[target[i] * dimension + i] = sign[i];
    return m;
}

std::vector<float> fde_count_sketch(const float* x, size_t n, size_t final_dimension, uint32_t seed) {
    NEARLY_CHECK_ARG(final_dimension > 0, "final_dimension must be positive");
    std::vector<uint32_t> target;
    std::vector<float> sign;
    ams_draws(seed, n, final_dimension, target, sign);  // same draws: index, then sign
    std::vector<float> out(final_dimension, 0.f);
    for (size_t i = 0; i < n; i++) out[target[i]] += sign[i] * x[i];
    return out;
}

// ---- encoder --------------------------------------------------------------

FdeEncoder::FdeEncoder(const FdeConfig& config) : config_(config) {
    config_.validate();
    const size_t d = config_.dimension, k = config_.num_simhash_projections, R = config_.num_repetitions;
    const size_t B = config_.block_dimension();
    const bool ams = config_.projection == FdeProjection::ams_sketch;
    simhash_.resize(d * R * k);
    if (ams) {
        ams_start_.assign(R * B + 1, 0);
        ams_input_.resize(R * d);
        ams_sign_.resize(R * d);
    }
    std::vector<uint32_t> target;
    std::vector<float> sign;
    for (size_t r = 0; r < R; r++) {
        // The reference adds the repetition to an int32 seed and hands it to
        // mt19937 as uint32: arithmetic mod 2^32.
        const uint32_t seed = uint32_t(config_.seed) + uint32_t(r);
        if (k > 0) {
            const std::vector<float> colmajor = fde_simhash_matrix(seed, d, k);
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < k; j++) simhash_[i * R * k + r * k + j] = colmajor[j * d + i];
        }
        if (ams) {
            ams_draws(seed, d, B, target, sign);
            // Counting sort by output coordinate keeps the inputs in order.
            uint32_t* start = &ams_start_[r * B];
            std::vector<uint32_t> count(B, 0);
            for (size_t i = 0; i < d; i++) count[target[i]]++;
            for (size_t c = 0; c < B; c++) start[c + 1] = start[c] + count[c];
            std::vector<uint32_t> next(start, start + B);
            for (size_t i = 0; i < d; i++) {
                const uint32_t e = next[target[i]]++;
                ams_input_[e] = uint32_t(i);
                ams_sign_[e] = sign[i];
            }
        }
    }
    if (config_.final_projection_dimension > 0)
        ams_draws(uint32_t(config_.seed), config_.raw_dimension(), config_.final_projection_dimension, final_target_,
                  final_sign_);
}

struct FdeEncoder::Scratch {
    std::vector<float> raw;        // one encoding before the final projection
    std::vector<float> transposed;  // the set, d x n (AMS)
    std::vector<float> projected;   // its AMS sketches, B x n
    std::vector<float> sketch;     // one point's R * k projections
    std::vector<float> counts;     // points per partition
    std::vector<uint32_t> words;   // sign words, point p's of repetition r at p * R + r
};

void FdeEncoder::project_set(size_t r, const float* transposed, size_t n, float* out) const {
    const size_t B = config_.block_dimension();
    const uint32_t* start = &ams_start_[r * B];
    // Output (c, p) sums its inputs in increasing order, as the reference
    // does; the inner loop runs across points, so it vectorizes without
    // reordering any sum.
    for (size_t c = 0; c < B; c++) {
        float* __restrict o = out + c * n;
        std::fill(o, o + n, 0.f);
        for (uint32_t e = start[c]; e < start[c + 1]; e++) {
            const float sign = ams_sign_[e];
            const float* __restrict col = transposed + size_t(ams_input_[e]) * n;
            for (size_t p = 0; p < n; p++) o[p] += sign * col[p];
        }
    }
}

namespace {
// Inline: the portable build has no popcnt instruction, and __builtin_popcount
// then calls into libgcc once per (point, empty partition).
inline int popcount32(uint32_t v) {
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return int((((v + (v >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24);
}
}  // namespace

void FdeEncoder::encode_one(FdeEncoding encoding, const float* points, size_t n_points, float* out,
                            Scratch& s) const {
    const size_t d = config_.dimension, P = config_.num_partitions(), B = config_.block_dimension();
    const size_t R = config_.num_repetitions, k = config_.num_simhash_projections;
    const bool has_final = config_.final_projection_dimension > 0;
    const bool average = encoding == FdeEncoding::document_average;
    const bool fill = average && config_.fill_empty_partitions && k > 0;
    float* raw = has_final ? s.raw.data() : out;
    std::fill(raw, raw + config_.raw_dimension(), 0.f);

    // Sign words of every point in every repetition. The sums run in
    // coordinate order without fused multiply-adds, like the reference's
    // matrix product, at every SIMD level.
    s.words.assign(n_points * R, 0);
    if (k > 0) {
        const SimdKernels& K = simd();
        for (size_t p = 0; p < n_points; p++) {
            K.vecmat_unfused(points + p * d, d, simhash_.data(), R * k, s.sketch.data());
            for (size_t r = 0; r < R; r++) {
                uint32_t word = 0;  // projection 0 the most significant bit
                for (size_t j = 0; j < k; j++) word = (word << 1) | uint32_t(s.sketch[r * k + j] > 0.f);
                s.words[p * R + r] = word;
            }
        }
    }

    const bool ams = config_.projection == FdeProjection::ams_sketch;
    if (ams) {
        s.transposed.resize(d * n_points);
        for (size_t p = 0; p < n_points; p++)
            for (size_t i = 0; i < d; i++) s.transposed[i * n_points + p] = points[p * d + i];
        s.projected.resize(B * n_points);
    }
    for (size_t r = 0; r < R; r++) {
        // Point p's block: its row of the input (identity) or column p of
        // the projected set (AMS), coordinates coord_step apart.
        const float* proj = points;
        size_t point_step = d, coord_step = 1;
        if (ams) {
            project_set(r, s.transposed.data(), n_points, s.projected.data());
            proj = s.projected.data();
            point_step = 1;
            coord_step = n_points;
        }
        float* rep_out = raw + r * P * B;
        std::fill(s.counts.begin(), s.counts.end(), 0.f);
        for (size_t p = 0; p < n_points; p++) {
            const uint32_t part = fde_partition_of_sign_word(s.words[p * R + r]);
            float* block = rep_out + size_t(part) * B;
            const float* y = proj + p * point_step;
            for (size_t c = 0; c < B; c++) block[c] += y[c * coord_step];
            s.counts[part] += 1.f;
        }
        if (!average) continue;
        for (size_t part = 0; part < P; part++) {
            float* block = rep_out + part * B;
            if (s.counts[part] > 0.f) {
                for (size_t c = 0; c < B; c++) block[c] /= s.counts[part];
            } else if (fill) {
                // The point whose sign word differs from the partition's in
                // the fewest bits; the first one on ties.
                const uint32_t target = fde_sign_word_of_partition(uint32_t(part));
                size_t nearest = 0;
                int best = 64;
                for (size_t p = 0; p < n_points; p++) {
                    const int dist = popcount32(s.words[p * R + r] ^ target);
                    if (dist < best) {
                        best = dist;
                        nearest = p;
                    }
                }
                const float* y = proj + nearest * point_step;
                for (size_t c = 0; c < B; c++) block[c] = y[c * coord_step];
            }
        }
    }

    if (has_final) {
        std::fill(out, out + config_.final_projection_dimension, 0.f);
        const size_t n = config_.raw_dimension();
        for (size_t i = 0; i < n; i++) out[final_target_[i]] += final_sign_[i] * raw[i];
    }
}

void FdeEncoder::encode(FdeEncoding encoding, const float* vectors, size_t n_vectors, const int64_t* lengths,
                        size_t n_sets, float* out) const {
    if (encoding == FdeEncoding::query_sum && config_.fill_empty_partitions)
        throw InvalidArgument("fill_empty_partitions is for document encodings only; queries cannot use it");
    NEARLY_CHECK_ARG(encoding == FdeEncoding::query_sum || encoding == FdeEncoding::document_average,
                     "unknown FDE encoding type");
    const size_t d = config_.dimension;
    const std::vector<size_t> offsets = ragged_offsets(lengths, n_sets, n_vectors, "FDE encoding");
    check_finite(vectors, n_vectors * d, "the vectors");
    if (n_sets == 0) return;

    const size_t B = config_.block_dimension(), k = config_.num_simhash_projections;
    const double work = double(n_vectors) * config_.num_repetitions * (double(d) * (k + 1) + B);
    const size_t nt = get_num_threads();
    const size_t ntasks = (nt <= 1 || work < kMinParallelWork || in_parallel_region())
                              ? 1
                              : std::min(n_sets, 8 * nt);
    const size_t per_task = (n_sets + ntasks - 1) / ntasks;
    const size_t out_dim = output_dimension();
    InterruptPoll poll;
    parallel_for(ntasks, [&](size_t t) {
        Scratch s;
        if (config_.final_projection_dimension > 0) s.raw.resize(config_.raw_dimension());
        s.sketch.resize(std::max<size_t>(k * config_.num_repetitions, 1));
        s.counts.resize(config_.num_partitions());
        const size_t end = std::min(n_sets, (t + 1) * per_task);
        for (size_t i = t * per_task; i < end; i++) {
            encode_one(encoding, vectors + offsets[i] * d, offsets[i + 1] - offsets[i], out + i * out_dim, s);
            poll();
        }
    });
}

}  // namespace nearly
