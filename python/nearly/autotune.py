"""faiss's auto-tuning (AutoTune.h): search parameters set by name, the
parameter ranges of an index, and the exploration of their combinations for
the Pareto-optimal (accuracy, time) operating points.

``ParameterSpace.explore`` runs faiss's algorithm: combinations in faiss's
order (the cheapest, the most expensive, then a permutation seeded 1234), a
combination skipped when the points already measured prove it cannot be
optimal (a combination with every parameter at least as large is no faster,
one with every parameter at most as large no more accurate), at most
``n_experiments`` searches. The loop is plain Python; each experiment is one
native, multi-threaded search."""
import time

import numpy as np

from . import _nearly
from .compat import ObjectVector, eval_intersection
from .shards import IndexReplicas, IndexShards


class ParameterRange:
    """A parameter's name and the values explored (faiss's struct)."""

    def __init__(self, name="", values=()):
        self.name = name
        self.values = list(values)

    def __repr__(self):
        return f"ParameterRange({self.name!r}, {self.values})"


class OperatingPoint:
    """perf (the criterion's score), t (search seconds), key (the
    combination's name) and cno (its number), as faiss."""

    __slots__ = ("perf", "t", "key", "cno")

    def __init__(self, perf, t, key, cno):
        self.perf, self.t, self.key, self.cno = float(perf), float(t), key, int(cno)

    def __repr__(self):
        return f"OperatingPoint(perf={self.perf:.4f}, t={self.t:.4g}, key={self.key!r}, cno={self.cno})"


class OperatingPoints:
    """Every measured point and the Pareto-optimal ones (ascending perf and
    time; the first is "do nothing": perf 0 in no time), with faiss's rules
    for adding a point."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.all_pts = ObjectVector()
        self.optimal_pts = ObjectVector([OperatingPoint(0, 0, "", -1)])

    def add(self, perf, t, key="", cno=0):
        """Records a point; True when it is (for now) Pareto-optimal."""
        op = OperatingPoint(perf, t, key, cno)
        self.all_pts.append(op)
        if op.perf == 0:
            return False  # no method of 0 accuracy beats doing nothing
        a = self.optimal_pts
        if op.perf > a[-1].perf:
            a.append(op)
        elif op.perf == a[-1].perf:
            if op.t >= a[-1].t:
                return False
            a[-1] = op
        else:
            i = next(i for i, p in enumerate(a) if p.perf >= op.perf)
            if op.t >= a[i].t:
                return False
            if a[i].perf == op.perf:
                a[i] = op
            else:
                a.insert(i, op)
        # drop the points the new one made non-optimal (as slow, less accurate)
        i = len(a) - 1
        while i > 0:
            if a[i].t <= a[i - 1].t:
                del a[i - 1]
            i -= 1
        return True

    def merge_with(self, other, prefix=""):
        """Adds other's points (keys prefixed); returns how many were optimal."""
        return sum(self.add(op.perf, op.t, prefix + op.key, op.cno) for op in other.all_pts)

    def t_for_perf(self, perf):
        """The time of the fastest optimal point reaching perf (1e50 if none does)."""
        a = self.optimal_pts
        if perf > a[-1].perf:
            return 1e50
        return next(p.t for p in a if p.perf >= perf)

    def display(self, only_optimal=True):
        pts = self.optimal_pts if only_optimal else self.all_pts
        optimal = {p.cno for p in self.optimal_pts}
        print(f"Tested {len(self.all_pts)} operating points, {len(self.optimal_pts)} ones are Pareto-optimal:")
        for op in pts:
            star = "*" if not only_optimal and op.cno in optimal else ""
            print(f"cno={op.cno} key={op.key} perf={op.perf:.4f} t={op.t:.3f} {star}")

    def all_to_gnuplot(self, fname):
        with open(fname, "w") as f:
            for op in self.all_pts:
                f.write(f"{op.perf:g} {op.t:g} {op.key}\n")

    def optimal_to_gnuplot(self, fname):
        with open(fname, "w") as f:
            prev = 0.0
            for op in self.optimal_pts:
                f.write(f"{prev:g} {op.t:g}\n{op.perf:g} {op.t:g} {op.key}\n")
                prev = op.perf


def _as_vector(a, vector_class):
    """A faiss-style typed vector holding a's values (empty for None)."""
    from .compat import copy_array_to_vector

    v = vector_class()
    if a is not None:
        copy_array_to_vector(a.ravel(), v)
    return v


class AutoTuneCriterion:
    """What an exploration maximizes: a score of search results (nq queries,
    nnn results each) against a ground truth set by ``set_groundtruth``."""

    def __init__(self, nq, nnn):
        if int(nq) <= 0 or int(nnn) <= 0:
            raise _nearly.InvalidArgumentError("a criterion needs nq > 0 queries and nnn > 0 results")
        self.nq, self.nnn, self.gt_nnn = int(nq), int(nnn), 0
        self._gt_D = self._gt_I = None

    # faiss's fields: std::vectors of nq * gt_nnn entries (copies here; set
    # them through set_groundtruth). gt_D is empty when no distances were given.
    @property
    def gt_I(self):
        from .compat import Int64Vector

        return _as_vector(self._gt_I, Int64Vector)

    @property
    def gt_D(self):
        from .compat import Float32Vector

        return _as_vector(self._gt_D, Float32Vector)

    def set_groundtruth(self, D, I):
        """I: (nq, gt_nnn) true neighbour ids, best first; D (optional) their distances."""
        I = np.ascontiguousarray(I, dtype=np.int64)
        if I.ndim != 2 or len(I) != self.nq:
            raise _nearly.InvalidArgumentError(f"set_groundtruth: I must be ({self.nq}, gt_nnn), got {I.shape}")
        if D is not None:
            D = np.ascontiguousarray(D, dtype=np.float32)
            if D.shape != I.shape:
                raise _nearly.InvalidArgumentError("set_groundtruth: D and I must have the same shape")
        self.gt_nnn = I.shape[1]
        self._gt_D, self._gt_I = D, I

    def _results(self, D, I, need_gt):
        if self._gt_I is None or self.gt_nnn < need_gt:
            raise RuntimeError("ground truth not initialized")
        I = np.asarray(I)
        if I.shape != (self.nq, self.nnn):
            raise _nearly.InvalidArgumentError(f"evaluate: I must be ({self.nq}, {self.nnn}), got {I.shape}")
        return I


class OneRecallAtRCriterion(AutoTuneCriterion):
    """1-recall@R: the share of queries whose true nearest neighbour is among
    the first R results."""

    def __init__(self, nq, R):
        super().__init__(nq, R)
        self.R = int(R)

    def evaluate(self, D, I):
        I = self._results(D, I, 1)
        return float((I[:, :self.R] == self._gt_I[:, :1]).any(axis=1).mean())


class IntersectionCriterion(AutoTuneCriterion):
    """R-recall@R: the share of the true R nearest neighbours among the first
    R results (each id counted once, -1 never)."""

    def __init__(self, nq, R):
        super().__init__(nq, R)
        self.R = int(R)

    def evaluate(self, D, I):
        I = self._results(D, I, self.R)
        return eval_intersection(I[:, :self.R], self._gt_I[:, :self.R]) / (self.nq * self.R)


def _unwrap(index):
    """The index a parameter goes to through IDMap / pre-transform wrappers."""
    while isinstance(index, (_nearly.IndexIDMap, _nearly.IndexPreTransform, _nearly.IndexBinaryIDMap)):
        index = index.index
    return index


class ParameterSpace:
    """faiss's ParameterSpace. Setting search parameters by name on an index
    and whatever wraps it (``set_index_parameter(index, "nprobe", 16)``,
    ``set_index_parameters(index, "nprobe=16,efSearch=64")`` or a combination
    number), with faiss's names and rules: IDMap and pre-transforms pass
    every name to the index inside; a refine index takes ``k_factor_rf`` and
    passes the rest to its base; ``quantizer_<name>`` goes to an IVF index's
    quantizer; ``efSearch`` and ``efConstruction`` on an IVF index reach an
    HNSW quantizer; ``verbose`` is set on every level. A name that applies
    nowhere raises RuntimeError, as in faiss.

    ``initialize(index)`` lists the ranges faiss would (``k_factor_rf`` 1..64,
    ``nprobe`` powers of 2 below nlist, the quantizer's ranges as
    ``quantizer_*``, ``efSearch`` 4..512 on HNSW, the polysemous ``ht`` of
    PQ and IVFPQ indexes). ``explore``
    then finds the Pareto-optimal operating points for a criterion."""

    def __init__(self):
        self.verbose = 1
        self.n_experiments = 500
        self.batchsize = 1 << 30
        self.thread_over_batches = False  # accepted for faiss's API; each search is parallel already
        self.min_test_duration = 0.0
        self.parameter_ranges = []

    # ---- ranges and combinations

    def add_range(self, name):
        for pr in self.parameter_ranges:
            if pr.name == name:
                return pr
        pr = ParameterRange(name)
        self.parameter_ranges.append(pr)
        return pr

    def initialize(self, index):
        index = _unwrap(index)
        if isinstance(index, _nearly.IndexRefine):
            self.add_range("k_factor_rf").values = [float(1 << i) for i in range(7)]
            index = _unwrap(index.base_index)
        if isinstance(index, (_nearly.IndexIVF, _nearly.IndexBinaryIVF)):
            self.add_range("nprobe").values = [float(1 << i) for i in range(13) if (1 << i) < index.nlist]
            sub = ParameterSpace()
            sub.initialize(index.quantizer)
            for pr in sub.parameter_ranges:
                self.add_range("quantizer_" + pr.name).values = list(pr.values)
        if isinstance(index, (_nearly.IndexPQ, _nearly.IndexIVFPQ)) and not isinstance(
                index, (_nearly.IndexPQFastScan, _nearly.IndexIVFPQFastScan)):
            # faiss's: polysemous thresholds 2, 4, .. half the code's bits
            # (code sizes that are a multiple of 4), then the bit count (no filter)
            bits = index.pq.code_size * 8
            ht = [float(v) for v in range(2, bits // 2 + 1, 2)] if index.pq.code_size % 4 == 0 else []
            self.add_range("ht").values = ht + [float(bits)]
        if isinstance(index, (_nearly.IndexHNSWFlat, _nearly.IndexHNSWPQ, _nearly.IndexHNSWSQCodes)):
            self.add_range("efSearch").values = [float(1 << i) for i in range(2, 10)]

    def n_combinations(self):
        n = 1
        for pr in self.parameter_ranges:
            n *= len(pr.values)
        return n

    def _check_cno(self, cno):
        cno = int(cno)
        if not 0 <= cno < self.n_combinations():
            raise _nearly.InvalidArgumentError(
                f"combination {cno} out of range: there are {self.n_combinations()}")
        return cno

    def _values(self, cno):
        """(name, value) of each parameter of combination cno; the first
        range varies fastest, as faiss numbers them."""
        out = []
        for pr in self.parameter_ranges:
            out.append((pr.name, pr.values[cno % len(pr.values)]))
            cno //= len(pr.values)
        return out

    def combination_name(self, cno):
        return ",".join(f"{name}={val:g}" for name, val in self._values(self._check_cno(cno)))

    def combination_ge(self, c1, c2):
        """Whether every parameter of c1 is at least c2's (by position in its range)."""
        for pr in self.parameter_ranges:
            n = len(pr.values)
            if c1 % n < c2 % n:
                return False
            c1 //= n
            c2 //= n
        return True

    def display(self):
        print(f"ParameterSpace, {len(self.parameter_ranges)} parameters, {self.n_combinations()} combinations:")
        for pr in self.parameter_ranges:
            print(f"   {pr.name}: " + ", ".join(f"{v:g}" for v in pr.values))

    # ---- setting parameters

    def set_index_parameters(self, index, description):
        """A combination number, or a string like "nprobe=16,efSearch=64"."""
        if isinstance(description, (int, np.integer)) and not isinstance(description, bool):
            for name, val in self._values(self._check_cno(description)):
                self.set_index_parameter(index, name, val)
            return
        if not isinstance(description, str):
            raise TypeError("set_index_parameters: a combination number or a string like 'nprobe=16,efSearch=64'")
        for item in description.replace(" ", ",").split(","):
            if not item:
                continue
            name, sep, value = item.partition("=")
            try:
                val = float(value)
            except ValueError:
                val = None
            if not sep or not name or val is None:
                raise RuntimeError(f"ParameterSpace::set_index_parameters: could not interpret parameters {item!r}")
            self.set_index_parameter(index, name, val)

    def set_index_parameter(self, index, name, val):
        if self.verbose > 1:
            print(f"    set_index_parameter {name}={val:g}")
        if name == "verbose":
            index.verbose = bool(int(val))  # and on the indexes inside, below
        if isinstance(index, (IndexShards, IndexReplicas)):  # every part
            for i in range(index.count()):
                self.set_index_parameter(index.at(i), name, val)
            return
        if isinstance(index, (_nearly.IndexIDMap, _nearly.IndexPreTransform, _nearly.IndexBinaryIDMap)):
            return self.set_index_parameter(index.index, name, val)
        if isinstance(index, _nearly.IndexRefine):
            if name == "k_factor_rf":
                index.k_factor = float(int(val))
                return
            return self.set_index_parameter(index.base_index, name, val)
        if name == "verbose":
            return
        ivf = isinstance(index, (_nearly.IndexIVF, _nearly.IndexBinaryIVF))
        if name == "nprobe" and ivf:
            index.nprobe = int(val)
            return
        fast_scan = isinstance(index, (_nearly.IndexPQFastScan, _nearly.IndexIVFPQFastScan))  # not PQ classes in faiss
        if name == "ht" and isinstance(index, (_nearly.IndexPQ, _nearly.IndexIVFPQ)) and not fast_scan:
            # faiss: ht >= the code's bit count means plain PQ search, a
            # smaller one polysemous filtering
            no_filter = val >= index.pq.code_size * 8
            if isinstance(index, _nearly.IndexIVFPQ):
                index.polysemous_ht = 0 if no_filter else int(val)
            elif no_filter:
                index.search_type = _nearly.IndexPQ.ST_PQ
            else:
                index.search_type = _nearly.IndexPQ.ST_polysemous
                index.polysemous_ht = int(val)
            return
        if name in ("efSearch", "efConstruction"):
            target = index if hasattr(index, "hnsw") else None
            if target is None and ivf and hasattr(index.quantizer, "hnsw"):
                target = index.quantizer
            if target is not None:
                setattr(target.hnsw, name, int(val))
                return
        if name.startswith("quantizer_") and ivf:
            return self.set_index_parameter(index.quantizer, name[len("quantizer_"):], val)
        raise RuntimeError(f"ParameterSpace::set_index_parameter: could not set parameter {name}")

    # ---- exploration

    def update_bounds(self, cno, op, upper_bound_perf, lower_bound_t):
        """faiss's bounds on combination cno from a measured point: returns
        (upper bound on its perf, lower bound on its time)."""
        if self.combination_ge(cno, op.cno):
            lower_bound_t = max(lower_bound_t, op.t)
        if self.combination_ge(op.cno, cno):
            upper_bound_perf = min(upper_bound_perf, op.perf)
        return upper_bound_perf, lower_bound_t

    def _timed_search(self, index, xq, k):
        nq = len(xq)
        D = np.empty((nq, k), dtype=np.float32)
        I = np.empty((nq, k), dtype=np.int64)
        t0 = time.perf_counter()
        nrun = 0
        while True:
            for q0 in range(0, nq, self.batchsize):
                q1 = min(nq, q0 + self.batchsize)
                D[q0:q1], I[q0:q1] = index.search(xq[q0:q1], k)
            nrun += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= self.min_test_duration:
                return D, I, elapsed / nrun, nrun

    def explore(self, index, xq, crit):
        """Searches xq with the combinations faiss would try and returns the
        OperatingPoints (perf = crit.evaluate, t = search seconds)."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        if xq.ndim != 2 or xq.shape != (crit.nq, index.d):
            raise _nearly.InvalidArgumentError(
                f"explore: xq must be ({crit.nq}, {index.d}) (the criterion's nq), got {xq.shape}")
        ops = OperatingPoints()
        n_comb = self.n_combinations()
        if self.n_experiments == 0:
            order = list(range(n_comb))
        else:
            if n_comb > 1 and min(self.n_experiments, n_comb) <= 2:
                raise RuntimeError("explore: n_experiments must be above 2")
            order = [0]
            if n_comb > 1:
                perm = np.empty(n_comb - 2, dtype=np.intc)
                _nearly._rand_perm(perm, 1234)
                order += [n_comb - 1] + (perm + 1).tolist()
            order = order[:min(self.n_experiments, n_comb)]
        for xp, cno in enumerate(order):
            name = self.combination_name(cno)
            if self.n_experiments != 0:
                upper_perf, lower_t = 1.0, 0.0
                for op in ops.all_pts:
                    upper_perf, lower_t = self.update_bounds(cno, op, upper_perf, lower_t)
                skip = ops.t_for_perf(upper_perf) <= lower_t
                if self.verbose:
                    print(f"  {xp}/{len(order)}: cno={cno} {name} bounds [perf<={upper_perf:.3f} t>={lower_t:.3f}]"
                          + (" skip" if skip else ""), end="\n" if skip else " ", flush=True)
                if skip:
                    continue
            self.set_index_parameters(index, cno)
            D, I, t, nrun = self._timed_search(index, xq, crit.nnn)
            perf = crit.evaluate(D, I)
            keep = ops.add(perf, t, name, cno)
            if self.verbose:
                runs = "runs" if nrun >= 2 else "run"
                prefix = f"  {cno}/{n_comb}: {name}" if self.n_experiments == 0 else ""
                print(f"{prefix} perf {perf:.3f} t {t:.3f} ({nrun} {runs}) {'*' if keep else ''}", flush=True)
        return ops
