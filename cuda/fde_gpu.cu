#include "fde_gpu.h"

#include <mutex>
#include <vector>

#include "nearly/ragged.h"
#include "vector_ops.h"

namespace nearly::gpu {

namespace {

__device__ uint32_t partition_of(uint32_t word) {
    uint32_t index = word;
    for (uint32_t shift = 1; shift < 32; shift <<= 1) index ^= index >> shift;
    return index;
}

// Sign words, point p's of repetition r at p * R + r. Projection j sums
// x_i * S[i][r * k + j] over i in order, product and sum rounded apart.
__global__ void words_kernel(const float* x, int64_t n, int d, int R, int k, const float* simhash, uint32_t* words) {
    int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (t >= n * R) return;
    int64_t p = t / R;
    int r = int(t % R);
    const float* xp = x + p * d;
    uint32_t word = 0;
    for (int j = 0; j < k; j++) {
        float acc = 0.f;
        const float* col = simhash + r * k + j;
        for (int i = 0; i < d; i++) acc = __fadd_rn(acc, __fmul_rn(xp[i], col[size_t(i) * R * k]));
        word = (word << 1) | uint32_t(acc > 0.f);
    }
    words[t] = word;
}

// AMS sketches: y[(p * R + r) * B + c] = sum over the inputs of c, in order.
__global__ void ams_kernel(const float* x, int64_t n, int d, int R, int B, const uint32_t* start,
                           const uint32_t* input, const float* sign, float* y) {
    int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (t >= n * R * B) return;
    int c = int(t % B);
    int r = int((t / B) % R);
    int64_t p = t / (int64_t(B) * R);
    const float* xp = x + p * d;
    const uint32_t* st = start + size_t(r) * B;
    float acc = 0.f;
    for (uint32_t e = st[c]; e < st[c + 1]; e++) acc = __fadd_rn(acc, __fmul_rn(sign[e], xp[input[e]]));
    y[t] = acc;
}

// One thread per (set, repetition, coordinate): walks the set's points in
// order, so every partition's sum is the CPU's.
__global__ void partition_kernel(const float* y, bool ams, int d, const int64_t* offsets, int64_t n_sets, int R, int k,
                                 int B, const uint32_t* words, bool average, bool fill, float* raw, int64_t raw_dim) {
    int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (t >= n_sets * R * B) return;
    const int c = int(t % B);
    const int r = int((t / B) % R);
    const int64_t set = t / (int64_t(B) * R);
    const int64_t p0 = offsets[set], p1 = offsets[set + 1];
    const int64_t P = int64_t(1) << k;
    float* rep = raw + set * raw_dim + int64_t(r) * P * B;
    auto value = [&](int64_t p) { return ams ? y[(p * R + r) * B + c] : y[p * d + c]; };
    for (int64_t p = p0; p < p1; p++) {
        uint32_t part = partition_of(words[p * R + r]);
        float* o = rep + int64_t(part) * B + c;
        *o = __fadd_rn(*o, value(p));
    }
    if (!average) return;
    for (int64_t part = 0; part < P; part++) {
        float count = 0.f;
        for (int64_t p = p0; p < p1; p++) count += partition_of(words[p * R + r]) == uint32_t(part) ? 1.f : 0.f;
        float* o = rep + part * B + c;
        if (count > 0.f) {
            *o = __fdiv_rn(*o, count);
        } else if (fill) {
            const uint32_t target = uint32_t(part) ^ (uint32_t(part) >> 1);
            int64_t nearest = p0;
            int best = 64;
            for (int64_t p = p0; p < p1; p++) {
                int dist = __popc(words[p * R + r] ^ target);
                if (dist < best) {
                    best = dist;
                    nearest = p;
                }
            }
            *o = value(nearest);
        }
    }
}

// Count-Sketch: output o of a set sums sign * raw over its inputs in order.
__global__ void final_kernel(const float* raw, int64_t raw_dim, int64_t n_sets, int out_dim, const uint32_t* start,
                             const uint32_t* input, const float* sign, float* out) {
    int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (t >= n_sets * out_dim) return;
    const int o = int(t % out_dim);
    const float* rs = raw + (t / out_dim) * raw_dim;
    float acc = 0.f;
    for (uint32_t e = start[o]; e < start[o + 1]; e++) acc = __fadd_rn(acc, __fmul_rn(sign[e], rs[input[e]]));
    out[t] = acc;
}

template <class T>
void upload(GpuResources& res, DeviceVector<T>& dst, const std::vector<T>& src) {
    dst.resize(std::max<size_t>(src.size(), 1), res.stream());
    if (!src.empty())
        NEARLY_CUDA_CHECK(
            cudaMemcpyAsync(dst.data(), src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, res.stream()));
}

unsigned blocks(int64_t n) { return unsigned((n + 255) / 256); }

}  // namespace

GpuFdeEncoder::GpuFdeEncoder(ResourcesPtr res, std::shared_ptr<const FdeEncoder> cpu)
    : res_(std::move(res)), cpu_(std::move(cpu)) {
    NEARLY_CHECK_ARG(res_ && cpu_, "GpuFdeEncoder needs resources and an encoder");
    const FdeConfig& c = cpu_->config();
    NEARLY_CHECK_ARG(c.num_simhash_projections <= 20, "GPU FDE encoding supports at most 20 SimHash projections");
    std::lock_guard<std::mutex> call(res_->call_mutex());
    res_->set_device();
    upload(*res_, simhash_, cpu_->simhash());
    upload(*res_, ams_start_, cpu_->ams_start());
    upload(*res_, ams_input_, cpu_->ams_input());
    upload(*res_, ams_sign_, cpu_->ams_sign());
    if (c.final_projection_dimension > 0) {
        // The Count-Sketch inverted: per output coordinate its inputs, in
        // increasing order (the CPU's order of additions).
        const auto& target = cpu_->final_target();
        const size_t F = size_t(c.final_projection_dimension);
        std::vector<uint32_t> start(F + 1, 0), input(target.size());
        std::vector<float> sign(target.size());
        for (uint32_t t : target) start[t + 1]++;
        for (size_t o = 0; o < F; o++) start[o + 1] += start[o];
        std::vector<uint32_t> next(start.begin(), start.end() - 1);
        for (size_t i = 0; i < target.size(); i++) {
            uint32_t e = next[target[i]]++;
            input[e] = uint32_t(i);
            sign[e] = cpu_->final_sign()[i];
        }
        upload(*res_, final_start_, start);
        upload(*res_, final_input_, input);
        upload(*res_, final_sign_, sign);
    }
    res_->synchronize();
}

void GpuFdeEncoder::encode(FdeEncoding encoding, const float* vectors, size_t n_vectors, const int64_t* lengths,
                           size_t n_sets, float* out) const {
    const FdeConfig& c = cpu_->config();
    if (encoding == FdeEncoding::query_sum && c.fill_empty_partitions)
        throw InvalidArgument("fill_empty_partitions is for document encodings only; queries cannot use it");
    const size_t d = size_t(c.dimension);
    const std::vector<size_t> offsets = ragged_offsets(lengths, n_sets, n_vectors, "FDE encoding");
    if (n_sets == 0) return;
    std::lock_guard<std::mutex> call(res_->call_mutex());
    res_->set_device();
    cudaStream_t st = res_->stream();
    const bool x_dev = is_device_pointer(vectors), out_dev = is_device_pointer(out);
    if (!x_dev) check_finite(vectors, n_vectors * d, "the vectors");
    const int R = c.num_repetitions, k = c.num_simhash_projections;
    const int B = int(c.block_dimension());
    const bool ams = c.projection == FdeProjection::ams_sketch;
    const int64_t raw_dim = int64_t(c.raw_dimension()), out_dim = int64_t(c.output_dimension());
    const bool has_final = c.final_projection_dimension > 0;
    const bool average = encoding == FdeEncoding::document_average;
    const bool fill = average && c.fill_empty_partitions && k > 0;

    Scratch<float> xs(*res_, x_dev ? 0 : n_vectors * d);
    const float* x = vectors;
    if (!x_dev) {
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(xs.get(), vectors, n_vectors * d * 4, cudaMemcpyHostToDevice, st));
        x = xs.get();
    } else {
        check_finite_device(*res_, vectors, int64_t(n_vectors * d), "the vectors");
    }
    std::vector<int64_t> off(offsets.begin(), offsets.end());
    Scratch<int64_t> off_dev(*res_, off.size());
    NEARLY_CUDA_CHECK(cudaMemcpyAsync(off_dev.get(), off.data(), off.size() * 8, cudaMemcpyHostToDevice, st));
    Scratch<uint32_t> words(*res_, n_vectors * R);
    if (k > 0) {
        words_kernel<<<blocks(int64_t(n_vectors) * R), 256, 0, st>>>(x, int64_t(n_vectors), int(d), R, k,
                                                                      simhash_.data(), words.get());
    } else {
        NEARLY_CUDA_CHECK(cudaMemsetAsync(words.get(), 0, n_vectors * R * 4, st));
    }
    Scratch<float> y(*res_, ams ? n_vectors * R * B : 0);
    if (ams)
        ams_kernel<<<blocks(int64_t(n_vectors) * R * B), 256, 0, st>>>(x, int64_t(n_vectors), int(d), R, B,
                                                                       ams_start_.data(), ams_input_.data(),
                                                                       ams_sign_.data(), y.get());
    Scratch<float> raw_buf(*res_, has_final || !out_dev ? n_sets * raw_dim : 0);
    float* raw = has_final || !out_dev ? raw_buf.get() : out;
    NEARLY_CUDA_CHECK(cudaMemsetAsync(raw, 0, n_sets * raw_dim * 4, st));
    partition_kernel<<<blocks(int64_t(n_sets) * R * B), 256, 0, st>>>(ams ? y.get() : x, ams, int(d), off_dev.get(),
                                                                       int64_t(n_sets), R, k, B, words.get(), average,
                                                                       fill, raw, raw_dim);
    NEARLY_CUDA_CHECK(cudaGetLastError());
    const float* result = raw;
    Scratch<float> fin(*res_, has_final && !out_dev ? n_sets * out_dim : 0);
    if (has_final) {
        float* dst = out_dev ? out : fin.get();
        final_kernel<<<blocks(int64_t(n_sets) * out_dim), 256, 0, st>>>(raw, raw_dim, int64_t(n_sets), int(out_dim),
                                                                         final_start_.data(), final_input_.data(),
                                                                         final_sign_.data(), dst);
        NEARLY_CUDA_CHECK(cudaGetLastError());
        result = dst;
    }
    if (!out_dev)
        NEARLY_CUDA_CHECK(cudaMemcpyAsync(out, result, n_sets * out_dim * 4, cudaMemcpyDeviceToHost, st));
    res_->synchronize();
}

}  // namespace nearly::gpu
