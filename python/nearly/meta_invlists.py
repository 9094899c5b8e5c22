"""faiss's meta inverted lists: objects that read other inverted lists
(an index's, or lists of their own) through a rule, without a copy.

    SliceInvertedLists(il, i0, i1)       lists i0 .. i1 of il
    VStackInvertedLists(n_il, ils)       the lists of each, one set after the other
    HStackInvertedLists(n_il, ils)       list l: list l of each, concatenated
    MaskedInvertedLists(il0, il1)        list l: il0's when not empty, else il1's
    StopWordsInvertedLists(il, maxsize)  lists of maxsize entries or more read empty
    CappedInvertedLists(il, maxsize)     each list's first maxsize entries (writes pass through)

Handed to an index with replace_invlists: stop-words and capped lists over
the index's own lists become limits on what its searches scan (the lists
stay the index's, so adds, removals and concurrent searches keep working,
and a later replace_invlists(index's lists) lifts them); other lists read
through a rule, and another index's lists in memory, are copied into the
index, which owns them from then on (faiss's index keeps a view instead;
nearly's indexes do not share lists: each one's lock guards its own).
Another index's lists in a file are refused rather than copied into memory.
"""
import numpy as np

from . import _nearly
from .compat import _ListVectors, imbalance_factor


def _sources(n_il, ils):
    ils = list(ils)
    n_il = int(n_il)
    if not 0 < n_il <= len(ils):
        raise ValueError(f"n_il = {n_il} but {len(ils)} inverted lists given")
    ils = ils[:n_il]
    for il in ils:
        _check_lists(il)
    return ils


def _check_lists(il):
    if not isinstance(il, (_nearly.InvertedLists, _MetaLists)):
        raise TypeError(f"expected inverted lists (index.invlists, ArrayInvertedLists, ...), got {type(il).__name__}")
    return il


def _read_only(name):
    def refuse(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__}.{name}: these lists are read-only (faiss's ReadOnlyInvertedLists)")
    return refuse


class _MetaLists:
    """What every inverted-lists object reads; subclasses say where list l is."""

    INVALID_CODE_SIZE = _nearly.InvertedLists.INVALID_CODE_SIZE

    @property
    def code_size(self):
        return self._code_size

    @property
    def _entry_code_size(self):
        return self._entry_size

    def _check(self, list_no):
        list_no = int(list_no)
        if not 0 <= list_no < self.nlist:
            raise ValueError(f"list number {list_no} out of range [0, {self.nlist})")
        return list_no

    def list_size(self, list_no):
        return len(self.get_ids(list_no))

    def is_empty(self, list_no, inverted_list_context=None):
        return self.list_size(list_no) == 0

    def compute_ntotal(self):
        return sum(self.list_size(l) for l in range(self.nlist))

    def imbalance_factor(self):
        return imbalance_factor(self.nlist, np.array([self.list_size(l) for l in range(self.nlist)], dtype=np.int64))

    def print_stats(self):
        counts = {}
        for l in range(self.nlist):
            s = self.list_size(l)
            j = int(s).bit_length()
            counts[j] = counts.get(j, 0) + 1
        for j in sorted(counts):
            print(f"list size in < {1 << j}: {counts[j]} instances")

    def get_codes(self, list_no):
        """The codes of one list, one entry after the other (a copy)."""
        return self._entry_codes(list_no)

    def get_single_id(self, list_no, offset):
        ids = self.get_ids(list_no)
        if not 0 <= int(offset) < len(ids):
            raise ValueError(f"offset {offset} past list {list_no}'s {len(ids)} entries")
        return int(ids[int(offset)])

    def get_single_code(self, list_no, offset):
        codes = self._entry_codes(list_no).reshape(-1, self._entry_size)
        if not 0 <= int(offset) < len(codes):
            raise ValueError(f"offset {offset} past list {list_no}'s {len(codes)} entries")
        return codes[int(offset)].copy()

    def release_ids(self, list_no, ids):
        pass

    def release_codes(self, list_no, codes):
        pass

    def prefetch_lists(self, list_nos, nlist=None):
        pass

    codes = property(lambda self: _ListVectors(self, type(self).get_codes),
                     doc="Per list, its codes (faiss's vector of vectors; copies).")
    ids = property(lambda self: _ListVectors(self, type(self).get_ids),
                   doc="Per list, its ids (faiss's vector of vectors; copies).")

    add_entries = _read_only("add_entries")
    add_entry = _read_only("add_entry")
    update_entries = _read_only("update_entries")
    update_entry = _read_only("update_entry")
    resize = _read_only("resize")
    reset = _read_only("reset")
    merge_from = _read_only("merge_from")
    permute_invlists = _read_only("permute_invlists")

    def _copy(self):
        return copy_lists(self)


class _OverOne(_MetaLists):
    """Lists read from one other set of lists."""

    def __init__(self, il):
        self.il = _check_lists(il)
        self._code_size, self._entry_size = il.code_size, il._entry_code_size


class SliceInvertedLists(_OverOne):
    """faiss's SliceInvertedLists: lists i0 .. i1 - 1 of il, as lists 0 .. i1 - i0 - 1."""

    def __init__(self, il, i0, i1):
        super().__init__(il)
        i0, i1 = int(i0), int(i1)
        if not 0 <= i0 <= i1 <= il.nlist:
            raise ValueError(f"SliceInvertedLists: [{i0}, {i1}) is not a range of the lists [0, {il.nlist})")
        self.i0, self.i1, self.nlist = i0, i1, i1 - i0

    def list_size(self, list_no):
        return self.il.list_size(self.i0 + self._check(list_no))

    def get_ids(self, list_no):
        return self.il.get_ids(self.i0 + self._check(list_no))

    def get_codes(self, list_no):
        return self.il.get_codes(self.i0 + self._check(list_no))

    def _entry_codes(self, list_no):
        return self.il._entry_codes(self.i0 + self._check(list_no))


class VStackInvertedLists(_MetaLists):
    """faiss's VStackInvertedLists: the lists of ils[0], then those of ils[1], ..."""

    def __init__(self, n_il, ils):
        self.ils = _sources(n_il, ils)
        sizes = {(il.code_size, il._entry_code_size) for il in self.ils}
        if len(sizes) != 1:
            raise ValueError("VStackInvertedLists: the lists must have the same code_size")
        (self._code_size, self._entry_size), = sizes
        self.cumsz = np.cumsum([0] + [il.nlist for il in self.ils]).astype(np.int64)
        self.nlist = int(self.cumsz[-1])

    def _where(self, list_no):
        l = self._check(list_no)
        i = int(np.searchsorted(self.cumsz, l, side="right")) - 1
        return self.ils[i], l - int(self.cumsz[i])

    def list_size(self, list_no):
        il, l = self._where(list_no)
        return il.list_size(l)

    def get_ids(self, list_no):
        il, l = self._where(list_no)
        return il.get_ids(l)

    def get_codes(self, list_no):
        il, l = self._where(list_no)
        return il.get_codes(l)

    def _entry_codes(self, list_no):
        il, l = self._where(list_no)
        return il._entry_codes(l)


class HStackInvertedLists(_MetaLists):
    """faiss's HStackInvertedLists (ConcatenatedInvertedLists): list l holds
    the entries of list l of each of ils, in their order."""

    def __init__(self, n_il, ils):
        self.ils = _sources(n_il, ils)
        if len({il.nlist for il in self.ils}) != 1 or len({il._entry_code_size for il in self.ils}) != 1:
            raise ValueError("HStackInvertedLists: the lists must have the same nlist and code_size")
        self.nlist = self.ils[0].nlist
        self._entry_size = self.ils[0]._entry_code_size
        self._code_size = self._entry_size  # entries one after the other, whatever the sources' layout

    def list_size(self, list_no):
        l = self._check(list_no)
        return sum(il.list_size(l) for il in self.ils)

    def get_ids(self, list_no):
        l = self._check(list_no)
        return np.concatenate([il.get_ids(l) for il in self.ils]).astype(np.int64)

    def _entry_codes(self, list_no):
        l = self._check(list_no)
        return np.concatenate([il._entry_codes(l) for il in self.ils]).astype(np.uint8)


ConcatenatedInvertedLists = HStackInvertedLists


class MaskedInvertedLists(_MetaLists):
    """faiss's MaskedInvertedLists: list l of il0 where it is not empty, else list l of il1."""

    def __init__(self, il0, il1):
        self.il0, self.il1 = _check_lists(il0), _check_lists(il1)
        if il0.nlist != il1.nlist or il0._entry_code_size != il1._entry_code_size:
            raise ValueError("MaskedInvertedLists: the lists must have the same nlist and code_size")
        self.nlist, self._code_size, self._entry_size = il0.nlist, il0.code_size, il0._entry_code_size

    def _pick(self, list_no):
        l = self._check(list_no)
        return (self.il0 if self.il0.list_size(l) else self.il1), l

    def list_size(self, list_no):
        il, l = self._pick(list_no)
        return il.list_size(l)

    def get_ids(self, list_no):
        il, l = self._pick(list_no)
        return il.get_ids(l)

    def get_codes(self, list_no):
        il, l = self._pick(list_no)
        return il.get_codes(l)

    def _entry_codes(self, list_no):
        il, l = self._pick(list_no)
        return il._entry_codes(l)


class _Limited(_OverOne):
    """Lists read through a limit on their size (stop words, a cap)."""

    stop_words = None  # set by the subclasses

    def __init__(self, il, maxsize):
        super().__init__(il)
        maxsize = int(maxsize)
        if maxsize < (0 if self.stop_words else 1):
            raise ValueError(f"{type(self).__name__}: maxsize must be {'non-negative' if self.stop_words else 'positive'}")
        self.maxsize, self.nlist = maxsize, il.nlist

    @property
    def il0(self):
        return self.il

    def _limit(self, n):
        if self.stop_words:
            return n if n < self.maxsize else 0
        return min(n, self.maxsize)

    def real_list_size(self, list_no):
        return self.il.list_size(self._check(list_no))

    def list_size(self, list_no):
        return self._limit(self.real_list_size(list_no))

    def get_ids(self, list_no):
        return self.il.get_ids(self._check(list_no))[:self.list_size(list_no)]

    def _entry_codes(self, list_no):
        n = self.list_size(list_no)
        return self.il._entry_codes(self._check(list_no))[:n * self._entry_size]

    def get_codes(self, list_no):
        if self.il.code_size == self.INVALID_CODE_SIZE:  # fast-scan blocks: whole ones, or none
            return self.il.get_codes(self._check(list_no)) if self.list_size(list_no) else np.zeros(0, np.uint8)
        return self._entry_codes(list_no)


class StopWordsInvertedLists(_Limited):
    """faiss's StopWordsInvertedLists: lists of maxsize entries or more read
    empty (a search skips them); the others as they are."""

    stop_words = True


class CappedInvertedLists(_Limited):
    """faiss's CappedInvertedLists: each list read as its first maxsize
    entries (a search scans no more); writes pass through to il."""

    stop_words = False

    def _write(name):
        def through(self, *args, **kwargs):
            return getattr(self.il, name)(*args, **kwargs)
        through.__name__ = name
        through.__doc__ = f"{name} on the lists under the cap."
        return through

    add_entries = _write("add_entries")
    add_entry = _write("add_entry")
    update_entries = _write("update_entries")
    update_entry = _write("update_entry")
    resize = _write("resize")
    reset = _write("reset")
    del _write


def copy_lists(il):
    """An ArrayInvertedLists holding what il reads (entries one after the other)."""
    out = _nearly.ArrayInvertedLists(il.nlist, il._entry_code_size)
    for l in range(il.nlist):
        ids = il.get_ids(l)
        if len(ids):
            out.add_entries(l, len(ids), ids, il._entry_codes(l))
    return out


def _limits_of(il):
    """(the lists under every stop-words / cap rule, the rules innermost first)."""
    limits = []
    while isinstance(il, _Limited):
        limits.insert(0, (il.stop_words, il.maxsize))
        il = il.il
    return il, limits


def replace_invlists(index, il, own, replace):
    """index.replace_invlists(il, own) for any inverted-lists object;
    replace(index, lists, own) hands lists of their own to the index."""
    base, limits = _limits_of(_check_lists(il))
    if isinstance(base, _nearly.InvertedLists) and base._reads_index(index):
        pass  # the index's own lists: only the limits change
    else:
        if base.nlist != index.nlist:
            raise ValueError(f"replace_invlists: the lists have nlist = {base.nlist}, the index {index.nlist}")
        # Another index's lists, or lists read through a rule, are copied;
        # not lists in a file (into memory, behind the caller's back): the
        # index refuses them, saying why.
        if isinstance(base, _MetaLists) or (base._belongs_to_index and not isinstance(base, _nearly.OnDiskInvertedLists)):
            base = copy_lists(base)
        replace(index, base, own)
    index._list_limits = limits


def invlists_of(index, lists):
    """index.invlists: its lists, read through its stop-words / cap limits."""
    for stop, maxsize in index._list_limits:
        lists = (StopWordsInvertedLists if stop else CappedInvertedLists)(lists, maxsize)
    return lists


_own_invlists = _nearly.IndexIVF.invlists
_nearly.IndexIVF.invlists = property(lambda self: invlists_of(self, _own_invlists.fget(self)),
                                     doc="The index's inverted lists (faiss's; read them, change them through the "
                                         "index), through its stop-words / cap limits if it has any.")
