// HNSW graph index.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>

#include "arrays.h"
#include "hnsw_view.h"
#include "nearly/hnsw.h"
#include "nearly/hnsw_on_storage.h"
#include "nearly/hnsw_pq.h"
#include "nearly/hnsw_sq.h"
#include "nearly/refine.h"
#include "nearly/scalar_quantizer.h"

namespace nearly_py {

using namespace nearly;

namespace {
void check_ef(int ef, const char* name) {
    if (ef < 1) throw InvalidArgument(std::string("HNSW: ") + name + " must be at least 1 (got " + std::to_string(ef) + ")");
}

// The live ids in slot order (the graph's `storage` view reads through them).
template <class GraphIndex>
py::array_t<idx_t> stored_ids(const GraphIndex& index) {
    std::vector<idx_t> ids = index.ids();
    return py::array_t<idx_t>(ids.size(), ids.data());
}
}  // namespace

void bind_hnsw(py::module_& m) {
    py::class_<HNSWStats>(m, "HNSWStats")
        .def(py::init<>())
        .def_readwrite("n1", &HNSWStats::n1)
        .def_readwrite("n2", &HNSWStats::n2)
        .def_readwrite("ndis", &HNSWStats::ndis)
        .def_readwrite("nhops", &HNSWStats::nhops)
        .def("reset", &HNSWStats::reset)
        .def("combine", &HNSWStats::combine, py::arg("other"));
    // The process-wide counters themselves (nearly.cvar.hnsw_stats), not a copy.
    m.def("_hnsw_stats", []() -> HNSWStats& { return hnsw_stats; }, py::return_value_policy::reference);

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

    // faiss's HNSW::set_default_probas(M, 1 / ln M), the distribution nearly
    // draws levels from too: each level's probability and the cumulated link
    // capacity per level, up to the first level below 1e-9.
    auto default_probas = [](int M, std::vector<double>& probas, std::vector<int32_t>& cum) {
        // faiss's roundings: the multiplier and exponents in float, the
        // exponentials in double, the probability kept as a float
        const float mult = float(1.0 / std::log(double(M)));
        int32_t nn = 0;
        cum.assign(1, 0);
        for (int level = 0;; level++) {
            const float p = float(std::exp(double(-level / mult)) * (1 - std::exp(double(-1 / mult))));
            if (p < 1e-9) break;
            probas.push_back(p);
            nn += level == 0 ? 2 * M : M;
            cum.push_back(nn);
        }
    };

    py::class_<HNSWView>(m, "HNSW")
        .def_property("efSearch", [](const HNSWView& v) { return v.index->efSearch; },
                      [](HNSWView& v, int ef) { check_ef(ef, "efSearch"); v.index->efSearch = ef; })
        .def_property("efConstruction", [](const HNSWView& v) { return v.index->efConstruction; },
                      [](HNSWView& v, int ef) { check_ef(ef, "efConstruction"); v.index->efConstruction = ef; })
        .def_property_readonly("max_level", [](const HNSWView& v) { return v.index->max_level(); })
        .def_property_readonly("entry_point", [](const HNSWView& v) { return v.index->entry_point(); })
        .def_property_readonly("M", [](const HNSWView& v) { return v.index->M; })
        .def_readonly("is_similarity", &HNSWView::is_similarity)
        .def_property("search_bounded_queue", [](const HNSWView& v) { return v.index->search_bounded_queue; },
                      [](HNSWView& v, bool b) { v.index->search_bounded_queue = b; },
                      "faiss's flag, kept for code that sets it: nearly's level-0 walk is faiss's unbounded one "
                      "(hnswlib's) whatever its value.")
        // faiss's attribute: one entry per node, its top level + 1 (0 for a
        // slot freed by remove_ids).
        .def_property_readonly("levels", [](const HNSWView& v) {
            std::vector<int> lv = v.index->levels();
            py::array_t<int32_t> out(lv.size());
            for (size_t i = 0; i < lv.size(); i++) out.mutable_data()[i] = lv[i] + 1;
            return out;
        })
        .def_property_readonly("assign_probas", [default_probas](const HNSWView& v) {
            std::vector<double> p;
            std::vector<int32_t> c;
            default_probas(v.index->M, p, c);
            return py::array_t<double>(p.size(), p.data());
        })
        .def_property_readonly("cum_nneighbor_per_level", [default_probas](const HNSWView& v) {
            std::vector<double> p;
            std::vector<int32_t> c;
            default_probas(v.index->M, p, c);
            return py::array_t<int32_t>(c.size(), c.data());
        })
        // faiss's flat arrays of the graph (each access builds them: take them once).
        .def_property_readonly("offsets", [](const HNSWView& v) {
            std::vector<uint64_t> off;
            v.index->flat_links(off, nullptr);
            return py::array_t<uint64_t>(off.size(), off.data());
        })
        .def_property_readonly("neighbors", [](const HNSWView& v) {
            std::vector<uint64_t> off;
            std::vector<int32_t> nb;
            v.index->flat_links(off, &nb);
            return py::array_t<int32_t>(nb.size(), nb.data());
        })
        .def("nb_neighbors", [](const HNSWView& v, int level) { return level == 0 ? 2 * v.index->M : v.index->M; },
             py::arg("layer_no"), "Capacity of a node's link list on a level (faiss's name).")
        .def("slot_levels", [](const HNSWView& v) { return v.index->levels(); },
             "Level of every slot, 0-based (-1 for a freed slot).")
        .def("neighbors_of", [](const HNSWView& v, idx_t id, int level) { return v.index->neighbors(id, level); },
             py::arg("id"), py::arg("level") = 0, "Ids linked from `id` on `level`.");

    py::class_<IndexHNSWFlat, Index, std::shared_ptr<IndexHNSWFlat>> hnsw_flat(m, "IndexHNSWFlat");
    def_init_level0(hnsw_flat);
    hnsw_flat
        .def(py::init([](int d, int M, int metric) { return std::make_shared<IndexHNSWFlat>(d, M, MetricType(metric)); }),
             py::arg("d"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2))
        .def("init_level_0_from_knngraph", [](IndexHNSWFlat& self, int k, py::handle D, py::handle I) {
            auto Da = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(D);
            auto Ia = py::array_t<idx_t, py::array::c_style | py::array::forcecast>::ensure(I);
            if (!Da || !Ia) throw InvalidArgument("init_level_0_from_knngraph: D and I must be arrays");
            if (k < 1) throw InvalidArgument("init_level_0_from_knngraph: k must be at least 1");
            const py::ssize_t want = py::ssize_t(self.ntotal) * k;
            if (Da.size() != want || Ia.size() != want)
                throw InvalidArgument("init_level_0_from_knngraph: D and I must hold ntotal x k = " +
                                      std::to_string(want) + " entries (got " + std::to_string(Da.size()) + " and " +
                                      std::to_string(Ia.size()) + ")");
            py::gil_scoped_release release;
            self.init_level_0_from_knngraph(k, Da.data(), Ia.data());
        }, py::arg("k"), py::arg("D"), py::arg("I"),
           "faiss's: node i's level-0 links become its k-NN row I[i] (ids; -1 ends a row), pruned by HNSW's "
           "heuristic to 2M when longer. The scores are taken again from the stored vectors (D's shape is "
           "checked); the ids must be 0 .. ntotal-1.")
        .def("reorder_links", [](IndexHNSWFlat& self) {
            py::gil_scoped_release release;
            self.reorder_links();
        }, "faiss's: each node's level-0 links sorted nearest first.")
        .def("_set_vectors", [](IndexHNSWFlat& self, py::handle x) {
            auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
            if (!a || a.ndim() != 2 || a.shape(1) != self.d)
                throw InvalidArgument("the storage's vectors must be a 2-D float array of d = " + std::to_string(self.d) +
                                      " columns");
            py::gil_scoped_release release;
            self.set_vectors(idx_t(a.shape(0)), a.data());
        }, py::arg("x"), "Replaces the stored vectors, one row per node in slot order (index.storage = ...).")
        .def_property_readonly("_has_vectors", &IndexHNSWFlat::has_vectors)
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexHNSWFlat> self) { return hnsw_view(self); })
        .def_readwrite("keep_max_size_level0", &IndexHNSWFlat::keep_max_size_level0,
                       "Fill level-0 lists the heuristic leaves short up to 2M with the nearest candidates it "
                       "dropped (faiss's flag; a build setting, not saved).")
        .def("_ids", &stored_ids<IndexHNSWFlat>)
        .def_property_readonly("_storage_kind", [](const IndexHNSWFlat& self) { return int(self.storage); },
                               "0: float vectors, 1: QT_8bit, 2: QT_fp16, 3: QT_bf16 (hnsw.h HNSWStorage).")
        .def("memory_bytes", &IndexHNSWFlat::memory_bytes, "Bytes held by the vectors, codes, links and id map.")
        .def("permute_entries", &permute_entries<IndexHNSWFlat>, py::arg("perm"), "Node i becomes the old node perm[i]: the same graph, ids renumbered (ids must be 0 .. ntotal-1).");

    py::class_<IndexHNSWCagra, IndexHNSWFlat, std::shared_ptr<IndexHNSWCagra>>(m, "IndexHNSWCagra")
        .def(py::init([](int d, int M, int metric) { return std::make_shared<IndexHNSWCagra>(d, M, MetricType(metric)); }),
             py::arg("d"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2))
        .def_readwrite("base_level_only", &IndexHNSWCagra::base_level_only,
                       "Search level 0 alone, from the best of num_base_level_search_entrypoints random nodes "
                       "(CAGRA's way); adding raises while it is set.")
        .def_property("num_base_level_search_entrypoints",
                      [](const IndexHNSWCagra& i) { return i.num_base_level_search_entrypoints; },
                      [](IndexHNSWCagra& i, int v) {
                          if (v < 1) throw InvalidArgument("num_base_level_search_entrypoints must be at least 1");
                          i.num_base_level_search_entrypoints = v;
                      });

    py::class_<IndexHNSWFlatPanorama, IndexHNSWFlat, std::shared_ptr<IndexHNSWFlatPanorama>>(m, "IndexHNSWFlatPanorama")
        .def(py::init([](int d, int M, size_t n_levels, int metric) {
                 return std::make_shared<IndexHNSWFlatPanorama>(d, M, n_levels, MetricType(metric));
             }), py::arg("d"), py::arg("M"), py::arg("num_panorama_levels"), py::arg("metric") = int(METRIC_L2))
        .def_readonly("num_panorama_levels", &IndexHNSWFlatPanorama::num_panorama_levels)
        .def_property_readonly("pano", [](const IndexHNSWFlatPanorama& self) { return self.panorama(); },
                               "How the vectors are cut into levels (a copy).")
        .def("_cum_sums", [](const IndexHNSWFlatPanorama& self) {
            std::vector<float> t = self.cum_sums();
            return py::array_t<float>(py::ssize_t(t.size()), t.data());
        }, "The stored vectors' tail norms in slot order (as _ids()), pano.n_levels + 1 a vector.");

    // qtype: faiss's ScalarQuantizer.QuantizerType values (the ScalarQuantizer
    // class is bound in sq.cpp).
    py::class_<IndexHNSWSQ, IndexHNSWFlat, std::shared_ptr<IndexHNSWSQ>>(m, "IndexHNSWSQ")
        .def(py::init([](int d, int qtype, int M, int metric) {
                 if (qtype != ScalarQuantizer::QT_8bit && qtype != ScalarQuantizer::QT_fp16 &&
                     qtype != ScalarQuantizer::QT_bf16)
                     throw NotSupported("IndexHNSWSQ: qtype " + std::to_string(qtype) +
                                        " not implemented in nearly (its HNSW stores ScalarQuantizer.QT_8bit, "
                                        "QT_fp16 or QT_bf16)");
                 const HNSWStorage storage = qtype == ScalarQuantizer::QT_8bit   ? HNSWStorage::SQ8
                                             : qtype == ScalarQuantizer::QT_fp16 ? HNSWStorage::FP16
                                                                                 : HNSWStorage::BF16;
                 return std::make_shared<IndexHNSWSQ>(d, storage, M, MetricType(metric));
             }),
             py::arg("d"), py::arg("qtype"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2));

    // faiss's IndexHNSWSQ for the types nearly's int8 walk copy does not
    // serve (QT_4bit, QT_6bit, the uniform and direct types; any type by
    // this name): the nodes hold the codes. nearly.IndexHNSWSQ picks it.
    py::class_<IndexHNSWSQCodes, Index, std::shared_ptr<IndexHNSWSQCodes>> hnsw_sq_codes(m, "IndexHNSWSQCodes");
    def_init_level0(hnsw_sq_codes);
    hnsw_sq_codes
        .def(py::init([](int d, int qtype, int M, int metric) {
                 if (!ScalarQuantizer::valid_qtype(qtype))
                     throw NotSupported("IndexHNSWSQ: qtype " + std::to_string(qtype) + " not implemented in nearly");
                 return std::make_shared<IndexHNSWSQCodes>(d, ScalarQuantizer::QuantizerType(qtype), M,
                                                           MetricType(metric));
             }),
             py::arg("d"), py::arg("qtype"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2))
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexHNSWSQCodes> self) { return hnsw_view(self); })
        .def("_ids", &stored_ids<IndexHNSWSQCodes>)
        .def_property_readonly("sq", [](IndexHNSWSQCodes& self) -> ScalarQuantizer& { return self.sq; },
                               py::return_value_policy::reference_internal)
        .def_property_readonly("code_size", [](const IndexHNSWSQCodes& self) { return self.sq.code_size; })
        .def("memory_bytes", &IndexHNSWSQCodes::memory_bytes, "Bytes held by the codes, links, id map and ranges.");

    py::class_<IndexHNSWPQ, Index, std::shared_ptr<IndexHNSWPQ>> hnsw_pq(m, "IndexHNSWPQ");
    def_init_level0(hnsw_pq);
    hnsw_pq
        .def(py::init([](int d, int pq_m, int M, int pq_nbits, int metric) {
                 return std::make_shared<IndexHNSWPQ>(d, pq_m, M, pq_nbits, MetricType(metric));
             }),
             py::arg("d"), py::arg("pq_m"), py::arg("M") = 32, py::arg("pq_nbits") = 8,
             py::arg("metric") = int(METRIC_L2))
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexHNSWPQ> self) { return hnsw_view(self); })
        .def("_ids", &stored_ids<IndexHNSWPQ>)
        .def_property_readonly("pq", [](const IndexHNSWPQ& self) { return self.pq; },
                               "The product quantizer (a copy: set_pq_centroids replaces the codebooks).")
        .def("set_pq_centroids", [](IndexHNSWPQ& self, py::handle v) {
            auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
            if (!a) throw InvalidArgument("centroids must be a float array");
            std::vector<float> c(a.data(), a.data() + a.size());
            py::gil_scoped_release release;
            self.set_centroids(c);
        }, py::arg("centroids"), "Codebooks trained elsewhere (M * ksub * dsub floats), on an empty index.")
        .def_property_readonly("graph_ip", &IndexHNSWPQ::graph_ip,
                               "Whether the graph is linked by inner product (an inner-product index trained on "
                               "vectors of unequal norms); otherwise by L2, which ranks the same on equal norms.")
        .def("memory_bytes", &IndexHNSWPQ::memory_bytes, "Bytes held by the codes, links, id map and codebooks.");

    py::class_<IndexHNSWOnStorage, Index, std::shared_ptr<IndexHNSWOnStorage>> hnsw_on_storage(m, "IndexHNSWOnStorage",
        "faiss's IndexHNSW(storage, M): an HNSW graph over the vectors any index stores, scored by its "
        "DistanceComputer; node i is the storage's row i.");
    def_init_level0(hnsw_on_storage);
    hnsw_on_storage
        .def(py::init([](IndexPtr storage, int M) { return std::make_shared<IndexHNSWOnStorage>(storage, M); }),
             py::arg("storage"), py::arg("M") = 32)
        .def_property_readonly("hnsw", [](std::shared_ptr<IndexHNSWOnStorage> self) { return hnsw_view(self); })
        .def_property(
            "storage", [](const IndexHNSWOnStorage& self) { return self.storage(); },
            [](IndexHNSWOnStorage& self, IndexPtr storage) {
                py::gil_scoped_release release;
                self.set_storage(std::move(storage));
            },
            "The index holding the vectors (shared). Setting it swaps in another holding the same rows.")
        .def("_ids", &stored_ids<IndexHNSWOnStorage>)
        .def("graph_memory", &IndexHNSWOnStorage::graph_memory, "Bytes of the links and id map (not the storage).");

    py::class_<IndexHNSW2Level, IndexHNSWOnStorage, std::shared_ptr<IndexHNSW2Level>>(
        m, "IndexHNSW2Level",
        "faiss's IndexHNSW2Level(quantizer, nlist, m_pq, M): an HNSW graph over an Index2Layer storage.")
        .def(py::init([](IndexPtr quantizer, long long nlist, long long m_pq, int M) {
                 if (!quantizer) throw InvalidArgument("IndexHNSW2Level: a quantizer is needed");
                 if (nlist < 1 || m_pq < 1) throw InvalidArgument("IndexHNSW2Level: nlist and m_pq must be positive");
                 return std::make_shared<IndexHNSW2Level>(quantizer, size_t(nlist), int(m_pq), M);
             }),
             py::arg("quantizer"), py::arg("nlist"), py::arg("m_pq"), py::arg("M") = 32);

    py::class_<IndexRefineSearchParameters, SearchParameters, std::shared_ptr<IndexRefineSearchParameters>>(
        m, "IndexRefineSearchParameters")
        .def(py::init([](float k_factor, std::shared_ptr<SearchParameters> base, std::shared_ptr<IDSelector> sel) {
                 if (!(k_factor >= 1)) throw InvalidArgument("k_factor must be at least 1");
                 auto p = std::make_shared<IndexRefineSearchParameters>();
                 p->k_factor = k_factor;
                 p->base_index_params = base;
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("k_factor") = 1.0f, py::arg("base_index_params") = nullptr, py::arg("sel") = nullptr)
        .def_readwrite("k_factor", &IndexRefineSearchParameters::k_factor)
        .def_readwrite("base_index_params", &IndexRefineSearchParameters::base_index_params);

    py::class_<IndexRefine, Index, std::shared_ptr<IndexRefine>>(m, "IndexRefine")
        .def(py::init<IndexPtr, IndexPtr>(), py::arg("base_index"), py::arg("refine_index"))
        .def_property("k_factor", [](const IndexRefine& i) { return i.k_factor; },
                      [](IndexRefine& i, float kf) {
                          if (!(kf >= 1)) throw InvalidArgument("k_factor must be at least 1");
                          i.k_factor = kf;
                      })
        .def_readonly("base_index", &IndexRefine::base_index)
        .def_readonly("refine_index", &IndexRefine::refine_index);

    py::class_<IndexRefinePanorama, IndexRefine, std::shared_ptr<IndexRefinePanorama>>(m, "IndexRefinePanorama")
        .def(py::init<IndexPtr, IndexPtr>(), py::arg("base_index"), py::arg("refine_index"));

    py::class_<IndexRefineFlat, IndexRefine, std::shared_ptr<IndexRefineFlat>>(m, "IndexRefineFlat")
        .def(py::init([](IndexPtr base, py::object xb) {
                 auto index = std::make_shared<IndexRefineFlat>(base);
                 if (!xb.is_none()) throw NotSupported("IndexRefineFlat(base, xb): add the vectors with add() instead");
                 return index;
             }),
             py::arg("base_index"), py::arg("xb") = py::none());
}

}  // namespace nearly_py
