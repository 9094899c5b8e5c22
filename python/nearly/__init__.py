"""nearly: fast vector search with faiss's Python API.

``import nearly as faiss`` keeps faiss code working. The native core (C++ with
SIMD, optional CUDA) lives in ``nearly._nearly``; this package adds the parts
of faiss's Python layer that are not hot: index_factory, pickling, helpers.
"""
from ._nearly import *  # noqa: F401,F403
from ._nearly import (  # noqa: F401  (explicit for readers and linters)
    METRIC_INNER_PRODUCT,
    METRIC_L2,
    Index,
    IndexFlat,
    IndexFlatIP,
    IndexFlatL2,
    IndexIVF,
    IndexBinary,
    IndexBinaryFlat,
    IndexBinaryIDMap,
    IndexBinaryIDMap2,
    knn_hamming,
    read_index_binary,
    write_index_binary,
    serialize_index_binary,
    deserialize_index_binary,
    IndexIVFFlat,
    IndexIVFPQ,
    IndexIVFPQR,
    IndexIVFPQFastScan,
    IndexPQ,
    IndexPQFastScan,
    IndexScalarQuantizer,
    IndexIVFScalarQuantizer,
    ResidualQuantizer,
    IndexResidualQuantizer,
    IndexIVFResidualQuantizer,
    IndexRaBitQ,
    IndexIVFRaBitQ,
    RaBitQSearchParameters,
    IVFRaBitQSearchParameters,
    ScalarQuantizer,
    ProductQuantizer,
    IndexIDMap,
    IndexIDMap2,
    IndexPreTransform,
    VectorTransform,
    LinearTransform,
    RandomRotationMatrix,
    OPQMatrix,
    PCAMatrix,
    SearchParametersIVF,
    Clustering,
    ClusteringParameters,
    InvalidArgumentError,
    IndexOutOfRangeError,
    IndexFileError,
    IndexFileNotFoundError,
    deserialize_index,
    serialize_index,
)
from .factory import index_binary_factory, index_factory  # noqa: F401
from .persistence import deserialize_index, read_index, serialize_index, write_index  # noqa: F401,F811
from .binary import IndexBinaryRecurrent, RecurrentBinarizer  # noqa: F401
from .kmeans import Kmeans, ProgressiveDimIndexFactory, SuperKmeans, precompute_ad_thresholds  # noqa: F401
from .compat import downcast_index, extract_index_ivf, vector_float_to_array, vector_to_array  # noqa: F401
from .compat import cvar, get_compile_options, try_extract_index_ivf  # noqa: F401
from .compat import SIMDConfig, SIMDLevel_NONE, SIMDLevel_AVX2, SIMDLevel_AVX512  # noqa: F401
from .compat import SIMDLevel_AVX512_SPR, SIMDLevel_ARM_NEON, SIMDLevel_ARM_SVE  # noqa: F401
from .compat import SIMDLevel_RISCV_RVV, SIMDLevel_AVX512_VPOPCNT, SIMDLevel_COUNT  # noqa: F401
from .compat import DirectMap, IndexHNSWSQ, rev_swig_ptr  # noqa: F401,F811
from .compat import copy_array_to_vector, imbalance_factor, is_similarity_metric, popcount64, swig_ptr  # noqa: F401
from .code_packer import CodePacker, CodePackerFlat, CodePackerPQ4  # noqa: F401
from .timeout import TimeoutGuard  # noqa: F401
from .compat import bitvec_shuffle, bucket_sort, matrix_bucket_sort_inplace  # noqa: F401
from .compat import InvertedListsPtrVector, MaybeOwnedVectorUInt8, downcast_InvertedLists, memcpy  # noqa: F401
from .compat import CodeSet, clone_Quantizer  # noqa: F401
from .compat import beam_search_encode_step  # noqa: F401
from .rowwise_minmax import IndexRowwiseMinMax, IndexRowwiseMinMaxBase, IndexRowwiseMinMaxFP16  # noqa: F401
from .meta_invlists import (ConcatenatedInvertedLists, CappedInvertedLists, HStackInvertedLists,  # noqa: F401
                            MaskedInvertedLists, SliceInvertedLists, StopWordsInvertedLists,
                            VStackInvertedLists)
from .compat import IndexFlatCodes, IndexHNSW, check_compatible_for_merge, get_mem_usage_kb, merge_knn_results  # noqa: F401
from .matrix_stats import MatrixStats  # noqa: F401
from .compat import Float32Vector, Float64Vector, Int8Vector, Int16Vector, Int32Vector, Int64Vector  # noqa: F401
from .compat import UInt8Vector, UInt16Vector, UInt32Vector, UInt64Vector, LongVector, IDXVector  # noqa: F401
from .persistence import (read_ProductQuantizer, read_VectorTransform, write_ProductQuantizer,  # noqa: F401
                          write_VectorTransform)
from .persistence import read_index_binary, write_index_binary  # noqa: F401,F811
from .io_objects import BufferedIOReader, BufferedIOWriter, FileIOReader, FileIOWriter  # noqa: F401
from .io_objects import IOReader, IOWriter, PyCallbackIOReader, PyCallbackIOWriter  # noqa: F401
from .io_objects import VectorIOReader, VectorIOWriter, ZeroCopyIOReader  # noqa: F401
from .compat import clone_binary_index, clone_index  # noqa: F401
from .compat import eval_intersection, merge_into, rand, randint, randn  # noqa: F401
from .compat import float_rand, float_randn, rand_smooth_vectors  # noqa: F401
from .compat import range_search_with_parameters, search_with_parameters  # noqa: F401
from .shards import IndexBinaryReplicas, IndexBinaryShards, IndexReplicas, IndexShards, IndexShardsIVF  # noqa: F401
from .result_heap import ResultHeap  # noqa: F401
from .result_heap import float_maxheap_array_t, float_minheap_array_t, int_maxheap_array_t, int_minheap_array_t  # noqa: F401,E501
from .hamming import crosshamming_count_thres, generalized_hammings_knn_hc, hamming_count_thres, hammings  # noqa: F401
from .hamming import hammings_knn_hc, hammings_knn_mc, match_hamming_thres  # noqa: F401
from .partitioning import AlignedTableFloat32, AlignedTableUint8, AlignedTableUint16  # noqa: F401
from .partitioning import AlignedTable_to_array, array_to_AlignedTable, copy_array_to_AlignedTable  # noqa: F401
from .partitioning import CMax_float_partition_fuzzy, CMax_uint16_partition_fuzzy  # noqa: F401
from .partitioning import CMin_float_partition_fuzzy, CMin_uint16_partition_fuzzy  # noqa: F401
from .partitioning import simd_histogram_8, simd_histogram_16  # noqa: F401
from .distance_utils import MapInt64ToInt64, MapLong2Long, fvec_L1, fvec_L2sqr, fvec_L2sqr_by_idx  # noqa: F401,F811
from .distance_utils import fvec_L2sqr_ny, fvec_Linf, fvec_inner_product, fvec_inner_products_by_idx  # noqa: F401,F811
from .distance_utils import fvec_inner_products_ny, fvec_madd, fvec_madd_and_argmin, fvec_norm_L2sqr  # noqa: F401,F811
from .distance_utils import fvec_norms_L2, fvec_norms_L2sqr, fvec_renorm_L2, pairwise_indexed_inner_product  # noqa: F401
from .distance_utils import pairwise_indexed_L2sqr, ranklist_intersection_size  # noqa: F401
from .flat_1d import IndexFlat1D  # noqa: F401
from .bitstrings import BitstringReader, BitstringWriter, pack_bitstrings, unpack_bitstrings  # noqa: F401
from .quantize_lut import quantize_LUT_and_bias, round_uint8_per_column, round_uint8_per_column_multi  # noqa: F401
from .ivflib import get_invlist_range, search_and_return_centroids, search_centroid, set_invlist_range  # noqa: F401
from .ivflib import DefaultShardingFunction, PyCallbackShardingFunction, ShardingFunction  # noqa: F401
from .ivflib import shard_binary_ivf_index_centroids, shard_ivf_index_centroids  # noqa: F401
from .binary_invlists import BinaryInvertedLists  # noqa: F401  (IndexBinaryIVF.invlists)
from .pointer_methods import RangeSearchResult  # noqa: F401  (and the *_c methods on the indexes)
from .autotune import (  # noqa: F401
    AutoTuneCriterion, IntersectionCriterion, OneRecallAtRCriterion, OperatingPoint, OperatingPoints,
    ParameterRange, ParameterSpace)

IVFSearchParameters = SearchParametersIVF  # faiss's older name for it
IVFPQSearchParameters = SearchParametersIVFPQ  # and for this one
from .compat import downcast_IndexBinary, downcast_VectorTransform  # noqa: F401
from .compat import (AdditiveQuantizer, IndexAdditiveQuantizerFastScan, downcast_AdditiveQuantizer,  # noqa: F401
                     downcast_Quantizer)
from .additive_family import (  # noqa: F401
    AdditiveCoarseQuantizer, LocalSearchCoarseQuantizer, IndexIVFAdditiveQuantizerFastScan, IndexIVFLocalSearchQuantizer, IndexIVFLocalSearchQuantizerFastScan,
    IndexIVFProductLocalSearchQuantizer, IndexIVFProductLocalSearchQuantizerFastScan, IndexIVFProductResidualQuantizer,
    IndexIVFProductResidualQuantizerFastScan, IndexLocalSearchQuantizer, IndexLocalSearchQuantizerFastScan,
    IndexProductLocalSearchQuantizer, IndexProductLocalSearchQuantizerFastScan, IndexProductResidualQuantizer,
    IndexProductResidualQuantizerFastScan, LocalSearchQuantizer, ProductLocalSearchQuantizer,
    ProductResidualQuantizer)
from .insertion_order import insertion_order, local_intrinsic_dimensionality  # noqa: F401
from .graph_build import hnsw_from_knn  # noqa: F401
from . import graph_storage  # noqa: F401  (adds `storage` to the graph indexes)
from .graph_storage import VisitedTableVector  # noqa: F401
from .multivector import (  # noqa: F401
    FDEConfig,
    IndexMultiVectorFlat,
    IndexMuvera,
    chamfer_scores,
    chamfer_scores_batch,
    fde_encode_documents,
    fde_encode_queries,
)

from .gpu import (  # noqa: F401
    GPU_MAX_SELECTION_K,
    GpuClonerOptions,
    GpuIndexBinaryFlat,
    GpuIndexBinaryRecurrent,
    GpuIndexFlat,
    GpuIndexFlatConfig,
    GpuIndexFlatIP,
    GpuIndexFlatL2,
    GpuIndexHNSW,
    GpuIndexIVFFlat,
    GpuIndexIVFFlatConfig,
    GpuIndexIVFPQ,
    GpuIndexIVFPQConfig,
    GpuIndexMuvera,
    GpuMultipleClonerOptions,
    StandardGpuResources,
    index_cpu_to_all_gpus,
    index_cpu_to_gpu,
    index_cpu_to_gpus_list,
    index_gpu_to_cpu,
    knn_gpu,
)

__version__ = "0.1.0"


def _reduce_index(index):
    return deserialize_index, (serialize_index(index).tobytes(),)


Index.__reduce__ = _reduce_index


def _reduce_index_binary(index):
    return deserialize_index_binary, (serialize_index_binary(index).tobytes(),)


IndexBinary.__reduce__ = _reduce_index_binary
