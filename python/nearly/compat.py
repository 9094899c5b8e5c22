"""Small faiss helpers that user code calls; no-ops or plain copies here."""
import numpy as np


def downcast_index(index):
    """faiss returns the generic Index type from some accessors; nearly always
    returns the concrete class, so this is the identity."""
    return index


def downcast_VectorTransform(transform):
    """Like downcast_index: transforms already come out as their own class
    (OPQMatrix, NormalizationTransform, ...)."""
    return transform


def vector_to_array(v):
    """faiss's std::vector -> numpy copy; nearly already exposes numpy arrays."""
    return np.array(v, copy=True)


def extract_index_ivf(index):
    """The IVF index inside wrappers (IDMap, PreTransform, RefineFlat), like
    faiss's; RuntimeError when there is none."""
    seen = index
    while True:
        if hasattr(seen, "nprobe") and hasattr(seen, "quantizer"):
            return seen
        inner = getattr(seen, "base_index", None) or getattr(seen, "index", None)
        if inner is None or inner is seen:
            raise RuntimeError(f"extract_index_ivf: {type(index).__name__} does not contain an IVF index")
        seen = inner
