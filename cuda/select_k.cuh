// Block-wide top-k selection, the building block of every GPU search.
//
// One thread block owns one row. The k best so far sit sorted in the first
// kp (= next power of two >= k) slots of a shared array; candidates that
// beat the current k-th best (the threshold) are appended behind them with a
// shared atomic. When the buffer could overflow, the whole array is bitonic-
// sorted, the best kp kept and the threshold tightened. After the first
// merges the threshold rejects almost everything, so the cost is one read
// and one compare per element. Keys are "smaller is better"; callers negate
// for inner products. Ties go to the smaller position, like the CPU heaps.
#pragma once
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

namespace nearly::gpu {

// Per-thread bookkeeping of a selection (identical in every thread of the
// block, so every thread takes the same branches): candidates committed
// behind the best, and the round number.
struct SelectRound {
    int base = 0;
    int r = 0;
};

// BLOCK threads, S shared slots (a power of two); R items per thread per
// round, so a round appends at most BLOCK * R candidates.
template <int BLOCK, int S, int R>
struct BlockSelect {
    static_assert((S & (S - 1)) == 0, "S must be a power of two");
    float key[S];
    int32_t pos[S];
    // Slot allocators of three consecutive rounds: a round's count is read
    // after the barrier that opens the next round, and reset one round after
    // that, so each round needs a single __syncthreads.
    int cnt[3];
    float thresh;
    float seed;  // a bound known before the scan (the k-th best of earlier tiles)
    int k, kp;

    static constexpr int kRoundItems = BLOCK * R;

    // seed_: only keys below it can matter (FLT_MAX: no bound).
    __device__ void init(int k_, float seed_ = FLT_MAX) {
        int p = 1;
        while (p < k_) p <<= 1;
        if (threadIdx.x == 0) {
            k = k_;
            kp = p;
            cnt[0] = cnt[1] = cnt[2] = 0;
            seed = seed_;
            thresh = seed_;
        }
        for (int i = threadIdx.x; i < p; i += BLOCK) {
            key[i] = FLT_MAX;
            pos[i] = -1;
        }
        __syncthreads();
    }

    __device__ static bool less(float ka, int32_t pa, float kb, int32_t pb) {
        // Empty slots (pos -1) sort last even among equal keys.
        if (ka != kb) return ka < kb;
        return uint32_t(pa) < uint32_t(pb);
    }

    // Sorts the best and the `filled` buffered candidates; keeps the kp best.
    // Only the power-of-two prefix that holds them is sorted, so a merge of a
    // few candidates costs little.
    __device__ void merge(int filled) {
        int P = kp;
        while (P < kp + filled) P <<= 1;
        for (int i = kp + filled + threadIdx.x; i < P; i += BLOCK) {
            key[i] = FLT_MAX;
            pos[i] = -1;
        }
        __syncthreads();
        for (int size = 2; size <= P; size <<= 1) {
            for (int stride = size >> 1; stride > 0; stride >>= 1) {
                for (int t = threadIdx.x; t < P / 2; t += BLOCK) {
                    int i = 2 * t - (t & (stride - 1));
                    int j = i + stride;
                    bool ascending = (i & size) == 0;
                    float ki = key[i], kj = key[j];
                    int32_t pi = pos[i], pj = pos[j];
                    if (less(kj, pj, ki, pi) == ascending) {
                        key[i] = kj;
                        key[j] = ki;
                        pos[i] = pj;
                        pos[j] = pi;
                    }
                }
                __syncthreads();
            }
        }
        if (threadIdx.x == 0) {
            // Only a full set of k real candidates bounds the rest.
            float t = pos[k - 1] >= 0 ? key[k - 1] : FLT_MAX;
            thresh = t < seed ? t : seed;
        }
        __syncthreads();
    }

    // Uniform: opens a round of at most `items` offers.
    __device__ void begin_round(SelectRound& s, int items) {
        __syncthreads();
        if (s.r > 0) s.base += cnt[(s.r - 1) % 3];
        if (threadIdx.x == 0) cnt[(s.r + 1) % 3] = 0;
        if (s.base + items > S - kp) {
            merge(s.base);
            s.base = 0;
        }
    }
    // Any thread, inside a round.
    __device__ void offer(const SelectRound& s, float v, int32_t p) {
        if (v < thresh) {
            int slot = s.base + atomicAdd(&cnt[s.r % 3], 1);
            key[kp + slot] = v;
            pos[kp + slot] = p;
        }
    }
    __device__ void end_round(SelectRound& s) { s.r++; }
    // Uniform: afterwards key[0..k) / pos[0..k) hold the result, sorted.
    __device__ void finish(SelectRound& s) {
        __syncthreads();
        if (s.r > 0) s.base += cnt[(s.r - 1) % 3];
        if (s.base > 0) merge(s.base);
        s.base = 0;
    }

    // Selects over positions [0, n) of a row, key_of(i) giving each key.
    template <class KeyOf>
    __device__ void run(int64_t n, KeyOf key_of) {
        if (k == 1) {  // k-means assignment, IVF adds: a plain arg-min
            argmin(n, key_of);
            return;
        }
        SelectRound s;
        for (int64_t base = 0; base < n; base += kRoundItems) {
            begin_round(s, kRoundItems);
#pragma unroll
            for (int r = 0; r < R; r++) {
                int64_t i = base + r * BLOCK + threadIdx.x;
                if (i < n) offer(s, key_of(i), int32_t(i));
            }
            end_round(s);
        }
        finish(s);
    }

    template <class KeyOf>
    __device__ void argmin(int64_t n, KeyOf key_of) {
        float best = seed;  // only keys below the seed count
        int32_t arg = -1;
        for (int64_t i = threadIdx.x; i < n; i += BLOCK) {
            float v = key_of(i);
            if (v < best || (v == best && arg >= 0 && int32_t(i) < arg)) {
                best = v;
                arg = int32_t(i);
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int32_t oa = __shfl_xor_sync(0xffffffffu, arg, o);
            if (oa >= 0 && (arg < 0 || less(ob, oa, best, arg))) {
                best = ob;
                arg = oa;
            }
        }
        __syncthreads();  // slots may still be read by an earlier phase
        if (threadIdx.x % 32 == 0) {
            key[kp + threadIdx.x / 32] = best;
            pos[kp + threadIdx.x / 32] = arg;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < BLOCK / 32; w++) {
                float ob = key[kp + w];
                int32_t oa = pos[kp + w];
                if (oa >= 0 && (arg < 0 || less(ob, oa, best, arg))) {
                    best = ob;
                    arg = oa;
                }
            }
            key[0] = arg >= 0 ? best : FLT_MAX;
            pos[0] = arg;
        }
        __syncthreads();
    }
};

// The largest k the block selection handles (faiss's GPU limit too).
constexpr int kMaxSelectK = 2048;

template <int B, int S, int R>
struct SelectConfig {
    static constexpr int kBlock = B;
    static constexpr int kSlots = S;
    static constexpr int kItems = R;
};

// Calls f(SelectConfig<BLOCK, S, R>{}) with the configuration for k
// (<= kMaxSelectK): a round of BLOCK * R items must fit behind the kp best,
// and larger buffers merge less often when many candidates pass.
template <class F>
void with_select_config(int k, F&& f) {
    int kp = 1;
    while (kp < k) kp <<= 1;
    if (kp <= 64)
        f(SelectConfig<128, 1024, 4>{});
    else if (kp <= 512)
        f(SelectConfig<128, 2048, 8>{});
    else
        f(SelectConfig<256, 4096, 4>{});
}

}  // namespace nearly::gpu
