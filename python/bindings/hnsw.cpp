// HNSW graph index.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/hnsw.h"

namespace nearly_py {

using namespace nearly;

namespace {
// faiss exposes the graph's knobs as index.hnsw.efSearch etc.
struct HNSWView {
    std::shared_ptr<IndexHNSWFlat> index;
};

void check_ef(int ef, const char* name) {
    if (ef < 1) throw InvalidArgument(std::string("HNSW: ") + name + " must be at least 1 (got " + std::to_string(ef) + ")");
}
}  // namespace

void bind_hnsw(py::module_& m) {
    py::class_<SearchParametersHNSW, SearchParameters, std::shared_ptr<SearchParametersHNSW>>(m, "SearchParametersHNSW")
        .def(py::init([](int efSearch, std::shared_ptr<IDSelector> sel) {
                 check_ef(efSearch, "efSearch");
                 auto p = std::make_shared<SearchParametersHNSW>();
                 p->efSearch = efSearch;
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("efSearch") = 16, py::arg("sel") = nullptr)
        .def_property("efSearch", [](const SearchParametersHNSW& p) { return p.efSearch; },
                      [](SearchParametersHNSW& p, int ef) { check_ef(ef, "efSearch"); p.efSearch = ef; });

    py::class_<HNSWView>(m, "HNSW")
        .def_property("efSearch", [](const HNSWView& v) { return v.index->efSearch; },
                      [](HNSWView& v, int ef) { check_ef(ef, "efSearch"); v.index->efSearch = ef; })
        .def_property("efConstruction", [](const HNSWView& v) { return v.index->efConstruction; },
                      [](HNSWView& v, int ef) { check_ef(ef, "efConstruction"); v.index->efConstruction = ef; })
        .def_property_readonly("max_level", [](const HNSWView& v) { return v.index->max_level(); })
        .def_property_readonly("entry_point", [](const HNSWView& v) { return v.index->entry_point(); })
        .def_property_readonly("M", [](const HNSWView& v) { return v.index->M; })
        .def("levels", [](const HNSWView& v) { return v.index->levels(); },
             "Level of every slot (-1 for a freed slot).")
        .def("neighbors", [](const HNSWView& v, idx_t id, int level) { return v.index->neighbors(id, level); },
             py::arg("id"), py::arg("level") = 0, "Ids linked from `id` on `level`.");

    py::class_<IndexHNSWFlat, Index, std::shared_ptr<IndexHNSWFlat>>(m, "IndexHNSWFlat")
        .def(py::init([](int d, int M, int metric) { return std::make_shared<IndexHNSWFlat>(d, M, MetricType(metric)); }),
             py::arg("d"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2))
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexHNSWFlat> self) { return HNSWView{self}; })
        .def("memory_bytes", &IndexHNSWFlat::memory_bytes, "Bytes held by the vectors, codes, links and id map.");
}

}  // namespace nearly_py
