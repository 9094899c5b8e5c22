// NeighborTable (graph_build.h) to and from numpy: (ids int32, scores float32), both (n, k).
#pragma once
#include <algorithm>

#include "arrays.h"
#include "nearly/graph_build.h"

namespace nearly_py {

using RowArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

// n < 0: any number of rows.
inline nearly::NeighborTable as_table(py::handle ids_obj, py::handle scores_obj, py::ssize_t n) {
    RowArray ids = to_array<RowArray>(ids_obj, "ids");
    FloatArray scores = to_array<FloatArray>(scores_obj, "scores");
    if (ids.ndim() != 2 || scores.ndim() != 2 || ids.shape(0) != scores.shape(0) || ids.shape(1) != scores.shape(1))
        throw nearly::InvalidArgument("ids and scores must be 2-D arrays of the same shape (n, k)");
    if (n >= 0 && ids.shape(0) != n)
        throw nearly::InvalidArgument("the table has " + std::to_string(ids.shape(0)) + " rows for " +
                                      std::to_string(n) + " vectors");
    nearly::NeighborTable t(ids.shape(0), int(ids.shape(1)));
    std::copy(ids.data(), ids.data() + ids.size(), t.ids.begin());
    std::copy(scores.data(), scores.data() + scores.size(), t.scores.begin());
    for (int32_t v : t.ids)
        if (v < -1 || v >= t.n) throw nearly::InvalidArgument("ids must be rows in [0, n) or -1");
    return t;
}

inline py::tuple table_out(const nearly::NeighborTable& t) {
    py::array_t<int32_t> ids({py::ssize_t(t.n), py::ssize_t(t.k)});
    py::array_t<float> scores({py::ssize_t(t.n), py::ssize_t(t.k)});
    std::copy(t.ids.begin(), t.ids.end(), ids.mutable_data());
    std::copy(t.scores.begin(), t.scores.end(), scores.mutable_data());
    return py::make_tuple(ids, scores);
}

}  // namespace nearly_py
