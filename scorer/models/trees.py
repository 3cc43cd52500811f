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
_QS_COMPARE_ELEMENTS = 1 << 15
_ACCUMULATE_MAX = 64  # rows x outputs below which np.add.accumulate sums the trees  # below this (rows x thresholds), classify by comparing all thresholds


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
        frontier = np.stack([left[inner], right[inner]], axis=1).ravel()  # siblings adjacent
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
        self.chunk_rows = int(max(1, min(4096, _QS_CHUNK_BYTES // per_row)))
        nn = len(self._numeric)
        self._num_cols = np.array([self.features[i] for i in self._numeric], dtype=np.int64)
        self._num_off = np.array([self.offsets[i] for i in self._numeric], dtype=np.int64)
        self._num_nan = np.array([self.offsets[i] + self.nan_row[i] for i in self._numeric], dtype=np.int64)
        if nn:
            us = [self.uniq[i] for i in self._numeric]
            # all numeric thresholds side by side, for classifying a few rows with one comparison
            self._all_u = np.concatenate(us)  # type: ignore[arg-type]
            self._all_col = np.concatenate([np.full(u.size, c) for u, c in  # type: ignore[union-attr]
                                            zip(us, self._num_cols.tolist(), strict=True)])
            sizes = np.array([u.size for u in us], dtype=np.int64)  # type: ignore[union-attr]
            self._all_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            # padded to a power of two > size with +inf, for a branch-free binary search of all features
            self._P = 1 << int(sizes.max()).bit_length()
            padded = np.full((nn, self._P), np.inf)
            for j, u in enumerate(us):
                padded[j, : u.size] = u  # type: ignore[union-attr]
            self._padded = padded.ravel()
            self._pad_base = (np.arange(nn, dtype=np.int64) * self._P - 1)[:, None]
        self._tree_off = (np.arange(T, dtype=np.int64) * P)[:, None]
        self._tree_off_full = np.broadcast_to(self._tree_off, (T, self.chunk_rows)).copy()

    def _rows(self, X: np.ndarray) -> np.ndarray:
        """Table row per (used feature, row): the feature's offset + the rank of x among its thresholds
        (how many are < x), or its NaN / missing row."""
        r = X.shape[0]
        G = np.empty((self.n_used, r), dtype=np.int64)
        if self._numeric:
            Xn = np.ascontiguousarray(X[:, self._num_cols].T)  # (numeric features, rows)
            if r * self._all_u.size <= _QS_COMPARE_ELEMENTS:
                cmp = X[:, self._all_col] > self._all_u
                ranks = np.add.reduceat(cmp, self._all_starts, axis=1, dtype=np.int64).T
            else:
                ranks = np.zeros(Xn.shape, dtype=np.int64)
                step = self._P >> 1
                cand = np.empty(Xn.shape, dtype=np.int64)
                vals = np.empty(Xn.shape)
                hit = np.empty(Xn.shape, dtype=bool)
                while step:
                    np.add(ranks, self._pad_base + step, out=cand)
                    np.take(self._padded, cand, out=vals, mode="clip")
                    np.greater(Xn, vals, out=hit)
                    ranks += hit * step if step > 1 else hit
                    step >>= 1
            ranks += self._num_off[:, None]
            nan = np.isnan(Xn)
            if nan.any():
                ranks = np.where(nan, self._num_nan[:, None], ranks)
            G[self._numeric] = ranks
        for i in self._categorical:
            x = X[:, self.features[i]]
            G[i] = np.where(np.isnan(x), self.nan_row[i], x).astype(np.int64) + self.offsets[i]
        return G

    def tree_values(self, X: np.ndarray, out: np.ndarray) -> None:
        r = X.shape[0]
        T = self.n_trees
        if self.n_used:
            G = self._rows(X)
            gathered = np.take(self.table, G.ravel(), axis=0, mode="clip").reshape(self.n_used, r, T)
            v = np.bitwise_and.reduce(gathered, axis=0) if self.n_used > 1 else gathered[0]
        else:
            v = np.broadcast_to(self.table[0], (r, T))
        if self.P == 256:
            idx = v.T.astype(np.int64)
        else:
            low = v & (-v)
            low %= self.wdtype.type(self.P)
            idx = low.T.astype(np.int64)
        idx += self._tree_off_full if r == self.chunk_rows else self._tree_off
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
        if r * per_stage * K <= _ACCUMULATE_MAX:
            # few rows: one sequential accumulate beats a Python loop over trees
            buf = np.empty((S + 1, per_stage, r, K))
            buf[0] = init[:, None, :]
            forest.tree_values(Xc, buf[1:].reshape(T, r, K))
            acc = np.add.accumulate(buf, axis=0)[-1]
        else:
            vals = np.empty((S, per_stage, r, K))
            forest.tree_values(Xc, vals.reshape(T, r, K))
            acc = np.empty((per_stage, r, K))
            acc[:] = init[:, None, :]
            for s in range(S):
                acc += vals[s]
        result[start:start + r] = acc.transpose(1, 0, 2)
    return result


# -- input checks ------------------------------------------------------------------------------------

def check_matrix(X: np.ndarray, n_features: int, type_name: str) -> np.ndarray:
    """Numbers of the right width (composites hand sub-matrices to their children)."""
    if X.ndim != 2:
        raise InvalidInput(f"{type_name}: expected a 2-D matrix, got {X.ndim}-D")
    if X.shape[1] != n_features:
        raise InvalidInput(f"{type_name}: expected {n_features} columns, got {X.shape[1]}")
    return as_float(X, type_name)


def float32_input(X: np.ndarray, n_features: int, type_name: str, allow_nan: bool,
                  allow_inf: bool = False) -> np.ndarray:
    """scikit-learn's tree input: rounded to float32 (returned as float64 holding float32 values).

    Like ``check_array(dtype=float32)``, values too large for float32 become infinite and are refused,
    as is NaN unless the estimator supports missing values (IsolationForest accepts both).
    """
    Xf = check_matrix(X, n_features, type_name)
    with np.errstate(over="ignore", invalid="ignore"):
        X32 = Xf.astype(np.float32)
    if not (allow_nan and allow_inf):
        finite = np.isfinite(X32)
        if not finite.all():
            bad = ~finite
            if allow_nan:
                bad &= ~np.isnan(X32)
            if allow_inf:
                bad &= ~np.isinf(X32)
            if bad.any():
                r, c = (int(i) for i in np.argwhere(bad)[0])
                v = Xf[r, c]
                what = ("a missing value (NaN)" if np.isnan(v) else "an infinite value" if np.isinf(v)
                        else f"{v!r}, too large for float32")
                raise InvalidInput(f"row {r}, column {c}: {type_name} cannot handle {what}", row=r)
    return X32.astype(np.float64)


# -- scikit-learn trees and forests ------------------------------------------------------------------

def _load_classes(node: dict[str, Any], ctx: LoadContext, n_outputs: int) -> list[np.ndarray]:
    raw = ctx.get(node, "classes", list)
    if n_outputs == 1:
        return [ctx.labels(node, "classes")]
    if len(raw) != n_outputs or not all(isinstance(c, list) for c in raw):
        raise ctx.fail(f"a multi-output classifier needs a list of {n_outputs} label lists", "classes")
    return [decode_labels(c, ctx.child("classes", k)) for k, c in enumerate(raw)]


def _classes_attr(classes: list[np.ndarray]) -> np.ndarray:
    if len(classes) == 1:
        return classes[0]
    out = np.empty(len(classes), dtype=object)
    for k, c in enumerate(classes):
        out[k] = c.tolist()
    return out


def _label_matrix(classes: list[np.ndarray], winners: list[np.ndarray]) -> np.ndarray:
    """2-D labels for a multi-output classifier (scikit-learn uses the first output's label dtype)."""
    dtype = classes[0].dtype
    if any(c.dtype.kind != dtype.kind for c in classes):
        dtype = np.dtype(object)
    out = np.empty((winners[0].shape[0], len(classes)), dtype=dtype)
    for k, (c, w) in enumerate(zip(classes, winners, strict=True)):
        out[:, k] = c[w]
    return out


class _SklearnTrees(Estimator):
    """DecisionTree*, RandomForest*, ExtraTrees*: leaf values averaged over the trees."""

    single = False
    classifier = False
    n_outputs = 1
    allow_nan = True
    n_classes: list[int]
    forest: CompiledForest

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.n_outputs = ctx.integer(node, "n_outputs", default=1, minimum=1, maximum=MAX_OUTPUTS)
        self.allow_nan = ctx.boolean(node, "allow_nan", default=True)
        if self.classifier:
            self.class_lists = _load_classes(node, ctx, self.n_outputs)
            self.classes = _classes_attr(self.class_lists)
            self.n_classes = [len(c) for c in self.class_lists]
            value_shape: tuple[int, ...] = (self.n_outputs, max(self.n_classes))
        else:
            value_shape = (self.n_outputs,)
        if self.single:
            tree_nodes = [ctx.get(node, "tree", dict)]
            tctxs = [ctx.child("tree")]
        else:
            tree_nodes = load_trees(node, ctx)
            tctxs = [ctx.child("trees", i) for i in range(len(tree_nodes))]
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for tnode, tctx in zip(tree_nodes, tctxs, strict=True):
            tree, value = load_tree(tnode, tctx, self.n_features_in, value_shape)
            trees.append(tree)
            values.append(value.reshape(value.shape[0], -1))
        self.forest = compile_forest(trees, values, self.n_features_in)
        return self

    def _sums(self, X: np.ndarray) -> np.ndarray:
        """Per row, the leaf values summed over trees then divided by their number (forest average)."""
        Xf = float32_input(X, self.n_features_in, self.type_name, self.allow_nan)
        K = self.forest.n_outputs
        total = sum_trees(self.forest, Xf, np.zeros((1, K)))[:, 0, :]
        if not self.single:
            total /= self.forest.n_trees
        return total


class _TreeClassifier(_SklearnTrees):
    classifier = True
    class_lists: list[np.ndarray]

    def _probas(self, X: np.ndarray) -> list[np.ndarray]:
        p = self._sums(X).reshape(X.shape[0], self.n_outputs, -1)
        return [np.ascontiguousarray(p[:, k, :n]) for k, n in enumerate(self.n_classes)]

    def predict_proba(self, X: np.ndarray) -> Any:
        probas = self._probas(X)
        return probas[0] if self.n_outputs == 1 else probas

    def predict(self, X: np.ndarray) -> np.ndarray:
        probas = self._probas(X)
        winners = [np.argmax(p, axis=1) for p in probas]
        if self.n_outputs == 1:
            return self.class_lists[0][winners[0]]
        return _label_matrix(self.class_lists, winners)


class _TreeRegressor(_SklearnTrees):
    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self._sums(X)
        return out[:, 0] if self.n_outputs == 1 else out


@register("decision_tree_classifier")
class DecisionTreeClassifier(_TreeClassifier):
    single = True


@register("decision_tree_regressor")
class DecisionTreeRegressor(_TreeRegressor):
    single = True


@register("random_forest_classifier", "extra_trees_classifier")
class ForestClassifier(_TreeClassifier):
    pass


@register("random_forest_regressor", "extra_trees_regressor")
class ForestRegressor(_TreeRegressor):
    pass


# -- gradient boosting -----------------------------------------------------------------------------

GB_CLASSIFIER_LOSSES = ("log_loss", "exponential")
GB_REGRESSOR_LOSSES = ("squared_error", "absolute_error", "huber", "quantile")


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function as scipy.special.expit computes it: 1 / (1 + exp(-x))."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softmax(raw: np.ndarray) -> np.ndarray:
    """scikit-learn's ``utils.extmath.softmax``: subtract the row max, exp, divide by the row sum."""
    p = raw - raw.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


class _GradientBoosting(Estimator):
    """``raw = init + sum over stages of learning_rate * tree_value`` (scikit-learn's predict_stages)."""

    per_stage = 1
    loss = ""
    init: np.ndarray
    forest: CompiledForest
    losses: tuple[str, ...] = ()

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.loss = ctx.string(node, "loss", choices=self.losses)
        lr = ctx.number(node, "learning_rate")
        K = 1
        if isinstance(self, GradientBoostingClassifier):
            self.classes = ctx.labels(node, "classes")
            n = len(self.classes)
            if n < 2:
                raise ctx.fail("a classifier needs at least two classes", "classes")
            if self.loss == "exponential" and n != 2:
                raise ctx.fail("the exponential loss is for two classes only", "loss")
            K = 1 if n == 2 else n
        self.per_stage = K
        self.init = ctx.array(node, "init", "float64", shape=(K,)).reshape(K, 1)
        tree_nodes = load_trees(node, ctx)
        if len(tree_nodes) % K:
            raise ctx.fail(f"the number of trees must be a multiple of {K} (one tree per class per stage)",
                           "trees")
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for i, tnode in enumerate(tree_nodes):
            tree, value = load_tree(tnode, ctx.child("trees", i), self.n_features_in, (), missing=False)
            trees.append(tree)
            values.append((lr * value).reshape(-1, 1))  # scikit-learn adds `scale * value[leaf]`
        self.forest = compile_forest(trees, values, self.n_features_in)
        return self

    def _raw(self, X: np.ndarray) -> np.ndarray:
        Xf = float32_input(X, self.n_features_in, self.type_name, allow_nan=False)
        return sum_trees(self.forest, Xf, self.init, self.per_stage)[:, :, 0]


@register("gradient_boosting_regressor")
class GradientBoostingRegressor(_GradientBoosting):
    losses = GB_REGRESSOR_LOSSES

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._raw(X)[:, 0]


@register("gradient_boosting_classifier")
class GradientBoostingClassifier(_GradientBoosting):
    losses = GB_CLASSIFIER_LOSSES

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        return raw[:, 0] if self.per_stage == 1 else raw

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        if self.per_stage > 1:
            return softmax(raw)
        p1 = expit(2.0 * raw[:, 0] if self.loss == "exponential" else raw[:, 0])
        proba = np.empty((raw.shape[0], 2))
        proba[:, 1] = p1
        proba[:, 0] = 1 - p1
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        raw = self._raw(X)
        if self.per_stage == 1:
            return self.classes[(raw[:, 0] >= 0).astype(np.int64)]
        return self.classes[np.argmax(raw, axis=1)]


# -- isolation forest -------------------------------------------------------------------------------

def average_path_length(n: np.ndarray) -> np.ndarray:
    """scikit-learn's ``_average_path_length``: c(n) of an unsuccessful search in a binary search tree."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@register("isolation_forest")
class IsolationForest(Estimator):
    """Score = 2 ** -(mean path length / c(max_samples)); each tree's ``value`` holds, per node,
    ``depth + c(n_node_samples) - 1`` as scikit-learn adds it for the leaf a row reaches."""

    offset = -0.5
    forest: CompiledForest
    denominator = 1.0

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.offset = ctx.number(node, "offset")
        max_samples = ctx.integer(node, "max_samples", minimum=1)
        tree_nodes = load_trees(node, ctx)
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for i, tnode in enumerate(tree_nodes):
            tree, value = load_tree(tnode, ctx.child("trees", i), self.n_features_in, ())
            trees.append(tree)
            values.append(value.reshape(-1, 1))
        self.forest = compile_forest(trees, values, self.n_features_in)
        self.denominator = len(trees) * float(average_path_length(np.array([max_samples]))[0])
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        Xf = float32_input(X, self.n_features_in, self.type_name, allow_nan=True, allow_inf=True)
        depths = sum_trees(self.forest, Xf, np.zeros((1, 1)))[:, 0, 0]
        if self.denominator != 0:
            ratio = depths / self.denominator
        else:
            ratio = np.ones_like(depths)
        return -(2 ** (-ratio))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.score_samples(X) - self.offset

    def predict(self, X: np.ndarray) -> np.ndarray:
        decision = self.decision_function(X)
        out = np.ones(decision.shape, dtype=np.int64)
        out[decision < 0] = -1
        return out
