#include "nearly/graph_build.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "nearly/distance.h"
#include "nearly/parallel.h"
#include "nearly/simd.h"

namespace nearly {

namespace {

struct Link {
    float score;
    int32_t id;
    bool operator<(const Link& o) const { return score < o.score || (score == o.score && id < o.id); }
};

// HNSW's heuristic over links sorted best first, into out (at most cap).
void heuristic(const float* x, int d, MetricType metric, int32_t self, const Link* c, size_t nc, int cap,
               std::vector<Link>& out) {
    out.clear();
    if (nc <= size_t(cap)) {
        out.assign(c, c + nc);
        return;
    }
    for (size_t i = 0; i < nc && out.size() < size_t(cap); i++) {
        if (c[i].id == self) continue;
        const float* xc = x + size_t(c[i].id) * d;
        bool good = true;
        for (const Link& r : out)
            if (pair_score(xc, x + size_t(r.id) * d, d, metric) < c[i].score) {
                good = false;
                break;
            }
        if (good) out.push_back(c[i]);
    }
}

// Row v of t: the links (scores kept for the reverse step), then padding.
void put_row(NeighborTable& t, int64_t v, const std::vector<Link>& links) {
    for (size_t j = 0; j < links.size(); j++) {
        t.ids[size_t(v) * t.k + j] = links[j].id;
        t.scores[size_t(v) * t.k + j] = links[j].score;
    }
}

template <class Fn>
void for_rows(int64_t n, const Fn& fn) {
    parallel_for((size_t(n) + 255) / 256, [&](size_t t) {
        for (int64_t i = int64_t(t) * 256; i < std::min<int64_t>(n, int64_t(t) * 256 + 256); i++) fn(i);
    });
}

}  // namespace

float pair_score(const float* a, const float* b, int d, MetricType metric) {
    return metric == METRIC_L2 ? simd().l2sqr(a, b, size_t(d)) : -simd().inner_product(a, b, size_t(d));
}

NeighborTable prune_links(const float* x, int d, MetricType metric, const NeighborTable& cands, int cap) {
    NEARLY_CHECK_ARG(cap >= 1, "prune_links: cap must be >= 1");
    NeighborTable out(cands.n, cap);
    for_rows(cands.n, [&](int64_t i) {
        std::vector<Link> c;
        for (int j = 0; j < cands.k; j++) {
            const size_t at = size_t(i) * cands.k + j;
            const int32_t v = cands.ids[at];
            bool repeat = false;
            for (const Link& l : c) repeat |= l.id == v;
            if (v >= 0 && v != i && !repeat) c.push_back({cands.scores[at], v});
        }
        std::vector<Link> kept;
        heuristic(x, d, metric, int32_t(i), c.data(), c.size(), cap, kept);
        put_row(out, i, kept);
    });
    return out;
}

NeighborTable merge_reverse_links(const float* x, int d, MetricType metric, const NeighborTable& links, int cap,
                                  int max_merge) {
    NEARLY_CHECK_ARG(cap >= 1 && max_merge >= cap, "merge_reverse_links: need 1 <= cap <= max_merge");
    const int64_t n = links.n;
    // Reverse lists as offsets into one array (counting sort by target).
    std::vector<int64_t> start(size_t(n) + 1, 0);
    for (size_t e = 0; e < links.ids.size(); e++)
        if (links.ids[e] >= 0) start[size_t(links.ids[e]) + 1]++;
    for (int64_t v = 0; v < n; v++) start[size_t(v) + 1] += start[size_t(v)];
    std::vector<Link> rev(size_t(start[size_t(n)]));
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (size_t e = 0; e < links.ids.size(); e++)
        if (links.ids[e] >= 0) rev[size_t(fill[size_t(links.ids[e])]++)] = {links.scores[e], int32_t(e / links.k)};

    NeighborTable out(n, cap);
    for_rows(n, [&](int64_t v) {
        std::vector<Link> c;
        for (int j = 0; j < links.k; j++) {
            const size_t at = size_t(v) * links.k + j;
            if (links.ids[at] >= 0) c.push_back({links.scores[at], links.ids[at]});
        }
        c.insert(c.end(), rev.begin() + start[size_t(v)], rev.begin() + start[size_t(v) + 1]);
        // A link and its reverse may both be here, with scores rounded
        // differently (each came from its own row's k-NN): the best counts.
        std::sort(c.begin(), c.end());
        std::vector<Link> once;
        for (const Link& l : c) {
            if (once.size() == size_t(max_merge)) break;
            bool seen = false;
            for (const Link& o : once) seen |= o.id == l.id;
            if (!seen) once.push_back(l);
        }
        c.swap(once);
        std::vector<Link> kept;
        heuristic(x, d, metric, int32_t(v), c.data(), c.size(), cap, kept);
        put_row(out, v, kept);
    });
    return out;
}

size_t link_orphans(NeighborTable& links, int kc, const CandidatesOf& candidates_of) {
    const int64_t n = links.n;
    const int k = links.k;
    std::vector<uint32_t> indeg(size_t(n), 0);
    for (int32_t v : links.ids)
        if (v >= 0) indeg[size_t(v)]++;
    std::vector<int32_t> cid(static_cast<size_t>(kc));
    std::vector<float> csc(static_cast<size_t>(kc));
    size_t relinked = 0;
    for (int64_t v = 0; v < n; v++) {
        if (indeg[size_t(v)] > 0) continue;
        candidates_of(v, cid.data(), csc.data());
        for (int j = 0; j < kc && indeg[size_t(v)] == 0; j++) {
            const int32_t u = cid[size_t(j)];
            if (u < 0 || u == v) continue;
            int32_t* lu = &links.ids[size_t(u) * k];
            int at = -1;
            for (int t = 0; t < k; t++) {
                if (lu[t] < 0) {
                    at = t;
                    break;
                }
                if (indeg[size_t(lu[t])] > 1) at = t;
            }
            if (at < 0) continue;
            if (lu[at] >= 0) indeg[size_t(lu[at])]--;
            lu[at] = int32_t(v);
            links.scores[size_t(u) * k + at] = csc[size_t(j)];
            indeg[size_t(v)]++;
            relinked++;
        }
    }
    return relinked;
}

std::vector<int8_t> draw_levels(int64_t n, int M, uint64_t seed) {
    NEARLY_CHECK_ARG(M >= 2, "draw_levels: M must be >= 2");
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const double mult = 1.0 / std::log(double(M));
    std::vector<int8_t> levels(static_cast<size_t>(n));
    for (auto& l : levels) l = int8_t(std::min(int(-std::log(std::max(u(rng), 1e-300)) * mult), 30));
    return levels;
}

NeighborTable exact_level_knn(const float* x, int64_t n, int d, int k, MetricType metric) {
    const int kk = int(std::min<int64_t>(k + 1, n));
    std::vector<float> D(size_t(n) * kk);
    std::vector<idx_t> I(size_t(n) * kk);
    knn_exhaustive(x, size_t(n), x, size_t(n), size_t(d), metric, size_t(kk), D.data(), I.data());
    NeighborTable t(n, k);
    for_rows(n, [&](int64_t i) {
        int m = 0;
        for (int j = 0; j < kk && m < k; j++) {
            const idx_t v = I[size_t(i) * kk + j];
            if (v < 0 || v == i) continue;
            t.ids[size_t(i) * k + m] = int32_t(v);
            const float s = D[size_t(i) * kk + j];
            t.scores[size_t(i) * k + m] = metric == METRIC_L2 ? s : -s;
            m++;
        }
    });
    return t;
}

void add_upper_links(HNSWLayers& g, int M) {
    // Position of each row in the node list of the level above.
    const size_t n = g.levels.size();
    std::vector<int32_t> pos_up(n, -1);
    for (int l = g.max_level() - 1; l >= 0; l--) {
        const std::vector<int32_t>& nodes = g.nodes[size_t(l)];
        const std::vector<int32_t>& up = g.nodes[size_t(l) + 1];
        for (size_t i = 0; i < up.size(); i++) pos_up[size_t(up[i])] = int32_t(i);
        const size_t cap = l == 0 ? size_t(2 * M) : size_t(M);
        std::vector<int32_t>& links = g.links[size_t(l)];
        const std::vector<int32_t>& upper = g.links[size_t(l) + 1];
        parallel_for((nodes.size() + 255) / 256, [&](size_t t) {
            for (size_t i = t * 256; i < std::min(nodes.size(), t * 256 + 256); i++) {
                const int32_t r = nodes[i];
                if (pos_up[size_t(r)] < 0) continue;
                int32_t* ll = &links[i * cap];
                size_t cnt = 0;
                while (cnt < cap && ll[cnt] >= 0) cnt++;
                const int32_t* ul = &upper[size_t(pos_up[size_t(r)]) * size_t(M)];
                for (int j = 0; j < M && ul[j] >= 0 && cnt < cap; j++)
                    if (std::find(ll, ll + cnt, ul[j]) == ll + cnt) ll[cnt++] = ul[j];
            }
        });
        for (int32_t r : up) pos_up[size_t(r)] = -1;
    }
}

NeighborTable add_far_candidates(const NeighborTable& cands, const NeighborTable& far) {
    NEARLY_CHECK_ARG(cands.n == far.n, "add_far_candidates: tables of different heights");
    NeighborTable out(cands.n, cands.k + far.k);
    for_rows(cands.n, [&](int64_t v) {
        std::vector<std::pair<float, int32_t>> row;
        for (const NeighborTable* t : {&cands, &far})
            for (int j = 0; j < t->k; j++) {
                const size_t at = size_t(v) * t->k + j;
                row.push_back({t->ids[at] < 0 ? std::numeric_limits<float>::infinity() : t->scores[at], t->ids[at]});
            }
        // By score only, stably: the GPU's selection keeps the earlier column on ties.
        std::stable_sort(row.begin(), row.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (size_t j = 0; j < row.size(); j++) {
            out.ids[size_t(v) * out.k + j] = row[j].second;
            out.scores[size_t(v) * out.k + j] = row[j].second < 0 ? 0.f : row[j].first;
        }
    });
    return out;
}

NeighborTable far_candidates(const float* x, int64_t n, int d, MetricType metric, const std::vector<int32_t>& up,
                             int k) {
    NeighborTable t(n, k);
    const int64_t nu = int64_t(up.size());
    const int kk = int(std::min<int64_t>(k + 1, nu));
    if (kk == 0) return t;
    std::vector<float> xu(size_t(nu) * d);
    for (int64_t i = 0; i < nu; i++) std::copy_n(x + size_t(up[size_t(i)]) * d, d, xu.begin() + i * d);
    std::vector<float> D(size_t(n) * kk);
    std::vector<idx_t> I(size_t(n) * kk);
    knn_exhaustive(x, size_t(n), xu.data(), size_t(nu), size_t(d), metric, size_t(kk), D.data(), I.data());
    for_rows(n, [&](int64_t v) {
        int m = 0;
        for (int j = 0; j < kk && m < k; j++) {
            const idx_t u = I[size_t(v) * kk + j];
            if (u < 0 || up[size_t(u)] == v) continue;
            t.ids[size_t(v) * k + m] = up[size_t(u)];
            const float sc = D[size_t(v) * kk + j];
            t.scores[size_t(v) * k + m] = metric == METRIC_L2 ? sc : -sc;
            m++;
        }
    });
    return t;
}

HNSWLayers build_hnsw_layers(const float* x, int64_t n, int d, MetricType metric, const GraphBuildParams& p,
                             const LevelKnn& knn, const NeighborTable* level0) {
    NEARLY_CHECK_ARG(p.M >= 2 && p.M <= 256, "graph build: M must be between 2 and 256");
    NEARLY_CHECK_ARG(p.knn_factor >= 1 && p.merge_factor >= 1, "graph build: knn_factor and merge_factor must be >= 1");
    HNSWLayers g;
    if (n == 0) return g;
    g.levels = draw_levels(n, p.M, p.seed);
    const int top = *std::max_element(g.levels.begin(), g.levels.end());
    g.nodes.resize(size_t(top) + 1);
    g.links.resize(size_t(top) + 1);
    std::vector<float> xl;
    for (int l = 0; l <= top; l++) {
        std::vector<int32_t>& rows = g.nodes[size_t(l)];
        for (int64_t r = 0; r < n; r++)
            if (g.levels[size_t(r)] >= l) rows.push_back(int32_t(r));
        const int64_t m = int64_t(rows.size());
        const int cap = l == 0 ? 2 * p.M : p.M;
        // The level's vectors back to back; its tables speak of positions in rows.
        const float* xv = x;
        if (l > 0) {
            xl.resize(size_t(m) * d);
            for (int64_t i = 0; i < m; i++) std::copy_n(x + size_t(rows[size_t(i)]) * d, d, xl.begin() + i * d);
            xv = xl.data();
        }
        const int k = int(std::min<int64_t>(int64_t(cap) * p.knn_factor, m - 1));
        NeighborTable cands = l == 0 && level0 ? *level0 : k > 0 ? knn(xv, m, d, k) : NeighborTable(m, 1);
        NEARLY_CHECK_ARG(cands.n == m, "graph build: the k-NN table has the wrong number of rows");
        if (l < top && p.far_factor > 0 && k > 0) {
            // Each node's nearest nodes of the level above: links across gaps
            // that k-NN lists of clustered data never make.
            std::vector<int32_t> up;
            for (int64_t i = 0; i < m; i++)
                if (g.levels[size_t(rows[size_t(i)])] > l) up.push_back(int32_t(i));
            cands = add_far_candidates(cands, far_candidates(xv, m, d, metric, up, cap * p.far_factor));
        }
        NeighborTable links = merge_reverse_links(xv, d, metric, prune_links(xv, d, metric, cands, cap), cap,
                                                  cap * p.merge_factor);
        link_orphans(links, cands.k, [&](int64_t v, int32_t* ids, float* scores) {
            std::copy_n(&cands.ids[size_t(v) * cands.k], cands.k, ids);
            std::copy_n(&cands.scores[size_t(v) * cands.k], cands.k, scores);
        });
        std::vector<int32_t>& out = g.links[size_t(l)];
        out.assign(links.ids.size(), -1);
        for (size_t e = 0; e < out.size(); e++)
            if (links.ids[e] >= 0) out[e] = rows[size_t(links.ids[e])];
    }
    add_upper_links(g, p.M);
    for (int64_t r = 0; r < n; r++)
        if (g.levels[size_t(r)] == top) {
            g.entry = int32_t(r);
            break;
        }
    return g;
}

}  // namespace nearly
