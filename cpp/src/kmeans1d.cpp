#include "nearly/kmeans1d.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nearly/random.h"

namespace nearly {

namespace {
using Lookup = std::function<double(size_t, size_t)>;

// SMAWK on the rows and columns given (indices into the matrix).
void smawk_rec(const std::vector<size_t>& rows, const std::vector<size_t>& cols, const Lookup& lookup,
               idx_t* argmins) {
    if (rows.empty()) return;
    // REDUCE: at most one column per row can hold a row minimum.
    std::vector<size_t> kept;
    kept.reserve(rows.size());
    for (size_t c : cols) {
        while (!kept.empty()) {
            const size_t r = rows[kept.size() - 1];
            if (lookup(r, kept.back()) <= lookup(r, c)) break;  // ties: the leftmost stays
            kept.pop_back();
        }
        if (kept.size() < rows.size()) kept.push_back(c);
    }
    // The odd rows recursively, then each even row between its neighbours' minima.
    std::vector<size_t> odd;
    for (size_t i = 1; i < rows.size(); i += 2) odd.push_back(rows[i]);
    smawk_rec(odd, kept, lookup, argmins);
    size_t c = 0;
    for (size_t i = 0; i < rows.size(); i += 2) {
        const size_t r = rows[i];
        const size_t last = i + 1 < rows.size() ? size_t(argmins[rows[i + 1]]) : kept.back();
        size_t best = kept[c];
        double best_v = lookup(r, best);
        while (kept[c] != last) {
            c++;
            const double v = lookup(r, kept[c]);
            if (v < best_v) best = kept[c], best_v = v;
        }
        argmins[r] = idx_t(best);
    }
}
}  // namespace

void smawk(size_t nrows, size_t ncols, const Lookup& lookup, idx_t* argmins) {
    NEARLY_CHECK_ARG(nrows == 0 || ncols > 0, "smawk: the matrix needs columns");
    std::vector<size_t> rows(nrows), cols(ncols);
    for (size_t i = 0; i < nrows; i++) rows[i] = i;
    for (size_t j = 0; j < ncols; j++) cols[j] = j;
    smawk_rec(rows, cols, lookup, argmins);
}

double kmeans1d(const float* x, size_t n, size_t k, float* centroids) {
    NEARLY_CHECK_ARG(k >= 1, "kmeans1d: k must be positive");
    if (n < k)
        throw NotSupported("Number of training points (" + std::to_string(n) +
                           ") should be at least as large as number of clusters (" + std::to_string(k) + ")");
    check_finite(x, n, "the values");
    std::vector<float> v(x, x + n);
    std::sort(v.begin(), v.end());
    std::vector<double> s1(n + 1, 0.0), s2(n + 1, 0.0);
    for (size_t i = 0; i < n; i++) {
        s1[i + 1] = s1[i] + v[i];
        s2[i + 1] = s2[i] + double(v[i]) * v[i];
    }
    // The sum of squared deviations of v[j .. i] from their mean.
    auto cost = [&](size_t j, size_t i) {
        const double s = s1[i + 1] - s1[j], cnt = double(i - j + 1);
        return std::max(0.0, (s2[i + 1] - s2[j]) - s * s / cnt);
    };
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> prev(n), cur(n);
    std::vector<std::vector<idx_t>> from(k, std::vector<idx_t>(n, 0));
    for (size_t i = 0; i < n; i++) prev[i] = cost(0, i);
    for (size_t m = 1; m < k; m++) {
        // Row i, column j: the last cluster is v[j .. i] (j >= 1 and j <= i).
        smawk(n, n, [&](size_t i, size_t j) {
            if (j == 0 || j > i) return inf;
            return prev[j - 1] + cost(j, i);
        }, from[m].data());
        for (size_t i = 0; i < n; i++) {
            const size_t j = size_t(from[m][i]);
            cur[i] = j == 0 || j > i ? inf : prev[j - 1] + cost(j, i);
        }
        std::swap(prev, cur);
    }
    std::vector<size_t> sizes(k);
    size_t i = n - 1;
    for (size_t m = k; m-- > 0;) {
        const size_t j = m == 0 ? 0 : size_t(from[m][i]);
        sizes[m] = i - j + 1;
        centroids[m] = float((s1[i + 1] - s1[j]) / double(sizes[m]));
        if (m > 0) i = j - 1;
    }
    double ss = 0;
    for (size_t s : sizes) ss += double(s) * double(s);
    return ss * double(k) / (double(n) * double(n));
}

void Clustering1D::train_exact(idx_t n_in, const float* x_in) {
    NEARLY_CHECK_ARG(n_in >= 0, "n must be non-negative");
    const float* x = x_in;
    size_t n = size_t(n_in);
    std::vector<float> sample;
    if (max_points_per_centroid > 0)
        maybe_subsample(x, n, 1, size_t(k) * size_t(max_points_per_centroid), sample, verbose, seed);
    centroids.resize(size_t(k));
    const double imbalance = kmeans1d(x, n, size_t(k), centroids.data());
    ClusteringIterationStats st{};
    st.imbalance_factor = imbalance;
    iteration_stats.push_back(st);
}

}  // namespace nearly
