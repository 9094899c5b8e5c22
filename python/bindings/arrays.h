// Conversions between Python objects and the raw pointers the core takes.
// Anything numpy can turn into a C-contiguous float32 (n, d) array is
// accepted (a copy is made when needed), like faiss.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "nearly/common.h"
#include "nearly/index.h"

namespace py = pybind11;

namespace nearly_py {

// A search's params argument: None, or a SearchParameters object.
inline const nearly::SearchParameters* params_ptr(py::handle params) {
    if (params.is_none()) return nullptr;
    try {
        return py::cast<const nearly::SearchParameters*>(params);
    } catch (const py::cast_error&) {
        throw nearly::InvalidArgument("params must be a SearchParameters object");
    }
}

using nearly::idx_t;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IdArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); i++) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

template <class A>
A to_array(py::handle obj, const char* what) {
    if (obj.is_none()) throw nearly::InvalidArgument(std::string(what) + " is None");
    A a = A::ensure(obj);
    if (!a) {
        PyErr_Clear();
        throw nearly::InvalidArgument(std::string(what) + " cannot be converted to a numeric array");
    }
    return a;
}

// faiss's pointer arguments, where swig_ptr(a) hands over the array itself.
// pointer_in: the first n values of any array numpy can convert to T (a
// copy when it must be), for what is only read. pointer_memory: the array's
// own memory, a C-contiguous array of T (writeable when written to). Both
// hold n values or more (faiss would read or write past them).
template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> pointer_in(py::handle obj, size_t n, const char* what) {
    auto a = to_array<py::array_t<T, py::array::c_style | py::array::forcecast>>(obj, what);
    if (size_t(a.size()) < n)
        throw nearly::InvalidArgument(std::string(what) + " holds " + std::to_string(a.size()) + " values, " +
                                      std::to_string(n) + " needed");
    return a;
}

template <class T>
T* pointer_memory(py::handle obj, size_t count, bool write, const char* what) {
    if (!py::isinstance<py::array_t<T>>(obj))
        throw nearly::InvalidArgument(std::string(what) + " must be a " +
                                      py::str(py::dtype::of<T>()).cast<std::string>() +
                                      " numpy array (faiss.swig_ptr of one)");
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!(a.flags() & py::array::c_style)) throw nearly::InvalidArgument(std::string(what) + " must be C-contiguous");
    if (write && !a.writeable()) throw nearly::InvalidArgument(std::string(what) + " is read-only");
    if (size_t(a.size()) < count)
        throw nearly::InvalidArgument(std::string(what) + " holds " + std::to_string(a.size()) + " values, " +
                                      std::to_string(count) + " needed");
    return static_cast<T*>(a.mutable_data());
}

// An (n, d) float32 matrix; d < 0 accepts any width.
inline FloatArray as_matrix(py::handle obj, int d, const char* what) {
    FloatArray a = to_array<FloatArray>(obj, what);
    if (a.ndim() != 2)
        throw nearly::InvalidArgument(std::string(what) + " must be a 2-D array of shape (n, " +
                                      (d < 0 ? std::string("d") : std::to_string(d)) + "), got shape " + shape_str(a));
    if (d >= 0 && a.shape(1) != d)
        throw nearly::InvalidArgument(std::string(what) + " has " + std::to_string(a.shape(1)) +
                                      " columns, expected d=" + std::to_string(d));
    return a;
}

inline IdArray as_ids(py::handle obj, py::ssize_t n, const char* what) {
    IdArray a = to_array<IdArray>(obj, what);
    if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n))
        throw nearly::InvalidArgument(std::string(what) + " must be a 1-D array of " +
                                      (n >= 0 ? std::to_string(n) + " " : std::string()) + "int64 ids, got shape " +
                                      shape_str(a));
    return a;
}

// add_preassigned(x, list_nos, ids=None) and faiss's pointer-shaped
// add_core(n, x, xids, precomputed_idx) (swig_ptr hands the arrays through)
// on an IVF class T (float or binary): rows(self, x, flat) gives x's rows as
// an array, reshaping a flat buffer when flat is set.
template <class T, class Cls, class Rows>
void def_preassigned_adds(Cls& cls, Rows rows, const char* doc) {
    cls.def("add_preassigned", [rows](T& self, py::handle x_obj, py::handle lists_obj, py::handle ids_obj) {
        auto x = rows(self, x_obj, false);
        const idx_t n = x.shape(0);
        IdArray lists = as_ids(lists_obj, n, "list_nos");
        IdArray ids;
        if (!ids_obj.is_none()) ids = as_ids(ids_obj, n, "ids");
        const idx_t* idp = ids_obj.is_none() ? nullptr : ids.data();
        py::gil_scoped_release release;
        self.add_core(n, x.data(), idp, lists.data());
    }, py::arg("x"), py::arg("list_nos"), py::arg("ids") = py::none(), doc);
    cls.def("add_core", [rows](T& self, idx_t n, py::handle x_obj, py::handle ids_obj, py::handle lists_obj) {
        auto x = rows(self, x_obj, true);
        if (n < 0 || n > x.shape(0)) throw nearly::InvalidArgument("add_core: n is larger than x");
        IdArray ids, lists;
        const idx_t *idp = nullptr, *lp = nullptr;
        if (!ids_obj.is_none()) {
            ids = as_ids(py::reinterpret_borrow<py::object>(ids_obj).attr("ravel")(), -1, "xids");
            idp = ids.data();
        }
        if (!lists_obj.is_none()) {
            lists = as_ids(py::reinterpret_borrow<py::object>(lists_obj).attr("ravel")(), -1, "precomputed_idx");
            lp = lists.data();
        }
        if ((idp && ids.shape(0) < n) || (lp && lists.shape(0) < n))
            throw nearly::InvalidArgument("add_core: xids and precomputed_idx must hold n entries");
        py::gil_scoped_release release;
        self.add_core(n, x.data(), idp, lp);
    }, py::arg("n"), py::arg("x"), py::arg("xids"), py::arg("precomputed_idx") = py::none());
}

// index.permute_entries(perm) for every index type that has it: row (node)
// i becomes the old row perm[i].
template <class IndexT>
void permute_entries(IndexT& self, py::handle perm_obj) {
    IdArray perm = as_ids(perm_obj, self.ntotal, "perm");
    py::gil_scoped_release release;
    self.permute_entries(perm.data());
}

// Per-set vector counts of a ragged collection.
inline IdArray as_lengths(py::handle obj, const char* what) {
    IdArray a = to_array<IdArray>(obj, what);
    if (a.ndim() != 1)
        throw nearly::InvalidArgument(std::string(what) + " must be a 1-D array of per-set vector counts, got shape " +
                                      shape_str(a));
    return a;
}

// Serialized bytes: bytes, bytearray, memoryview or a 1-D uint8 array.
using ByteArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
inline ByteArray as_bytes(py::handle data) {
    ByteArray a;
    if (PyBytes_Check(data.ptr()) || PyByteArray_Check(data.ptr()) || PyMemoryView_Check(data.ptr())) {
        py::buffer_info info = py::reinterpret_borrow<py::buffer>(data).request();
        a = py::array_t<uint8_t>(info.size * info.itemsize, static_cast<const uint8_t*>(info.ptr));
    } else {
        a = to_array<ByteArray>(data, "data");
    }
    if (a.ndim() != 1) throw nearly::InvalidArgument("data must be a 1-D uint8 array or bytes");
    return a;
}

// k from a Python int or numpy integer; floats and bools are refused.
// A byte vector handed to numpy without a copy (a serialized index can be
// as large as the index).
inline py::array_t<uint8_t> bytes_array(std::vector<uint8_t>&& bytes) {
    auto* owned = new std::vector<uint8_t>(std::move(bytes));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<uint8_t>*>(p); });
    return py::array_t<uint8_t>({py::ssize_t(owned->size())}, {py::ssize_t(1)}, owned->data(), free_when_done);
}

// A flat-code index's `codes` property: ntotal * code_size bytes, a copy.
template <class IndexT>
auto codes_getter() {
    return [](const IndexT& self) { return bytes_array(self.get_codes()); };
}
constexpr const char* kCodesDoc = "The stored codes, ntotal * code_size bytes (a numpy copy).";

inline idx_t as_k(py::handle k) {
    if (PyBool_Check(k.ptr()) || !PyIndex_Check(k.ptr()))
        throw nearly::InvalidArgument("k must be an integer");
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(k.ptr()));
    if (!as_int) throw py::error_already_set();
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(as_int.ptr(), &overflow);
    if (overflow) throw nearly::InvalidArgument("k is out of range");
    if (v <= 0) throw nearly::InvalidArgument("k must be positive (got " + std::to_string(v) + ")");
    return v;
}

}  // namespace nearly_py

namespace nearly_py {
// fast-scan's block size. faiss takes any multiple of 32 (a kernel tuning
// knob); nearly lays codes out in blocks of 32 whatever is asked (its
// kernels' block: the same results), so `bbs` reads 32 afterwards.
inline void check_bbs(long long bbs) {
    if (bbs < 32 || bbs % 32 != 0)
        throw nearly::InvalidArgument("fast-scan: bbs=" + std::to_string(bbs) +
                                      " is not a positive multiple of 32 (faiss's rule)");
}

// The lists given to the *_preassigned searches: Iq (n, nprobe) list
// numbers, Dq their centroid scores or None (float IVF; the binary one
// passes None: its scan does not use them).
struct Assignment {
    py::array_t<idx_t, py::array::c_style | py::array::forcecast> Iq;
    py::array_t<float, py::array::c_style | py::array::forcecast> Dq;
    size_t np = 0;
    bool has_scores = false;
    Assignment(idx_t n, py::handle Iq_obj, py::handle Dq_obj) {
        Iq = py::array_t<idx_t, py::array::c_style | py::array::forcecast>::ensure(Iq_obj);
        if (!Iq || Iq.ndim() != 2 || Iq.shape(0) != n || Iq.shape(1) < 1)
            throw nearly::InvalidArgument("Iq must be an (n, nprobe) array of list numbers");
        np = size_t(Iq.shape(1));
        if (Dq_obj.is_none()) return;
        Dq = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(Dq_obj);
        if (!Dq || Dq.ndim() != 2 || Dq.shape(0) != n || size_t(Dq.shape(1)) != np)
            throw nearly::InvalidArgument("Dq must be an (n, nprobe) float32 array like Iq");
        has_scores = true;
    }
    const idx_t* lists() const { return Iq.data(); }
    const float* scores() const { return has_scores ? Dq.data() : nullptr; }
};

// Replaces a flat-code index's codes by the bytes of `codes` (any shape,
// whole codes): what a write to faiss's index.codes does.
template <class IndexT>
void set_flat_codes(IndexT& index, py::handle codes) {
    auto c = py::array_t<uint8_t, py::array::c_style>::ensure(codes);
    if (!c) throw nearly::InvalidArgument("codes must be a uint8 array");
    const size_t cs = index.code_size();
    if (size_t(c.size()) % cs != 0)
        throw nearly::InvalidArgument("codes must hold whole codes of " + std::to_string(cs) + " bytes, got " +
                                      std::to_string(c.size()));
    py::gil_scoped_release release;
    index.set_codes(c.data(), size_t(c.size()) / cs);
}

// (n, code_size) uint8 codes: another dtype is a TypeError (like faiss), another width an InvalidArgument.
py::array_t<uint8_t, py::array::c_style | py::array::forcecast> as_codes(py::handle obj, size_t code_size,
                                                                        const char* what);
}  // namespace nearly_py

namespace nearly_py {
// A range search's (lims, D, I) as faiss returns them.
inline py::tuple range_result_tuple(const nearly::RangeSearchResult& res) {
    py::array_t<uint64_t> lims(res.lims.size());
    std::copy(res.lims.begin(), res.lims.end(), lims.mutable_data());
    py::array_t<float> D(res.distances.size());
    std::copy(res.distances.begin(), res.distances.end(), D.mutable_data());
    py::array_t<idx_t> I(res.labels.size());
    std::copy(res.labels.begin(), res.labels.end(), I.mutable_data());
    return py::make_tuple(lims, D, I);
}
}  // namespace nearly_py

namespace nearly_py {
// An index handed as faiss's clustering_index: a native nearly index, or None.
// (Python-level collections such as IndexShards cannot be called from the
// training threads.)
inline nearly::IndexPtr clustering_index_arg(py::handle v) {
    if (v.is_none()) return nullptr;
    try {
        return py::cast<nearly::IndexPtr>(v);
    } catch (const py::cast_error&) {
        throw nearly::InvalidArgument("clustering_index must be a native nearly index (IndexFlat, IndexHNSWFlat, "
                                      "a GPU index, ...) or None, got " +
                                      std::string(py::str(py::type::of(v).attr("__name__"))));
    }
}
}  // namespace nearly_py
