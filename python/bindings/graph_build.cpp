// HNSW graphs built from k-NN lists (graph_build.h) and installed into an
// IndexHNSWFlat; the GPU build returns the same HNSWLayers.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "neighbor_table.h"
#include "nearly/graph_build.h"
#include "nearly/hnsw.h"

namespace nearly_py {

using namespace nearly;

void bind_graph_build(py::module_& m) {
    py::class_<HNSWLayers, std::shared_ptr<HNSWLayers>>(m, "HNSWLayers")
        .def(py::init([](py::handle levels_obj, py::list nodes, py::list links, int32_t entry) {
                 auto g = std::make_shared<HNSWLayers>();
                 auto lv = to_array<py::array_t<int8_t, py::array::c_style | py::array::forcecast>>(levels_obj, "levels");
                 g->levels.assign(lv.data(), lv.data() + lv.size());
                 for (py::handle h : nodes) {
                     RowArray a = to_array<RowArray>(h, "nodes");
                     g->nodes.emplace_back(a.data(), a.data() + a.size());
                 }
                 for (py::handle h : links) {
                     RowArray a = to_array<RowArray>(h, "links");
                     g->links.emplace_back(a.data(), a.data() + a.size());
                 }
                 g->entry = entry;
                 return g;
             }),
             py::arg("levels"), py::arg("nodes"), py::arg("links"), py::arg("entry"))
        .def_property_readonly("levels", [](const HNSWLayers& g) { return py::array_t<int8_t>(g.levels.size(), g.levels.data()); })
        .def_property_readonly("entry", [](const HNSWLayers& g) { return g.entry; })
        .def_property_readonly("max_level", &HNSWLayers::max_level)
        .def("nodes", [](const HNSWLayers& g, int l) {
                 if (l < 0 || l > g.max_level()) throw InvalidArgument("no level " + std::to_string(l));
                 return py::array_t<int32_t>(g.nodes[size_t(l)].size(), g.nodes[size_t(l)].data());
             }, py::arg("level"), "Rows on `level` or above, ascending.")
        .def("links", [](const HNSWLayers& g, int l) {
                 if (l < 0 || l > g.max_level()) throw InvalidArgument("no level " + std::to_string(l));
                 const auto& t = g.links[size_t(l)];
                 const size_t rows = g.nodes[size_t(l)].size();
                 py::array_t<int32_t> a({py::ssize_t(rows), py::ssize_t(rows ? t.size() / rows : 0)});
                 std::copy(t.begin(), t.end(), a.mutable_data());
                 return a;
             }, py::arg("level"), "Neighbour rows of each row of nodes(level), -1 padded.")
        .def("check", &HNSWLayers::check, py::arg("M"));

    m.def("_build_hnsw_layers",
          [](py::handle x_obj, int M, int metric, int knn_factor, int merge_factor, uint64_t seed, py::handle ids,
             py::handle scores, int far_factor) {
              FloatArray x = as_matrix(x_obj, -1, "x");
              const int64_t n = x.shape(0);
              const int d = int(x.shape(1));
              NeighborTable level0;
              const bool given = !ids.is_none();
              if (given) level0 = as_table(ids, scores, n);
              GraphBuildParams p;
              p.M = M;
              p.knn_factor = knn_factor;
              p.merge_factor = merge_factor;
              p.seed = seed;
              p.far_factor = far_factor;
              const MetricType mt = MetricType(metric);
              py::gil_scoped_release release;
              return build_hnsw_layers(
                  x.data(), n, d, mt, p,
                  [mt](const float* xv, int64_t m, int dd, int k) { return exact_level_knn(xv, m, dd, k, mt); },
                  given ? &level0 : nullptr);
          },
          py::arg("x"), py::arg("M"), py::arg("metric"), py::arg("knn_factor") = 2, py::arg("merge_factor") = 2,
          py::arg("seed") = 12345, py::arg("ids") = py::none(), py::arg("scores") = py::none(),
          py::arg("far_factor") = 2);
    m.def("_exact_level_knn", [](py::handle x_obj, int k, int metric) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        if (k < 1) throw InvalidArgument("k must be >= 1");
        NeighborTable t;
        {
            py::gil_scoped_release release;
            t = exact_level_knn(x.data(), x.shape(0), int(x.shape(1)), k, MetricType(metric));
        }
        return table_out(t);
    }, py::arg("x"), py::arg("k"), py::arg("metric"));
    m.def("_far_candidates", [](py::handle x_obj, py::handle up_obj, int k, int metric) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        RowArray up = to_array<RowArray>(up_obj, "up");
        std::vector<int32_t> rows(up.data(), up.data() + up.size());
        for (int32_t r : rows)
            if (r < 0 || r >= x.shape(0)) throw InvalidArgument("up must hold rows of x");
        if (k < 1) throw InvalidArgument("k must be >= 1");
        NeighborTable t;
        {
            py::gil_scoped_release release;
            t = far_candidates(x.data(), x.shape(0), int(x.shape(1)), MetricType(metric), rows, k);
        }
        return table_out(t);
    }, py::arg("x"), py::arg("up"), py::arg("k"), py::arg("metric"));
    m.def("_prune_links", [](py::handle x_obj, py::handle ids, py::handle scores, int metric, int cap) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        NeighborTable c = as_table(ids, scores, x.shape(0)), t;
        {
            py::gil_scoped_release release;
            t = prune_links(x.data(), int(x.shape(1)), MetricType(metric), c, cap);
        }
        return table_out(t);
    });
    m.def("_merge_reverse_links", [](py::handle x_obj, py::handle ids, py::handle scores, int metric, int cap,
                                      int max_merge) {
        FloatArray x = as_matrix(x_obj, -1, "x");
        NeighborTable c = as_table(ids, scores, x.shape(0)), t;
        {
            py::gil_scoped_release release;
            t = merge_reverse_links(x.data(), int(x.shape(1)), MetricType(metric), c, cap, max_merge);
        }
        return table_out(t);
    });
    m.def("_draw_levels", [](int64_t n, int M, uint64_t seed) {
        std::vector<int8_t> l = draw_levels(n, M, seed);
        return py::array_t<int8_t>(l.size(), l.data());
    });
    m.def("_hnsw_add_graph", [](IndexHNSWFlat& index, py::handle x_obj, const HNSWLayers& g) {
        FloatArray x = as_matrix(x_obj, index.d, "x");
        py::gil_scoped_release release;
        index.add_graph(x.shape(0), x.data(), g);
    });
}

}  // namespace nearly_py
