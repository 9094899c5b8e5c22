// Compiled with -ffp-contract=off (CMakeLists.txt): sums are plain
// multiply-then-add in index order, as in the reference built for x86-64
// without FMA, so the results do not depend on the compiler's contraction.
#include "nearly/fde.h"

#include <algorithm>
#include <string>

#include "nearly/ams_sketch.h"
#include "nearly/common.h"
#include "nearly/fde_signs.h"
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
    if (k > 0) simhash_norms_ = fde_column_norms(simhash_.data(), d, R * k);
    if (config_.final_projection_dimension > 0)
        ams_draws(uint32_t(config_.seed), config_.raw_dimension(), config_.final_projection_dimension, final_target_,
                  final_sign_);
}

struct FdeEncoder::Scratch {
    std::vector<float> raw;        // one encoding before the final projection
    std::vector<float> transposed;  // a block of points, d x np (AMS)
    std::vector<float> projected;   // their AMS sketches, (R * B) x np
    std::vector<uint8_t> signs;    // SimHash signs, point p's at p * R * k
    std::vector<float> counts;     // points per partition, repetition r's at r * P
    std::vector<uint32_t> parts;   // partitions, point p's in repetition r at p * R + r
    std::vector<std::pair<size_t, size_t>> fills;  // (point, r * P + partition): an empty partition takes the point
    std::vector<uint32_t> fill_of;  // the same by cell: the point an empty cell copies
    std::vector<float> block;       // one repetition's partition sums, P x B
};

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

    // The partition of every point in every repetition, from its sign word.
    // The sums run in coordinate order without fused multiply-adds, like the
    // reference's matrix product, at every SIMD level.
    s.parts.assign(n_points * R, 0);
    if (k > 0) {
        s.signs.resize(n_points * R * k);
        fde_signs(points, n_points, d, simhash_.data(), R * k, simhash_norms_.data(), s.signs.data());
        for (size_t p = 0; p < n_points; p++) {
            const uint8_t* bits = &s.signs[p * R * k];
            for (size_t r = 0; r < R; r++) {
                uint32_t word = 0;  // projection 0 the most significant bit
                for (size_t j = 0; j < k; j++) word = (word << 1) | uint32_t(bits[r * k + j]);
                s.parts[p * R + r] = fde_partition_of_sign_word(word);
            }
        }
    }
    s.counts.assign(R * P, 0.f);
    for (size_t p = 0; p < n_points; p++)
        for (size_t r = 0; r < R; r++) s.counts[r * P + s.parts[p * R + r]] += 1.f;

    // Empty partitions that take a point: the one whose sign word differs
    // from the partition's in the fewest bits, the first one on ties.
    s.fills.clear();
    if (fill) {
        for (size_t r = 0; r < R; r++) {
            for (size_t part = 0; part < P; part++) {
                if (s.counts[r * P + part] > 0.f) continue;
                const uint32_t target = fde_sign_word_of_partition(uint32_t(part));
                size_t nearest = 0;
                int best = 64;
                for (size_t p = 0; p < n_points; p++) {
                    const int dist = popcount32(fde_sign_word_of_partition(s.parts[p * R + r]) ^ target);
                    if (dist < best) {
                        best = dist;
                        nearest = p;
                    }
                }
                s.fills.emplace_back(nearest, r * P + part);
            }
        }
        std::sort(s.fills.begin(), s.fills.end());
    }

    // Point p's coordinate c in repetition r is y[r * rep_step + c * coord_step]:
    // its input row (identity) or its column of the projected block (AMS).
    // Partition sums run in point order, as in the reference.
    const bool ams = config_.projection == FdeProjection::ams_sketch;
    if (!ams || n_points <= kAmsMaxBlock) {
        // Every point's projection at hand: one repetition at a time, its
        // partitions summed in a small buffer, then written out once.
        const float* y0 = points;
        size_t rep_step = 0, coord_step = 1, point_step = d;
        if (ams) {
            const size_t np = (n_points + 7) / 8 * 8;
            ams_sketch_block(points, n_points, d, s.transposed.data(), ams_start_.data(), ams_input_.data(),
                             ams_sign_.data(), R * B, s.projected.data());
            y0 = s.projected.data();
            rep_step = B * np;
            coord_step = np;
            point_step = 1;
        }
        if (fill) {
            s.fill_of.assign(R * P, 0);
            for (const auto& f : s.fills) s.fill_of[f.second] = uint32_t(f.first);
        }
        s.block.resize(P * B);
        for (size_t r = 0; r < R; r++) {
            float* acc = s.block.data();
            std::fill(acc, acc + P * B, 0.f);
            for (size_t p = 0; p < n_points; p++) {
                float* a = acc + size_t(s.parts[p * R + r]) * B;
                const float* y = y0 + p * point_step + r * rep_step;
                for (size_t c = 0; c < B; c++) a[c] += y[c * coord_step];
            }
            for (size_t part = 0; part < P; part++) {
                const float count = s.counts[r * P + part];
                const float* a = acc + part * B;
                float* dst = raw + (r * P + part) * B;
                if (count > 0.f) {
                    if (average) {
                        for (size_t c = 0; c < B; c++) dst[c] = a[c] / count;
                    } else {
                        for (size_t c = 0; c < B; c++) dst[c] = a[c];
                    }
                } else if (fill) {
                    const float* y = y0 + size_t(s.fill_of[r * P + part]) * point_step + r * rep_step;
                    for (size_t c = 0; c < B; c++) dst[c] = y[c * coord_step];
                } else {
                    for (size_t c = 0; c < B; c++) dst[c] = 0.f;
                }
            }
        }
    } else {
        // A set of more than one block: points in blocks, each added into
        // every repetition's partitions before the next block is projected.
        std::fill(raw, raw + config_.raw_dimension(), 0.f);
        size_t next_fill = 0;
        auto add_point = [&](size_t p, const float* y, size_t rep_step, size_t coord_step) {
            for (size_t r = 0; r < R; r++) {
                float* block = raw + (r * P + s.parts[p * R + r]) * B;
                const float* yr = y + r * rep_step;
                for (size_t c = 0; c < B; c++) block[c] += yr[c * coord_step];
            }
            for (; next_fill < s.fills.size() && s.fills[next_fill].first == p; next_fill++) {
                const size_t cell = s.fills[next_fill].second;
                float* block = raw + cell * B;
                const float* yr = y + (cell / P) * rep_step;
                for (size_t c = 0; c < B; c++) block[c] = yr[c * coord_step];
            }
        };
        for (size_t p0 = 0; p0 < n_points; p0 += kAmsMaxBlock) {
            const size_t m = std::min(kAmsMaxBlock, n_points - p0), np = (m + 7) / 8 * 8;
            ams_sketch_block(points + p0 * d, m, d, s.transposed.data(), ams_start_.data(), ams_input_.data(),
                             ams_sign_.data(), R * B, s.projected.data());
            for (size_t p = 0; p < m; p++) add_point(p0 + p, s.projected.data() + p, B * np, np);
        }
        if (average) {
            for (size_t cell = 0; cell < R * P; cell++) {
                if (s.counts[cell] > 0.f) {
                    float* block = raw + cell * B;
                    for (size_t c = 0; c < B; c++) block[c] /= s.counts[cell];
                }
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
        const size_t end = std::min(n_sets, (t + 1) * per_task);
        if (t * per_task >= end) return;
        // Each task checks its own rows: the check runs in parallel too.
        check_finite(vectors + offsets[t * per_task] * d, (offsets[end] - offsets[t * per_task]) * d, "the vectors");
        Scratch s;
        if (config_.final_projection_dimension > 0) s.raw.resize(config_.raw_dimension());
        if (config_.projection == FdeProjection::ams_sketch) {
            s.transposed.resize(d * kAmsMaxBlock);
            s.projected.resize(config_.num_repetitions * B * kAmsMaxBlock);
        }
        for (size_t i = t * per_task; i < end; i++) {
            encode_one(encoding, vectors + offsets[i] * d, offsets[i + 1] - offsets[i], out + i * out_dim, s);
            poll();
        }
    });
}

}  // namespace nearly
