#include <cub/device/device_segmented_sort.cuh>

#include "select_k.cuh"
#include "select_k.h"

namespace nearly::gpu {

namespace {

template <int BLOCK, int S, int R>
__global__ void __launch_bounds__(BLOCK) select_rows_kernel(const float* in, const int64_t* in_ids, int64_t cols,
                                                            int k, bool largest, float* out, int64_t* out_ids) {
    __shared__ BlockSelect<BLOCK, S, R> sel;
    int64_t row = blockIdx.x;
    const float* r = in + row * cols;
    sel.init(k);
    float sign = largest ? -1.f : 1.f;
    sel.run(cols, [&](int64_t i) { return sign * r[i]; });
    for (int i = threadIdx.x; i < k; i += BLOCK) {
        int32_t p = sel.pos[i];
        out[row * k + i] = p < 0 ? sign * FLT_MAX : sign * sel.key[i];
        out_ids[row * k + i] = p < 0 ? -1 : (in_ids ? in_ids[row * cols + p] : int64_t(p));
    }
}

__global__ void row_offsets_kernel(int* offsets, int64_t rows, int64_t cols) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i <= rows) offsets[i] = int(i * cols);
}

__global__ void iota_rows_kernel(int* v, int64_t rows, int64_t cols) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < rows * cols) v[i] = int(i % cols);
}

__global__ void gather_sorted_kernel(const float* keys, const int* vals, const int64_t* in_ids, int64_t rows,
                                     int64_t cols, int k, bool largest, float* out, int64_t* out_ids) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= rows * k) return;
    int64_t row = i / k, j = i % k;
    if (j < cols) {
        int p = vals[row * cols + j];
        out[i] = keys[row * cols + j];
        out_ids[i] = in_ids ? in_ids[row * cols + p] : p;
    } else {
        out[i] = largest ? -FLT_MAX : FLT_MAX;
        out_ids[i] = -1;
    }
}

// k beyond the shared-memory selection: sort every row. Row offsets are
// 32-bit in CUB's segmented sort, so the input is cut into row blocks.
void select_by_sort(GpuResources& res, const float* in, const int64_t* in_ids, int64_t rows, int64_t cols, int k,
                    bool largest, float* out, int64_t* out_ids) {
    cudaStream_t st = res.stream();
    int64_t rows_per = std::max<int64_t>(1, std::min<int64_t>(rows, (int64_t(1) << 30) / std::max<int64_t>(cols, 1)));
    for (int64_t r0 = 0; r0 < rows; r0 += rows_per) {
        int64_t nr = std::min(rows_per, rows - r0);
        int64_t n = nr * cols;
        Scratch<int> offsets(res, nr + 1), vals_in(res, n), vals_out(res, n);
        Scratch<float> keys_out(res, n);
        row_offsets_kernel<<<(nr + 256) / 256, 256, 0, st>>>(offsets.get(), nr, cols);
        iota_rows_kernel<<<(n + 255) / 256, 256, 0, st>>>(vals_in.get(), nr, cols);
        const float* keys_in = in + r0 * cols;
        size_t temp = 0;
        if (largest)
            cub::DeviceSegmentedSort::StableSortPairsDescending(nullptr, temp, keys_in, keys_out.get(), vals_in.get(),
                                                                vals_out.get(), int(n), int(nr), offsets.get(),
                                                                offsets.get() + 1, st);
        else
            cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp, keys_in, keys_out.get(), vals_in.get(),
                                                      vals_out.get(), int(n), int(nr), offsets.get(), offsets.get() + 1,
                                                      st);
        Scratch<char> tmp(res, temp);
        if (largest)
            cub::DeviceSegmentedSort::StableSortPairsDescending(tmp.get(), temp, keys_in, keys_out.get(), vals_in.get(),
                                                                vals_out.get(), int(n), int(nr), offsets.get(),
                                                                offsets.get() + 1, st);
        else
            cub::DeviceSegmentedSort::StableSortPairs(tmp.get(), temp, keys_in, keys_out.get(), vals_in.get(),
                                                      vals_out.get(), int(n), int(nr), offsets.get(), offsets.get() + 1,
                                                      st);
        int64_t m = nr * k;
        gather_sorted_kernel<<<(m + 255) / 256, 256, 0, st>>>(keys_out.get(), vals_out.get(),
                                                               in_ids ? in_ids + r0 * cols : nullptr, nr, cols, k,
                                                               largest, out + r0 * k, out_ids + r0 * k);
        NEARLY_CUDA_CHECK(cudaGetLastError());
    }
}

}  // namespace

void select_k(GpuResources& res, const float* in, const int64_t* in_ids, int64_t rows, int64_t cols, int k,
              bool largest, float* out, int64_t* out_ids) {
    NEARLY_CHECK_ARG(k >= 1, "k must be >= 1");
    if (rows == 0) return;
    res.set_device();
    if (k > kMaxSelectK) {
        select_by_sort(res, in, in_ids, rows, cols, k, largest, out, out_ids);
        return;
    }
    NEARLY_CHECK_ARG(cols < (int64_t(1) << 31), "select_k: rows longer than 2^31 - 1 columns");
    with_select_config(k, [&](auto cfg) {
        using C = decltype(cfg);
        for (int64_t r0 = 0; r0 < rows; r0 += 0x7fffffff) {
            int64_t nr = std::min<int64_t>(rows - r0, 0x7fffffff);
            select_rows_kernel<C::kBlock, C::kSlots, C::kItems><<<unsigned(nr), C::kBlock, 0, res.stream()>>>(
                in + r0 * cols, in_ids ? in_ids + r0 * cols : nullptr, cols, k, largest, out + r0 * k,
                out_ids + r0 * k);
        }
    });
    NEARLY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace nearly::gpu
