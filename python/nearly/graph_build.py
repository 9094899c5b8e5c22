"""HNSW graphs built from k-NN lists, all nodes at once (nearly/graph_build.h).

Each node's nearest neighbours (and its nearest nodes of the level above)
are pruned with HNSW's heuristic, the links kept are offered in reverse, and
each node's links are pruned again to the level's capacity; the upper levels
are built the same way among their own nodes. This is how ``GpuIndexHNSW(res, d, M)`` builds on the GPU; here it runs
on the CPU, from a k-NN graph you already have or from exact search.
"""
import numpy as np

from . import _nearly
from ._nearly import METRIC_INNER_PRODUCT, METRIC_L2, IndexHNSWFlat


def hnsw_from_knn(x, M=32, metric=METRIC_L2, knn=None, *, knn_factor=2, merge_factor=2, far_factor=2, seed=12345):
    """An IndexHNSWFlat over x (ids 0..n-1) whose graph is built from k-NN lists.

    knn: ``(D, I)`` as a search of x against itself returns them (squared L2
    distances or inner products, best first, -1 padded; each row's own id is
    skipped), with at least 2 * M neighbours per row, ``2 * M * knn_factor``
    for the recall of an inserted graph. None: exact k-NN of x on the CPU,
    quadratic in n. The upper levels always use exact k-NN among their own
    (few) nodes. far_factor: each node also considers its ``far_factor`` x
    capacity nearest nodes of the level above, which bridges data in
    separated clusters (0 turns it off).
    """
    if int(metric) not in (METRIC_L2, METRIC_INNER_PRODUCT):
        raise _nearly.NotSupportedError(f"hnsw_from_knn: metric {int(metric)} not implemented (L2 and inner product)")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise _nearly.InvalidArgumentError(f"x must be a 2-D array (n, d), got shape {x.shape}")
    ids = scores = None
    if knn is not None:
        D, I = knn
        D = np.asarray(D, dtype=np.float32)
        I = np.asarray(I)
        if D.shape != I.shape or D.ndim != 2 or I.shape[0] != x.shape[0]:
            raise _nearly.InvalidArgumentError(
                f"knn must be (D, I) of shape (n, k) with n = {x.shape[0]}, got {D.shape} and {I.shape}")
        if I.size and (I.min() < -1 or I.max() >= x.shape[0]):
            raise _nearly.InvalidArgumentError("knn ids must be rows of x or -1")
        ids = I.astype(np.int32)
        scores = D if metric == METRIC_L2 else -D
    index = IndexHNSWFlat(x.shape[1], int(M), int(metric))
    graph = _nearly._build_hnsw_layers(x, int(M), int(metric), int(knn_factor), int(merge_factor), int(seed), ids, scores,
                                       int(far_factor))
    _nearly._hnsw_add_graph(index, x, graph)
    return index
