"""faiss's additive-quantizer classes beyond the residual quantizer: the
product forms (ProductResidualQuantizer, IndexProductResidualQuantizer...)
and the local search forms (LocalSearchQuantizer, IndexLocalSearchQuantizer,
ProductLocalSearchQuantizer...), flat, IVF and fast-scan.

nearly has one additive quantizer (`ResidualQuantizer`) with a product mode
(`nsplits` slices of d, each with its own codebooks) and a local search mode
(`local_search`: LSQ++ training and encoding; residual_quantizer.h), and one
class per index kind over it. So each faiss name here builds the residual
index kind with its quantizer in the matching mode (the same codes,
searches and files) and answers isinstance for exactly those objects."""
from . import _nearly

_RQ = _nearly.ResidualQuantizer
_L2 = _nearly.METRIC_L2


class _Named(type):
    """A faiss class name: calling it builds the object, isinstance checks the modes."""

    def __instancecheck__(cls, obj):
        return cls._check(obj)

    def __call__(cls, *args, **kwargs):
        return cls._make(*args, **kwargs)


def _modes(q, product, local):
    return (q.nsplits > 1) == product and q.local_search == local


def _name(name, make, check, doc):
    return _Named(name, (), {"_make": staticmethod(make), "_check": staticmethod(check), "__doc__": doc})


def _local_search(q):
    q.local_search = True
    return q


def _index(index, nsplits, local):
    if nsplits > 1:
        index = _nearly._make_product(index, nsplits)
    index.rq.local_search = local
    return index


def _index_check(cls, exclude, product, local):
    return lambda obj: (isinstance(obj, cls) and not (exclude and isinstance(obj, exclude))
                        and _modes(obj.rq, product, local))


_FLAT, _FLAT_FS = _nearly.IndexResidualQuantizer, _nearly.IndexResidualQuantizerFastScan
_IVF, _IVF_FS = _nearly.IndexIVFResidualQuantizer, _nearly.IndexIVFResidualQuantizerFastScan

# The quantizers.
ProductResidualQuantizer = _name(
    "ProductResidualQuantizer",
    lambda d, nsplits, Msub, nbits, search_type=_RQ.ST_decompress: _nearly._product_residual_quantizer(
        d, nsplits, Msub, nbits, search_type),
    lambda obj: isinstance(obj, _RQ) and _modes(obj, True, False),
    "faiss's ProductResidualQuantizer(d, nsplits, Msub, nbits, search_type): a ResidualQuantizer in product mode "
    "(`nsplits`, `subquantizer(i)`).")
LocalSearchQuantizer = _name(
    "LocalSearchQuantizer",
    lambda d, M, nbits, search_type=_RQ.ST_decompress: _local_search(_RQ(d, M, nbits, search_type)),
    lambda obj: isinstance(obj, _RQ) and _modes(obj, False, True),
    "faiss's LocalSearchQuantizer(d, M, nbits, search_type) (LSQ++): a ResidualQuantizer in local search mode "
    "(`train_iters`, `encode_ils_iters`, `train_ils_iters`, `icm_iters`, `p`, `lambd`, `chunk_size`, "
    "`random_seed`, `nperts`, `update_codebooks`).")
ProductLocalSearchQuantizer = _name(
    "ProductLocalSearchQuantizer",
    lambda d, nsplits, Msub, nbits, search_type=_RQ.ST_decompress: _local_search(
        _nearly._product_residual_quantizer(d, nsplits, Msub, nbits, search_type)),
    lambda obj: isinstance(obj, _RQ) and _modes(obj, True, True),
    "faiss's ProductLocalSearchQuantizer(d, nsplits, Msub, nbits, search_type): a local search quantizer per "
    "slice of d.")


# The indexes: (faiss name, nearly class, excluded subclass, product, local search).
def _flat(cls, fast_scan):
    if fast_scan:
        def make(d, M, nbits=4, metric=_L2, search_type=None, bbs=32, nsplits=1, local=False):
            st = search_type if search_type is not None else _RQ.ST_norm_lsq2x4 if local else _RQ.ST_norm_rq2x4
            return _index(cls(d, M, nbits, metric, st, bbs), nsplits, local)
    else:
        def make(d, M, nbits, metric=_L2, search_type=_RQ.ST_decompress, nsplits=1, local=False):
            return _index(cls(d, M, nbits, metric, search_type), nsplits, local)
    return make


def _ivf(cls, fast_scan):
    if fast_scan:
        def make(quantizer, d, nlist, M, nbits=4, metric=_L2, search_type=None, bbs=32, nsplits=1, local=False):
            st = search_type if search_type is not None else _RQ.ST_norm_lsq2x4 if local else _RQ.ST_norm_rq2x4
            return _index(cls(quantizer, d, nlist, M, nbits, metric, st, bbs), nsplits, local)
    else:
        def make(quantizer, d, nlist, M, nbits, metric=_L2, search_type=_RQ.ST_decompress, nsplits=1, local=False):
            return _index(cls(quantizer, d, nlist, M, nbits, metric, search_type), nsplits, local)
    return make


def _define(name, cls, exclude, fast_scan, ivf, product, local, doc):
    build = (_ivf if ivf else _flat)(cls, fast_scan)
    if product:
        if ivf:
            def make(quantizer, d, nlist, nsplits, Msub, *args, **kwargs):
                return build(quantizer, d, nlist, nsplits * Msub, *args, nsplits=nsplits, local=local, **kwargs)
        else:
            def make(d, nsplits, Msub, *args, **kwargs):
                return build(d, nsplits * Msub, *args, nsplits=nsplits, local=local, **kwargs)
    else:
        def make(*args, **kwargs):
            return build(*args, local=local, **kwargs)
    return _name(name, make, _index_check(cls, exclude, product, local), doc)


# faiss's index names: each quantizer kind (product, local search, both) in
# each index kind (flat, IVF, flat fast-scan, IVF fast-scan); the signatures
# are faiss's (quantizer, d, nlist for IVF; nsplits, Msub for products).
_QUANTIZER_KINDS = [("ProductResidualQuantizer", True, False), ("LocalSearchQuantizer", False, True),
                    ("ProductLocalSearchQuantizer", True, True)]
_INDEX_KINDS = [("Index{}", _FLAT, _FLAT_FS, False, False), ("IndexIVF{}", _IVF, _IVF_FS, True, False),
                ("Index{}FastScan", _FLAT_FS, None, False, True), ("IndexIVF{}FastScan", _IVF_FS, None, True, True)]
for _qname, _product, _local in _QUANTIZER_KINDS:
    for _pattern, _cls, _exclude, _in_ivf, _in_fs in _INDEX_KINDS:
        _iname = _pattern.format(_qname)
        globals()[_iname] = _define(
            _iname, _cls, _exclude, _in_fs, _in_ivf, _product, _local,
            f"faiss's {_iname}: nearly's {_cls.__name__} with its quantizer a {_qname} (the same codes, searches "
            "and files).")


def _mode_view(product, local, what):
    def get(index):
        q = index.rq
        if not _modes(q, product, local):
            raise AttributeError(f"this {type(index).__name__} has no {what} (its quantizer is in another mode)")
        return q
    return property(get)


# faiss's names for the index's quantizer in each mode.
for _cls in (_FLAT, _IVF):
    _cls.prq = _mode_view(True, False, "prq")
    _cls.lsq = _mode_view(False, True, "lsq")
    _cls.plsq = _mode_view(True, True, "plsq")
_nearly.ResidualCoarseQuantizer.lsq = _mode_view(False, True, "lsq")

# faiss's coarse quantizers over an additive quantizer: the residual one is
# nearly's class itself; the local search one is that class with an LSQ++
# (its `lsq`), searched exhaustively (residual_coarse_quantizer.h).
LocalSearchCoarseQuantizer = _name(
    "LocalSearchCoarseQuantizer",
    lambda d, M, nbits, metric=_L2: _nearly._local_search_coarse_quantizer(d, M, nbits, metric),
    lambda obj: isinstance(obj, _nearly.ResidualCoarseQuantizer) and obj.local_search,
    "faiss's LocalSearchCoarseQuantizer(d, M, nbits[, metric]): 2^(M nbits) centroids, the sums of one word of "
    "each of the M codebooks of an LSQ++ (`lsq`: `nperts`, `train_iters`, ...), every one scanned by a search "
    "(the codebooks are not residual: no beam). The coarse quantizer of \"IVF256(LSCQ2x4),Flat\"; it trains "
    "alone.")


def _no_base(*args, **kwargs):
    raise TypeError("AdditiveCoarseQuantizer is faiss's base class: build a ResidualCoarseQuantizer or a "
                    "LocalSearchCoarseQuantizer")


AdditiveCoarseQuantizer = _name(
    "AdditiveCoarseQuantizer",
    _no_base,
    lambda obj: isinstance(obj, _nearly.ResidualCoarseQuantizer),
    "faiss's AdditiveCoarseQuantizer: the base of ResidualCoarseQuantizer and LocalSearchCoarseQuantizer "
    "(isinstance; `aq` is the quantizer).")


def _ivf_aq_fast_scan(*args, **kwargs):
    """faiss's IndexIVFAdditiveQuantizerFastScan(orig[, bbs]): the
    conversion of a 4-bit IVF additive-quantizer index (RQ, LSQ, PRQ, PLSQ)
    to fast-scan, its quantizer shared, its codebooks and entries copied.
    To build an empty one, name the kind: IndexIVFResidualQuantizerFastScan,
    IndexIVFLocalSearchQuantizerFastScan, ..."""
    orig = args[0] if args else kwargs.get("orig")
    if isinstance(orig, _IVF) and not isinstance(orig, _IVF_FS):
        bbs = args[1] if len(args) > 1 else kwargs.get("bbs", 32)
        return _IVF_FS(orig, bbs)
    raise TypeError("IndexIVFAdditiveQuantizerFastScan(orig[, bbs]) converts an IVF additive-quantizer index; "
                    "build an empty one with IndexIVFResidualQuantizerFastScan, IndexIVFLocalSearchQuantizerFastScan, "
                    "IndexIVFProductResidualQuantizerFastScan or IndexIVFProductLocalSearchQuantizerFastScan")


IndexIVFAdditiveQuantizerFastScan = _name(
    "IndexIVFAdditiveQuantizerFastScan", _ivf_aq_fast_scan, lambda obj: isinstance(obj, _IVF_FS),
    _ivf_aq_fast_scan.__doc__)
