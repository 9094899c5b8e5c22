// faiss exposes an HNSW index's graph knobs as index.hnsw.efSearch etc.: the
// view every HNSW index (float, binary) returns, bound once in hnsw.cpp.
#pragma once
#include <type_traits>
#include <memory>

#include "nearly/extra_distances.h"
#include "nearly/hnsw.h"
#include "nearly/index.h"

namespace nearly_py {

struct HNSWView {
    std::shared_ptr<nearly::HNSWGraph> index;
    bool is_similarity = false;  // faiss's HNSW.is_similarity: the index's metric is a similarity
};

// The view of an index that is an HNSWGraph (it keeps the index alive).
template <class T>
HNSWView hnsw_view(const std::shared_ptr<T>& index) {
    HNSWView view{std::shared_ptr<nearly::HNSWGraph>(index, static_cast<nearly::HNSWGraph*>(index.get()))};
    if constexpr (std::is_base_of_v<nearly::Index, T>) view.is_similarity = nearly::is_similarity_metric(index->metric_type);
    return view;
}

// faiss's IndexHNSW.init_level0 (HNSWGraph::init_level0), on each HNSW class.
template <class Class>
Class& def_init_level0(Class& cls) {
    using T = typename Class::type;
    return cls.def_property(
        "init_level0", [](const T& self) { return self.init_level0; },
        [](T& self, bool v) { self.init_level0 = v; },
        "False: vectors added from now on are linked only if drawn above level 0 (faiss's flag; then "
        "init_level_0_from_knngraph builds level 0). A build setting, not saved.");
}

}  // namespace nearly_py
