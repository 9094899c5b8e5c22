"""index_factory: faiss's description strings, parsed by a small registry.

A description is read as ``[IDMap|IDMap2,] [transform,]* main [,RFlat]``. Each part is
matched against the regexes below; later issues add entries (HNSW, IVF, PQ,
refinement) without touching the parser.
"""
import contextvars
import re

from . import _nearly
from .compat import IndexHNSWSQ
from .additive_family import (IndexIVFProductResidualQuantizer, IndexIVFProductResidualQuantizerFastScan,
                              IndexProductResidualQuantizer, IndexProductResidualQuantizerFastScan)

# faiss's SQ tokens -> QuantizerType (longest first: the regex alternation tries them in order).
_SQ_TYPES = {
    "tqmse1": "QT_1bit_tqmse",
    "tqmse2": "QT_2bit_tqmse",
    "tqmse3": "QT_3bit_tqmse",
    "tqmse4": "QT_4bit_tqmse",
    "tqmse8": "QT_8bit_tqmse",
    "tq2": "QT_2bit_tq",
    "tq3": "QT_3bit_tq",
    "tq4": "QT_4bit_tq",
    "tq5": "QT_5bit_tq",
    "8_direct_signed": "QT_8bit_direct_signed",
    "8_direct": "QT_8bit_direct",
    "fp16": "QT_fp16",
    "bf16": "QT_bf16",
    "8": "QT_8bit",
    "6": "QT_6bit",
    "4": "QT_4bit",
    "0": "QT_0bit",
}
_SQ = "(" + "|".join(_SQ_TYPES) + ")"


def _sq_qtype(name):
    return getattr(_nearly.ScalarQuantizer, _SQ_TYPES[name])


# faiss's additive-quantizer norm suffixes -> search type ("" : decompress).
_RQ_NORMS = {"": "ST_decompress", "_Nnone": "ST_LUT_nonorm", "_Nfloat": "ST_norm_float", "_Nqint8": "ST_norm_qint8",
             "_Nqint4": "ST_norm_qint4", "_Ncqint8": "ST_norm_cqint8", "_Ncqint4": "ST_norm_cqint4",
             "_Nlsq2x4": "ST_norm_lsq2x4", "_Nrq2x4": "ST_norm_rq2x4"}
_RQ_NORM = r"(|_Nnone|_Nfloat|_Nqint8|_Nqint4|_Ncqint8|_Ncqint4|_Nlsq2x4|_Nrq2x4)"
# {M}x{nbits} groups, "_"-joined: "2x16_3x8" is 2 codebooks of 16 bits, then 3 of 8.
_RQ_WIDTHS = r"(\d+x\d+(?:_\d+x\d+)*)"
_RQ = r"RQ" + _RQ_WIDTHS + _RQ_NORM


def _rq_widths(spec):
    """'2x16_3x8' -> [16, 16, 8, 8, 8]: the bits of each codebook."""
    widths = []
    for group in spec.split("_"):
        count, bits = group.split("x")
        widths += [int(bits)] * int(count)
    return widths


def _polysemous(index, np_suffix):
    index.do_polysemous_training = not np_suffix
    return index


def _rq_search_type(suffix, metric):
    if suffix == "" and metric != _nearly.METRIC_L2:
        return _nearly.ResidualQuantizer.ST_LUT_nonorm  # faiss's default for inner product
    return getattr(_nearly.ResidualQuantizer, _RQ_NORMS[suffix])


def _hnsw_sq(m, d, metric):
    # SQ8 / fp16 / bf16: the int8 walk copy; the other types: the codes alone
    return IndexHNSWSQ(d, _sq_qtype(m.group(2)), _hnsw_m(m), metric)


def _hnsw_m(m):
    return int(m.group(1) or 32)


def _hadamard(d, seed):
    t = _nearly.HadamardRotation(d, int(seed) if seed else 12345)
    return t, t.d_out


# transform token -> builder(d_in) returning (VectorTransform, d_out)
TRANSFORMS = [
    (re.compile(r"L2[nN]orm"), lambda m, d: (_nearly.NormalizationTransform(d), d)),
    # OPQ{M}[_{d_out}]: an OPQ rotation for M subquantizers, trained with the index.
    (re.compile(r"OPQ(\d+)(?:_(\d+))?"), lambda m, d: (
        _nearly.OPQMatrix(d, int(m.group(1)), int(m.group(2) or d)), int(m.group(2) or d))),
    # RR[d_out] (d by default): faiss's random rotation (its matrix, drawn at train()).
    (re.compile(r"RR(\d+)?"), lambda m, d: (_nearly.RandomRotationMatrix(d, int(m.group(1) or d)), int(m.group(1) or d))),
    # ITQ[d_out]: faiss's ITQTransform (centring, unit norm, PCA to d_out when given, an ITQ rotation).
    (re.compile(r"ITQ(\d+)?"), lambda m, d: (
        _nearly.ITQTransform(d, int(m.group(1) or d), m.group(1) is not None), int(m.group(1) or d))),
    # HR[seed]: faiss's Hadamard rotation (hadamard_rotation.h), d_out the next power of 2.
    (re.compile(r"HR(\d+)?"), lambda m, d: _hadamard(d, m.group(1))),
    # PCA[W][R]{d_out}: PCA to d_out dimensions, W whitened (eigen_power -0.5), R then randomly rotated.
    (re.compile(r"PCA(W?)(R?)(\d+)"), lambda m, d: (
        _nearly.PCAMatrix(d, int(m.group(3)), -0.5 if m.group(1) else 0.0, bool(m.group(2))), int(m.group(3)))),
]


# IVF{nlist}[_HNSW[M]]: nlist may end in k (x 1024) or M (x 1024^2), and M
# defaults to 32, as in faiss. IMI{M}x{nbits}: an inverted multi-index, a
# MultiIndexQuantizer of M sub-quantizers whose (2^nbits)^M cells are the
# lists (faiss's "IMI2x10").
_IVF = r"(IVF\d+[kM]?|IMI\d+x\d+)(?:_((?:HNSW|NSG)\d*))?"


def _imi(s):
    """(M, nbits) of an IMI{M}x{nbits} token."""
    M, nbits = (int(v) for v in s[3:].split("x"))
    return M, nbits


def _nlist(s):
    if s.startswith("IMI"):
        M, nbits = _imi(s)
        return 1 << (M * nbits)
    s = s[3:]
    scale = {"k": 1 << 10, "M": 1 << 20}.get(s[-1], 1)
    return int(s.rstrip("kM")) * scale


def _coarse(m, d, metric):
    """The coarse quantizer of IVF{n}[_HNSW[M] | _NSG[R]] or IMI{M}x{nbits}:
    exact, a graph over the centroids (faster assignment when nlist is
    large), or a multi-index (trained alone: its cells are products of
    sub-centroids)."""
    coarse, graph = m.group(1), m.group(2)
    pending = _PAREN_QUANTIZER.get()
    if pending is not None:  # IVF{n}(<description>): the quantizer is that index
        if graph is not None or coarse.startswith("IMI"):
            raise ValueError(f"{coarse}: a quantizer in parentheses cannot be combined with _HNSW, _NSG or IMI")
        pending["used"] = True
        token = _PAREN_QUANTIZER.set(None)
        try:
            return index_factory(d, pending["description"], metric)
        finally:
            _PAREN_QUANTIZER.reset(token)
    if coarse.startswith("IMI"):
        if graph is not None:
            raise ValueError(f"{coarse}_{graph}: a multi-index has no centroids to put in a graph")
        M, nbits = _imi(coarse)
        if M < 1 or nbits < 1 or nbits > 16 or M * nbits > 62 or d % M:
            raise ValueError(f"{coarse}: M must divide d = {d}, nbits be 1 to 16 and M * nbits at most 62")
        return _nearly.MultiIndexQuantizer(d, M, nbits)
    if graph is None:
        return _nearly.IndexFlat(d, metric)
    if graph.startswith("NSG"):
        return _nearly.IndexNSGFlat(d, int(graph[3:] or 32), metric)
    return _nearly.IndexHNSWFlat(d, int(graph[4:] or 32), metric)


def _by_residual(index, by_residual):
    index.by_residual = by_residual
    return index


def _ivfpqr(quantizer, d, nlist, M, M_refine, metric):
    if metric != _nearly.METRIC_L2:
        raise RuntimeError("index_factory: IVFPQR not implemented for inner product search (as in faiss)")
    return _nearly.IndexIVFPQR(quantizer, d, nlist, M, 8, M_refine, 8)


def _hnsw_2level(quantizer, nlist, m_pq, M, metric):
    if metric != _nearly.METRIC_L2:
        raise ValueError("HNSW..+PQ: IndexHNSW2Level is L2 only (faiss's rule)")
    return _nearly.IndexHNSW2Level(quantizer, nlist, m_pq, M)


def _index_2layer(m, d, metric):
    if metric != _nearly.METRIC_L2:
        raise ValueError("Residual: Index2Layer is L2 only in index_factory (faiss's rule)")
    if m.group(2):  # Residual{M}x{nbits}: a multi-index of (2^nbits)^M cells
        quantizer = _nearly.MultiIndexQuantizer(d, int(m.group(1)), int(m.group(2)))
        nlist = 1 << (int(m.group(1)) * int(m.group(2)))
    else:
        quantizer, nlist = _nearly.IndexFlatL2(d), int(m.group(1))
    return _nearly.Index2Layer(quantizer, nlist, int(m.group(3)), int(m.group(4) or 8), metric)


def _spectral_hash(quantizer, d, nlist, kind, nbit, period, threshold, metric):
    if metric != _nearly.METRIC_L2:
        raise _nearly.InvalidArgumentError("index_factory: IVF...,SH scores by Hamming distance: L2 only, as in faiss")
    vt = (_nearly.ITQTransform(d, nbit, d != nbit) if kind == "ITQ"
          else _nearly.PCAMatrix(d, nbit, 0.0, kind == "PCAR"))
    try:
        period = float(period) if period else -1e10
    except ValueError:
        raise _nearly.InvalidArgumentError(f"index_factory: bad SH period {period!r}") from None
    index = _nearly.IndexIVFSpectralHash(quantizer, d, nlist, nbit, period)
    index.replace_vt(vt)
    if threshold:
        index.threshold_type = {"g": index.Thresh_global, "c": index.Thresh_centroid, "m": index.Thresh_median}[threshold]
    return index


def _ivfpq_fast_scan(quantizer, d, nlist, M, metric, by_residual, bbs):
    return _by_residual(_nearly.IndexIVFPQFastScan(quantizer, d, nlist, M, 4, metric, bbs), by_residual)


def _ivf_rq_fast_scan(quantizer, d, nlist, M, metric, by_residual, search_type, bbs):
    return _by_residual(_nearly.IndexIVFResidualQuantizerFastScan(quantizer, d, nlist, M, 4, metric, search_type, bbs),
                        by_residual)


# main description (the rest of the string) -> builder(match, d, metric)
INDEXES = [
    (re.compile(r"Flat"), lambda m, d, metric: _nearly.IndexFlat(d, metric)),
    (re.compile(_IVF + r",Flat"), lambda m, d, metric: _nearly.IndexIVFFlat(
        _coarse(m, d, metric), d, _nlist(m.group(1)), metric)),
    # faiss's Residual{nlist},PQ{M}[x{nbits}] and Residual{M}x{nbits},PQ...:
    # Index2Layer over a flat or multi-index quantizer (L2 only, as faiss).
    (re.compile(r"Residual(\d+)(?:x(\d+))?,PQ(\d+)(?:x(\d+))?"), lambda m, d, metric: _index_2layer(m, d, metric)),
    (re.compile(_IVF + r",FlatDedup"), lambda m, d, metric: _nearly.IndexIVFFlatDedup(
        _coarse(m, d, metric), d, _nlist(m.group(1)), metric)),
    # faiss's FlatPanorama[{levels}][_{batch}] (ivf_flat_panorama.h): 8 levels by default, like faiss.
    (re.compile(_IVF + r",FlatPanorama(\d+)?(?:_(\d+))?"), lambda m, d, metric: _nearly.IndexIVFFlatPanorama(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3) or 8), metric, True,
        int(m.group(4) or _nearly.IndexIVFFlatPanorama.kDefaultBatchSize))),
    # PQ{M}[x{nbits}][np]: nbits 8 by default, and polysemous training (a
    # renumbering of the centroids so that Hamming distances between codes
    # follow PQ distances, for polysemous_ht) unless "np", like faiss.
    (re.compile(r"PQ(\d+)(?:x(\d+))?(np)?"), lambda m, d, metric: _polysemous(_nearly.IndexPQ(
        d, int(m.group(1)), int(m.group(2) or 8), metric), m.group(3))),
    # IVF{n},PQ{M}+{M_refine}: IndexIVFPQR, 8-bit codes, L2 only (faiss's).
    (re.compile(_IVF + r",PQ(\d+)\+(\d+)"), lambda m, d, metric: _ivfpqr(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)), int(m.group(4)), metric)),
    (re.compile(_IVF + r",PQ(\d+)(?:x(\d+))?(np)?"), lambda m, d, metric: _polysemous(_nearly.IndexIVFPQ(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)), int(m.group(4) or 8), metric), m.group(5))),
    # 4-bit fast-scan: PQ{M}x4fs[_bbs]; in an IVF, codes of the vectors
    # themselves (faiss's default) or of residuals with "fsr".
    (re.compile(r"PQ(\d+)x4fs(?:_(\d+))?"), lambda m, d, metric: _nearly.IndexPQFastScan(
        d, int(m.group(1)), 4, metric, int(m.group(2) or 32))),
    (re.compile(_IVF + r",PQ(\d+)x4fs(r?)(?:_(\d+))?"), lambda m, d, metric: _ivfpq_fast_scan(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)), metric, m.group(4) == "r",
        int(m.group(5) or 32))),
    # Scalar quantizers: SQ4 / SQ6 / SQ8 (bits per dimension, per-dimension
    # ranges), SQfp16, SQbf16, SQ8_direct (uint8 data), SQ8_direct_signed (int8),
    # SQtqmse{1,2,3,4,8} (TurboQuant's codebook, for unit vectors after "RR").
    (re.compile("SQ" + _SQ), lambda m, d, metric: _nearly.IndexScalarQuantizer(d, _sq_qtype(m.group(1)), metric)),
    (re.compile(_IVF + r",SQ" + _SQ), lambda m, d, metric: _nearly.IndexIVFScalarQuantizer(
        _coarse(m, d, metric), d, _nlist(m.group(1)), _sq_qtype(m.group(3)), metric)),
    # Residual quantizers: RQ{M}x{nbits}[_N<norm>], M codebooks of 2^nbits words
    # (or several such groups, RQ1x16_6x8: one of 16 bits, then six of 8);
    # the suffix says how the norm is stored (none: search on the decoded vectors).
    (re.compile(_RQ), lambda m, d, metric: _nearly.IndexResidualQuantizer(
        d, _rq_widths(m.group(1)), metric, _rq_search_type(m.group(2), metric))),
    # RQ{M}x4fs[_bbs][_N<norm>]: 4-bit codebooks scanned as fast-scan; L2
    # needs the norm as two more 4-bit codes (_Nrq2x4), as in faiss.
    (re.compile(r"RQ(\d+)x4fs(?:_(\d+))?" + _RQ_NORM), lambda m, d, metric: _nearly.IndexResidualQuantizerFastScan(
        d, int(m.group(1)), 4, metric, _rq_search_type(m.group(3), metric), int(m.group(2) or 32))),
    (re.compile(_IVF + r",RQ(\d+)x4fs(r?)(?:_(\d+))?" + _RQ_NORM), lambda m, d, metric: _ivf_rq_fast_scan(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)), metric, m.group(4) == "r",
        _rq_search_type(m.group(6), metric), int(m.group(5) or 32))),
    (re.compile(_IVF + r"," + _RQ), lambda m, d, metric: _nearly.IndexIVFResidualQuantizer(
        _coarse(m, d, metric), d, _nlist(m.group(1)), _rq_widths(m.group(3)), metric,
        _rq_search_type(m.group(4), metric))),
    # Product residual quantizers: PRQ{nsplits}x{Msub}x{nbits}[_N<norm>] (a
    # residual quantizer per slice of d), and their 4-bit fast-scan forms.
    (re.compile(r"PRQ(\d+)x(\d+)x(\d+)" + _RQ_NORM), lambda m, d, metric: IndexProductResidualQuantizer(
        d, int(m.group(1)), int(m.group(2)), int(m.group(3)), metric, _rq_search_type(m.group(4), metric))),
    (re.compile(_IVF + r",PRQ(\d+)x(\d+)x(\d+)" + _RQ_NORM), lambda m, d, metric: IndexIVFProductResidualQuantizer(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5)), metric,
        _rq_search_type(m.group(6), metric))),
    (re.compile(r"PRQ(\d+)x(\d+)x4fs(?:_(\d+))?" + _RQ_NORM), lambda m, d, metric: IndexProductResidualQuantizerFastScan(
        d, int(m.group(1)), int(m.group(2)), 4, metric, _rq_search_type(m.group(4), metric), int(m.group(3) or 32))),
    (re.compile(_IVF + r",PRQ(\d+)x(\d+)x4fs(r?)(?:_(\d+))?" + _RQ_NORM), lambda m, d, metric: _by_residual(
        IndexIVFProductResidualQuantizerFastScan(_coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)),
                                                 int(m.group(4)), 4, metric, _rq_search_type(m.group(7), metric),
                                                 int(m.group(6) or 32)), m.group(5) == "r")),
    # faiss's LSH[nbits][r][t]: nbits defaults to d; r rotates, t learns per-bit thresholds.
    (re.compile(r"LSH(\d*)(r?)(t?)"), lambda m, d, metric: _nearly.IndexLSH(
        d, int(m.group(1) or d), bool(m.group(2)), bool(m.group(3)))),
    # ZnLattice<nsq>x<r2>_<scale_nbit>: nsq sub-vectors, each a Z^(d/nsq) sphere
    # point of squared radius r2 and its norm in scale_nbit bits (faiss's IndexLattice).
    (re.compile(r"ZnLattice(\d+)x(\d+)_(\d+)"), lambda m, d, metric: _nearly.IndexLattice(
        d, int(m.group(1)), int(m.group(3)), int(m.group(2)))),
    # RaBitQ[nb_bits]: sign bits (+ nb_bits - 1 extra bits) per dimension, against
    # the data's mean or, in an IVF, the list's centroid (faiss's strings).
    (re.compile(r"RaBitQ([1-9])?"), lambda m, d, metric: _nearly.IndexRaBitQ(d, metric, int(m.group(1) or 1))),
    (re.compile(_IVF + r",RaBitQ([1-9])?"), lambda m, d, metric: _nearly.IndexIVFRaBitQ(
        _coarse(m, d, metric), d, _nlist(m.group(1)), metric, True, int(m.group(3) or 1))),
    # EDEN[nb_bits][BIASED]: EDEN's codes (1 bit, the unbiased scale by default), against
    # the data's mean or, in an IVF, the list's centroid (faiss's strings).
    (re.compile(r"EDEN([1-8])?(BIASED)?"), lambda m, d, metric: _nearly.IndexEDEN(
        d, metric, int(m.group(1) or 1), _nearly.EDENScaleType_BIASED if m.group(2) else _nearly.EDENScaleType_UNBIASED)),
    (re.compile(_IVF + r",EDEN([1-8])?(BIASED)?"), lambda m, d, metric: _nearly.IndexIVFEDEN(
        _coarse(m, d, metric), d, _nlist(m.group(1)), metric, True, int(m.group(3) or 1),
        _nearly.EDENScaleType_BIASED if m.group(4) else _nearly.EDENScaleType_UNBIASED)),
    # IVF{n},{ITQ|PCA|PCAR}[nbit],SH[period][g|c|m]: IndexIVFSpectralHash over
    # that transform (nbit defaults to d); period -1e10 (sign bits) by default,
    # thresholds global, at the centroids or at the lists' medians.
    (re.compile(_IVF + r",(ITQ|PCA|PCAR)(\d+)?,SH([-0-9.e]+)?([gcm])?"), lambda m, d, metric: _spectral_hash(
        _coarse(m, d, metric), d, _nlist(m.group(1)), m.group(3), int(m.group(4) or d), m.group(5), m.group(6),
        metric)),
    # RaBitQfs[nb_bits][_bbs]: faiss's fast-scan classes (bbs: a multiple of 32).
    (re.compile(r"RaBitQfs([1-9])?(?:_(\d+))?"), lambda m, d, metric: _nearly.IndexRaBitQFastScan(
        d, metric, int(m.group(2) or 32), int(m.group(1) or 1))),
    (re.compile(_IVF + r",RaBitQfs([1-9])?(?:_(\d+))?"), lambda m, d, metric:
        _nearly.IndexIVFRaBitQFastScan(_coarse(m, d, metric), d, _nlist(m.group(1)), metric,
                                       int(m.group(4) or 32), True, int(m.group(3) or 1))),
    # HNSW[M] (32 by default), then "," or "_" and its storage (faiss accepts both).
    (re.compile(r"HNSW(\d*)(?:[,_]Flat)?"), lambda m, d, metric: _nearly.IndexHNSWFlat(d, _hnsw_m(m), metric)),
    # faiss's IndexHNSW2Level: HNSW{M}_{nlist}+PQ{m_pq} (a flat quantizer) and
    # HNSW{M}_2x{nbits}+PQ{m_pq} (a 2 x nbits multi-index), L2.
    (re.compile(r"HNSW(\d*)_(\d+[kM]?)\+PQ(\d+)"), lambda m, d, metric: _hnsw_2level(
        _nearly.IndexFlatL2(d), _nlist("IVF" + m.group(2)), int(m.group(3)), _hnsw_m(m), metric)),
    (re.compile(r"HNSW(\d*)_2x(\d+)\+PQ(\d+)"), lambda m, d, metric: _hnsw_2level(
        _nearly.MultiIndexQuantizer(d, 2, int(m.group(2))), 1 << (2 * int(m.group(2))), int(m.group(3)),
        _hnsw_m(m), metric)),
    # faiss's HNSW{M}_FlatPanorama[{levels}] (8 levels by default).
    (re.compile(r"HNSW(\d*)[,_]FlatPanorama(\d*)"), lambda m, d, metric: _nearly.IndexHNSWFlatPanorama(
        d, _hnsw_m(m), int(m.group(2) or 8), metric)),
    # NSG[R] (32 by default), "," or "_" and Flat, or nothing (faiss's strings).
    (re.compile(r"NSG(\d*)(?:[,_]Flat)?"), lambda m, d, metric: _nearly.IndexNSGFlat(d, int(m.group(1) or 32), metric)),
    # NSG over a PQ or scalar-quantizer storage: NSG{R},PQ{m}[x{nbits}][np],
    # NSG{R},SQ{type} ("," or "_"). faiss's NSG-PQ is L2 whatever the metric
    # asked; nearly keeps the metric.
    (re.compile(r"NSG(\d*)[,_]PQ(\d+)(?:x(\d+))?(?:np)?"), lambda m, d, metric: _nearly.IndexNSGPQ(
        d, int(m.group(2)), int(m.group(1) or 32), int(m.group(3) or 8), metric)),
    (re.compile(r"NSG(\d*)[,_]SQ" + _SQ), lambda m, d, metric: _nearly.IndexNSGSQ(
        d, _sq_qtype(m.group(2)), int(m.group(1) or 32), metric)),
    # NNDescent[K] (32 by default), "," or "_" and Flat, or nothing (faiss's strings).
    (re.compile(r"NNDescent(\d*)(?:[,_]Flat)?"), lambda m, d, metric: _nearly.IndexNNDescentFlat(
        d, int(m.group(1) or 32), metric)),
    # PQ storage: HNSW{M},PQ{pq_m}[x{nbits}][np] (faiss builds it L2 whatever the
    # metric asked; nearly keeps the metric).
    (re.compile(r"HNSW(\d*)[,_]PQ(\d+)(?:x(\d+))?(?:np)?"), lambda m, d, metric: _nearly.IndexHNSWPQ(
        d, int(m.group(2)), _hnsw_m(m), int(m.group(3) or 8), metric)),
    # BEBR recurrent binary codes: RBE{m}x{bits_per_dim}, scored by SDC.
    (re.compile(r"RBE(\d+)x(\d+)"), lambda m, d, metric: _nearly.IndexBinaryRecurrent(
        d, int(m.group(1)), int(m.group(2)), metric)),
    # The same codes in a graph walked on their SDC scores, or in inverted lists
    # scanned by SDC (the coarse quantizer is float, like IVF{n},PQ{M}).
    (re.compile(r"HNSW(\d+),RBE(\d+)x(\d+)"), lambda m, d, metric: _nearly.IndexBinaryRecurrentHNSW(
        d, int(m.group(2)), int(m.group(3)), int(m.group(1)), metric)),
    (re.compile(_IVF + r",RBE(\d+)x(\d+)"), lambda m, d, metric: _nearly.IndexIVFBinaryRecurrent(
        _coarse(m, d, metric), d, _nlist(m.group(1)), int(m.group(3)), int(m.group(4)), metric)),
    (re.compile(r"HNSW(\d*)[,_]SQ" + _SQ), _hnsw_sq),
]


def _local_search(build):
    def make(m, d, metric):
        index = build(m, d, metric)
        index.rq.local_search = True
        return index
    return make


# faiss's LSQ{M}x{nbits}[...] and PLSQ{nsplits}x{Msub}x{nbits}[...] strings,
# flat, IVF and fast-scan: the residual strings' indexes with the quantizer
# in local search mode (additive_family.py).
INDEXES += [(re.compile(regex.pattern.replace("PRQ(", "PLSQ(").replace("RQ(", "LSQ(")), _local_search(build))
            for regex, build in INDEXES if "RQ(" in regex.pattern]


def _flat_panorama(metric, name):
    """faiss's FlatL2Panorama{levels}[_{batch}] / FlatIPPanorama...: the
    metric is the name's, and must be the factory's."""
    def build(m, d, factory_metric):
        if factory_metric != metric:
            raise ValueError(f"{name} needs the metric {'L2' if metric == _nearly.METRIC_L2 else 'inner product'}")
        batch = int(m.group(2)) if m.group(2) else _nearly.IndexFlatPanorama.kDefaultBatchSize
        cls = _nearly.IndexFlatL2Panorama if metric == _nearly.METRIC_L2 else _nearly.IndexFlatIPPanorama
        return cls(d, int(m.group(1)), batch)
    return build


# faiss's Panorama flat indexes (flat_panorama.h).
INDEXES += [(re.compile(r"FlatL2Panorama(\d+)(?:_(\d+))?"), _flat_panorama(_nearly.METRIC_L2, "FlatL2Panorama")),
            (re.compile(r"FlatIPPanorama(\d+)(?:_(\d+))?"),
             _flat_panorama(_nearly.METRIC_INNER_PRODUCT, "FlatIPPanorama"))]


# faiss's RCQ{M}x{nbits}: a ResidualCoarseQuantizer, the coarse quantizer of
# "IVF{2^(M nbits)}(RCQ{M}x{nbits}),..." (it trains alone); groups of widths
# as RQ's (RCQ1x3_1x4_1x5: 2^12 centroids).
INDEXES.append((re.compile(r"RCQ" + _RQ_WIDTHS), lambda m, d, metric: _nearly.ResidualCoarseQuantizer(
    d, _rq_widths(m.group(1)), metric)))
# faiss's LSCQ{M}x{nbits}: a LocalSearchCoarseQuantizer (LSQ++ codebooks,
# searched exhaustively), "IVF256(LSCQ2x4),Flat".
INDEXES.append((re.compile(r"LSCQ(\d+)x(\d+)"), lambda m, d, metric: _nearly._local_search_coarse_quantizer(
    d, int(m.group(1)), int(m.group(2)), metric)))

# suffix -> wrapper(index) applied around the main index and its transforms
REFINES = {
    "RFlat": _nearly.IndexRefineFlat,
}

WRAPPERS = {
    "IDMap": _nearly.IndexIDMap,
    "IDMap2": _nearly.IndexIDMap2,
}


def _parse_error(description, why):
    return RuntimeError(f"index_factory: could not parse index string {description!r}: {why}")


# faiss's metric ids; the index types say which they take (extra_distances.h).
_METRICS = {getattr(_nearly, name) for name in dir(_nearly) if name.startswith("METRIC_")}


# The description of the coarse quantizer in IVF{n}(...), while the IVF
# index of one factory call is built (_coarse takes it).
_PAREN_QUANTIZER = contextvars.ContextVar("paren_quantizer", default=None)


def _take_paren_quantizer(description):
    """faiss's IVF{n}(<quantizer description>): the description without the
    parenthesized part, and that part (None when there is none)."""
    m = re.search(r"(IVF\d+[kM]?)\(", description)
    if m is None:
        return description, None
    depth = 0
    for i in range(m.end() - 1, len(description)):
        depth += {"(": 1, ")": -1}.get(description[i], 0)
        if depth == 0:
            return description[:m.end() - 1] + description[i + 1:], description[m.end():i]
    raise _parse_error(description, f"unclosed {description[m.start():]!r}")


def index_factory(d, description, metric=_nearly.METRIC_L2):
    """Builds an index from a faiss factory string, e.g. ``"IDMap,Flat"``;
    ``"IVF1024(PQ16),Flat"`` takes its coarse quantizer from the string in
    parentheses."""
    if not isinstance(description, str):
        raise TypeError("index_factory: description must be a str")
    if int(d) <= 0:
        raise _nearly.InvalidArgumentError(f"index_factory: d must be positive, got {d}")
    if metric not in _METRICS:
        raise _nearly.InvalidArgumentError(f"index_factory: unknown metric {metric!r}")
    original = description
    description, quantizer = _take_paren_quantizer(description)
    if quantizer is not None:
        if not quantizer.strip():
            raise _parse_error(original, "empty quantizer in parentheses")
        pending = {"description": quantizer, "used": False}
        token = _PAREN_QUANTIZER.set(pending)
        try:
            index = index_factory(d, description, metric)
        finally:
            _PAREN_QUANTIZER.reset(token)
        if not pending["used"]:
            raise _parse_error(original, "a quantizer in parentheses needs an IVF index")
        return index
    parts = [p.strip() for p in description.split(",")]
    if not parts or any(not p for p in parts):
        raise _parse_error(description, "empty component")
    if parts[0] in ("MinMax", "MinMaxFP16") and len(parts) > 1:  # faiss's row-wise min-max codec prefix
        from .rowwise_minmax import IndexRowwiseMinMax, IndexRowwiseMinMaxFP16
        inner = index_factory(d, ",".join(parts[1:]), metric)
        return (IndexRowwiseMinMaxFP16 if parts[0] == "MinMaxFP16" else IndexRowwiseMinMax)(inner)

    wrapper = None
    if parts[0] in WRAPPERS:
        wrapper = WRAPPERS[parts.pop(0)]
    elif len(parts) > 1 and parts[-1] in WRAPPERS:  # faiss's newer spelling: "Flat,IDMap2"
        wrapper = WRAPPERS[parts.pop()]

    transforms, dim = [], int(d)
    while parts:
        for regex, build in TRANSFORMS:
            m = regex.fullmatch(parts[0])
            if m:
                t, dim = build(m, dim)
                transforms.append(t)
                parts.pop(0)
                break
        else:
            break

    refine = None
    if len(parts) > 1 and parts[-1] in REFINES:
        refine = REFINES[parts.pop()]
    else:
        # Refine(<description>): re-ranking by another index over the same
        # vectors; RefinePanorama(...): faiss's name when it is a Panorama index.
        at = next((i for i, p in enumerate(parts) if p.startswith(("Refine(", "RefinePanorama("))), None)
        if at is not None and at > 0:
            inner = ",".join(parts[at:])
            if not inner.endswith(")"):
                raise _parse_error(description, f"unclosed {inner!r}")
            kind = inner[:inner.index("(")]
            refine_index = index_factory(d, inner[len(kind) + 1:-1], metric)
            parts = parts[:at]
            cls = _nearly.IndexRefinePanorama if kind == "RefinePanorama" else _nearly.IndexRefine
            refine = lambda base: cls(base, refine_index)  # noqa: E731
    main = ",".join(parts)
    for regex, build in INDEXES:
        m = regex.fullmatch(main)
        if m:
            index = build(m, dim, metric)
            break
    else:
        raise _parse_error(description, f"unknown index {main!r}" if main else "no index after the transforms")

    if transforms:  # one IndexPreTransform holding the whole chain, as faiss builds it
        index = _nearly.IndexPreTransform(transforms, index)
    if refine is not None:
        index = refine(index)
    if wrapper is not None:
        index = wrapper(index)
    return index


# Binary (1-bit, Hamming) indexes: faiss's index_binary_factory strings.
BINARY_INDEXES = [
    (re.compile(r"BFlat"), lambda m, d: _nearly.IndexBinaryFlat(d)),
    (re.compile(r"BHNSW(\d+)"), lambda m, d: _nearly.IndexBinaryHNSW(d, int(m.group(1)))),
    (re.compile(r"BIVF(\d+)"), lambda m, d: _nearly.IndexBinaryIVF(_nearly.IndexBinaryFlat(d), d, int(m.group(1)))),
    # an HNSW graph over the centroids as the coarse quantizer
    (re.compile(r"BIVF(\d+)_BHNSW(\d+)"),
     lambda m, d: _nearly.IndexBinaryIVF(_nearly.IndexBinaryHNSW(d, int(m.group(2))), d, int(m.group(1)))),
    # hash tables over b bits of the codes: one (BHash{b}) or nhash (BHash{nhash}x{b})
    (re.compile(r"BHash(\d+)"), lambda m, d: _nearly.IndexBinaryHash(d, int(m.group(1)))),
    (re.compile(r"BHash(\d+)x(\d+)"), lambda m, d: _nearly.IndexBinaryMultiHash(d, int(m.group(1)), int(m.group(2)))),
]


def index_binary_factory(d, description):
    """Builds a binary index from a faiss description: ``"BFlat"``, ``"BHNSW32"``,
    ``"BIVF1024"``, ``"BIVF1024_BHNSW32"``, ``"BHash16"``, ``"BHash4x16"``, any of them behind ``"IDMap,"`` or
    ``"IDMap2,"`` (or followed by ``",IDMap"`` / ``",IDMap2"``)."""
    if not isinstance(description, str):
        raise TypeError("index_binary_factory: description must be a str")
    parts = [p.strip() for p in description.split(",")]
    wrap = None
    if len(parts) > 1 and parts[0] in ("IDMap", "IDMap2"):
        wrap = parts.pop(0)
    elif len(parts) > 1 and parts[-1] in ("IDMap", "IDMap2"):  # faiss's newer spelling: "BFlat,IDMap2"
        wrap = parts.pop()
    main = ",".join(parts)
    for regex, build in BINARY_INDEXES:
        m = regex.fullmatch(main)
        if m:
            index = build(m, int(d))
            break
    else:
        raise RuntimeError(f"index_binary_factory: description {description!r} did not generate an index")
    if wrap is not None:
        index = (_nearly.IndexBinaryIDMap2 if wrap == "IDMap2" else _nearly.IndexBinaryIDMap)(index)
    return index
