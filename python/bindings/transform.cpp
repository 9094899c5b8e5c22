// Linear transforms: LinearTransform, RandomRotationMatrix, OPQMatrix (the
// VectorTransform base and IndexPreTransform are bound with the flat indexes).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.h"
#include "nearly/hadamard_rotation.h"
#include "nearly/itq.h"
#include "nearly/linear_transform.h"
#include "nearly/linalg.h"
#include "nearly/opq.h"
#include "nearly/pca.h"

namespace nearly_py {

using namespace nearly;

namespace {

py::array_t<float> to_numpy(const std::vector<float>& v) {
    py::array_t<float> out(v.size());
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

std::vector<float> from_numpy(py::handle obj, size_t expected, const char* what) {
    auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(obj);
    if (!a) throw InvalidArgument(std::string(what) + " must be a float array");
    if (size_t(a.size()) != expected)
        throw InvalidArgument(std::string(what) + " must have " + std::to_string(expected) + " values, got " +
                              std::to_string(a.size()));
    std::vector<float> v(a.data(), a.data() + a.size());
    check_finite(v.data(), v.size(), what);
    return v;
}

}  // namespace

void bind_transform(py::module_& m) {
    py::class_<LinearTransform, VectorTransform, std::shared_ptr<LinearTransform>>(m, "LinearTransform")
        .def(py::init<int, int, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("have_bias") = false)
        // Copies, 1-D like faiss's std::vector (faiss.vector_to_array(t.A)).
        .def_property("A", [](const LinearTransform& t) { return to_numpy(t.A); },
                      [](LinearTransform& t, py::handle a) { t.A = from_numpy(a, size_t(t.d_out) * t.d_in, "A"); })
        .def_property("b", [](const LinearTransform& t) { return to_numpy(t.b); },
                      [](LinearTransform& t, py::handle b) { t.b = from_numpy(b, size_t(t.d_out), "b"); })
        .def_readwrite("have_bias", &LinearTransform::have_bias)
        .def_readwrite("is_orthonormal", &LinearTransform::is_orthonormal)
        .def_readwrite("verbose", &LinearTransform::verbose)
        .def("set_is_orthonormal", &LinearTransform::set_is_orthonormal)
        .def("transform_transpose", [](const LinearTransform& t, py::handle y_obj) {
            FloatArray y = as_matrix(y_obj, t.d_out, "y");
            py::array_t<float> out({idx_t(y.shape(0)), idx_t(t.d_in)});
            py::gil_scoped_release release;
            t.transform_transpose(y.shape(0), y.data(), out.mutable_data());
            return out;
        }, py::arg("y"));

    py::class_<RandomRotationMatrix, LinearTransform, std::shared_ptr<RandomRotationMatrix>>(m, "RandomRotationMatrix")
        .def(py::init<int, int>(), py::arg("d_in"), py::arg("d_out"))
        .def("init", &RandomRotationMatrix::init, py::arg("seed"));

    py::class_<HadamardRotation, VectorTransform, std::shared_ptr<HadamardRotation>>(m, "HadamardRotation")
        .def(py::init<int, uint32_t>(), py::arg("d"), py::arg("seed") = 12345)
        .def("init", &HadamardRotation::init, py::arg("seed"))
        .def_readonly("seed", &HadamardRotation::seed)
        .def_property_readonly("signs1", [](const HadamardRotation& t) { return py::array_t<float>(t.signs1.size(), t.signs1.data()); })
        .def_property_readonly("signs2", [](const HadamardRotation& t) { return py::array_t<float>(t.signs2.size(), t.signs2.data()); })
        .def_property_readonly("signs3", [](const HadamardRotation& t) { return py::array_t<float>(t.signs3.size(), t.signs3.data()); });

    py::class_<OPQMatrix, LinearTransform, std::shared_ptr<OPQMatrix>>(m, "OPQMatrix")
        .def(py::init<int, int, int>(), py::arg("d"), py::arg("M") = 1, py::arg("d2") = -1)
        .def_readonly("M", &OPQMatrix::M)
        .def_readwrite("niter", &OPQMatrix::niter)
        .def_readwrite("niter_pq", &OPQMatrix::niter_pq)
        .def_readwrite("niter_pq_0", &OPQMatrix::niter_pq_0)
        .def_readwrite("max_train_points", &OPQMatrix::max_train_points);

    py::class_<PCAMatrix, LinearTransform, std::shared_ptr<PCAMatrix>>(m, "PCAMatrix")
        .def(py::init<int, int, float, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("eigen_power") = 0.f,
             py::arg("random_rotation") = false)
        .def_readwrite("eigen_power", &PCAMatrix::eigen_power)
        .def_readwrite("epsilon", &PCAMatrix::epsilon)
        .def_readwrite("random_rotation", &PCAMatrix::random_rotation)
        .def_readwrite("max_points_per_d", &PCAMatrix::max_points_per_d)
        .def_readwrite("balanced_bins", &PCAMatrix::balanced_bins)
        .def_property_readonly("mean", [](const PCAMatrix& t) { return to_numpy(t.mean); })
        .def_property_readonly("eigenvalues", [](const PCAMatrix& t) { return to_numpy(t.eigenvalues); })
        .def_property_readonly("PCAMat", [](const PCAMatrix& t) { return to_numpy(t.PCAMat); })
        .def("prepare_Ab", [](PCAMatrix& t) {
            py::gil_scoped_release release;
            t.prepare_Ab();
        });

    py::class_<ITQMatrix, LinearTransform, std::shared_ptr<ITQMatrix>>(
        m, "ITQMatrix", "faiss's ITQMatrix: a d x d rotation learned by iterative quantization (itq.h).")
        .def(py::init<int>(), py::arg("d"))
        .def_readwrite("max_iter", &ITQMatrix::max_iter)
        .def_readwrite("seed", &ITQMatrix::seed)
        .def_property("init_rotation", [](const ITQMatrix& t) {
            return py::array_t<double>(py::ssize_t(t.init_rotation.size()), t.init_rotation.data());
        },
                      [](ITQMatrix& t, py::array_t<double, py::array::c_style | py::array::forcecast> a) {
                          t.init_rotation.assign(a.data(), a.data() + a.size());
                      });

    py::class_<ITQTransform, VectorTransform, std::shared_ptr<ITQTransform>>(
        m, "ITQTransform",
        "faiss's ITQTransform: centring, unit norm, PCA to d_out (do_pca) and an ITQ rotation (\"ITQ64,LSHt\").")
        .def(py::init<int, int, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("do_pca") = false)
        .def_readonly("do_pca", &ITQTransform::do_pca)
        .def_readwrite("max_train_per_dim", &ITQTransform::max_train_per_dim)
        .def_readwrite("verbose", &ITQTransform::verbose)
        .def_property_readonly("mean", [](const ITQTransform& t) { return to_numpy(t.mean); })
        .def_readonly("itq", &ITQTransform::itq)
        .def_readonly("pca_then_itq", &ITQTransform::pca_then_itq);

    // Test hook: (eigenvalues decreasing, eigenvectors as rows) of a symmetric matrix.
    m.def("_symmetric_eigen", [](py::array_t<double, py::array::c_style | py::array::forcecast> a) {
        if (a.ndim() != 2 || a.shape(0) != a.shape(1)) throw InvalidArgument("a must be square");
        const size_t n = a.shape(0);
        std::vector<double> m(a.data(), a.data() + n * n), values;
        {
            py::gil_scoped_release release;
            symmetric_eigen(m, n, values);
        }
        py::array_t<double> vals(n), vecs({py::ssize_t(n), py::ssize_t(n)});
        std::copy(values.begin(), values.end(), vals.mutable_data());
        std::copy(m.begin(), m.end(), vecs.mutable_data());
        return py::make_tuple(vals, vecs);
    }, py::arg("a"));
}

}  // namespace nearly_py
