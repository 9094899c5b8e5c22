// The NSG graph indexes (IndexNSG over a storage, IndexNSGFlat, IndexNSGPQ,
// IndexNSGSQ), their knobs as faiss exposes them (index.nsg.search_L ...).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/nsg.h"

namespace py = pybind11;

namespace nearly_py {

using namespace nearly;

namespace {
// faiss's index.nsg: the graph's parameters, kept alive with the index.
struct NSGView {
    std::shared_ptr<IndexNSG> index;
};

int positive(int v, const char* what) {
    if (v < 1) throw InvalidArgument(std::string("NSG: ") + what + " must be at least 1 (got " + std::to_string(v) + ")");
    return v;
}
}  // namespace

void bind_nsg(py::module_& m) {
    py::class_<SearchParametersNSG, SearchParameters, std::shared_ptr<SearchParametersNSG>>(m, "SearchParametersNSG")
        .def(py::init([](int search_L, std::shared_ptr<IDSelector> sel) {
                 auto p = std::make_shared<SearchParametersNSG>();
                 p->search_L = positive(search_L, "search_L");
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("search_L") = 16, py::arg("sel") = nullptr)
        .def_property("search_L", [](const SearchParametersNSG& p) { return p.search_L; },
                      [](SearchParametersNSG& p, int v) { p.search_L = positive(v, "search_L"); });

    py::class_<NSGView>(m, "NSG")
        .def_property("search_L", [](const NSGView& v) { return v.index->search_L; },
                      [](NSGView& v, int x) { v.index->search_L = positive(x, "search_L"); })
        .def_property("L", [](const NSGView& v) { return v.index->L; },
                      [](NSGView& v, int x) { v.index->L = positive(x, "L"); })
        .def_property("C", [](const NSGView& v) { return v.index->C; },
                      [](NSGView& v, int x) { v.index->C = positive(x, "C"); })
        .def_property_readonly("R", [](const NSGView& v) { return v.index->R; })
        .def_property_readonly("enterpoint", [](const NSGView& v) { return v.index->enterpoint(); })
        .def_property_readonly("is_built", [](const NSGView& v) { return v.index->is_built(); })
        .def_property_readonly("ntotal", [](const NSGView& v) { return v.index->ntotal; })
        .def("dfs", [](const NSGView& v, py::object vt, int root, int cnt) {
            // vt: a VisitedTableVector (its `visited` flags, one per node).
            auto flags = vt.attr("visited").cast<py::array_t<uint8_t, py::array::c_style>>();  // no converting copy
            if (flags.ndim() != 1 || flags.shape(0) < v.index->ntotal || !flags.writeable())
                throw InvalidArgument("NSG.dfs: the visited table must hold at least ntotal = " +
                                      std::to_string(v.index->ntotal) + " flags");
            uint8_t* f = flags.mutable_data();
            py::gil_scoped_release release;
            return cnt + int(v.index->mark_reachable(root, f));
        }, py::arg("vt"), py::arg("root"), py::arg("cnt") = 0,
           "cnt plus the nodes reachable from root not yet marked in vt, which it marks (faiss's NSG::dfs).")
        .def("get_final_graph", [](const NSGView& v) {
            const auto& g = v.index->graph();
            py::array_t<int32_t> out({py::ssize_t(v.index->ntotal), py::ssize_t(v.index->R)});
            std::copy(g.begin(), g.end(), out.mutable_data());
            return out;
        }, "(ntotal, R) neighbour ids, -1 padded (a numpy copy).");

    py::class_<IndexNSG, Index, std::shared_ptr<IndexNSG>>(m, "IndexNSG",
        "faiss's IndexNSG(storage, R): an NSG graph over the vectors another index stores, searched with its "
        "DistanceComputer; node i is the storage's row i. The graph is built on the vectors given to add().")
        .def(py::init([](IndexPtr storage, int R) -> std::shared_ptr<IndexNSG> {
                 return std::make_shared<IndexNSGOnStorage>(storage, R);
             }),
             py::arg("storage"), py::arg("R") = 32)
        .def_property_readonly("nsg", [](std::shared_ptr<IndexNSG> self) { return NSGView{self}; })
        .def_property("GK", [](const IndexNSG& i) { return i.GK; },
                      [](IndexNSG& i, int v) { i.GK = positive(v, "GK"); })
        .def_property("build_type", [](const IndexNSG& i) { return i.build_type; },
                      [](IndexNSG& i, int v) {
                          if (v != 0 && v != 1)
                              throw InvalidArgument("NSG: build_type must be 0 (exact k-NN graph) or 1 (NN-descent)");
                          i.build_type = v;
                      }, "How the k-NN graph the build starts from is made: 0 exactly, 1 by NN-descent.")
        .def_property("nndescent_S", [](const IndexNSG& i) { return i.nndescent_S; },
                      [](IndexNSG& i, int v) { i.nndescent_S = positive(v, "nndescent_S"); })
        .def_property("nndescent_R", [](const IndexNSG& i) { return i.nndescent_R; },
                      [](IndexNSG& i, int v) { i.nndescent_R = positive(v, "nndescent_R"); })
        .def_property("nndescent_L", [](const IndexNSG& i) { return i.nndescent_L > 0 ? i.nndescent_L : i.GK + 50; },
                      [](IndexNSG& i, int v) { i.nndescent_L = positive(v, "nndescent_L"); })
        .def_property("nndescent_iter", [](const IndexNSG& i) { return i.nndescent_iter; },
                      [](IndexNSG& i, int v) { i.nndescent_iter = positive(v, "nndescent_iter"); })
        .def_property_readonly("is_built", &IndexNSG::is_built)
        .def_property(
            "storage",
            [](const IndexNSG& self) {
                auto* s = dynamic_cast<const IndexNSGOnStorage*>(&self);
                if (!s) throw NotSupported("this NSG index keeps its own vectors");
                return s->storage();
            },
            [](IndexNSG& self, IndexPtr storage) {
                auto* s = dynamic_cast<IndexNSGOnStorage*>(&self);
                if (!s) throw NotSupported("this NSG index keeps its own vectors");
                py::gil_scoped_release release;
                s->set_storage(std::move(storage));
            },
            "The index holding the vectors (shared). Setting it swaps in another holding the same rows.")
        .def("build", [](IndexNSG& self, py::handle x_obj, py::handle graph_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            IdArray g = to_array<IdArray>(graph_obj, "knn_graph");
            if (g.ndim() != 2 || g.shape(0) != x.shape(0))
                throw InvalidArgument("knn_graph must be a 2-D array of shape (n, GK) with n = " +
                                      std::to_string(x.shape(0)) + ", got shape " + shape_str(g));
            const int gk = int(g.shape(1));
            py::gil_scoped_release release;
            self.build(x.shape(0), x.data(), g.data(), gk);
        }, py::arg("x"), py::arg("knn_graph"),
           "The graph from a k-NN graph computed elsewhere (faiss's IndexNSG.build), on an empty index.");

    py::class_<IndexNSGFlat, IndexNSG, std::shared_ptr<IndexNSGFlat>>(m, "IndexNSGFlat")
        .def(py::init([](int d, int R, int metric) { return std::make_shared<IndexNSGFlat>(d, R, MetricType(metric)); }),
             py::arg("d"), py::arg("R") = 32, py::arg("metric") = int(METRIC_L2));

    py::class_<IndexNSGOnStorage, IndexNSG, std::shared_ptr<IndexNSGOnStorage>>(
        m, "IndexNSGOnStorage", "IndexNSG(storage, R) as read back from a file.");

    py::class_<IndexNSGPQ, IndexNSGOnStorage, std::shared_ptr<IndexNSGPQ>>(
        m, "IndexNSGPQ", "faiss's IndexNSGPQ(d, pq_m, R, pq_nbits): an NSG graph over an IndexPQ storage.")
        .def(py::init([](int d, int pq_m, int R, int pq_nbits, int metric) {
                 if (pq_m < 1 || pq_nbits < 1) throw InvalidArgument("IndexNSGPQ: pq_m and pq_nbits must be positive");
                 return std::make_shared<IndexNSGPQ>(d, pq_m, R, pq_nbits, MetricType(metric));
             }),
             py::arg("d"), py::arg("pq_m"), py::arg("R") = 32, py::arg("pq_nbits") = 8,
             py::arg("metric") = int(METRIC_L2));

    py::class_<IndexNSGSQ, IndexNSGOnStorage, std::shared_ptr<IndexNSGSQ>>(
        m, "IndexNSGSQ", "faiss's IndexNSGSQ(d, qtype, R, metric): an NSG graph over an IndexScalarQuantizer storage.")
        .def(py::init([](int d, int qtype, int R, int metric) {
                 if (!ScalarQuantizer::valid_qtype(qtype))
                     throw NotSupported("IndexNSGSQ: qtype " + std::to_string(qtype) + " not implemented in nearly");
                 return std::make_shared<IndexNSGSQ>(d, ScalarQuantizer::QuantizerType(qtype), R, MetricType(metric));
             }),
             py::arg("d"), py::arg("qtype"), py::arg("R") = 32, py::arg("metric") = int(METRIC_L2));
}

}  // namespace nearly_py
