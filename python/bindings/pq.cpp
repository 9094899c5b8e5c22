// Product quantization: ProductQuantizer, IndexPQ, IndexIVFPQ, and the ADC
// kernel for the SIMD tests.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/index_2layer.h"
#include "nearly/index_pq.h"
#include "nearly/ivfpq.h"
#include "nearly/ivfpqr.h"
#include "nearly/multi_index_quantizer.h"
#include "nearly/index_pq_fast_scan.h"
#include "nearly/ivfpq_fast_scan.h"
#include "nearly/polysemous.h"
#include "nearly/pq_fast_scan.h"
#include "nearly/selector.h"
#include "nearly/simd.h"

namespace nearly_py {

using namespace nearly;

namespace {
size_t check_positive(long long v, const char* what) {
    if (v < 1) throw InvalidArgument(std::string(what) + " must be positive (got " + std::to_string(v) + ")");
    return size_t(v);
}

constexpr const char* kImplemDoc =
    "faiss's fast-scan implementation knob. faiss's kernel variants (IndexPQFastScan: 3, 4, 12-15; "
    "IndexIVFPQFastScan: 2, 10-15, +100) run nearly's one quantized-table scan, with the same results; the "
    "float-table reference (IndexPQFastScan: 2; IndexIVFPQFastScan: 1) scores exactly, as IndexPQ / "
    "IndexIVFPQ do. 0: auto.";

int checked_ht(long long v) {
    if (v < 0 || v > (1 << 24)) throw InvalidArgument("polysemous_ht must be in 0..2^24 (got " + std::to_string(v) + ")");
    return int(v);
}

int checked_search_type(long long v) {
    if (v < IndexPQ::ST_PQ || v > IndexPQ::ST_polysemous_generalize)
        throw InvalidArgument("search_type must be one of IndexPQ.ST_PQ, ST_HE, ST_generalized_HE, ST_SDC, "
                              "ST_polysemous, ST_polysemous_generalize (got " + std::to_string(v) + ")");
    return int(v);
}

// faiss's IndexPQFastScan is no IndexPQ and has no search types.
void check_not_fast_scan(const IndexPQ& self, const char* what) {
    if (dynamic_cast<const IndexPQFastScan*>(&self))
        throw NotSupported(std::string("IndexPQFastScan has no ") + what + " (IndexPQ has)");
}

ByteArray as_codes(py::handle obj, size_t code_size) {
    auto c = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(obj);
    if (!c || c.ndim() != 2 || size_t(c.shape(1)) != code_size)
        throw InvalidArgument("codes must be a uint8 array of shape (n, " + std::to_string(code_size) + ")");
    return c;
}

py::array_t<float> tables(const ProductQuantizer& pq, py::handle x_obj, bool ip) {
    FloatArray x = as_matrix(x_obj, int(pq.d), "x");
    const size_t n = x.shape(0);
    py::array_t<float> out({py::ssize_t(n), py::ssize_t(pq.M), py::ssize_t(pq.ksub)});
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        pq.compute_tables(x.data(), n, ip, o);  // all rows at once, as a search's scanners do
    }
    return out;
}


ProductQuantizer& pq_of_pq(IndexPQ& i) { return i.pq; }
ProductQuantizer& pq_of_ivfpq(IndexIVFPQ& i) { return i.pq; }
ProductQuantizer& pq_of_miq(MultiIndexQuantizer& i) { return i.pq; }
}  // namespace

void bind_pq(py::module_& m) {
    // dynamic_attr: faiss code sets pq.assign_index (compat.py reads it).
    py::class_<ProductQuantizer> pq_class(m, "ProductQuantizer", py::dynamic_attr());
    pq_class.def("_clone", [](const ProductQuantizer& q) { return ProductQuantizer(q); }, "An independent copy (clone_Quantizer).");
    for (auto [name, v] : {std::pair<const char*, int>{"Train_default", ProductQuantizer::Train_default},
                           {"Train_hot_start", ProductQuantizer::Train_hot_start},
                           {"Train_shared", ProductQuantizer::Train_shared},
                           {"Train_hypercube", ProductQuantizer::Train_hypercube},
                           {"Train_hypercube_pca", ProductQuantizer::Train_hypercube_pca}})
        pq_class.attr(name) = v;
    pq_class
        .def(py::init([](long long d, long long M, long long nbits) {
                 return ProductQuantizer(check_positive(d, "d"), check_positive(M, "M"), check_positive(nbits, "nbits"));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits") = 8)
        .def_readonly("d", &ProductQuantizer::d)
        .def_readonly("M", &ProductQuantizer::M)
        .def_readonly("nbits", &ProductQuantizer::nbits)
        .def_readonly("dsub", &ProductQuantizer::dsub)
        .def_readonly("ksub", &ProductQuantizer::ksub)
        .def_readonly("code_size", &ProductQuantizer::code_size)
        .def_readwrite("verbose", &ProductQuantizer::verbose)
        .def_readwrite("cp", &ProductQuantizer::cp, py::return_value_policy::reference_internal)
        .def_property("train_type", [](const ProductQuantizer& pq) { return int(pq.train_type); },
                      [](ProductQuantizer& pq, int v) {
                          if (v < ProductQuantizer::Train_default || v > ProductQuantizer::Train_hypercube_pca)
                              throw InvalidArgument("train_type must be one of ProductQuantizer.Train_* (0 to 4)");
                          pq.train_type = ProductQuantizer::TrainType(v);
                      },
                      "How train() starts (faiss's values): Train_default, Train_hot_start (from the current "
                      "centroids), Train_shared (one codebook for all subspaces), Train_hypercube, "
                      "Train_hypercube_pca.")
        .def_property("centroids", [](const ProductQuantizer& pq) {
            py::array_t<float> out(pq.centroids.size());
            std::copy(pq.centroids.begin(), pq.centroids.end(), out.mutable_data());
            return out;
        }, [](ProductQuantizer& pq, py::handle v) {
            auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
            if (!a || size_t(a.size()) != pq.centroids.size())
                throw InvalidArgument("centroids must hold M * ksub * dsub = " + std::to_string(pq.centroids.size()) +
                                      " floats");
            std::copy(a.data(), a.data() + a.size(), pq.centroids.begin());
            pq.sync_transposed_centroids();
        }, "M * ksub * dsub floats in faiss's layout (a numpy copy; assign to replace them).")
        .def("sync_transposed_centroids", &ProductQuantizer::sync_transposed_centroids)
        .def("train", [](ProductQuantizer& pq, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(pq.d), "x");
            py::gil_scoped_release release;
            pq.train(size_t(x.shape(0)), x.data());
        }, py::arg("x"))
        .def("compute_codes", [](const ProductQuantizer& pq, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(pq.d), "x");
            check_finite(x.data(), size_t(x.size()), "x");
            py::array_t<uint8_t> out({py::ssize_t(x.shape(0)), py::ssize_t(pq.code_size)});
            uint8_t* o = out.mutable_data();
            py::gil_scoped_release release;
            pq.compute_codes(x.data(), o, size_t(x.shape(0)));
            return out;
        }, py::arg("x"))
        .def("decode", [](const ProductQuantizer& pq, py::handle codes_obj) {
            ByteArray c = as_codes(codes_obj, pq.code_size);
            py::array_t<float> out({py::ssize_t(c.shape(0)), py::ssize_t(pq.d)});
            float* o = out.mutable_data();
            py::gil_scoped_release release;
            pq.decode(c.data(), o, size_t(c.shape(0)));
            return out;
        }, py::arg("codes"))
        .def("compute_distance_tables", [](const ProductQuantizer& pq, py::handle x) { return tables(pq, x, false); },
             py::arg("x"), "(n, M, ksub) squared L2 distances of the subvectors to the centroids.")
        .def("compute_inner_prod_tables", [](const ProductQuantizer& pq, py::handle x) { return tables(pq, x, true); },
             py::arg("x"), "(n, M, ksub) inner products of the subvectors with the centroids.")
        // Test hook: the ADC sums of (n, code_size) codes over one (M, ksub)
        // table, by the scan searches use or by the one-field-at-a-time
        // reference.
        .def("_adc", [](const ProductQuantizer& pq, py::handle tab_obj, py::handle codes_obj, bool reference) {
            auto tab = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(tab_obj);
            if (!tab || size_t(tab.size()) != pq.M * pq.ksub) throw InvalidArgument("tab must hold M * ksub floats");
            ByteArray c = as_codes(codes_obj, pq.code_size);
            py::array_t<float> out(c.shape(0));
            if (reference)
                pq.adc_reference(tab.data(), c.data(), size_t(c.shape(0)), out.mutable_data());
            else
                pq.adc(tab.data(), c.data(), size_t(c.shape(0)), out.mutable_data());
            return out;
        }, py::arg("tab"), py::arg("codes"), py::arg("reference") = false);

    py::class_<IndexPQ, Index, std::shared_ptr<IndexPQ>>(m, "IndexPQ")
        .def(py::init([](int d, long long M, long long nbits, int metric) {
                 return std::make_shared<IndexPQ>(d, check_positive(M, "M"), check_positive(nbits, "nbits"),
                                                  MetricType(metric));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits") = 8, py::arg("metric") = int(METRIC_L2))
        .def_property("pq", &pq_of_pq,
                      [](IndexPQ& self, const ProductQuantizer& other) {
                          py::gil_scoped_release release;
                          self.set_quantizer(other);
                      },
                      py::return_value_policy::reference_internal)
        .def_property_readonly("code_size", &IndexPQ::code_size)
        .def_property_readonly("codes", [](const IndexPQ& self) { return bytes_array(self.get_codes()); },
                               "The stored codes, ntotal * code_size bytes (a numpy copy).")
        .def("_set_codes", [](IndexPQ& self, py::handle codes) { set_flat_codes(self, codes); })
        .def_property("search_type", [](const IndexPQ& i) { return i.search_type; },
                      [](IndexPQ& i, long long v) {
                          check_not_fast_scan(i, "search_type");
                          i.search_type = checked_search_type(v);
                      },
                      "faiss's search types: ST_PQ (PQ distances), ST_HE (Hamming distances between codes), "
                      "ST_generalized_HE (differing subquantizer centroids), ST_SDC (symmetric PQ distances), "
                      "ST_polysemous (PQ distances of the codes within Hamming distance < polysemous_ht; L2, 8 "
                      "bits), ST_polysemous_generalize (the same filter on differing centroids).")
        .def_property("polysemous_ht", [](const IndexPQ& i) { return i.polysemous_ht; },
                      [](IndexPQ& i, long long v) {
                          check_not_fast_scan(i, "polysemous_ht");
                          i.polysemous_ht = checked_ht(v);
                      },
                      "Hamming threshold of ST_polysemous (codes at distance < polysemous_ht are scored; 0 or "
                      "M * nbits + 1: all).")
        .def_property("do_polysemous_training", [](const IndexPQ& i) { return i.do_polysemous_training; },
                      [](IndexPQ& i, bool v) {
                          if (v) check_not_fast_scan(i, "polysemous training");
                          i.do_polysemous_training = v;
                      },
                      "train() renumbers the centroids so that Hamming distances between codes follow PQ "
                      "distances (polysemous_training's settings).")
        .def_readwrite("polysemous_training", &IndexPQ::polysemous_training, py::return_value_policy::reference_internal)
        .def("hamming_distance_table", [](const IndexPQ& self, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, self.d, "x");
            const idx_t n = x.shape(0);
            py::array_t<int32_t> out({py::ssize_t(n), py::ssize_t(self.ntotal)});
            int32_t* o = out.mutable_data();
            py::gil_scoped_release release;
            self.hamming_distance_table(n, x.data(), o);
            return out;
        }, py::arg("x"), "(n, ntotal) int32 Hamming distances between the codes of x and the stored codes.");
    for (auto [name, v] : {std::pair<const char*, int>{"ST_PQ", IndexPQ::ST_PQ}, {"ST_HE", IndexPQ::ST_HE},
                           {"ST_generalized_HE", IndexPQ::ST_generalized_HE}, {"ST_SDC", IndexPQ::ST_SDC},
                           {"ST_polysemous", IndexPQ::ST_polysemous},
                           {"ST_polysemous_generalize", IndexPQ::ST_polysemous_generalize}})
        m.attr("IndexPQ").attr(name) = v;

    py::class_<SearchParametersPQ, SearchParameters, std::shared_ptr<SearchParametersPQ>>(m, "SearchParametersPQ")
        .def(py::init([](long long search_type, long long polysemous_ht, std::shared_ptr<IDSelector> sel) {
                 auto p = std::make_shared<SearchParametersPQ>();
                 p->search_type = checked_search_type(search_type);
                 p->polysemous_ht = checked_ht(polysemous_ht);
                 p->sel = sel;
                 return p;
             }),
             py::kw_only(), py::arg("search_type") = int(IndexPQ::ST_PQ), py::arg("polysemous_ht") = 0,
             py::arg("sel") = nullptr)
        .def_property("search_type", [](const SearchParametersPQ& p) { return p.search_type; },
                      [](SearchParametersPQ& p, long long v) { p.search_type = checked_search_type(v); })
        .def_property("polysemous_ht", [](const SearchParametersPQ& p) { return p.polysemous_ht; },
                      [](SearchParametersPQ& p, long long v) { p.polysemous_ht = checked_ht(v); });

    py::class_<IndexPQStats>(m, "IndexPQStats")
        .def(py::init<>())
        .def_readwrite("nq", &IndexPQStats::nq)
        .def_readwrite("ncode", &IndexPQStats::ncode)
        .def_readwrite("n_hamming_pass", &IndexPQStats::n_hamming_pass)
        .def("reset", &IndexPQStats::reset);
    m.def("_indexPQ_stats", []() -> IndexPQStats& { return indexPQ_stats; }, py::return_value_policy::reference);

    py::class_<Index2Layer, Index, std::shared_ptr<Index2Layer>>(
        m, "Index2Layer",
        "faiss's Index2Layer(quantizer, nlist, M, nbit=8, metric): flat codes of (list number, PQ code of the "
        "residual), IndexIVFPQ's standalone codes; searched exhaustively (faiss's search raises).")
        .def(py::init([](IndexPtr quantizer, long long nlist, long long M, long long nbit, int metric) {
                 return std::make_shared<Index2Layer>(quantizer, check_positive(nlist, "nlist"), check_positive(M, "M"),
                                                      check_positive(nbit, "nbit"), MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("nlist"), py::arg("M"), py::arg("nbit") = 8,
             py::arg("metric") = int(METRIC_L2))
        .def_property_readonly("q1", [](const Index2Layer& self) { return self.codec; },
                               "The level-1 quantizer's holder (faiss's Level1Quantizer: .quantizer, .nlist, .cp), "
                               "an IndexIVFPQ that holds no vectors.")
        .def_property("pq", [](Index2Layer& self) -> ProductQuantizer& { return self.codec->pq; },
                      [](Index2Layer& self, const ProductQuantizer& other) {
                          py::gil_scoped_release release;
                          self.codec->set_pq(other);
                      },
                      py::return_value_policy::reference_internal)
        .def_readonly("code_size_1", &Index2Layer::code_size_1)
        .def_readonly("code_size_2", &Index2Layer::code_size_2)
        .def("transfer_to_IVFPQ", &Index2Layer::transfer_to_IVFPQ, py::arg("other"),
             py::call_guard<py::gil_scoped_release>());

    py::class_<MultiIndexQuantizer, Index, std::shared_ptr<MultiIndexQuantizer>>(m, "MultiIndexQuantizer")
        .def(py::init([](int d, long long M, long long nbits) {
                 return std::make_shared<MultiIndexQuantizer>(d, check_positive(M, "M"), check_positive(nbits, "nbits"));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits"))
        .def_property("pq", &pq_of_miq,
                      [](MultiIndexQuantizer& self, const ProductQuantizer& other) {
                          py::gil_scoped_release release;
                          self.set_pq(other);
                      },
                      py::return_value_policy::reference_internal)
        // Test hook: the k cells of one query's (M, ksub) distance table.
        .def("_nearest_cells", [](const MultiIndexQuantizer& q, py::handle tab_obj, long long k) {
            auto tab = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(tab_obj);
            if (!tab || size_t(tab.size()) != q.pq.M * q.pq.ksub) throw InvalidArgument("tab must hold M * ksub floats");
            const size_t kk = check_positive(k, "k");
            py::array_t<float> D(kk);
            py::array_t<idx_t> I(kk);
            q.nearest_cells(tab.data(), kk, D.mutable_data(), I.mutable_data());
            return py::make_tuple(D, I);
        }, py::arg("tab"), py::arg("k"));

    py::class_<MultiIndexQuantizer2, MultiIndexQuantizer, std::shared_ptr<MultiIndexQuantizer2>>(
        m, "MultiIndexQuantizer2",
        "faiss's MultiIndexQuantizer2(d, nbits, assign_index_0, assign_index_1) or (d, M, nbits, [indexes]): the "
        "sub-quantizers searched through indexes of their own, which train() fills with the sub-centroids.")
        .def(py::init([](int d, long long nbits, IndexPtr a0, IndexPtr a1) {
                 return std::make_shared<MultiIndexQuantizer2>(d, 2, check_positive(nbits, "nbits"),
                                                               std::vector<IndexPtr>{a0, a1});
             }),
             py::arg("d"), py::arg("nbits"), py::arg("assign_index_0"), py::arg("assign_index_1"))
        .def(py::init([](int d, long long M, long long nbits, std::vector<IndexPtr> indexes) {
                 return std::make_shared<MultiIndexQuantizer2>(d, check_positive(M, "M"), check_positive(nbits, "nbits"),
                                                               std::move(indexes));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits"), py::arg("indexes"))
        .def_property_readonly("assign_indexes", [](const MultiIndexQuantizer2& self) { return self.assign_indexes; });

    py::class_<IndexIVFPQ, IndexIVF, std::shared_ptr<IndexIVFPQ>>(m, "IndexIVFPQ")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, long long M, long long nbits, int metric) {
                 return std::make_shared<IndexIVFPQ>(quantizer, d, check_positive(nlist, "nlist"),
                                                     check_positive(M, "M"), check_positive(nbits, "nbits"),
                                                     MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits") = 8,
             py::arg("metric") = int(METRIC_L2))
        .def_property("pq", &pq_of_ivfpq,
                      [](IndexIVFPQ& self, const ProductQuantizer& other) {
                          py::gil_scoped_release release;
                          self.set_pq(other);
                      },
                      py::return_value_policy::reference_internal)
        .def_property("by_residual", [](const IndexIVFPQ& i) { return i.by_residual; },
                      [](IndexIVFPQ& i, bool v) {
                          py::gil_scoped_release release;
                          i.set_by_residual(v);
                      })
        .def_readwrite("use_precomputed_table", &IndexIVFPQ::use_precomputed_table)
        .def("set_pq_centroids", [](IndexIVFPQ& self, py::handle v) {
            auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
            if (!a || size_t(a.size()) != self.pq.centroids.size())
                throw InvalidArgument("centroids must hold M * ksub * dsub = " +
                                      std::to_string(self.pq.centroids.size()) + " floats");
            py::gil_scoped_release release;
            self.set_pq_centroids(a.data());
        }, py::arg("centroids"), "Installs a trained codebook (nearly only; the GPU copy-back uses it).")
        .def("precompute_table", [](IndexIVFPQ& self) {
            py::gil_scoped_release release;
            self.precompute_table();
        })
        .def_property("polysemous_ht", [](const IndexIVFPQ& i) { return i.polysemous_ht; },
                      [](IndexIVFPQ& i, long long v) {
                          const int ht = checked_ht(v);
                          if (ht > 0 && !i.has_polysemous_search())
                              throw NotSupported(i.type_name() + " has no polysemous search");
                          i.polysemous_ht = ht;
                      },
                      "Polysemous filtering: only codes within Hamming distance < polysemous_ht of the query's "
                      "code get a PQ distance (0: all). Meaningful after polysemous training.")
        .def_property("do_polysemous_training", [](const IndexIVFPQ& i) { return i.do_polysemous_training; },
                      [](IndexIVFPQ& i, bool v) {
                          if (v && !i.has_polysemous_search())
                              throw NotSupported(i.type_name() + " has no polysemous search");
                          i.do_polysemous_training = v;
                      },
                      "train() renumbers the PQ centroids for Hamming filtering (polysemous_training's settings, "
                      "faiss's defaults when None).")
        .def_readwrite("polysemous_training", &IndexIVFPQ::polysemous_training,
                       "A PolysemousTraining (shared, as faiss's pointer), or None for the defaults.");

    py::class_<IndexIVFPQR, IndexIVFPQ, std::shared_ptr<IndexIVFPQR>>(
        m, "IndexIVFPQR", "faiss's IndexIVFPQR: an IVFPQ whose k * k_factor best candidates are re-ranked with a "
                          "second PQ of what the first leaves (L2; ids sequential, as faiss).")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, long long M, long long nbits, long long M_refine,
                         long long nbits_refine) {
                 return std::make_shared<IndexIVFPQR>(quantizer, d, check_positive(nlist, "nlist"),
                                                      check_positive(M, "M"), check_positive(nbits, "nbits"),
                                                      check_positive(M_refine, "M_refine"),
                                                      check_positive(nbits_refine, "nbits_refine"));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits_per_idx"),
             py::arg("M_refine"), py::arg("nbits_per_idx_refine"))
        .def_property("refine_pq", [](IndexIVFPQR& i) -> ProductQuantizer& { return i.refine_pq; },
                      [](IndexIVFPQR& self, const ProductQuantizer& other) {
                          py::gil_scoped_release release;
                          self.set_refine_pq(other);
                      },
                      py::return_value_policy::reference_internal)
        .def_property("k_factor", [](const IndexIVFPQR& i) { return i.k_factor; },
                      [](IndexIVFPQR& i, double v) {
                          if (!(v > 0) || v > 1e6) throw InvalidArgument("k_factor must be positive");
                          i.k_factor = float(v);
                      }, "Candidates re-ranked per query: k * k_factor (faiss's default 4).")
        .def_property_readonly("refine_codes", [](const IndexIVFPQR& i) {
            py::array_t<uint8_t> out(i.refine_codes.size());
            std::copy(i.refine_codes.begin(), i.refine_codes.end(), out.mutable_data());
            return out;
        }, "The refinement codes, ntotal x refine_pq.code_size bytes by id (a copy).");

    py::class_<SearchParametersIVFPQ, SearchParametersIVF, std::shared_ptr<SearchParametersIVFPQ>>(
        m, "SearchParametersIVFPQ")
        .def(py::init([](long long nprobe, long long polysemous_ht, std::shared_ptr<IDSelector> sel,
                         long long max_codes) {
                 if (nprobe < 1) throw InvalidArgument("nprobe must be at least 1 (got " + std::to_string(nprobe) + ")");
                 if (max_codes < 0) throw InvalidArgument("max_codes must be non-negative");
                 auto p = std::make_shared<SearchParametersIVFPQ>();
                 p->nprobe = size_t(nprobe);
                 p->polysemous_ht = checked_ht(polysemous_ht);
                 p->sel = sel;
                 p->max_codes = size_t(max_codes);
                 return p;
             }),
             py::kw_only(), py::arg("nprobe") = 1, py::arg("polysemous_ht") = 0, py::arg("sel") = nullptr,
             py::arg("max_codes") = 0)
        .def_property("polysemous_ht", [](const SearchParametersIVFPQ& p) { return p.polysemous_ht; },
                      [](SearchParametersIVFPQ& p, long long v) { p.polysemous_ht = checked_ht(v); },
                      "Replaces the index's polysemous_ht for the search (0: no filter, as faiss).");

    py::class_<SimulatedAnnealingParameters, std::shared_ptr<SimulatedAnnealingParameters>>(m, "SimulatedAnnealingParameters")
        .def(py::init<>())
        .def_readwrite("init_temperature", &SimulatedAnnealingParameters::init_temperature)
        .def_readwrite("temperature_decay", &SimulatedAnnealingParameters::temperature_decay)
        .def_readwrite("n_iter", &SimulatedAnnealingParameters::n_iter)
        .def_readwrite("n_redo", &SimulatedAnnealingParameters::n_redo)
        .def_readwrite("seed", &SimulatedAnnealingParameters::seed)
        .def_readwrite("verbose", &SimulatedAnnealingParameters::verbose)
        .def_readwrite("only_bit_flips", &SimulatedAnnealingParameters::only_bit_flips)
        .def_readwrite("init_random", &SimulatedAnnealingParameters::init_random);
    py::class_<PolysemousTraining, SimulatedAnnealingParameters, std::shared_ptr<PolysemousTraining>>(
        m, "PolysemousTraining")
        .def(py::init<>())
        .def_property("optimization_type", [](const PolysemousTraining& p) { return p.optimization_type; },
                      [](PolysemousTraining& p, int v) {
                          if (v < 0 || v > 2)
                              throw InvalidArgument("optimization_type must be OT_None, OT_ReproduceDistances_affine "
                                                    "or OT_Ranking_weighted_diff");
                          p.optimization_type = v;
                      })
        .def_readwrite("ntrain_permutation", &PolysemousTraining::ntrain_permutation)
        .def_readwrite("dis_weight_factor", &PolysemousTraining::dis_weight_factor)
        .def_readwrite("max_memory", &PolysemousTraining::max_memory)
        .def("optimize_pq_for_hamming", [](const PolysemousTraining& p, ProductQuantizer& pq, py::handle x_obj) {
            FloatArray x = as_matrix(x_obj, int(pq.d), "x");
            py::gil_scoped_release release;
            p.optimize_pq_for_hamming(pq, size_t(x.shape(0)), x.data());
        }, py::arg("pq"), py::arg("x"), "Renumbers pq's centroids so that Hamming distances follow their distances.")
        .def("memory_usage_per_thread", &PolysemousTraining::memory_usage_per_thread, py::arg("pq"));
    m.attr("PolysemousTraining").attr("OT_None") = int(PolysemousTraining::OT_None);
    m.attr("PolysemousTraining").attr("OT_ReproduceDistances_affine") =
        int(PolysemousTraining::OT_ReproduceDistances_affine);
    m.attr("PolysemousTraining").attr("OT_Ranking_weighted_diff") = int(PolysemousTraining::OT_Ranking_weighted_diff);
    // Test hook: one subquantizer's objective over perm, swapping a and b:
    // (cost before, cost after, swap_delta).
    m.def("_polysemous_swap", [](int nbits, py::handle dis_obj, double factor, std::vector<int> perm, int a, int b) {
        auto dis = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(dis_obj);
        const size_t n = size_t(1) << nbits;
        if (nbits < 1 || nbits > 12 || !dis || size_t(dis.size()) != n * n || perm.size() != n || a < 0 || b < 0 ||
            size_t(a) >= n || size_t(b) >= n || a == b)
            throw InvalidArgument("_polysemous_swap: bad arguments");
        HammingReproduction obj(size_t(nbits), dis.data(), factor);
        const double before = obj.cost(perm.data()), delta = obj.swap_delta(perm.data(), a, b);
        std::swap(perm[size_t(a)], perm[size_t(b)]);
        return py::make_tuple(before, obj.cost(perm.data()), delta);
    });

    py::class_<IndexPQFastScan, IndexPQ, std::shared_ptr<IndexPQFastScan>>(m, "IndexPQFastScan")
        .def(py::init([](int d, long long M, long long nbits, int metric, long long bbs) {
                 check_bbs(bbs);
                 return std::make_shared<IndexPQFastScan>(d, check_positive(M, "M"), check_positive(nbits, "nbits"),
                                                          MetricType(metric));
             }),
             py::arg("d"), py::arg("M"), py::arg("nbits") = 4, py::arg("metric") = int(METRIC_L2),
             py::arg("bbs") = 32)
        .def(py::init([](const IndexPQ& orig, long long bbs) {
                 check_bbs(bbs);
                 py::gil_scoped_release release;
                 return std::make_shared<IndexPQFastScan>(orig);
             }),
             py::arg("orig"), py::arg("bbs") = 32, "faiss's conversion of a 4-bit IndexPQ.")
        .def_property_readonly("bbs", [](const IndexPQFastScan&) { return IndexPQFastScan::bbs; })
        .def_property_readonly("codes", [](const IndexPQFastScan& self) { return bytes_array(self.stored_codes()); },
                               "The codes as stored, in blocks of 32 (the last one padded; get_CodePacker() reads "
                               "them), a numpy copy.")
        .def_property(
            "implem", [](const IndexPQFastScan& i) { return i.implem; },
            [](IndexPQFastScan& i, int v) { i.implem = checked_fast_scan_implem(v, false); }, kImplemDoc)
        .def_readwrite("qbs", &IndexPQFastScan::qbs, "faiss's query batch size; kept (nearly batches its own way).")
        .def_property_readonly("M", [](const IndexPQFastScan& i) { return i.pq.M; });

    py::class_<IndexIVFPQFastScan, IndexIVFPQ, std::shared_ptr<IndexIVFPQFastScan>>(m, "IndexIVFPQFastScan")
        .def(py::init([](IndexPtr quantizer, int d, long long nlist, long long M, long long nbits, int metric,
                         long long bbs) {
                 check_bbs(bbs);
                 return std::make_shared<IndexIVFPQFastScan>(quantizer, d, check_positive(nlist, "nlist"),
                                                             check_positive(M, "M"), check_positive(nbits, "nbits"),
                                                             MetricType(metric));
             }),
             py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits") = 4,
             py::arg("metric") = int(METRIC_L2), py::arg("bbs") = 32)
        .def(py::init([](const IndexIVFPQ& orig, long long bbs) {
                 check_bbs(bbs);
                 py::gil_scoped_release release;
                 return std::make_shared<IndexIVFPQFastScan>(orig);
             }),
             py::arg("orig"), py::arg("bbs") = 32, "faiss's conversion of a 4-bit IndexIVFPQ (the quantizer is shared).")
        .def_property_readonly("bbs", [](const IndexIVFPQFastScan&) { return IndexIVFPQFastScan::bbs; })
        .def_property(
            "implem", [](const IndexIVFPQFastScan& i) { return i.implem; },
            [](IndexIVFPQFastScan& i, int v) { i.implem = checked_fast_scan_implem(v, true); }, kImplemDoc)
        .def_readwrite("qbs", &IndexIVFPQFastScan::qbs, "faiss's query batch size; kept (nearly batches its own way).")
        .def_property_readonly("M", [](const IndexIVFPQFastScan& i) { return i.pq.M; });

    // Test hooks for 4-bit fast-scan: a float table (M, 16) quantized to
    // bytes (bytes, bias, scale), and the active level's block scan of
    // (nblocks, npairs * 32) codes with byte tables (2 * npairs, 16):
    // (sums (nblocks, 32) uint16, masks (nblocks,) uint32 of sums <= thr).
    // scaled_from / table_scale: the tables quantized coarser (PQ4Table::set);
    // the tail's multipliers come back as (ntail, 2).
    m.def("pq4_quantize_table", [](py::handle tab_obj, int64_t scaled_from, int table_scale) {
        auto tab = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(tab_obj);
        if (!tab || tab.ndim() != 2 || tab.shape(1) != 16 || tab.shape(0) < 1)
            throw InvalidArgument("tab must have shape (M, 16)");
        PQ4Table t;
        t.set(tab.data(), size_t(tab.shape(0)), scaled_from < 0 ? SIZE_MAX : size_t(scaled_from), table_scale);
        py::array_t<uint8_t> bytes({py::ssize_t(t.bytes.size() / 16), py::ssize_t(16)});
        std::copy(t.bytes.begin(), t.bytes.end(), bytes.mutable_data());
        py::array_t<uint16_t> mult({py::ssize_t(t.tail.npairs), py::ssize_t(2)});
        for (size_t p = 0; p < t.tail.npairs; p++)
            for (size_t h = 0; h < 2; h++) mult.mutable_data()[p * 2 + h] = t.tail.mult[p][h];
        return py::make_tuple(bytes, t.bias, t.scale, mult);
    }, py::arg("tab"), py::arg("scaled_from") = -1, py::arg("table_scale") = 1);
    // Test hook: the active level's block kernel. lut: (2 * npairs, 16), or
    // (nq, 2 * npairs, 16) for nq queries scanned together; thr per query;
    // tail: the last pairs' multipliers (ntail <= 2, 2), PQ4Tail.
    m.def("pq4_scan_blocks", [](py::handle codes_obj, py::handle lut_obj, py::handle thr_obj, py::handle tail_obj) {
        auto lut = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(lut_obj);
        const bool multi = lut && lut.ndim() == 3;
        if (!lut || (lut.ndim() != 2 && !multi) || lut.shape(lut.ndim() - 1) != 16 || lut.shape(lut.ndim() - 2) < 2 ||
            lut.shape(lut.ndim() - 2) % 2 || (multi && lut.shape(0) < 1))
            throw InvalidArgument("lut must have shape (2 * npairs, 16) or (nq, 2 * npairs, 16)");
        const size_t nq = multi ? size_t(lut.shape(0)) : 1, npairs = size_t(lut.shape(lut.ndim() - 2)) / 2;
        auto thr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(thr_obj);
        if (!thr || thr.size() != py::ssize_t(nq) && thr.size() != 1) throw InvalidArgument("one thr, or one per query");
        std::vector<uint16_t> t(nq);
        for (size_t q = 0; q < nq; q++) {
            const int64_t v = thr.data()[thr.size() == 1 ? 0 : q];
            if (v < 0 || v > 65535) throw InvalidArgument("thr must be in [0, 65535]");
            t[q] = uint16_t(v);
        }
        PQ4Tail tail;
        if (!tail_obj.is_none()) {
            auto mult = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(tail_obj);
            if (!mult || mult.ndim() != 2 || mult.shape(1) != 2 || mult.shape(0) > 2 ||
                size_t(mult.shape(0)) > npairs)
                throw InvalidArgument("tail must have shape (ntail <= min(2, npairs), 2)");
            tail.npairs = size_t(mult.shape(0));
            for (size_t i = 0; i < 2 * tail.npairs; i++) {
                const int64_t v = mult.data()[i];
                if (v < 1 || v > 255) throw InvalidArgument("tail multipliers must be in [1, 255]");
                tail.mult[i / 2][i % 2] = uint16_t(v);
            }
        }
        ByteArray c = as_codes(codes_obj, npairs * 32);
        const size_t nb = size_t(c.shape(0));
        std::vector<uint8_t> buf(nq * npairs * 64 + 64);
        uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
        std::vector<const uint8_t*> packed(nq);
        for (size_t q = 0; q < nq; q++) {
            simd().pq4_pack_lut(lut.data() + q * npairs * 32, npairs, tail.npairs, base + q * npairs * 64);
            packed[q] = base + q * npairs * 64;
        }
        std::vector<uint16_t> s(nq * 32);
        std::vector<uint32_t> mk(nq);
        py::array_t<uint16_t> sums({py::ssize_t(nq), py::ssize_t(nb), py::ssize_t(32)});
        py::array_t<uint32_t> masks({py::ssize_t(nq), py::ssize_t(nb)});
        for (size_t b = 0; b < nb; b++) {
            simd().pq4_scan_block(c.data() + b * npairs * 32, npairs, packed.data(), nq, t.data(), s.data(), mk.data(),
                                  tail);
            for (size_t q = 0; q < nq; q++) {
                std::copy(s.begin() + q * 32, s.begin() + q * 32 + 32, sums.mutable_data() + (q * nb + b) * 32);
                masks.mutable_data()[q * nb + b] = mk[q];
            }
        }
        if (!multi) return py::make_tuple(py::object(sums[py::int_(0)]), py::object(masks[py::int_(0)]));
        return py::make_tuple(py::object(sums), py::object(masks));
    }, py::arg("codes"), py::arg("lut"), py::arg("thr") = 65535, py::arg("tail") = py::none());

    // Test hook: the active level's ADC kernel on (M, 256) tables and (n, M)
    // codes, or with gathers=True the AVX-512 gather variant (which the
    // active level uses only where it measured faster).
    m.def("pq_adc_scan", [](py::handle tab_obj, py::handle codes_obj, bool gathers) {
        auto tab = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(tab_obj);
        if (!tab || tab.ndim() != 2 || tab.shape(1) != 256) throw InvalidArgument("tab must have shape (M, 256)");
        const size_t M = tab.shape(0);
        ByteArray c = as_codes(codes_obj, M);
        py::array_t<float> out(c.shape(0));
        auto kernel = simd().pq_adc8;
        if (gathers) {
#if defined(NEARLY_HAVE_AVX512)
            if (simd_level() != SimdLevel::avx512) throw InvalidArgument("gathers=True needs the avx512 level");
            kernel = pq_adc8_avx512_gathers;
#else
            throw InvalidArgument("gathers=True needs the avx512 level");
#endif
        }
        kernel(tab.data(), c.data(), M, size_t(c.shape(0)), out.mutable_data());
        return out;
    }, py::arg("tab"), py::arg("codes"), py::arg("gathers") = false);

    // Test hook: the active level's code to code kernel on centroids (M, 256,
    // dsub) for each pair of rows of a and b ((n, M) 8-bit codes).
    m.def("pq_sdc_scores", [](py::handle c_obj, py::handle a_obj, py::handle b_obj, bool ip) {
        auto C = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(c_obj);
        if (!C || C.ndim() != 3 || C.shape(1) != 256 || C.shape(2) < 1)
            throw InvalidArgument("centroids must have shape (M, 256, dsub)");
        const size_t M = C.shape(0), dsub = C.shape(2);
        ByteArray a = as_codes(a_obj, M), b = as_codes(b_obj, M);
        if (a.shape(0) != b.shape(0)) throw InvalidArgument("a and b must hold as many codes");
        py::array_t<float> out(a.shape(0));
        for (py::ssize_t i = 0; i < a.shape(0); i++)
            out.mutable_data()[i] = simd().pq_sdc8(C.data(), dsub, M, a.data() + i * M, b.data() + i * M, ip);
        return out;
    }, py::arg("centroids"), py::arg("a"), py::arg("b"), py::arg("ip") = false);

    // Test hook: the active level's nearest_transposed for each row of x
    // against ct (d, k) and norms (k,): (indices, scores).
    m.def("nearest_transposed", [](py::handle x_obj, py::handle ct_obj, py::handle norms_obj) {
        auto ct = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(ct_obj);
        auto nr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(norms_obj);
        if (!ct || ct.ndim() != 2 || ct.shape(1) < 1) throw InvalidArgument("ct must have shape (d, k), k >= 1");
        const size_t d = ct.shape(0), k = ct.shape(1);
        if (!nr || nr.ndim() != 1 || size_t(nr.shape(0)) != k) throw InvalidArgument("norms must have shape (k,)");
        FloatArray x = as_matrix(x_obj, int(d), "x");
        py::array_t<int64_t> idx(x.shape(0));
        py::array_t<float> score(x.shape(0));
        for (py::ssize_t i = 0; i < x.shape(0); i++)
            idx.mutable_data()[i] = int64_t(simd().nearest_transposed(x.data() + i * d, d, ct.data(), nr.data(), k,
                                                                       score.mutable_data() + i));
        return py::make_tuple(idx, score);
    }, py::arg("x"), py::arg("ct"), py::arg("norms"));
}

}  // namespace nearly_py
