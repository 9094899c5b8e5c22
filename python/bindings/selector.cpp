#include <pybind11/pybind11.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "arrays.h"
#include "nearly/idmap.h"
#include "nearly/selector.h"

namespace nearly_py {

using namespace nearly;

namespace {
std::vector<idx_t> ids_from(py::handle obj) {
    IdArray a = as_ids(obj, -1, "ids");
    return std::vector<idx_t>(a.data(), a.data() + a.shape(0));
}

// faiss also accepts (n, ids): keep the first n.
std::vector<idx_t> ids_from(py::ssize_t n, py::handle obj) {
    std::vector<idx_t> v = ids_from(obj);
    if (n < 0 || size_t(n) > v.size()) throw InvalidArgument("n is larger than the ids array");
    v.resize(n);
    return v;
}
// ids_from(n, ids) that must be in ascending order (sorted bounds).
std::vector<idx_t> sorted_ids(py::ssize_t n, py::handle obj) {
    std::vector<idx_t> v = n < 0 ? ids_from(obj) : ids_from(n, obj);
    if (!std::is_sorted(v.begin(), v.end())) throw InvalidArgument("find_sorted_ids_bounds: ids must be sorted");
    return v;
}

// faiss's PyCallbackIDSelector: a Python callable decides. Searches call it
// from their threads, so each call takes the GIL (correct, not fast: the
// native selectors are for speed).
struct PyCallbackIDSelector : IDSelector {
    py::object callback;
    explicit PyCallbackIDSelector(py::object cb) : callback(std::move(cb)) {}
    ~PyCallbackIDSelector() override {
        py::gil_scoped_acquire gil;  // the last reference may go on a thread without it
        callback = py::object();
    }
    bool is_member(idx_t id) const override {
        py::gil_scoped_acquire gil;
        std::string why;
        try {
            return bool(py::bool_(callback(id)));
        } catch (py::error_already_set& e) {
            why = e.what();
        }
        throw std::runtime_error("PyCallbackIDSelector: the callback raised " + why);
    }
};
}  // namespace

void bind_selectors(py::module_& m) {
    py::class_<IDSelector, std::shared_ptr<IDSelector>>(m, "IDSelector")
        .def("is_member", &IDSelector::is_member, py::arg("id"));
    py::class_<IDSelectorAll, IDSelector, std::shared_ptr<IDSelectorAll>>(m, "IDSelectorAll").def(py::init<>());
    py::class_<IDSelectorRange, IDSelector, std::shared_ptr<IDSelectorRange>>(m, "IDSelectorRange")
        .def(py::init<idx_t, idx_t, bool>(), py::arg("imin"), py::arg("imax"), py::arg("assume_sorted") = false)
        .def_readwrite("imin", &IDSelectorRange::imin)
        .def_readwrite("imax", &IDSelectorRange::imax)
        .def_readwrite("assume_sorted", &IDSelectorRange::assume_sorted)
        .def("find_sorted_ids_bounds", [](const IDSelectorRange& self, py::handle ids) {
            const std::vector<idx_t> v = sorted_ids(-1, ids);
            const auto [j0, j1] = self.sorted_ids_bounds(v.data(), v.size());
            return py::make_tuple(j0, j1);
        }, py::arg("ids"), "[j0, j1): the positions of sorted ids whose id is in range (j0 >= j1: none).")
        .def("find_sorted_ids_bounds", [](const IDSelectorRange& self, py::ssize_t n, py::handle ids,
                                          py::handle jmin_out, py::handle jmax_out) {
            // faiss's form, swig pointers being arrays here: the bounds are
            // written into one-element arrays.
            const std::vector<idx_t> v = sorted_ids(n, ids);
            const auto [j0, j1] = self.sorted_ids_bounds(v.data(), v.size());
            for (auto [obj, value] : {std::pair<py::handle, size_t>{jmin_out, j0}, {jmax_out, j1}}) {
                auto out = py::array::ensure(obj);
                if (!out || out.size() < 1 || !out.writeable() || out.itemsize() != 8 ||
                    (out.dtype().kind() != 'u' && out.dtype().kind() != 'i'))
                    throw InvalidArgument("find_sorted_ids_bounds: jmin / jmax must be writable 64-bit integer arrays");
                *static_cast<uint64_t*>(out.mutable_data()) = uint64_t(value);
            }
        }, py::arg("n"), py::arg("ids"), py::arg("jmin"), py::arg("jmax"));
    py::class_<IDSelectorBatch, IDSelector, std::shared_ptr<IDSelectorBatch>>(m, "IDSelectorBatch")
        .def(py::init([](py::handle ids) { return std::make_shared<IDSelectorBatch>(ids_from(ids)); }), py::arg("ids"))
        .def(py::init([](py::ssize_t n, py::handle ids) { return std::make_shared<IDSelectorBatch>(ids_from(n, ids)); }));
    py::class_<IDSelectorArray, IDSelectorBatch, std::shared_ptr<IDSelectorArray>>(m, "IDSelectorArray")
        .def(py::init([](py::handle ids) { return std::make_shared<IDSelectorArray>(ids_from(ids)); }), py::arg("ids"))
        .def(py::init([](py::ssize_t n, py::handle ids) { return std::make_shared<IDSelectorArray>(ids_from(n, ids)); }));
    py::class_<IDSelectorBitmap, IDSelector, std::shared_ptr<IDSelectorBitmap>>(m, "IDSelectorBitmap")
        .def(py::init([](py::handle bitmap) {
            auto a = to_array<py::array_t<uint8_t, py::array::c_style | py::array::forcecast>>(bitmap, "bitmap");
            if (a.ndim() != 1) throw InvalidArgument("bitmap must be a 1-D uint8 array");
            return std::make_shared<IDSelectorBitmap>(std::vector<uint8_t>(a.data(), a.data() + a.shape(0)));
        }), py::arg("bitmap"))
        .def(py::init([](py::ssize_t n, py::handle bitmap) {
            auto a = to_array<py::array_t<uint8_t, py::array::c_style | py::array::forcecast>>(bitmap, "bitmap");
            if (a.ndim() != 1 || n < 0 || n > a.shape(0)) throw InvalidArgument("bitmap must be a 1-D uint8 array of at least n bytes");
            return std::make_shared<IDSelectorBitmap>(std::vector<uint8_t>(a.data(), a.data() + n));
        }));
    auto need = [](const std::shared_ptr<IDSelector>& s) {
        if (!s) throw InvalidArgument("selector is None");
        return s;
    };
    py::class_<IDSelectorNot, IDSelector, std::shared_ptr<IDSelectorNot>>(m, "IDSelectorNot")
        .def(py::init([need](std::shared_ptr<IDSelector> s) { return std::make_shared<IDSelectorNot>(need(s)); }));
    py::class_<IDSelectorAnd, IDSelector, std::shared_ptr<IDSelectorAnd>>(m, "IDSelectorAnd")
        .def(py::init([need](std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) {
            return std::make_shared<IDSelectorAnd>(need(a), need(b));
        }));
    py::class_<IDSelectorOr, IDSelector, std::shared_ptr<IDSelectorOr>>(m, "IDSelectorOr")
        .def(py::init([need](std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) {
            return std::make_shared<IDSelectorOr>(need(a), need(b));
        }));
    py::class_<IDSelectorXOr, IDSelector, std::shared_ptr<IDSelectorXOr>>(m, "IDSelectorXOr")
        .def(py::init([need](std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) {
            return std::make_shared<IDSelectorXOr>(need(a), need(b));
        }));
    py::class_<IDSelectorTranslatedShared, IDSelector, std::shared_ptr<IDSelectorTranslatedShared>>(
        m, "IDSelectorTranslated")
        .def(py::init([need](std::shared_ptr<IndexIDMap> index, std::shared_ptr<IDSelector> sel) {
                 if (!index) throw InvalidArgument("index is None");
                 return std::make_shared<IDSelectorTranslatedShared>(
                     std::shared_ptr<const std::vector<idx_t>>(index, &index->id_map), need(sel));
             }),
             py::arg("index"), py::arg("sel"))
        .def(py::init([need](py::handle id_map, std::shared_ptr<IDSelector> sel) {
                 return std::make_shared<IDSelectorTranslatedShared>(
                     std::make_shared<const std::vector<idx_t>>(ids_from(id_map)), need(sel));
             }),
             py::arg("id_map"), py::arg("sel"));
    py::class_<PyCallbackIDSelector, IDSelector, std::shared_ptr<PyCallbackIDSelector>>(m, "PyCallbackIDSelector")
        .def(py::init([](py::object callback) {
                 if (!PyCallable_Check(callback.ptr()))
                     throw InvalidArgument("PyCallbackIDSelector: the callback must be callable");
                 return std::make_shared<PyCallbackIDSelector>(std::move(callback));
             }),
             py::arg("callback"));
}

}  // namespace nearly_py
