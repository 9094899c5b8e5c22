#include "nearly/random.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "nearly/common.h"
#include "nearly/libstdcxx_random.h"
#include "nearly/parallel.h"

namespace nearly {

namespace {

// faiss's RandomGenerator: std::mt19937 seeded with the seed cut to 32 bits.
struct Generator {
    Mt19937 mt;
    explicit Generator(int64_t seed) : mt(uint32_t(uint64_t(seed))) {}
    int rand_int() { return int(mt() & 0x7fffffffu); }
    int64_t rand_int64() { return int64_t(rand_int()) | (int64_t(rand_int()) << 31); }
    float rand_float() { return float(mt()) / float(0xffffffffu); }
    double rand_double() { return double(mt()) / double(0xffffffffu); }
};

// fill(generator, begin, end) on each block of x[0, n), with faiss's blocks and seeds.
template <class Fill>
void draw_blocks(size_t n, int64_t seed, const Fill& fill) {
    const size_t nblock = n < 1024 ? 1 : 1024;
    Generator g0(seed);
    const int64_t a0 = g0.rand_int(), b0 = g0.rand_int();
    parallel_for(nblock, [&](size_t j) {
        Generator g(a0 + int64_t(j) * b0);
        fill(g, j * n / nblock, (j + 1) * n / nblock);
    });
}

}  // namespace

void float_rand(float* x, size_t n, int64_t seed) {
    draw_blocks(n, seed, [&](Generator& g, size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; i++) x[i] = g.rand_float();
    });
}

void float_randn(float* x, size_t n, int64_t seed) {
    draw_blocks(n, seed, [&](Generator& g, size_t i0, size_t i1) {
        double a = 0, b = 0, s = 0;
        bool second = false;  // each accepted pair gives two values
        for (size_t i = i0; i < i1; i++) {
            if (!second) {
                do {
                    a = 2.0 * g.rand_double() - 1;
                    b = 2.0 * g.rand_double() - 1;
                    s = a * a + b * b;
                } while (s >= 1.0);
                x[i] = float(a * std::sqrt(-2.0 * std::log(s) / s));
            } else {
                x[i] = float(b * std::sqrt(-2.0 * std::log(s) / s));
            }
            second = !second;
        }
    });
}

void int64_rand(int64_t* x, size_t n, int64_t seed) {
    draw_blocks(n, seed, [&](Generator& g, size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; i++) x[i] = g.rand_int64();
    });
}

void int64_rand_max(int64_t* x, size_t n, uint64_t max, int64_t seed) {
    NEARLY_CHECK_ARG(max > 0, "int64_rand_max: max must be positive");
    draw_blocks(n, seed, [&](Generator& g, size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; i++) x[i] = int64_t(uint64_t(g.rand_int64()) % max);
    });
}

std::vector<double> random_rotation_rows(size_t rows, size_t cols, int64_t seed) {
    NEARLY_CHECK_ARG(rows <= cols, "random_rotation_rows: rows must be <= cols");
    std::vector<float> g(rows * cols);
    float_randn(g.data(), g.size(), seed);
    // LAPACK sees g as the cols x rows column-major matrix whose columns are
    // our rows; its Q's columns are the rows returned. Householder step k
    // maps column k's tail (alpha, x) to (beta, 0), beta = -sign(alpha) |(alpha, x)|,
    // by H = I - tau v v^T with v = (1, x / (alpha - beta)).
    std::vector<double> w(g.begin(), g.end()), v(rows * cols, 0.0), tau(rows, 0.0);
    for (size_t k = 0; k < rows; k++) {
        double* col = &w[k * cols];
        double xnorm2 = 0;
        for (size_t i = k + 1; i < cols; i++) xnorm2 += col[i] * col[i];
        double* vk = &v[k * cols];
        vk[k] = 1.0;
        if (xnorm2 == 0) continue;  // already (alpha, 0): H = I, as dlarfg
        const double alpha = col[k];
        const double beta = -std::copysign(std::sqrt(alpha * alpha + xnorm2), alpha);
        tau[k] = (beta - alpha) / beta;
        for (size_t i = k + 1; i < cols; i++) vk[i] = col[i] / (alpha - beta);
        for (size_t j = k + 1; j < rows; j++) {  // H applied to the columns to the right
            double* cj = &w[j * cols];
            double dotp = 0;
            for (size_t i = k; i < cols; i++) dotp += vk[i] * cj[i];
            dotp *= tau[k];
            for (size_t i = k; i < cols; i++) cj[i] -= dotp * vk[i];
        }
    }
    // Q's first `rows` columns: H_0 H_1 ... H_{rows-1} applied to e_c.
    std::vector<double> q(rows * cols, 0.0);
    parallel_for(rows, [&](size_t c) {
        double* qc = &q[c * cols];
        qc[c] = 1.0;
        for (size_t k = rows; k-- > 0;) {
            if (tau[k] == 0) continue;
            const double* vk = &v[k * cols];
            double dotp = 0;
            for (size_t i = k; i < cols; i++) dotp += vk[i] * qc[i];
            dotp *= tau[k];
            for (size_t i = k; i < cols; i++) qc[i] -= dotp * vk[i];
        }
    });
    return q;
}

void rand_perm(int* perm, size_t n, int64_t seed) {
    for (size_t i = 0; i < n; i++) perm[i] = int(i);
    Mt19937 mt{uint32_t(seed)};  // faiss's RandomGenerator truncates the seed the same way
    for (size_t i = 0; i + 1 < n; i++) {
        size_t j = i + mt() % uint32_t(n - i);
        std::swap(perm[i], perm[j]);
    }
}

void maybe_subsample(const float*& x, size_t& n, size_t d, size_t max, std::vector<float>& storage, bool verbose,
                     int64_t seed) {
    if (max == 0 || n <= max) return;
    if (verbose) std::printf("  Input training set too large (max size is %zu), sampling %zu / %zu vectors\n", max, max, n);
    std::vector<int> perm(n);
    rand_perm(perm.data(), n, seed);
    storage.resize(max * d);
    for (size_t i = 0; i < max; i++) std::copy(x + size_t(perm[i]) * d, x + size_t(perm[i] + 1) * d, &storage[i * d]);
    x = storage.data();
    n = max;
}

}  // namespace nearly
