// The Z^n sphere codecs (Repeats, ZnSphereSearch, ZnSphereCodec, ...Rec,
// ...Alt) with faiss's pointer-style methods, and IndexLattice.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/index_lattice.h"
#include "nearly/lattice.h"

namespace nearly_py {

using namespace nearly;

namespace {
template <class Cls>
void def_enumerated(Cls& cls) {
    using T = typename Cls::type;
    cls.def_property_readonly("nv", [](const T& self) { return self.nv; }, "How many sphere points have a number.")
        .def_property_readonly("dim", [](const T& self) { return self.dim; })
        .def("encode", [](const T& self, py::handle x) {
            auto a = pointer_in<float>(x, size_t(self.dim), "encode x");
            return self.encode(a.data());
        }, py::arg("x"), "The number of the sphere point closest to x (dim values).")
        .def("decode", [](const T& self, uint64_t code, py::handle c) {
            self.decode(code, pointer_memory<float>(c, size_t(self.dim), true, "decode c"));
        }, py::arg("code"), py::arg("c"), "Writes sphere point `code` into c (dim float32 values).")
        .def("encode_multi", [](const T& self, size_t n, py::handle x, py::handle codes) {
            auto a = pointer_in<float>(x, n * size_t(self.dim), "encode_multi x");
            uint64_t* out = pointer_memory<uint64_t>(codes, n, true, "encode_multi codes");
            py::gil_scoped_release release;
            self.encode_multi(n, a.data(), out);
        }, py::arg("n"), py::arg("x"), py::arg("codes"))
        .def("decode_multi", [](const T& self, size_t n, py::handle codes, py::handle c) {
            auto a = pointer_in<uint64_t>(codes, n, "decode_multi codes");
            float* out = pointer_memory<float>(c, n * size_t(self.dim), true, "decode_multi c");
            py::gil_scoped_release release;
            self.decode_multi(n, a.data(), out);
        }, py::arg("n"), py::arg("codes"), py::arg("c"));
}

template <class Cls>
void def_search(Cls& cls) {
    using T = typename Cls::type;
    cls.def_readonly("dimS", &T::dimS)
        .def_readonly("r2", &T::r2)
        .def_readonly("natom", &T::natom)
        .def_property_readonly("voc", [](const T& self) {
            return py::array_t<float>(self.voc.size(), self.voc.data());
        }, "The atoms (natom x dim, a numpy copy): sorted non-negative points, largest first.")
        .def("search", [](const T& self, py::handle x, py::handle c) {
            auto a = pointer_in<float>(x, size_t(self.dimS), "search x");
            return self.search(a.data(), pointer_memory<float>(c, size_t(self.dimS), true, "search c"));
        }, py::arg("x"), py::arg("c"), "Writes the sphere point of largest inner product with x into c; returns it.")
        .def("search_multi", [](const T& self, int n, py::handle x, py::handle c, py::handle dp) {
            NEARLY_CHECK_ARG(n >= 0, "search_multi: n must be non-negative");
            const size_t dim = size_t(self.dimS);
            auto a = pointer_in<float>(x, size_t(n) * dim, "search_multi x");
            float* cout = pointer_memory<float>(c, size_t(n) * dim, true, "search_multi c_out");
            float* dout = pointer_memory<float>(dp, size_t(n), true, "search_multi dp_out");
            for (size_t i = 0; i < size_t(n); i++) dout[i] = self.search(a.data() + i * dim, cout + i * dim);
        }, py::arg("n"), py::arg("x"), py::arg("c_out"), py::arg("dp_out"));
}
}  // namespace

void bind_lattice(py::module_& m) {
    py::class_<Repeats::Repeat>(m, "Repeat")
        .def_readonly("val", &Repeats::Repeat::val)
        .def_readonly("n", &Repeats::Repeat::n);
    py::class_<Repeats>(m, "Repeats", "A multiset of dim values and the numbers of its arrangements (faiss's Repeats).")
        .def(py::init([](int dim, py::handle c) {
            if (c.is_none()) {
                NEARLY_CHECK_ARG(dim == 0, "Repeats: the values c are needed for dim > 0");
                return Repeats();
            }
            auto a = pointer_in<float>(c, size_t(std::max(dim, 0)), "Repeats c");
            return Repeats(dim, a.data());
        }), py::arg("dim") = 0, py::arg("c") = py::none())
        .def_readonly("dim", &Repeats::dim)
        .def_readonly("repeats", &Repeats::repeats)
        .def("count", &Repeats::count)
        .def("encode", [](const Repeats& self, py::handle c) {
            return self.encode(pointer_in<float>(c, size_t(self.dim), "Repeats.encode c").data());
        }, py::arg("c"))
        .def("decode", [](const Repeats& self, uint64_t code, py::handle c) {
            self.decode(code, pointer_memory<float>(c, size_t(self.dim), true, "Repeats.decode c"));
        }, py::arg("code"), py::arg("c"));

    py::class_<ZnSphereSearch> search(m, "ZnSphereSearch");
    search.def(py::init<int, int>(), py::arg("dim"), py::arg("r2"));
    def_search(search);

    py::class_<ZnSphereCodec> codec(m, "ZnSphereCodec",
                                    "Numbers of the Z^dim points of squared norm r2, by atom, arrangement and signs; "
                                    "encode(x) numbers the point closest to x's direction (codes equal to faiss's).");
    codec.def(py::init<int, int>(), py::arg("dim"), py::arg("r2"))
        .def_readonly("code_size", &ZnSphereCodec::code_size)
        .def("search_and_encode", [](const ZnSphereCodec& self, py::handle x) {
            return self.ZnSphereCodec::encode(pointer_in<float>(x, size_t(self.dim), "search_and_encode x").data());
        }, py::arg("x"));
    def_search(codec);
    def_enumerated(codec);

    py::class_<ZnSphereCodecRec> rec(m, "ZnSphereCodecRec",
                                     "The same points numbered recursively by halves (dim a power of 2).");
    rec.def(py::init<int, int>(), py::arg("dim"), py::arg("r2"))
        .def_readonly("r2", &ZnSphereCodecRec::r2)
        .def_readonly("log2_dim", &ZnSphereCodecRec::log2_dim)
        .def_readonly("code_size", &ZnSphereCodecRec::code_size)
        .def_readonly("decode_cache_ld", &ZnSphereCodecRec::decode_cache_ld,
                      "decode reads the points of Z^(2^decode_cache_ld) from a table (0: none).")
        .def("encode_centroid", [](const ZnSphereCodecRec& self, py::handle c) {
            return self.encode_centroid(pointer_in<float>(c, size_t(self.dim), "encode_centroid c").data());
        }, py::arg("c"), "The number of c, a point of the sphere (integer components, squared norm r2).")
        .def("get_nv", [](const ZnSphereCodecRec& self, int ld, int r2a) {
            NEARLY_CHECK_ARG(ld >= 0 && ld <= self.log2_dim && r2a >= 0 && r2a <= self.r2,
                             "get_nv: ld must be in [0, log2_dim] and r2a in [0, r2]");
            return self.get_nv(ld, r2a);
        }, py::arg("ld"), py::arg("r2a"))
        .def("get_nv_cum", [](const ZnSphereCodecRec& self, int ld, int r2t, int r2a) {
            NEARLY_CHECK_ARG(ld >= 1 && ld <= self.log2_dim && r2t >= 0 && r2t <= self.r2 && r2a >= 0 && r2a <= r2t,
                             "get_nv_cum: ld must be in [1, log2_dim] and 0 <= r2a <= r2t <= r2");
            return self.get_nv_cum(ld, r2t, r2a);
        }, py::arg("ld"), py::arg("r2t"), py::arg("r2a"));
    def_enumerated(rec);

    py::class_<ZnSphereCodecAlt, ZnSphereCodec> alt(
        m, "ZnSphereCodecAlt",
        "ZnSphereCodec's search with ZnSphereCodecRec's numbers where dim is a power of 2 (IndexLattice's codec).");
    alt.def(py::init<int, int>(), py::arg("dim"), py::arg("r2"))
        .def_readonly("use_rec", &ZnSphereCodecAlt::use_rec)
        .def_property_readonly("znc_rec", [](const ZnSphereCodecAlt& self) -> const ZnSphereCodecRec* {
            return self.use_rec ? &self.rec[0] : nullptr;
        }, py::return_value_policy::reference_internal, "The recursive codec when use_rec, else None.");
    def_enumerated(alt);

    py::class_<IndexLattice, Index, std::shared_ptr<IndexLattice>>(
        m, "IndexLattice",
        "faiss's IndexLattice (\"ZnLattice<nsq>x<r2>_<scale_nbit>\"): per sub-vector a quantized norm and a Z^dsq "
        "sphere point; codes equal to faiss's, searched by L2 on the decoded vectors.")
        .def(py::init([](int d, int nsq, int scale_nbit, int r2) {
                 return std::make_shared<IndexLattice>(d, nsq, scale_nbit, r2);
             }),
             py::arg("d"), py::arg("nsq"), py::arg("scale_nbit"), py::arg("r2"))
        .def_readonly("nsq", &IndexLattice::nsq)
        .def_readonly("dsq", &IndexLattice::dsq)
        .def_readonly("scale_nbit", &IndexLattice::scale_nbit)
        .def_readonly("lattice_nbit", &IndexLattice::lattice_nbit)
        .def_readonly("zn_sphere_codec", &IndexLattice::zn_sphere_codec, py::return_value_policy::reference_internal)
        .def_property_readonly("trained", [](const IndexLattice& self) {
            return py::array_t<float>(self.trained.size(), self.trained.data());
        }, "nsq smallest then nsq largest sub-vector norms of the training set (a numpy copy).")
        .def_property_readonly("code_size", &IndexLattice::code_size)
        .def_property_readonly("codes", codes_getter<IndexLattice>(), kCodesDoc);
}

}  // namespace nearly_py
