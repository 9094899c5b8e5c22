"""Helpers shared by tests/test_hnsw.py and tests/compat/test_hnsw_compat.py.

- the real-embedding subset (all-MiniLM-L6-v2 over package summaries, see
  ../shared/data/README.md), loaded once per test session;
- exact float64 k-NN with numpy (optionally filtered), recall@k;
- a Python port of nearly's checksum64 and a parser for the HNSWFlat body
  (IndexHNSWFlat::write_body) so tests can forge checksum-valid files.
"""
import functools
import os
import struct

import numpy as np
import pytest

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                    "pypi-minilm-100k.npz")

NB_REAL = 20_000  # base vectors used for recall tests
NEW_REAL = 6_000  # extra base vectors, added after deletions
NQ_REAL = 200


@functools.lru_cache(maxsize=1)
def _load_real():
    if not os.path.exists(DATA):
        return None
    with np.load(DATA) as z:
        base = np.ascontiguousarray(z["base"][:NB_REAL + NEW_REAL].astype(np.float32))
        queries = np.ascontiguousarray(z["queries"][:NQ_REAL].astype(np.float32))
    base.setflags(write=False)
    queries.setflags(write=False)
    return base, queries


def real_data():
    """(base[:26000], queries[:200]) as read-only float32 arrays; skips when the file is absent."""
    out = _load_real()
    if out is None:
        pytest.skip(f"real embeddings not found at {DATA}")
    return out


def clustered(seed, n, nq, d=32, nclusters=64, spread=0.15):
    """Gaussian blobs around random centres: base and queries drawn from the same mixture."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((nclusters, d))
    lab = rng.integers(nclusters, size=n + nq)
    x = centres[lab] + spread * rng.standard_normal((n + nq, d))
    x = x.astype(np.float32)
    return x[:n], x[n:]


def dist64(xq, xb, metric):
    """float64 (nq, nb) matrix: squared L2 (metric 1) or inner product (metric 0)."""
    xq = np.asarray(xq, np.float64)
    xb = np.asarray(xb, np.float64)
    ip = xq @ xb.T
    if metric == 1:
        return np.maximum((xq ** 2).sum(1)[:, None] + (xb ** 2).sum(1)[None, :] - 2 * ip, 0)
    return ip


def exact_knn(xq, xb, k, metric, ids=None, mask=None):
    """Exact top-k ids (nq, k) in float64; ids default to row numbers; rows failing
    `mask` (bool per base row) are excluded; missing results are -1."""
    ids = np.arange(len(xb), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    dist = dist64(xq, xb, metric)
    key = dist if metric == 1 else -dist
    if mask is not None:
        key = np.where(mask[None, :], key, np.inf)
    kk = min(k, key.shape[1])
    out = np.full((len(xq), k), -1, np.int64)
    if kk == 0:
        return out
    part = np.argpartition(key, kk - 1, axis=1)[:, :kk]
    order = np.take_along_axis(key, part, 1).argsort(1, kind="stable")
    cols = np.take_along_axis(part, order, 1)
    good = np.isfinite(np.take_along_axis(key, cols, 1))
    out[:, :kk] = np.where(good, ids[cols], -1)
    return out


def recall(I, Iref):
    """Mean over queries of |found ∩ true| / |true| (true = non-negative ids of Iref)."""
    tot = hit = 0
    for a, b in zip(I, Iref):
        t = set(int(v) for v in b if v >= 0)
        tot += len(t)
        hit += len(t & set(int(v) for v in a))
    return hit / tot if tot else 1.0


# ---------------------------------------------------------------- file forging

M64 = (1 << 64) - 1
HEADER = 24  # magic, u32 version, u32 flags, u64 payload size


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _mix(h, w):
    return (_rotl(h ^ ((w * 0x9E3779B97F4A7C15) & M64), 31) * 0xC2B2AE3D27D4EB4F) & M64


def checksum64(data):
    """Python port of nearly::checksum64 (cpp/src/io.cpp), words read in bulk."""
    data = bytes(data)
    h = [0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89]
    n = len(data)
    nfull = n // 32 * 32
    words = np.frombuffer(data[:nfull], dtype="<u8").reshape(-1, 4).tolist() if nfull else []
    for row in words:
        for lane in range(4):
            h[lane] = _mix(h[lane], row[lane])
    r = h[0] ^ _rotl(h[1], 17) ^ _rotl(h[2], 29) ^ _rotl(h[3], 43)
    for b in data[nfull:]:
        r = _mix(r, b)
    return _mix(r, n)


def current_format():
    """The format version nearly writes (its files' u32 after the magic)."""
    import nearly

    return struct.unpack_from("<I", bytes(nearly.serialize_index(nearly.IndexFlatL2(1))), 8)[0]


def reseal(payload, version=None):
    """A complete serialized index around `payload`, with a valid checksum
    (formats 2 and up: of the header, then of the payload's checksum), in
    format `version` (default: the current one)."""
    version = current_format() if version is None else version
    head = b"NEARLYIX" + struct.pack("<IIQ", version, 0, len(payload))
    return head + payload + struct.pack("<Q", checksum64(head + struct.pack("<Q", checksum64(payload))))


def _aligned(payload_offset, boundary):
    """The next payload offset whose file offset (after the header) is a
    multiple of boundary."""
    return payload_offset + (-(HEADER + payload_offset)) % boundary


class HNSWBody:
    """Offsets of the fields of a serialized IndexHNSWFlat (IndexHNSWFlat::write_body):

    str tag "HNSWFlat" | i32 d, metric, M, efConstruction, efSearch | i64 next_label, entry (slot)
    | i32 max_level | u64 nslots, block_bytes | vec<i64> labels | vec<i8> levels
    | zeros to a 64-byte file offset | blocks[nslots * block_bytes] | zeros to a 64-byte file offset
    | f32 vectors[nslots * d] | upper links of nodes with level > 0
    | vec<u32> free_slots. A level-0 block: f32 scale, f32 norm, i8 code[d padded to 4],
    u32 count, u32 links[2M]. An upper level: u32 count, u32 links[M].
    """

    def __init__(self, payload):
        self.p = bytes(payload)
        (tlen,) = struct.unpack_from("<Q", self.p, 0)
        assert self.p[8:8 + tlen] == b"HNSWFlat", self.p[8:8 + tlen]
        o = 8 + tlen
        self.o_d = o
        self.d, self.metric, self.M, self.efc, self.efs = struct.unpack_from("<5i", self.p, o)
        o += 20
        self.o_next_label = o
        self.o_entry = o + 8
        self.next_label, self.entry = struct.unpack_from("<qq", self.p, o)
        o += 16
        self.o_max_level = o
        (self.max_level,) = struct.unpack_from("<i", self.p, o)
        o += 4
        self.o_nslots = o
        self.nslots, self.block_bytes = struct.unpack_from("<QQ", self.p, o)
        o += 16
        (n,) = struct.unpack_from("<Q", self.p, o)
        assert n == self.nslots
        self.o_labels = o + 8
        self.labels = np.frombuffer(self.p, "<i8", n, self.o_labels).copy()
        o = self.o_labels + 8 * n
        (n2,) = struct.unpack_from("<Q", self.p, o)
        assert n2 == self.nslots
        self.o_levels = o + 8
        self.levels = np.frombuffer(self.p, "i1", n, self.o_levels).astype(int)
        o = self.o_levels + n
        o = _aligned(o, 64)  # format 3: blocks and vectors start on 64-byte file offsets
        self.o_blocks = o
        o += self.nslots * self.block_bytes
        o = _aligned(o, 64)
        self.o_vectors = o
        o += self.nslots * self.d * 4
        self.o_upper = {}
        for s in range(self.nslots):
            if self.levels[s] > 0:
                self.o_upper[s] = o
                o += int(self.levels[s]) * (1 + self.M) * 4
        self.o_free = o
        (nf,) = struct.unpack_from("<Q", self.p, o)
        self.free = np.frombuffer(self.p, "<u4", nf, o + 8).copy()
        assert o + 8 + 4 * nf == len(self.p), "unparsed bytes at the end of the HNSW body"
        self.links_offset = 8 + (self.d + 3) // 4 * 4

    def o_links(self, slot, level):
        """Offset of the u32 count of `slot`'s link list on `level` (links follow)."""
        if level == 0:
            return self.o_blocks + slot * self.block_bytes + self.links_offset
        return self.o_upper[slot] + (level - 1) * (1 + self.M) * 4

    def links(self, slot, level):
        o = self.o_links(slot, level)
        (cnt,) = struct.unpack_from("<I", self.p, o)
        return list(struct.unpack_from(f"<{cnt}I", self.p, o + 4))

    def patch(self, offset, fmt, value):
        b = bytearray(self.p)
        struct.pack_into(fmt, b, offset, value)
        return bytes(b)


def searching_while(write, search, n_searchers=3):
    """Runs search(i) over and over on n_searchers threads (i = 0, 1, ...)
    while write() runs on this one; raises the first error a searcher met."""
    import threading

    stop = threading.Event()
    errors = []

    def loop(i):
        try:
            while not stop.is_set():
                search(i)
        except Exception as e:  # noqa: BLE001 -- re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n_searchers)]
    for t in threads:
        t.start()
    try:
        write()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    if errors:
        raise errors[0]
