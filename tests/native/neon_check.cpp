// Cross-checks the NEON kernels against the scalar reference. Built for
// AArch64 and run under qemu by tests/test_neon_cross.py when a cross
// compiler and qemu-aarch64 are installed (x86 CI machines skip it).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "nearly/hamming.h"
#include "nearly/rabitq.h"
#include "nearly/simd.h"

using namespace nearly;

int main() {
    const SimdKernels& S = kernels_scalar();
    const SimdKernels& N = kernels_neon();
    std::mt19937 rng(1);
    std::normal_distribution<float> g;
    int failures = 0;
    for (size_t d : {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 384, 1000}) {
        std::vector<float> x(d * 9), q(d);
        for (auto& v : x) v = g(rng);
        for (auto& v : q) v = g(rng);
        float out_s[9], out_n[9];
        for (int l2 = 0; l2 < 2; l2++) {
            (l2 ? S.l2sqr_ny : S.inner_products_ny)(q.data(), x.data(), d, 9, out_s);
            (l2 ? N.l2sqr_ny : N.inner_products_ny)(q.data(), x.data(), d, 9, out_n);
            for (int j = 0; j < 9; j++) {
                double mag = 0;
                for (size_t i = 0; i < d; i++) mag += std::fabs(q[i] * x[j * d + i]) + (l2 ? (q[i] - x[j * d + i]) * (q[i] - x[j * d + i]) : 0);
                if (std::fabs(out_s[j] - out_n[j]) > 1e-6 * d * mag + 1e-30) {
                    std::printf("d=%zu l2=%d row %d: scalar %g neon %g\n", d, l2, j, out_s[j], out_n[j]);
                    failures++;
                }
            }
        }
        // L1 within the rounding of another summation order, Linf exact
        S.l1_ny(q.data(), x.data(), d, 9, out_s);
        N.l1_ny(q.data(), x.data(), d, 9, out_n);
        for (int j = 0; j < 9; j++)
            if (std::fabs(out_s[j] - out_n[j]) > 1e-6 * d * std::fabs(out_s[j]) + 1e-30) {
                std::printf("d=%zu l1 row %d: scalar %g neon %g\n", d, j, out_s[j], out_n[j]);
                failures++;
            }
        S.linf_ny(q.data(), x.data(), d, 9, out_s);
        N.linf_ny(q.data(), x.data(), d, 9, out_n);
        if (std::memcmp(out_s, out_n, sizeof out_s) != 0) {
            std::printf("d=%zu linf differs\n", d);
            failures++;
        }
        std::vector<int8_t> a(d), b(d);
        for (size_t i = 0; i < d; i++) {
            a[i] = int8_t(int(rng() % 255) - 127);
            b[i] = int8_t(int(rng() % 255) - 127);
        }
        if (S.dot_i8(a.data(), b.data(), d) != N.dot_i8(a.data(), b.data(), d)) {
            std::printf("d=%zu dot_i8 differs\n", d);
            failures++;
        }
        // one micro-kernel tile: packed q (d x mr) and panel (d x nr)
        const size_t mr = N.gemm.mr, nr = N.gemm.nr;
        std::vector<float> qp(d * mr), pp(d * nr), tile(mr * nr);
        for (auto& v : qp) v = g(rng);
        for (auto& v : pp) v = g(rng);
        N.gemm_micro(qp.data(), pp.data(), d, tile.data(), nr);
        for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < nr; j++) {
                double ref = 0, mag = 0;
                for (size_t k = 0; k < d; k++) {
                    ref += double(qp[k * mr + i]) * pp[k * nr + j];
                    mag += std::fabs(double(qp[k * mr + i]) * pp[k * nr + j]);
                }
                if (std::fabs(tile[i * nr + j] - ref) > 1e-6 * d * mag + 1e-30) {
                    std::printf("d=%zu gemm tile (%zu,%zu): %g vs %g\n", d, i, j, tile[i * nr + j], ref);
                    failures++;
                }
            }
        // vecmat_unfused and vecmat_fused: the same bits as the scalar reference
        for (size_t n : {1, 3, 4, 15, 16, 17, 100, 256}) {
            std::vector<float> w(d * n), os(n), on(n);
            for (auto& v : w) v = g(rng);
            S.vecmat_unfused(q.data(), d, w.data(), n, os.data());
            N.vecmat_unfused(q.data(), d, w.data(), n, on.data());
            if (std::memcmp(os.data(), on.data(), n * sizeof(float)) != 0) {
                std::printf("d=%zu n=%zu vecmat_unfused differs from scalar\n", d, n);
                failures++;
            }
            S.vecmat_fused(q.data(), d, w.data(), n, os.data());
            N.vecmat_fused(q.data(), d, w.data(), n, on.data());
            if (std::memcmp(os.data(), on.data(), n * sizeof(float)) != 0) {
                std::printf("d=%zu n=%zu vecmat_fused differs from scalar\n", d, n);
                failures++;
            }
        }
    }
    // Hamming distances: integers, equal to the scalar reference
    for (size_t cs : {1, 7, 8, 13, 48, 65}) {
        std::vector<uint8_t> q(cs), x(cs * 9);
        for (auto& v : q) v = uint8_t(rng());
        for (auto& v : x) v = uint8_t(rng());
        int32_t hs[9], hn[9];
        hamming_ny_scalar(q.data(), x.data(), cs, 9, hs);
        hamming_ny_neon(q.data(), x.data(), cs, 9, hn);
        if (std::memcmp(hs, hn, sizeof hs) != 0) {
            std::printf("cs=%zu hamming_ny differs from scalar\n", cs);
            failures++;
        }
    }
    // RaBitQ bit dot products: integers, equal to the scalar reference
    for (size_t nbytes : {1, 7, 8, 13, 48, 65}) {
        for (size_t qb = 0; qb <= 8; qb++) {
            const size_t stride = nbytes + 9, n = 11;
            std::vector<uint8_t> planes(qb * nbytes), codes(n * stride);
            for (auto& v : planes) v = uint8_t(rng());
            for (auto& v : codes) v = uint8_t(rng());
            std::vector<uint32_t> ds(n), ps(n), dn(n), pn(n);
            rabitq_dots_scalar(planes.data(), qb, codes.data(), nbytes, stride, n, ds.data(), ps.data());
            rabitq_dots_neon(planes.data(), qb, codes.data(), nbytes, stride, n, dn.data(), pn.data());
            if (ds != dn || ps != pn) {
                std::printf("nbytes=%zu qb=%zu rabitq_dots differs from scalar\n", nbytes, qb);
                failures++;
            }
        }
    }
    std::printf("%s: %d failures\n", failures ? "FAIL" : "OK", failures);
    return failures ? 1 : 0;
}
