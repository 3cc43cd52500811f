"""scikit-learn's k-nearest-neighbour search, replayed step by step for queries with tied distances.

Which of several training rows tied at the k-th distance scikit-learn keeps is decided by the order in
which its search offers candidates to a bounded max-heap (``sklearn/utils/_heap.pyx`` ``heap_push``: a
candidate enters only when strictly nearer than the root) and by the search's own arithmetic. This module
repeats both for one query at a time (see docs/format/neighbors.md, *Ties*):

* ``brute``: reduced distances to every training row in row order (``ArgKmin``: the squared euclidean
  distance through ``‖x‖² − 2x·f + ‖f‖²``, other metrics' ``rdist``), one thread's heap merged into the
  result heap (``_parallel_on_Y_synchronize``), then ``simultaneous_sort``; cosine goes through
  ``np.argpartition`` and ``np.argsort`` as in ``KNeighborsMixin._kneighbors_reduce_func``.
* ``kd_tree``, ``ball_tree``: ``BinaryTree._query_single_depthfirst`` over the exported node layout, with
  the trees' node bounds (``min_rdist``) computed as scikit-learn computes them (``math.pow`` where it
  calls C's ``pow``).

Only rows whose k-th and (k+1)-th distances are (nearly) equal come here; the others take the vectorised
path of ``neighbors.py``, which gives the same neighbours.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DBL_MAX = 1.7976931348623157e308  # ArgKmin's heaps start full of DBL_MAX (index 0, or -1 per thread)
INF = math.inf


def heap_push(values: list[float], indices: list[int], val: float, idx: int) -> None:
    """sklearn.utils._heap.heap_push: a fixed-size max-heap; ``val`` enters only if < the root."""
    size = len(values)
    if val >= values[0]:
        return
    cur = 0
    while True:
        left = 2 * cur + 1
        right = left + 1
        if left >= size:
            break
        if right >= size:
            if values[left] > val:
                swap = left
            else:
                break
        elif values[left] >= values[right]:
            if val < values[left]:
                swap = left
            else:
                break
        elif val < values[right]:
            swap = right
        else:
            break
        values[cur] = values[swap]
        indices[cur] = indices[swap]
        cur = swap
    values[cur] = val
    indices[cur] = idx


def push_all(values: list[float], indices: list[int], vals: np.ndarray, idx: np.ndarray) -> None:
    """Push ``vals[i], idx[i]`` in order; the root only decreases, so a block is first filtered by it."""
    n = vals.shape[0]
    pos, block = 0, max(4 * len(values), 64)
    while pos < n:
        seg = vals[pos:pos + block]
        for c in np.flatnonzero(seg < values[0]).tolist():
            heap_push(values, indices, float(seg[c]), int(idx[pos + c]))
        pos += block
        block *= 2


def simultaneous_sort(values: list[float], indices: list[int]) -> None:
    """sklearn.utils._sorting.simultaneous_sort (2-way introsort, insertion sort below 16), in place."""
    n = len(values)
    if n:
        _introsort(values, indices, 0, n, 2 * int(math.log2(n)))


def _swap(v: list[float], ix: list[int], i: int, j: int) -> None:
    v[i], v[j] = v[j], v[i]
    ix[i], ix[j] = ix[j], ix[i]


def _introsort(v: list[float], ix: list[int], lo: int, n: int, maxd: int) -> None:
    while n > 15:
        if maxd <= 0:
            _heapsort(v, ix, lo, n)
            return
        maxd -= 1
        # inplace_median3
        mid = lo + n // 2
        last = lo + n - 1
        if v[lo] > v[last]:
            _swap(v, ix, lo, last)
        if v[last] > v[mid]:
            _swap(v, ix, last, mid)
            if v[lo] > v[last]:
                _swap(v, ix, lo, last)
        pivot = v[last]
        i, j = lo + 1, lo + n - 2
        while True:
            while i <= j and v[i] < pivot:
                i += 1
            while i <= j and v[j] > pivot:
                j -= 1
            if i >= j:
                break
            _swap(v, ix, i, j)
            i += 1
            j -= 1
        _swap(v, ix, i, last)
        pivot_idx = i - lo
        _introsort(v, ix, lo, pivot_idx, maxd)
        lo += pivot_idx + 1
        n -= pivot_idx + 1
    for i in range(lo + 1, lo + n):  # insertion_sort
        tv, ti = v[i], ix[i]
        j = i
        while j > lo and v[j - 1] > tv:
            v[j] = v[j - 1]
            ix[j] = ix[j - 1]
            j -= 1
        v[j] = tv
        ix[j] = ti


def _heapsort(v: list[float], ix: list[int], lo: int, n: int) -> None:
    def sift_down(start: int, end: int) -> None:
        root = start
        while True:
            child = root * 2 + 1
            maxind = root
            if child < end and v[lo + maxind] < v[lo + child]:
                maxind = child
            if child + 1 < end and v[lo + maxind] < v[lo + child + 1]:
                maxind = child + 1
            if maxind == root:
                break
            _swap(v, ix, lo + root, lo + maxind)
            root = maxind

    start = (n - 2) // 2
    while True:
        sift_down(start, n)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(v, ix, lo, lo + end)
        sift_down(0, end)
        end -= 1


class Search:
    """One fitted model's search: metric, algorithm and (for trees) the exported node layout.

    Arrays arrive decoded and checked (``neighbors.py`` loads them); the node arrays become Python
    lists once, here, because the traversal reads them one scalar at a time.
    """

    def __init__(self, algorithm: str, metric: str, p: float, fit_X: np.ndarray,
                 tree: dict[str, Any] | None) -> None:
        self.algorithm = algorithm
        self.metric = metric
        self.p = {"euclidean": 2.0, "manhattan": 1.0, "chebyshev": INF}.get(metric, p)
        self.fit_X = fit_X
        self._fit_T: np.ndarray | None = None  # features x rows, for per-feature sequential sums
        self._fit_sq: np.ndarray | None = None  # ‖f‖² per training row (brute euclidean)
        if tree is not None:
            self.idx_array = np.asarray(tree["idx_array"], dtype=np.intp)
            self.sorted_T = np.ascontiguousarray(fit_X[self.idx_array].T)
            self.start: list[int] = tree["node_start"].tolist()
            self.end: list[int] = tree["node_end"].tolist()
            self.leaf: list[bool] = [bool(v) for v in tree["node_is_leaf"].tolist()]
            bounds = tree["node_bounds"]
            self.lower: list[list[float]] = bounds[0].tolist()
            self.upper: list[list[float]] = bounds[1].tolist() if algorithm == "kd_tree" else []
            radius = tree.get("node_radius")
            self.radius: list[float] = radius.tolist() if radius is not None else []

    # -- reduced distances, as the search computes them --------------------------------------------
    def _rdist_columns(self, x: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Reduced distance from ``x`` to each column of ``cols`` (features x rows): one feature after
        the other, as the C loops accumulate; Minkowski powers through C's ``pow`` (``math.pow``)."""
        m = self.metric
        acc = np.zeros(cols.shape[1])
        if m == "minkowski":
            p, out = self.p, []
            for col in np.abs(x[:, None] - cols).T.tolist():
                s = 0.0
                for v in col:
                    s += math.pow(v, p)
                out.append(s)
            return np.array(out, dtype=np.float64)
        for j in range(cols.shape[0]):
            t = x[j] - cols[j]
            if m == "euclidean":
                acc = acc + t * t
            elif m == "manhattan":
                acc = acc + np.abs(t)
            else:
                acc = np.fmax(acc, np.abs(t))
        return acc

    def _brute_rdist(self, x: np.ndarray) -> np.ndarray:
        if self.metric == "euclidean":  # EuclideanArgKmin: (‖x‖² + (−2 x·f)) + ‖f‖², clipped at 0
            if self._fit_sq is None:
                self._fit_sq = np.array([float(np.dot(r, r)) for r in self.fit_X])
            # a matrix product of two query rows: numpy then calls GEMM as scikit-learn does (a single
            # row goes through GEMV, whose rounding differs)
            middle = (np.vstack([x, x]) @ self.fit_X.T)[0]
            sq = (float(np.dot(x, x)) + (-2.0 * middle)) + self._fit_sq
            return np.maximum(sq, 0.0)
        if self._fit_T is None:
            self._fit_T = np.ascontiguousarray(self.fit_X.T)
        return self._rdist_columns(x, self._fit_T)

    def _to_dist_c(self, r: list[float]) -> np.ndarray:
        """``_rdist_to_dist`` in C (ArgKmin.compute_exact_distances)."""
        if self.metric == "euclidean":
            return np.sqrt(np.maximum(np.array(r), 0.0))
        if self.metric == "minkowski":
            inv = 1.0 / self.p
            return np.array([math.pow(max(v, 0.0), inv) for v in r])
        return np.maximum(np.array(r), 0.0)

    def _to_dist_numpy(self, r: list[float]) -> np.ndarray:
        """``DistanceMetric.rdist_to_dist`` in Python (the trees' ``query``)."""
        a = np.array(r)
        if self.metric == "euclidean":
            return np.sqrt(a)
        if self.metric == "minkowski":
            return a ** (1.0 / self.p)
        return a

    # -- queries ------------------------------------------------------------------------------------
    def query(self, x: np.ndarray, k: int, cosine_row: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the k nearest training rows of one query, in scikit-learn's order."""
        if self.metric == "cosine":
            assert cosine_row is not None
            sel = np.argpartition(cosine_row, k - 1)[:k]
            sel = sel[np.argsort(cosine_row[sel])]
            return cosine_row[sel], sel
        if self.algorithm == "brute":
            return self._brute(x, k)
        return self._tree(x, k)

    def _brute(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vals = self._brute_rdist(x)
        tv, ti = [DBL_MAX] * k, [-1] * k  # the one thread's heap, every training row in order
        push_all(tv, ti, vals, np.arange(vals.shape[0]))
        hv, hi = [DBL_MAX] * k, [0] * k  # synchronised into the result heap, heap slot order
        for v, i in zip(tv, ti, strict=True):
            heap_push(hv, hi, v, i)
        simultaneous_sort(hv, hi)
        return self._to_dist_c(hv), np.array(hi, dtype=np.intp)

    def _tree(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        hv, hi = [INF] * k, [0] * k
        xl = x.tolist()
        self._visit(0, x, xl, hv, hi, self._min_rdist(0, xl))
        simultaneous_sort(hv, hi)
        return self._to_dist_numpy(hv), np.array(hi, dtype=np.intp)

    def _visit(self, node: int, x: np.ndarray, xl: list[float], hv: list[float], hi: list[int],
               lb: float) -> None:
        if lb > hv[0]:
            return
        if self.leaf[node]:
            s, e = self.start[node], self.end[node]
            vals = self._rdist_columns(x, self.sorted_T[:, s:e])
            push_all(hv, hi, vals, self.idx_array[s:e])
            return
        c1 = 2 * node + 1
        c2 = c1 + 1
        lb1 = self._min_rdist(c1, xl)
        lb2 = self._min_rdist(c2, xl)
        if lb1 <= lb2:
            self._visit(c1, x, xl, hv, hi, lb1)
            self._visit(c2, x, xl, hv, hi, lb2)
        else:
            self._visit(c2, x, xl, hv, hi, lb2)
            self._visit(c1, x, xl, hv, hi, lb1)

    def _min_rdist(self, node: int, xl: list[float]) -> float:
        p = self.p
        if self.algorithm == "kd_tree":  # _kd_tree.pyx.tp min_rdist
            lo, up = self.lower[node], self.upper[node]
            r = 0.0
            for j, xj in enumerate(xl):
                d_lo = lo[j] - xj
                d_hi = xj - up[j]
                h = 0.5 * ((d_lo + abs(d_lo)) + (d_hi + abs(d_hi)))
                if p == INF:
                    r = max(r, h)
                elif p == 2.0:  # C's pow(h, 2) and pow(h, 1) are exact: h*h rounded once, h
                    r += h * h
                elif p == 1.0:
                    r += h
                else:
                    r += math.pow(h, p)
            return r
        c = self.lower[node]  # _ball_tree.pyx.tp: centroid distance minus radius, to rdist
        m = self.metric
        s = 0.0
        for j, xj in enumerate(xl):
            t = xj - c[j]
            if m == "euclidean":
                s += t * t
            elif m == "manhattan":
                s += abs(t)
            elif m == "chebyshev":
                s = max(s, abs(t))
            else:
                s += math.pow(abs(t), p)
        dist = math.sqrt(s) if m == "euclidean" else (math.pow(s, 1.0 / p) if m == "minkowski" else s)
        md = max(0.0, dist - self.radius[node])
        if m == "euclidean":
            return md * md
        return math.pow(md, p) if m == "minkowski" else md

