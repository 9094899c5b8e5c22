// Visited marks for graph walks (HNSW, NSG), private to cpp/src: reset by
// bumping a generation, not by clearing, so a walk costs nothing per node
// it does not touch.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nearly {

struct VisitedSet {
    std::vector<uint16_t> tag;
    uint16_t cur = 0;
    // Before each walk over n nodes.
    void prepare(size_t n) {
        if (tag.size() < n) tag.resize(n, 0);
        if (++cur == 0) {
            std::fill(tag.begin(), tag.end(), 0);
            cur = 1;
        }
    }
    // Marks node s; true when it was already marked in this walk.
    bool visit(size_t s) {
        if (tag[s] == cur) return true;
        tag[s] = cur;
        return false;
    }
};

}  // namespace nearly
