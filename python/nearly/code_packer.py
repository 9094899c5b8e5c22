"""faiss's CodePacker: where each code lies in an index's code array, in
blocks of nvec codes of block_size bytes. Flat layouts hold one code per
block; fast-scan ones (IndexPQFastScan.codes) 32 codes byte-transposed: byte
p of the block's codes side by side (nearly's layout, code_layout.h; faiss's
own 4-bit packing permutes them further, so the bytes of the two libraries'
fast-scan arrays differ, and each one's packer reads its own).

Offsets are global, as in faiss's Python wrapper: code i of a 2-D
(nblocks, block_size) array lies in block i // nvec."""
import numpy as np


def _blocks(block, block_size, what):
    a = np.asarray(block)
    if a.dtype != np.uint8 or a.size % block_size:
        raise ValueError(f"{what}: a uint8 array of whole blocks of {block_size} bytes is expected, "
                         f"got {a.dtype} of {a.size} bytes")
    return a.reshape(-1, block_size)


class CodePacker:
    def __init__(self, code_size, nvec):
        if code_size < 1 or nvec < 1:
            raise ValueError("CodePacker: code_size and nvec must be positive")
        self.code_size = int(code_size)
        self.nvec = int(nvec)
        self.block_size = self.code_size * self.nvec

    def _where(self, blocks, offset):
        if not 0 <= offset < blocks.shape[0] * self.nvec:
            raise IndexError(f"CodePacker: offset {offset} is not in the {blocks.shape[0] * self.nvec} codes")
        b, i = divmod(int(offset), self.nvec)
        # byte p of code i: block b, at p * nvec + i
        return b, i + self.nvec * np.arange(self.code_size)

    def unpack_1(self, block, offset):
        blocks = _blocks(block, self.block_size, "unpack_1")
        b, cols = self._where(blocks, offset)
        return blocks[b, cols].copy()

    def pack_1(self, x, offset, block):
        x = np.asarray(x, dtype=np.uint8).ravel()
        if x.size != self.code_size:
            raise ValueError(f"pack_1: a code of {self.code_size} bytes is expected, got {x.size}")
        blocks = _blocks(block, self.block_size, "pack_1")
        if not np.shares_memory(blocks, block):
            raise ValueError("pack_1: block must be a contiguous uint8 array (it is written in place)")
        b, cols = self._where(blocks, offset)
        blocks[b, cols] = x

    def unpack_all(self, block):
        """The nvec codes of one block, (nvec, code_size)."""
        a = _blocks(block, self.block_size, "unpack_all")
        if a.shape[0] != 1:
            raise ValueError("unpack_all: one block is expected")
        return np.ascontiguousarray(a.reshape(self.code_size, self.nvec).T)

    def pack_all(self, flat_codes, block=None):
        """Lays nvec codes (nvec, code_size) out as one block; into block when given."""
        codes = np.asarray(flat_codes, dtype=np.uint8).reshape(self.nvec, self.code_size)
        out = np.ascontiguousarray(codes.T).ravel()
        if block is None:
            return out
        dst = _blocks(block, self.block_size, "pack_all")
        if dst.shape[0] != 1 or not np.shares_memory(dst, block):
            raise ValueError("pack_all: block must be one contiguous block of uint8 (it is written in place)")
        dst[0] = out
        return block


class CodePackerFlat(CodePacker):
    def __init__(self, code_size):
        super().__init__(code_size, 1)


class CodePackerPQ4(CodePacker):
    """nsq 4-bit subquantizers (two per byte) in blocks of bbs codes."""

    def __init__(self, nsq, bbs=32):
        super().__init__((int(nsq) + 1) // 2, bbs)


def _get_code_packer(index):
    """faiss's index.get_CodePacker(): the packer of index.codes (flat-code
    indexes) or of invlists.get_codes(l) (IVF, whose lists nearly hands out
    one code after the other)."""
    if isinstance(index, _nearly.IndexPQFastScan):
        return CodePackerPQ4(index.pq.M, index.bbs)
    return CodePackerFlat(index.code_size)


from . import _nearly  # noqa: E402

for _name in ("IndexFlat", "IndexPQ", "IndexScalarQuantizer", "IndexResidualQuantizer", "IndexLSH",
              "IndexRaBitQ", "IndexLattice", "IndexIVF"):
    if hasattr(_nearly, _name):
        getattr(_nearly, _name).get_CodePacker = _get_code_packer
