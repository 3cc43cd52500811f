"""Decision trees and tree ensembles: scikit-learn's trees, forests, gradient boosting, isolation forest.

A document stores every tree as parallel arrays (``children_left``, ``children_right``, ``feature``,
``threshold``, ``missing_go_to_left``, ``value``), in scikit-learn's node order. At load each tree is
validated (vectorised: no recursion, no per-node Python) and the whole ensemble is compiled ONCE into
one of two flat layouts that score all trees of a row chunk with a few numpy calls per tree level:

* :class:`_BitVectorForest` (trees of at most 64 leaves, e.g. gradient boosting, HGB): QuickScorer.
  Every split ``x <= threshold`` of feature ``f`` that is *false* for a row removes the leaves of its
  left subtree. For a given ``x`` the false splits of ``f`` are exactly those with the smallest
  thresholds, so one table row per (feature, rank of ``x`` among that feature's thresholds) holds,
  for every tree, the AND of the leaf masks of those splits. Scoring a row = one ``searchsorted`` per
  feature, one gather of table rows, one AND over features; the exit leaf is the lowest set bit.
* :class:`_TraversalForest` (deeper trees, e.g. random forests): all trees advance one level per step
  over a (tree x row) lane matrix. Shallow-enough forests use a complete-binary (heap) layout where a
  child's index is arithmetic (``2 * node + go_right``); deeper ones use breadth-first renumbering with
  adjacent siblings (``left[node] + go_right``) and leaves that loop onto themselves.

Both compute, per tree and row, the leaf scikit-learn's ``apply`` would reach, exactly: inputs are
rounded to float32 first where scikit-learn does so, thresholds stay float64, NaN follows
``missing_go_to_left``. Per-tree leaf outputs are then summed in tree order with
``np.add.accumulate`` (always sequential, never pairwise), as scikit-learn's loops over trees do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._base import (
    Estimator,
    InvalidInput,
    InvalidModel,
    LoadContext,
    MethodNotSupported,
    as_float,
    decode_labels,
    register,
)

MAX_TREES = 100_000
MAX_TREE_DEPTH = 4_096
MAX_OUTPUTS = 100_000
BITSET_BYTES = 32  # categorical splits: one bit per category code, 256 codes

# Layout choices (measured on a 2-core x86 box; see bench/trees_profile.py).
_HEAP_MAX_SLOTS = 1 << 22  # complete-binary layout for all trees together, in nodes
_HEAP_MAX_DEPTH = 22
_QS_MAX_TABLE_BYTES = 48 << 20
_TRAVERSAL_LANES = 1 << 15  # trees x rows per traversal chunk
_QS_CHUNK_BYTES = 1 << 19  # bytes of gathered masks per QuickScorer chunk
_QS_COMPARE_ELEMENTS = 1 << 15  # below this (rows x thresholds), classify by comparing all thresholds


# -- one tree ----------------------------------------------------------------------------------------

class Tree:
    """A validated tree in scikit-learn's node order. Leaves have ``left == right == -1``.

    ``category_split[n]`` is -1 for a numeric split, else the row of ``bitsets`` holding the category
    codes that go left (histogram gradient boosting only).
    """

    __slots__ = ("bitsets", "category_split", "depth", "feature", "left", "levels", "missing_left", "n_nodes",
                 "right", "threshold")

    def __init__(self, left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
                 missing_left: np.ndarray, levels: list[np.ndarray],
                 category_split: np.ndarray | None = None, bitsets: np.ndarray | None = None) -> None:
        self.left, self.right, self.feature, self.threshold = left, right, feature, threshold
        self.missing_left = missing_left
        self.levels = levels  # node indices per depth, root first
        self.depth = len(levels) - 1
        self.n_nodes = int(left.shape[0])
        self.category_split = category_split
        self.bitsets = bitsets

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0

    @property
    def n_leaves(self) -> int:
        return int(np.count_nonzero(self.left < 0))


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def load_tree(tnode: Any, ctx: LoadContext, n_features: int, value_shape: Sequence[int],
              *, missing: bool = True, categorical: set[int] | None = None) -> tuple[Tree, np.ndarray]:
    """Decode and validate one tree node; returns the tree and its ``value`` array.

    Checked, with a JSON pointer to the first offending element: array lengths agree; leaves have
    both children -1; every child index is in range and greater than its parent's (so the tree is
    acyclic); every node but the root has exactly one parent (so every node is reachable); split
    features are in ``[0, n_features)``; thresholds are not NaN; missing flags are 0 or 1; the
    depth is at most ``MAX_TREE_DEPTH``.
    """
    if not isinstance(tnode, dict):
        raise InvalidModel("a tree must be an object", ctx.pointer)
    left = ctx.array(tnode, "children_left", "int64", ndim=1)
    n = int(left.shape[0])
    if n == 0:
        raise ctx.fail("a tree needs at least one node", "children_left")
    right = ctx.array(tnode, "children_right", "int64", shape=(n,))
    feature = ctx.array(tnode, "feature", "int64", shape=(n,))
    threshold = ctx.array(tnode, "threshold", "float64", shape=(n,), finite=False)
    if missing or "missing_go_to_left" in tnode:
        miss = ctx.array(tnode, "missing_go_to_left", "uint8", shape=(n,))
    else:
        miss = np.zeros(n, dtype=np.uint8)
    value = ctx.array(tnode, "value", "float64", shape=(n, *value_shape))
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise ctx.fail("a leaf has both children -1 and a split has neither", "children_right",
                       _first(leaf != (right == -1)))
    idx = np.arange(n)
    internal = ~leaf
    for key, child in (("children_left", left), ("children_right", right)):
        bad = internal & ((child <= idx) | (child >= n))
        if bad.any():
            i = _first(bad)
            v = int(child[i])
            why = (f"child index {v} is out of range (the tree has {n} nodes)" if not 0 <= v < n else
                   f"child index {v} must be greater than its parent's index {i} (trees are stored parent first)")
            raise ctx.fail(why, key, i)
    kids = np.concatenate([left[internal], right[internal]])
    counts = np.bincount(kids, minlength=n)
    if counts.size and counts.max(initial=0) > 1:
        dup = _first(counts > 1)
        where = np.flatnonzero(internal & ((left == dup) | (right == dup)))
        key = "children_right" if right[where[-1]] == dup else "children_left"
        raise ctx.fail(f"node {dup} has more than one parent", key, int(where[-1]))
    orphan = counts[1:] == 0
    if orphan.any():
        i = _first(orphan) + 1
        raise ctx.fail(f"node {i} is not reachable from the root (no split points to it)", "children_left", i)
    bad = internal & ((feature < 0) | (feature >= n_features))
    if bad.any():
        i = _first(bad)
        raise ctx.fail(f"feature index {int(feature[i])} is out of range [0, {n_features})", "feature", i)
    bad = internal & np.isnan(threshold)
    if bad.any():
        raise ctx.fail("a split threshold must not be NaN", "threshold", _first(bad))
    if miss.size and int(miss.max()) > 1:
        raise ctx.fail("must be 0 or 1", "missing_go_to_left", _first(miss > 1))
    cat_split = None
    bitsets = None
    if categorical is not None:
        cat_split = ctx.array(tnode, "category_split", "int64", shape=(n,), default=None)
        if cat_split is None:
            cat_split = np.full(n, -1, dtype=np.int64)
            n_sets = 0
            bitsets = np.zeros((0, BITSET_BYTES), dtype=np.uint8)
        else:
            bitsets = ctx.array(tnode, "category_bitsets", "uint8", ndim=2, shape=(None, BITSET_BYTES))
            n_sets = int(bitsets.shape[0])
        is_cat = internal & (cat_split >= 0)
        bad = internal & ((cat_split < -1) | (cat_split >= n_sets))
        if bad.any():
            i = _first(bad)
            raise ctx.fail(f"category split index {int(cat_split[i])} is out of range [-1, {n_sets})",
                           "category_split", i)
        cat_feature = np.zeros(max(n_features, 1), dtype=bool)
        cat_feature[list(categorical)] = True
        bad = internal & (is_cat != cat_feature[np.clip(feature, 0, max(n_features - 1, 0))])
        if bad.any():
            i = _first(bad)
            what = "a categorical" if cat_feature[feature[i]] else "a numeric"
            raise ctx.fail(f"feature {int(feature[i])} is {what} feature; the split type does not match",
                           "category_split", i)
        cat_split = np.where(is_cat, cat_split, -1)
    levels = _levels(left, right, ctx)
    return Tree(left, right, feature, threshold, miss.astype(bool), levels, cat_split, bitsets), value


def _levels(left: np.ndarray, right: np.ndarray, ctx: LoadContext) -> list[np.ndarray]:
    """Node indices per depth, by a vectorised breadth-first walk (the structure is already checked)."""
    levels = [np.zeros(1, dtype=np.int64)]
    frontier = levels[0]
    while True:
        inner = frontier[left[frontier] >= 0]
        if not inner.size:
            return levels
        if len(levels) > MAX_TREE_DEPTH:
            raise ctx.fail(f"tree is deeper than {MAX_TREE_DEPTH} levels", "children_left")
        frontier = np.concatenate([left[inner], right[inner]])
        levels.append(frontier)


def load_trees(node: dict[str, Any], ctx: LoadContext, key: str = "trees", *,
               count: int | None = None) -> list[Any]:
    """The list of tree objects under ``key`` (its length bounded, and equal to ``count`` if given)."""
    trees = ctx.get(node, key, list)
    if not trees:
        raise ctx.fail("needs at least one tree", key)
    if len(trees) > MAX_TREES:
        raise ctx.fail(f"more than {MAX_TREES} trees", key)
    if count is not None and len(trees) != count:
        raise ctx.fail(f"expected {count} trees, got {len(trees)}", key)
    return trees


# -- compiled forests -----------------------------------------------------------------------------

class CompiledForest:
    """Scores every tree of an ensemble; ``tree_values`` fills ``out[t, r, :]`` with the output of tree
    ``t``'s leaf for row ``r``. Subclasses choose the layout; ``chunk_rows`` bounds temporaries."""

    n_trees: int
    n_outputs: int
    chunk_rows: int

    def tree_values(self, X: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError


class Categorical:
    """Categorical input columns (HGB): column -> number of known categories. Inputs in such a column
    are category codes ``0..K-1`` (as floats) or NaN for missing / unknown."""

    def __init__(self, n_categories: dict[int, int]) -> None:
        self.n_categories = dict(n_categories)


def compile_forest(trees: Sequence[Tree], values: Sequence[np.ndarray], n_features: int,
                   categorical: Categorical | None = None, engine: str | None = None) -> CompiledForest:
    """Build the faster layout for these trees. ``values[t]`` is ``(n_nodes_t, n_outputs)``."""
    if engine is None:
        engine = _choose_engine(trees, n_features, categorical)
    if engine == "bitvector":
        return _BitVectorForest(trees, values, n_features, categorical)
    return _TraversalForest(trees, values, n_features, categorical, heap=None if engine == "traversal" else
                            engine == "heap")


def _choose_engine(trees: Sequence[Tree], n_features: int, categorical: Categorical | None) -> str:
    max_leaves = max(t.n_leaves for t in trees)
    if max_leaves > 64:
        return "traversal"
    T = len(trees)
    feats = set()
    n_thresholds = 0
    for t in trees:
        inner = t.left >= 0
        feats.update(np.unique(t.feature[inner]).tolist())
        n_thresholds += int(np.count_nonzero(inner))
    itemsize = 1 if max_leaves <= 8 else 2 if max_leaves <= 16 else 4 if max_leaves <= 32 else 8
    rows = n_thresholds + 2 * len(feats)
    if rows * T * itemsize > _QS_MAX_TABLE_BYTES:
        return "traversal"
    # nanoseconds per row, measured: gathers ~2.5 ns/element, contiguous row copies ~0.15 ns/byte.
    qs = len(feats) * T * (0.15 * itemsize + 0.5) + 6.0 * T + 25.0 * len(feats)
    trav = sum(t.depth for t in trees) * 10.0 + 4.0 * T
    return "bitvector" if qs < trav else "traversal"


class _TraversalForest(CompiledForest):
    """Level-synchronous traversal of all trees over a (tree x row) lane matrix, trees deepest first so
    the trees still walking at step ``s`` are a prefix of the lanes (no masking, no early-exit test)."""

    def __init__(self, trees: Sequence[Tree], values: Sequence[np.ndarray], n_features: int,
                 categorical: Categorical | None, heap: bool | None = None) -> None:
        T = len(trees)
        self.n_trees = T
        self.n_outputs = int(values[0].shape[1])
        self.n_features = n_features
        depths = np.array([t.depth for t in trees], dtype=np.int64)
        order = np.argsort(-depths, kind="stable")
        self.order = order
        self.inverse = np.argsort(order, kind="stable")
        self.active = [int(np.count_nonzero(depths > s)) for s in range(int(depths.max(initial=0)))]
        self.chunk_rows = max(8, min(4096, _TRAVERSAL_LANES // T))
        slots = int(sum(1 << (int(d) + 1) for d in depths if d <= _HEAP_MAX_DEPTH)) if \
            depths.max(initial=0) <= _HEAP_MAX_DEPTH else _HEAP_MAX_SLOTS + 1
        if heap is None:
            heap = slots <= _HEAP_MAX_SLOTS and slots <= 8 * sum(t.n_nodes for t in trees) + 64 * T
        self.heap = heap
        self._virtual: list[tuple[int, np.ndarray, np.ndarray]] = []  # (column, virtual rows, right table)
        vcol = self._virtual_columns(trees, categorical)
        self.n_columns = n_features + self._n_virtual
        if heap:
            self._build_heap(trees, values, order, vcol)
        else:
            self._build_explicit(trees, values, order, vcol)
        self.featR = self.feat * self.chunk_rows
        rows = self.chunk_rows
        self._ar_full = np.broadcast_to(np.arange(rows, dtype=np.int64), (T, rows)).copy()
        if heap:
            self._nb_full = np.broadcast_to(self.neg_base[:, None], (T, rows)).copy()

    def _virtual_columns(self, trees: Sequence[Tree],
                         categorical: Categorical | None) -> list[np.ndarray | None]:
        """Categorical splits become numeric splits ``v > 0.5`` on one virtual 0/1 column per split,
        filled per chunk from the row's category code (1 = goes right)."""
        self._n_virtual = 0
        out: list[np.ndarray | None] = []
        if categorical is None:
            return [None] * len(trees)
        per_column: dict[int, list[np.ndarray]] = {}
        col = self.n_features
        for t in trees:
            cs = t.category_split
            if cs is None or t.bitsets is None or not (cs >= 0).any():
                out.append(None)
                continue
            nodes = np.flatnonzero(cs >= 0)
            vc = np.full(t.n_nodes, -1, dtype=np.int64)
            vc[nodes] = np.arange(col, col + nodes.size)
            bits = np.unpackbits(t.bitsets, axis=1, bitorder="little").astype(bool)  # (n_sets, 256)
            for j, n in zip(range(col, col + nodes.size), nodes.tolist(), strict=True):
                f = int(t.feature[n])
                k = categorical.n_categories[f]
                right = np.empty(k + 1, dtype=np.float64)
                right[:k] = ~bits[int(cs[n]), :k]
                right[k] = 0.0 if t.missing_left[n] else 1.0
                per_column.setdefault(f, []).append(np.concatenate([[float(j)], right]))
            col += nodes.size
            out.append(vc)
        self._n_virtual = col - self.n_features
        for f, rows in per_column.items():
            k = categorical.n_categories[f]
            table = np.array(rows)  # (n_splits, 1 + k + 1)
            self._virtual.append((f, table[:, 0].astype(np.int64), np.ascontiguousarray(table[:, 1:])))
            assert table.shape[1] == k + 2
        return out

    def _split_arrays(self, t: Tree, vc: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per node: column read, threshold, missing-goes-right (leaves: column 0, +inf, False)."""
        leaf = t.left < 0
        feat = np.where(leaf, 0, t.feature)
        thr = np.where(leaf, np.inf, t.threshold)
        mr = ~t.missing_left & ~leaf
        if vc is not None:
            virt = vc >= 0
            feat = np.where(virt, vc, feat)
            thr = np.where(virt, 0.5, thr)
            mr = mr & ~virt
        return feat, thr, mr

    def _build_heap(self, trees: Sequence[Tree], values: Sequence[np.ndarray], order: np.ndarray,
                    vcol: list[np.ndarray | None]) -> None:
        """Tree ``t`` of depth ``D`` owns slots ``base + 1 .. base + 2**(D+1) - 1`` (1-based heap); a leaf
        above the last level is padded with always-left splits down to it; leaf outputs are stored for
        the last level only."""
        K = self.n_outputs
        sizes = [1 << (trees[i].depth + 1) for i in order]
        bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        vsizes = [1 << trees[i].depth for i in order]
        vbases = np.concatenate([[0], np.cumsum(vsizes)[:-1]]).astype(np.int64)
        total = int(sum(sizes))
        feat = np.zeros(total, dtype=np.int64)
        thr = np.full(total, np.inf)
        mr = np.zeros(total, dtype=bool)
        vals = np.full((int(sum(vsizes)), K), np.nan)
        for j, i in enumerate(order.tolist()):
            t = trees[i]
            D = t.depth
            f_t, th_t, mr_t = self._split_arrays(t, vcol[i])
            pos = np.zeros(t.n_nodes, dtype=np.int64)
            lev = np.zeros(t.n_nodes, dtype=np.int64)
            pos[0] = 1
            for d, nodes in enumerate(t.levels):
                lev[nodes] = d
                inner = nodes[t.left[nodes] >= 0]
                pos[t.left[inner]] = 2 * pos[inner]
                pos[t.right[inner]] = 2 * pos[inner] + 1
            inner = t.left >= 0
            g = bases[j] + pos[inner]
            feat[g] = f_t[inner]
            thr[g] = th_t[inner]
            mr[g] = mr_t[inner]
            leaves = np.flatnonzero(~inner)
            bottom = (pos[leaves] << (D - lev[leaves])) - (1 << D)
            vals[vbases[j] + bottom] = values[i][leaves]
        self.feat, self.thr, self.mr, self.vals = feat, thr, mr, vals
        self.roots = bases + 1
        self.neg_base = -bases
        # value row of a lane that ended at global slot g of sorted tree j: g + shift[j]
        depths_sorted = np.array([trees[i].depth for i in order], dtype=np.int64)
        self.vshift = vbases - bases - (np.int64(1) << depths_sorted)

    def _build_explicit(self, trees: Sequence[Tree], values: Sequence[np.ndarray], order: np.ndarray,
                        vcol: list[np.ndarray | None]) -> None:
        """Breadth-first renumbering (siblings adjacent: right = left + 1); leaves point to themselves."""
        K = self.n_outputs
        sizes = [trees[i].n_nodes for i in order]
        bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = int(sum(sizes))
        feat = np.empty(total, dtype=np.int64)
        thr = np.empty(total)
        mr = np.empty(total, dtype=bool)
        left = np.empty(total, dtype=np.int64)
        vals = np.empty((total, K))
        for j, i in enumerate(order.tolist()):
            t = trees[i]
            bfs = np.concatenate(t.levels)  # parents before children; siblings adjacent
            new = np.empty(t.n_nodes, dtype=np.int64)
            new[bfs] = np.arange(t.n_nodes)
            f_t, th_t, mr_t = self._split_arrays(t, vcol[i])
            sl = slice(int(bases[j]), int(bases[j]) + t.n_nodes)
            feat[sl] = f_t[bfs]
            thr[sl] = th_t[bfs]
            mr[sl] = mr_t[bfs]
            lc = t.left[bfs]
            left[sl] = bases[j] + np.where(lc >= 0, new[np.maximum(lc, 0)], np.arange(t.n_nodes))
            vals[sl] = values[i][bfs]
        self.feat, self.thr, self.mr, self.left, self.vals = feat, thr, mr, left, vals
        self.roots = bases
        self.vshift = np.zeros(len(trees), dtype=np.int64)

    def _columns(self, X: np.ndarray, width: int) -> np.ndarray:
        """The chunk transposed (column-major reads are contiguous per split), plus virtual columns."""
        r = X.shape[0]
        Xt = np.empty((self.n_columns, width))
        Xt[: self.n_features, :r] = X.T
        for f, rows, right in self._virtual:
            x = X[:, f]
            k = right.shape[1] - 1
            code = np.where(np.isnan(x), k, x).astype(np.int64)
            Xt[rows, :r] = right[:, code]
        return Xt

    def tree_values(self, X: np.ndarray, out: np.ndarray) -> None:
        r = X.shape[0]
        T = self.n_trees
        full = r == self.chunk_rows
        width = 1 if r == 1 else self.chunk_rows
        flat = self._columns(X, width).ravel()
        has_nan = bool(np.isnan(X).any())
        ftab = self.feat if r == 1 else self.featR
        g = np.empty((T, r), dtype=np.int64)
        g[:] = self.roots[:, None]
        fo = np.empty((T, r), dtype=np.int64)
        xv = np.empty((T, r))
        th = np.empty((T, r))
        gr = np.empty((T, r), dtype=bool)
        if has_nan:
            nan = np.empty((T, r), dtype=bool)
            mrb = np.empty((T, r), dtype=bool)
        ar = self._ar_full if full else np.arange(r, dtype=np.int64)
        heap = self.heap
        if heap:
            nb = self._nb_full if full else self.neg_base[:, None]
        for n in self.active:
            gs, fos, xvs, ths, grs = g[:n], fo[:n], xv[:n], th[:n], gr[:n]
            np.take(ftab, gs, out=fos, mode="clip")
            if r > 1:
                np.add(fos, ar[:n] if full else ar, out=fos)
            np.take(flat, fos, out=xvs, mode="clip")
            np.take(self.thr, gs, out=ths, mode="clip")
            np.greater(xvs, ths, out=grs)
            if has_nan:
                ns, ms = nan[:n], mrb[:n]
                np.isnan(xvs, out=ns)
                np.take(self.mr, gs, out=ms, mode="clip")
                np.logical_and(ns, ms, out=ns)
                np.logical_or(grs, ns, out=grs)
            if heap:
                np.left_shift(gs, 1, out=gs)
                np.add(gs, nb[:n], out=gs)
            else:
                np.take(self.left, gs, out=gs, mode="clip")
            np.add(gs, grs, out=gs)
        gv = g[self.inverse] if T > 1 else g
        if heap:
            gv += self.vshift[self.inverse][:, None]
        np.take(self.vals, gv, axis=0, out=out, mode="clip")


_LOWBIT_PRIME = {1: 11, 2: 19, 4: 37, 8: 67}  # 2**k mod p is distinct for k < 8 * itemsize


class _BitVectorForest(CompiledForest):
    """QuickScorer over per-feature tables of leaf masks (see the module docstring)."""

    def __init__(self, trees: Sequence[Tree], values: Sequence[np.ndarray], n_features: int,
                 categorical: Categorical | None) -> None:
        T = len(trees)
        self.n_trees = T
        K = self.n_outputs = int(values[0].shape[1])
        max_leaves = max(t.n_leaves for t in trees)
        if max_leaves > 64:
            raise ValueError("bit-vector layout needs trees of at most 64 leaves")
        itemsize = 1 if max_leaves <= 8 else 2 if max_leaves <= 16 else 4 if max_leaves <= 32 else 8
        wdt = np.dtype(f"u{itemsize}")
        self.wdtype = wdt
        ones = np.array(np.iinfo(wdt).max, dtype=wdt)
        cats = categorical.n_categories if categorical is not None else {}
        # per feature: thresholds, tree, mask, missing-right; categorical: bitset rows too
        num: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        cat: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        P = _LOWBIT_PRIME[itemsize] if itemsize > 1 else 256
        self.P = P
        vq = np.full((T * P, K), np.nan)
        for ti, t in enumerate(trees):
            nl = np.ones(t.n_nodes, dtype=np.int64)
            for nodes in reversed(t.levels):
                inner = nodes[t.left[nodes] >= 0]
                nl[inner] = nl[t.left[inner]] + nl[t.right[inner]]
            lo = np.zeros(t.n_nodes, dtype=np.int64)
            for nodes in t.levels:
                inner = nodes[t.left[nodes] >= 0]
                lo[t.left[inner]] = lo[inner]
                lo[t.right[inner]] = lo[inner] + nl[t.left[inner]]
            inner = np.flatnonzero(t.left >= 0)
            width = nl[t.left[inner]]
            m64 = (np.uint64(0xFFFFFFFFFFFFFFFF) >> (64 - width).astype(np.uint64)) << lo[inner].astype(np.uint64)
            masks = (~m64).astype(wdt)  # uint64 -> narrower keeps the low bits
            f = t.feature[inner]
            mr = ~t.missing_left[inner]
            tree_id = np.full(inner.size, ti, dtype=np.int64)
            cs = t.category_split
            is_cat = (cs[inner] >= 0) if cs is not None else np.zeros(inner.size, dtype=bool)
            for fv in np.unique(f).tolist():
                sel = (f == fv) & ~is_cat
                if sel.any():
                    num.setdefault(fv, []).append((t.threshold[inner[sel]], tree_id[sel], masks[sel], mr[sel]))
                sel = (f == fv) & is_cat
                if sel.any():
                    assert cs is not None and t.bitsets is not None
                    cat.setdefault(fv, []).append((t.bitsets[cs[inner[sel]]], tree_id[sel], masks[sel], mr[sel]))
            leaves = np.flatnonzero(t.left < 0)
            bits = lo[leaves]
            if itemsize == 1:
                # direct table over all 256 mask values: the exit leaf is the lowest set bit
                v = np.arange(256)
                low = np.where(v > 0, _ctz8(v), -1)
                leaf_of_bit = np.full(8, -1, dtype=np.int64)
                leaf_of_bit[bits] = leaves
                ok = low >= 0
                vq[ti * P + v[ok]] = values[ti][leaf_of_bit[low[ok]]]
            else:
                res = (np.left_shift(np.ones(bits.size, dtype=np.uint64), bits.astype(np.uint64))
                       % np.uint64(P)).astype(np.int64)
                vq[ti * P + res] = values[ti][leaves]
        self.vq = vq
        # per used feature: a block of table rows
        self.features: list[int] = sorted(set(num) | set(cat))
        blocks: list[np.ndarray] = []
        self.offsets: list[int] = []
        self.uniq: list[np.ndarray | None] = []
        self.nan_row: list[int] = []
        row = 0
        for fv in self.features:
            if fv in cats:
                k = cats[fv]
                A = np.empty((k + 1, T), dtype=wdt)
                A[:] = ones
                for bitsets, tid, masks, mr in cat.get(fv, []):
                    left = np.unpackbits(bitsets, axis=1, bitorder="little")[:, :k].astype(bool)
                    goes_right = ~left
                    rr, cc = np.nonzero(goes_right)
                    np.bitwise_and.at(A, (cc, tid[rr]), masks[rr])
                    np.bitwise_and.at(A, (np.full(int(mr.sum()), k), tid[mr]), masks[mr])
                self.uniq.append(None)
                self.nan_row.append(k)
            else:
                parts = num[fv]
                th = np.concatenate([p[0] for p in parts])
                tid = np.concatenate([p[1] for p in parts])
                masks = np.concatenate([p[2] for p in parts])
                mr = np.concatenate([p[3] for p in parts])
                u = np.unique(th)
                nu = u.size
                A = np.empty((nu + 2, T), dtype=wdt)
                A[:] = ones
                np.bitwise_and.at(A, (np.searchsorted(u, th) + 1, tid), masks)
                np.bitwise_and.accumulate(A[: nu + 1], axis=0, out=A[: nu + 1])
                np.bitwise_and.at(A, (np.full(int(mr.sum()), nu + 1), tid[mr]), masks[mr])
                self.uniq.append(u)
                self.nan_row.append(nu + 1)
            blocks.append(A)
            self.offsets.append(row)
            row += A.shape[0]
        self.table = np.concatenate(blocks) if blocks else np.full((1, T), ones, dtype=wdt)
        if not blocks:  # only single-leaf trees: every row reads the all-ones row
            self.features = []
        self.n_used = len(self.features)
        self._numeric = [i for i, u in enumerate(self.uniq) if u is not None]
        self._categorical = [i for i, u in enumerate(self.uniq) if u is None]
        per_row = max(1, self.n_used) * T * itemsize
        self.chunk_rows = int(max(1, min(8192, _QS_CHUNK_BYTES // per_row)))
        # all numeric thresholds side by side, for classifying few rows with a single comparison
        if self._numeric:
            self._all_u = np.concatenate([self.uniq[i] for i in self._numeric])  # type: ignore[misc]
            self._all_col = np.concatenate([np.full(self.uniq[i].size, self.features[i])  # type: ignore[union-attr]
                                            for i in self._numeric])
            sizes = [self.uniq[i].size for i in self._numeric]  # type: ignore[union-attr]
            self._all_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._num_cols = np.array([self.features[i] for i in self._numeric], dtype=np.int64)
        self._num_off = np.array([self.offsets[i] for i in self._numeric], dtype=np.int64)
        self._num_nan = np.array([self.offsets[i] + self.nan_row[i] for i in self._numeric], dtype=np.int64)
        self._tree_off = (np.arange(T, dtype=np.int64) * P)[:, None]

    def _rows(self, X: np.ndarray) -> np.ndarray:
        """Table row per (row, used feature): offset + rank of x among the feature's thresholds."""
        r = X.shape[0]
        G = np.empty((r, self.n_used), dtype=np.int64)
        if self._numeric:
            Xn = X[:, self._num_cols]
            idx = np.asarray(self._numeric)
            if r * self._all_u.size <= _QS_COMPARE_ELEMENTS:
                cmp = X[:, self._all_col] > self._all_u
                ranks = np.add.reduceat(cmp, self._all_starts, axis=1, dtype=np.int64)
                G[:, idx] = ranks + self._num_off
            else:
                for j, i in enumerate(self._numeric):
                    G[:, i] = np.searchsorted(self.uniq[i], Xn[:, j], side="left")  # type: ignore[arg-type]
                G[:, idx] += self._num_off
            nan = np.isnan(Xn)
            if nan.any():
                G[:, idx] = np.where(nan, self._num_nan, G[:, idx])
        for i in self._categorical:
            x = X[:, self.features[i]]
            k = self.nan_row[i]
            G[:, i] = np.where(np.isnan(x), k, x).astype(np.int64) + self.offsets[i]
        return G

    def tree_values(self, X: np.ndarray, out: np.ndarray) -> None:
        r = X.shape[0]
        T = self.n_trees
        if self.n_used:
            G = self._rows(X)
            gathered = np.take(self.table, G.ravel(), axis=0, mode="clip").reshape(r, self.n_used, T)
            v = np.bitwise_and.reduce(gathered, axis=1) if self.n_used > 1 else gathered[:, 0]
        else:
            v = np.broadcast_to(self.table[0], (r, T))
        vt = v.T  # (T, r)
        if self.P == 256:
            idx = vt.astype(np.int64)
        else:
            low = vt & (-vt)
            idx = (low % self.wdtype.type(self.P)).astype(np.int64)
        idx += self._tree_off
        np.take(self.vq, idx, axis=0, out=out, mode="clip")


def _ctz8(v: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each value in 1..255."""
    out = np.zeros(v.shape, dtype=np.int64)
    for b in range(7, -1, -1):
        out = np.where((v >> b) & 1 == 1, b, out)
    return out


def sum_trees(forest: CompiledForest, X: np.ndarray, init: np.ndarray, per_stage: int = 1) -> np.ndarray:
    """``init + sum over trees`` of the trees' leaf outputs, added in tree order exactly as scikit-learn's
    loops do (``out += tree_output`` per tree). Trees are stage-major with ``per_stage`` trees per stage,
    tree ``s * per_stage + k`` adding to column ``k``. ``init`` is ``(per_stage, n_outputs)``.
    Returns ``(rows, per_stage, n_outputs)``."""
    R = X.shape[0]
    T = forest.n_trees
    K = forest.n_outputs
    S = T // per_stage
    result = np.empty((R, per_stage, K))
    step = forest.chunk_rows
    for start in range(0, R, step):
        Xc = X[start:start + step]
        r = Xc.shape[0]
        buf = np.empty((S + 1, per_stage, r, K))
        buf[0] = init[:, None, :]
        forest.tree_values(Xc, buf[1:].reshape(T, r, K))
        acc = np.add.accumulate(buf, axis=0)[-1]  # (per_stage, r, K)
        result[start:start + r] = acc.transpose(1, 0, 2)
    return result
