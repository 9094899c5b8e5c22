// remove_ids takes an IDSelector or an array of ids (faiss turns the array
// into an IDSelectorBatch); shared by every binding that removes.
#pragma once
#include <memory>
#include <vector>

#include "arrays.h"
#include "nearly/selector.h"

namespace nearly_py {

inline std::shared_ptr<nearly::IDSelector> selector_or_ids(py::handle what) {
    if (py::isinstance<nearly::IDSelector>(what)) return py::cast<std::shared_ptr<nearly::IDSelector>>(what);
    IdArray ids = as_ids(what, -1, "ids to remove");
    return std::make_shared<nearly::IDSelectorBatch>(std::vector<idx_t>(ids.data(), ids.data() + ids.shape(0)));
}

}  // namespace nearly_py
