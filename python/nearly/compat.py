"""Small faiss helpers that user code calls; no-ops or plain copies here."""
import numpy as np


def downcast_index(index):
    """faiss returns the generic Index type from some accessors; nearly always
    returns the concrete class, so this is the identity."""
    return index


def vector_to_array(v):
    """faiss's std::vector -> numpy copy; nearly already exposes numpy arrays."""
    return np.array(v, copy=True)
