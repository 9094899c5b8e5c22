"""IndexBinaryIVF.invlists: faiss's inverted-list calls over a binary IVF
index's lists (list_size, get_ids, get_codes, ...), read through the index,
as contrib's inspect tools and faiss code walking the lists use them. The
lists change through the index (add, add_preassigned, remove_ids, reset)."""
import numpy as np

from . import _nearly


class BinaryInvertedLists:
    """The lists of one IndexBinaryIVF (copies on each call: the index may
    change between calls, and a copy never dangles)."""

    def __init__(self, index):
        self._index = index

    @property
    def nlist(self):
        return self._index.nlist

    @property
    def code_size(self):
        return self._index.code_size

    def _check(self, list_no):
        list_no = int(list_no)
        if not 0 <= list_no < self.nlist:
            raise _nearly.InvalidArgumentError(f"list number {list_no} out of range [0, {self.nlist})")
        return list_no

    def list_size(self, list_no):
        return self._index.list_size(self._check(list_no))

    def is_empty(self, list_no, inverted_list_context=None):
        return self.list_size(list_no) == 0

    def get_ids(self, list_no):
        return self._index.get_list_ids(self._check(list_no))

    def get_codes(self, list_no):
        """The list's codes, one after the other (list_size * code_size bytes)."""
        return self._index.get_list_codes(self._check(list_no)).reshape(-1)

    def get_single_id(self, list_no, offset):
        ids = self.get_ids(list_no)
        if not 0 <= int(offset) < len(ids):
            raise _nearly.InvalidArgumentError(f"offset {offset} out of list {list_no} of {len(ids)} entries")
        return int(ids[int(offset)])

    def get_single_code(self, list_no, offset):
        codes = self._index.get_list_codes(self._check(list_no))
        if not 0 <= int(offset) < len(codes):
            raise _nearly.InvalidArgumentError(f"offset {offset} out of list {list_no} of {len(codes)} entries")
        return codes[int(offset)].copy()

    def release_ids(self, list_no, ids=None):
        """faiss frees a scratch copy here; nearly's are ordinary arrays."""

    release_codes = release_ids

    def compute_ntotal(self):
        return sum(self.list_size(l) for l in range(self.nlist))

    def imbalance_factor(self):
        """faiss's: nlist * sum(size^2) / (sum(size))^2, 1 when the lists are even."""
        sizes = np.array([self.list_size(l) for l in range(self.nlist)], dtype=np.float64)
        total = sizes.sum()
        return float((sizes ** 2).sum() * self.nlist / (total * total)) if total else 0.0

    def print_stats(self):
        sizes = [self.list_size(l) for l in range(self.nlist)]
        print(f"BinaryInvertedLists: {self.nlist} lists, {sum(sizes)} entries, "
              f"sizes {min(sizes)}..{max(sizes)}, imbalance factor {self.imbalance_factor():.3f}")

    def _read_only(self, *args, **kwargs):
        raise RuntimeError("these inverted lists belong to an IndexBinaryIVF; change them through the index "
                           "(add, add_preassigned, remove_ids, reset)")

    add_entry = add_entries = update_entry = update_entries = resize = reset = _read_only


_nearly.IndexBinaryIVF.invlists = property(BinaryInvertedLists, doc=BinaryInvertedLists.__doc__)
