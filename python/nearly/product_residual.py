"""faiss's product residual quantizer classes: ProductResidualQuantizer and
the IndexProductResidualQuantizer family (flat, IVF, fast-scan). nearly's
ResidualQuantizer has a product mode (`nsplits` slices of d, each with its
own codebooks; residual_quantizer.h), so these are the residual-quantizer
indexes with such a quantizer: the same codes, searches and files. The
names build them and answer isinstance as faiss's classes do."""
from . import _nearly

_RQ = _nearly.ResidualQuantizer


def _is_product(obj, cls, not_cls=()):
    return isinstance(obj, cls) and not isinstance(obj, not_cls) and obj.rq.nsplits > 1


class _ProductType(type):
    def __instancecheck__(cls, obj):
        return cls._check(obj)

    def __call__(cls, *args, **kwargs):
        return cls._make(*args, **kwargs)


class ProductResidualQuantizer(metaclass=_ProductType):
    """faiss's ProductResidualQuantizer(d, nsplits, Msub, nbits, search_type):
    a ResidualQuantizer in product mode (`nsplits`, `subquantizer(i)`)."""

    @staticmethod
    def _make(d, nsplits, Msub, nbits, search_type=_RQ.ST_decompress):
        return _nearly._product_residual_quantizer(d, nsplits, Msub, nbits, search_type)

    @staticmethod
    def _check(obj):
        return isinstance(obj, _RQ) and obj.nsplits > 1


class IndexProductResidualQuantizer(metaclass=_ProductType):
    """faiss's IndexProductResidualQuantizer(d, nsplits, Msub, nbits, metric, search_type)."""

    @staticmethod
    def _make(d, nsplits, Msub, nbits, metric=_nearly.METRIC_L2, search_type=_RQ.ST_decompress):
        index = _nearly.IndexResidualQuantizer(d, nsplits * Msub, nbits, metric, search_type)
        return _nearly._make_product(index, nsplits)

    @staticmethod
    def _check(obj):
        return _is_product(obj, _nearly.IndexResidualQuantizer, _nearly.IndexResidualQuantizerFastScan)


class IndexIVFProductResidualQuantizer(metaclass=_ProductType):
    """faiss's IndexIVFProductResidualQuantizer(quantizer, d, nlist, nsplits, Msub, nbits, metric, search_type)."""

    @staticmethod
    def _make(quantizer, d, nlist, nsplits, Msub, nbits, metric=_nearly.METRIC_L2, search_type=_RQ.ST_decompress):
        index = _nearly.IndexIVFResidualQuantizer(quantizer, d, nlist, nsplits * Msub, nbits, metric, search_type)
        return _nearly._make_product(index, nsplits)

    @staticmethod
    def _check(obj):
        return _is_product(obj, _nearly.IndexIVFResidualQuantizer, _nearly.IndexIVFResidualQuantizerFastScan)


class IndexProductResidualQuantizerFastScan(metaclass=_ProductType):
    """faiss's IndexProductResidualQuantizerFastScan(d, nsplits, Msub, nbits, metric, search_type, bbs)."""

    @staticmethod
    def _make(d, nsplits, Msub, nbits=4, metric=_nearly.METRIC_L2, search_type=_RQ.ST_norm_rq2x4, bbs=32):
        index = _nearly.IndexResidualQuantizerFastScan(d, nsplits * Msub, nbits, metric, search_type, bbs)
        return _nearly._make_product(index, nsplits)

    @staticmethod
    def _check(obj):
        return _is_product(obj, _nearly.IndexResidualQuantizerFastScan)


class IndexIVFProductResidualQuantizerFastScan(metaclass=_ProductType):
    """faiss's IndexIVFProductResidualQuantizerFastScan(quantizer, d, nlist, nsplits, Msub, nbits, metric,
    search_type, bbs)."""

    @staticmethod
    def _make(quantizer, d, nlist, nsplits, Msub, nbits=4, metric=_nearly.METRIC_L2, search_type=_RQ.ST_norm_rq2x4,
              bbs=32):
        index = _nearly.IndexIVFResidualQuantizerFastScan(quantizer, d, nlist, nsplits * Msub, nbits, metric,
                                                          search_type, bbs)
        return _nearly._make_product(index, nsplits)

    @staticmethod
    def _check(obj):
        return _is_product(obj, _nearly.IndexIVFResidualQuantizerFastScan)


def _prq(index):
    """faiss's `index.prq` of the product classes: the quantizer."""
    if index.rq.nsplits == 1:
        raise AttributeError(f"a {type(index).__name__} with a plain residual quantizer has no prq")
    return index.rq


for _cls in (_nearly.IndexResidualQuantizer, _nearly.IndexIVFResidualQuantizer):
    _cls.prq = property(_prq)
