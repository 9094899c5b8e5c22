#include "nearly/linalg.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "nearly/common.h"
#include "nearly/parallel.h"

namespace nearly {

namespace {

// Four partial sums: the compiler does not reorder a double reduction by
// itself, and these dot products are the inner loop of the Jacobi sweeps.
double dot(const double* a, const double* b, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

// a -= c * b
void axpy(double* a, double c, const double* b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] -= c * b[i];
}

// (p, q) <- (c p - s q, s p + c q)
void rotate(double* p, double* q, double c, double s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const double a = p[i], b = q[i];
        p[i] = c * a - s * b;
        q[i] = s * a + c * b;
    }
}

// Removes from row the components along the first `done` rows of a (assumed
// orthonormal), twice, and returns the norm left.
double project_out(double* row, const double* a, size_t done, size_t cols) {
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < done; j++) axpy(row, dot(row, a + j * cols, cols), a + j * cols, cols);
    return std::sqrt(dot(row, row, cols));
}

}  // namespace

void orthonormalize_rows(double* a, size_t rows, size_t cols) {
    size_t next_unit = 0;  // the next basis vector to try as a completion
    for (size_t i = 0; i < rows; i++) {
        double* row = a + i * cols;
        const double before = std::sqrt(dot(row, row, cols));
        double nrm = project_out(row, a, i, cols);
        if (!(before > 0) || !(nrm > 1e-9 * before)) {
            // Dependent row: the first basis vector that keeps enough of its
            // length once the rows above are removed. Among all basis vectors
            // the squared lengths left add up to cols - i >= 1, so one keeps at
            // least 1 / sqrt(cols), more than the threshold.
            const double threshold = 0.5 / std::sqrt(double(cols));
            for (size_t tries = 0; tries < cols; tries++, next_unit++) {
                std::fill(row, row + cols, 0.0);
                row[next_unit % cols] = 1.0;
                nrm = project_out(row, a, i, cols);
                if (nrm > threshold) break;
            }
            next_unit++;
        }
        for (size_t j = 0; j < cols; j++) row[j] /= nrm;
    }
}

void procrustes_rotation(const double* m, size_t rows, size_t cols, double* r, std::vector<double>& left) {
    if (left.size() != rows * rows) {
        left.assign(rows * rows, 0.0);
        for (size_t i = 0; i < rows; i++) left[i * rows + i] = 1.0;
    }
    // m = U W with U orthogonal (left holds U^T); the sweeps rotate pairs of
    // rows of W (and the matching columns of U) until all rows of W are
    // orthogonal. Then W = S V^T, and U V^T is the answer.
    std::vector<double> w(rows * cols, 0.0);
    for (size_t i = 0; i < rows; i++)
        for (size_t k = 0; k < rows; k++) {
            const double u = left[i * rows + k];
            if (u != 0.0) axpy(&w[i * cols], -u, m + k * cols, cols);
        }

    // Rows shorter than kNegligible times the longest are rank deficiency:
    // rounding noise that no rotation can make orthogonal to the others. They
    // are left alone, and their directions completed at the end.
    const double kNegligible2 = 1e-22;  // squared: singular values below 1e-11 * the largest
    std::vector<double> norm2(rows);
    const double tol = 1e-12;
    for (int sweep = 0; sweep < 80; sweep++) {
        double max2 = 0;
        for (size_t i = 0; i < rows; i++) {
            norm2[i] = dot(&w[i * cols], &w[i * cols], cols);
            max2 = std::max(max2, norm2[i]);
        }
        const double floor2 = kNegligible2 * max2;
        bool rotated = false;
        for (size_t p = 0; p + 1 < rows; p++)
            for (size_t q = p + 1; q < rows; q++) {
                const double alpha = norm2[p], beta = norm2[q];
                if (!(alpha > floor2) || !(beta > floor2)) continue;
                const double gamma = dot(&w[p * cols], &w[q * cols], cols);
                if (std::fabs(gamma) <= tol * std::sqrt(alpha * beta)) continue;
                const double zeta = (beta - alpha) / (2 * gamma);
                const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
                const double c = 1 / std::sqrt(1 + t * t), s = c * t;
                rotate(&w[p * cols], &w[q * cols], c, s, cols);
                rotate(&left[p * rows], &left[q * rows], c, s, rows);
                norm2[p] = alpha - t * gamma;
                norm2[q] = beta + t * gamma;
                rotated = true;
            }
        if (!rotated) break;
    }

    // V^T: the rows of W scaled to unit length, the strong ones first so that
    // the completion of the weak ones (rank deficiency) cannot disturb them.
    double max2 = 0;
    for (size_t i = 0; i < rows; i++) {
        norm2[i] = dot(&w[i * cols], &w[i * cols], cols);
        max2 = std::max(max2, norm2[i]);
    }
    auto strong = [&](size_t i) { return max2 > 0 && norm2[i] > kNegligible2 * max2; };
    std::vector<size_t> order(rows);
    size_t nstrong = 0;
    for (size_t i = 0; i < rows; i++)
        if (strong(i)) order[nstrong++] = i;
    for (size_t i = 0, weak = nstrong; i < rows; i++)
        if (!strong(i)) order[weak++] = i;
    std::vector<double> vt(rows * cols, 0.0);
    for (size_t j = 0; j < nstrong; j++) std::copy(&w[order[j] * cols], &w[order[j] * cols] + cols, &vt[j * cols]);
    orthonormalize_rows(vt.data(), rows, cols);

    // r = sum_j u_(order j) (x) vt_j
    std::fill(r, r + rows * cols, 0.0);
    for (size_t j = 0; j < rows; j++) {
        const double* u = &left[order[j] * rows];
        for (size_t a = 0; a < rows; a++)
            if (u[a] != 0.0) axpy(r + a * cols, -u[a], &vt[j * cols], cols);
    }
}

namespace {

// a = Q T Q^T with T tridiagonal (diagonal d, off-diagonal e[i] between i and
// i + 1, e[n-1] = 0); returns Q^T (rows: the basis), row-major.
std::vector<double> tridiagonalize(std::vector<double>& a, size_t n, std::vector<double>& d, std::vector<double>& e) {
    std::vector<std::vector<double>> reflectors(n);  // v_k (unit), acting on indices k+1 .. n-1
    std::vector<double> p(n), q(n);
    for (size_t k = 0; k + 2 < n; k++) {
        const size_t m = n - k - 1;
        std::vector<double> v(m);
        double norm2 = 0;
        for (size_t i = 0; i < m; i++) {
            v[i] = a[(k + 1 + i) * n + k];
            norm2 += v[i] * v[i];
        }
        if (norm2 == 0) continue;  // already reduced: H_k = I
        const double alpha = -std::copysign(std::sqrt(norm2), v[0]);
        v[0] -= alpha;
        double vn = 0;
        for (double x : v) vn += x * x;
        vn = std::sqrt(vn);
        if (vn == 0) continue;
        for (double& x : v) x /= vn;
        // Column and row k become (alpha, 0, ...); the trailing block B
        // becomes H B H = B - 2 (v w^T + w v^T), w = B v - (v^T B v) v.
        a[(k + 1) * n + k] = a[k * n + k + 1] = alpha;
        for (size_t i = 1; i < m; i++) a[(k + 1 + i) * n + k] = a[k * n + k + 1 + i] = 0;
        double vbv = 0;
        for (size_t i = 0; i < m; i++) {
            const double* row = &a[(k + 1 + i) * n + k + 1];
            double s = 0;
            for (size_t j = 0; j < m; j++) s += row[j] * v[j];
            p[i] = s;
            vbv += v[i] * s;
        }
        for (size_t i = 0; i < m; i++) q[i] = p[i] - vbv * v[i];
        for (size_t i = 0; i < m; i++) {
            double* row = &a[(k + 1 + i) * n + k + 1];
            for (size_t j = 0; j < m; j++) row[j] -= 2 * (v[i] * q[j] + q[i] * v[j]);
        }
        reflectors[k] = std::move(v);
    }
    d.assign(n, 0);
    e.assign(n, 0);
    for (size_t i = 0; i < n; i++) d[i] = a[i * n + i];
    for (size_t i = 0; i + 1 < n; i++) e[i] = a[(i + 1) * n + i];
    // Q = H_0 H_1 ... H_{n-3}, built from the right: Q <- H_k Q.
    std::vector<double> Q(n * n, 0.0), t(n);
    for (size_t i = 0; i < n; i++) Q[i * n + i] = 1;
    for (size_t k = n >= 2 ? n - 2 : 0; k-- > 0;) {
        const std::vector<double>& v = reflectors[k];
        if (v.empty()) continue;
        const size_t m = v.size();
        std::fill(t.begin(), t.end(), 0.0);
        for (size_t i = 0; i < m; i++) axpy(t.data(), -v[i], &Q[(k + 1 + i) * n], n);  // t = v^T Q_rows
        for (size_t i = 0; i < m; i++) axpy(&Q[(k + 1 + i) * n], 2 * v[i], t.data(), n);
    }
    std::vector<double> qt(n * n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) qt[j * n + i] = Q[i * n + j];
    return qt;
}

}  // namespace

void symmetric_eigen(std::vector<double>& a, size_t n, std::vector<double>& values) {
    NEARLY_CHECK_ARG(a.size() == n * n, "symmetric_eigen: a must be n x n");
    std::vector<double> d, e;
    std::vector<double> w = tridiagonalize(a, n, d, e);  // rows: basis vectors
    // Implicit QL on (d, e); each plane rotation of indices (i, i + 1) is
    // applied to rows i, i + 1 of w, which end as the eigenvectors.
    const double eps = std::numeric_limits<double>::epsilon();
    for (size_t l = 0; l < n; l++) {
        for (int iter = 0;; iter++) {
            size_t m = l;
            for (; m + 1 < n; m++)
                if (std::fabs(e[m]) <= eps * (std::fabs(d[m]) + std::fabs(d[m + 1]))) break;
            if (m == l) break;
            if (iter == 100) throw NotSupported("symmetric_eigen: no convergence");
            double g = (d[l + 1] - d[l]) / (2 * e[l]);
            double r = std::hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
            double s = 1, c = 1, p = 0;
            bool split = false;
            for (size_t i = m; i-- > l;) {
                const double f = s * e[i], b = c * e[i];
                r = std::hypot(f, g);
                e[i + 1] = r;
                if (r == 0) {  // the matrix splits here: restart on the smaller block
                    d[i + 1] -= p;
                    e[m] = 0;
                    split = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                rotate(&w[i * n], &w[(i + 1) * n], c, s, n);
            }
            if (split) continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0;
        }
    }
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return d[x] > d[y]; });
    values.resize(n);
    for (size_t i = 0; i < n; i++) {
        values[i] = d[order[i]];
        std::copy(&w[order[i] * n], &w[order[i] * n] + n, &a[i * n]);
    }
}

void cholesky_solve(double* a, size_t n, double* b, size_t nrhs) {
    constexpr size_t kBlock = 64, kRowsPerTask = 16;
    std::vector<double> panel_t;  // the panel's columns, each as a row of n
    for (size_t j0 = 0; j0 < n; j0 += kBlock) {
        const size_t j1 = std::min(n, j0 + kBlock), w = j1 - j0;
        // The diagonal block (the panels left of it are already subtracted).
        for (size_t j = j0; j < j1; j++) {
            double s = a[j * n + j];
            for (size_t k = j0; k < j; k++) s -= a[j * n + k] * a[j * n + k];
            if (!(s > 0.0)) throw std::invalid_argument("cholesky_solve: the matrix is not positive definite");
            a[j * n + j] = std::sqrt(s);
            for (size_t i = j + 1; i < j1; i++) {
                double t = a[i * n + j];
                for (size_t k = j0; k < j; k++) t -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = t / a[j * n + j];
            }
        }
        if (j1 == n) break;
        // The panel under it, then the trailing lower triangle minus the
        // panel times its transpose: row by row, each row updated from the
        // panel's columns laid out as rows (contiguous sweeps).
        parallel_for((n - j1 + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
            for (size_t i = j1 + t * kRowsPerTask; i < std::min(n, j1 + (t + 1) * kRowsPerTask); i++)
                for (size_t j = j0; j < j1; j++) {
                    double v = a[i * n + j];
                    for (size_t k = j0; k < j; k++) v -= a[i * n + k] * a[j * n + k];
                    a[i * n + j] = v / a[j * n + j];
                }
        });
        panel_t.assign(w * n, 0.0);
        for (size_t c = j1; c < n; c++)
            for (size_t k = 0; k < w; k++) panel_t[k * n + c] = a[c * n + j0 + k];
        parallel_for((n - j1 + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
            for (size_t i = j1 + t * kRowsPerTask; i < std::min(n, j1 + (t + 1) * kRowsPerTask); i++) {
                double* row = a + i * n;
                for (size_t k = 0; k < w; k++) {
                    const double l = row[j0 + k];
                    const double* p = panel_t.data() + k * n;
                    for (size_t c = j1; c <= i; c++) row[c] -= l * p[c];
                }
            }
        });
    }
    // L y = b, then L^T x = y, on column strips of b (independent).
    constexpr size_t kStrip = 64;
    parallel_for((nrhs + kStrip - 1) / kStrip, [&](size_t t) {
        const size_t c0 = t * kStrip, cw = std::min(nrhs, c0 + kStrip) - c0;
        for (size_t i = 0; i < n; i++) {
            double* yi = b + i * nrhs + c0;
            for (size_t k = 0; k < i; k++) {
                const double l = a[i * n + k];
                const double* yk = b + k * nrhs + c0;
                for (size_t c = 0; c < cw; c++) yi[c] -= l * yk[c];
            }
            for (size_t c = 0; c < cw; c++) yi[c] /= a[i * n + i];
        }
        for (size_t k = n; k-- > 0;) {
            double* xk = b + k * nrhs + c0;
            for (size_t c = 0; c < cw; c++) xk[c] /= a[k * n + k];
            for (size_t i = 0; i < k; i++) {
                const double l = a[k * n + i];
                double* yi = b + i * nrhs + c0;
                for (size_t c = 0; c < cw; c++) yi[c] -= l * xk[c];
            }
        }
    });
}

}  // namespace nearly
