// faiss exposes an HNSW index's graph knobs as index.hnsw.efSearch etc.: the
// view every HNSW index (float, binary) returns, bound once in hnsw.cpp.
#pragma once
#include <memory>

#include "nearly/hnsw.h"

namespace nearly_py {

struct HNSWView {
    std::shared_ptr<nearly::HNSWGraph> index;
};

// The view of an index that is an HNSWGraph (it keeps the index alive).
template <class T>
HNSWView hnsw_view(const std::shared_ptr<T>& index) {
    return HNSWView{std::shared_ptr<nearly::HNSWGraph>(index, static_cast<nearly::HNSWGraph*>(index.get()))};
}

}  // namespace nearly_py
