"""Decision trees and tree ensembles: scikit-learn's trees, forests, gradient boosting, isolation forest.

A document stores every tree as parallel arrays (``children_left``, ``children_right``, ``feature``,
``threshold``, ``missing_go_to_left``, ``value``) in scikit-learn's node order (docs/format/trees.md).
At load each tree is validated with a few vectorised checks (no recursion, no per-node Python) and the
whole ensemble is compiled ONCE into a flat layout that scores every tree of a chunk of rows with a few
numpy calls per tree level:

* :class:`_BitVectorForest` (trees of at most 64 leaves: gradient boosting, HGB): QuickScorer. A split
  that sends a row right removes the leaves of its left subtree. The splits of feature ``f`` that send
  ``x`` right are those with the smallest thresholds, so one table row per (feature, rank of ``x``
  among that feature's thresholds) holds, for every tree, the AND of their leaf masks (plus a NaN row,
  and one row per category for categorical features). Scoring = ranks (a branch-free binary search, or
  one comparison with every threshold for few rows), one gather of table rows, one AND over features;
  the exit leaf is the lowest set bit. Single rows of depth-3 forests use byte lookup tables.
* :class:`_TraversalForest` (deeper trees: random forests, isolation forests): all trees advance one
  level per step over a (tree x row) lane matrix, deepest trees first so that the trees still walking
  are a prefix of the lanes. Forests that fit use complete-binary level tables (child index
  ``2 * index + go_right``, leaves padded with always-left splits); the others breadth-first numbering
  with adjacent siblings (``left[node] + go_right``). With float32 inputs, threshold and column offset
  are packed into one int64 word next to order-preserving keys of the inputs: one gather, one compare.

Both reach, per tree and row, the leaf scikit-learn's ``apply`` reaches, bit for bit: float32 rounding
is reproduced exactly (``float32_equivalent`` thresholds, or binary32 keys), thresholds stay float64,
NaN follows ``missing_go_to_left`` and is only looked for in chunks that hold one. The trees' leaf outputs
are then added in tree order, as scikit-learn's loops do (:func:`sequential_sum`).
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
_COMPILED_MAX_ELEMENTS = 1 << 25  # leaf-output tables a layout may add to what the document holds
_CHUNK_MAX_ELEMENTS = 1 << 22  # transposed inputs per traversal chunk (very wide inputs: fewer rows)
_TRAVERSAL_LANES = 1 << 15  # trees x rows per traversal chunk
_QS_CHUNK_BYTES = 1 << 19  # bytes of gathered masks per QuickScorer chunk
_QS_COMPARE_ELEMENTS = 1 << 15  # up to (rows x thresholds): rank inputs by comparing with every threshold


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
        return (self.n_nodes + 1) // 2  # every split has two children


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def load_tree(tnode: Any, ctx: LoadContext, n_features: int, value_shape: Sequence[int],
              *, missing: bool = True, categorical: set[int] | None = None,
              levels: bool = True) -> tuple[Tree, np.ndarray]:
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
                   f"child index {v} must be greater than its parent's index {i} "
                   "(trees are stored parent first)")
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
    by_depth = _levels(left, right, ctx) if levels else []  # else: the caller runs forest_levels
    return Tree(left, right, feature, threshold, miss.astype(bool), by_depth, cat_split, bitsets), value


def _levels(left: np.ndarray, right: np.ndarray, ctx: LoadContext) -> list[np.ndarray]:
    """Node indices per depth, by a vectorised breadth-first walk (the structure is already checked)."""
    levels = [np.zeros(1, dtype=np.int64)]
    frontier = levels[0]
    kids = np.empty((left.shape[0], 2), dtype=np.int64)
    kids[:, 0] = left
    kids[:, 1] = right
    while True:
        inner = frontier[left[frontier] >= 0]
        if not inner.size:
            return levels
        if len(levels) > MAX_TREE_DEPTH:
            raise ctx.fail(f"tree is deeper than {MAX_TREE_DEPTH} levels", "children_left")
        frontier = kids[inner].ravel()  # siblings adjacent
        levels.append(frontier)


def forest_levels(trees: Sequence[Tree], ctxs: Sequence[LoadContext]) -> None:
    """``_levels`` of every tree at once (trees loaded with ``levels=False``): one breadth-first step
    per depth for the whole forest, the trees' nodes concatenated; sets each tree's levels and depth."""
    sizes = np.array([t.n_nodes for t in trees], dtype=np.int64)
    bases = np.zeros(len(trees), dtype=np.int64)
    np.cumsum(sizes[:-1], out=bases[1:])
    owner = np.repeat(np.arange(len(trees), dtype=np.int64), sizes)
    shift = bases[owner]
    left = np.concatenate([t.left for t in trees])
    inner_node = left >= 0
    kids = np.empty((left.shape[0], 2), dtype=np.int64)  # global child indices (leaves: unused)
    np.add(left, shift, out=kids[:, 0])
    np.add(np.concatenate([t.right for t in trees]), shift, out=kids[:, 1])
    levels: list[list[np.ndarray]] = [[] for _ in trees]
    frontier = bases  # grouped by tree, in tree order, siblings adjacent (as _levels orders them)
    depth = 0
    while frontier.size:
        own = owner[frontier]
        starts = np.flatnonzero(np.concatenate(([True], own[1:] != own[:-1])))
        local = frontier - shift[frontier]
        bounds = [*starts.tolist(), int(frontier.size)]
        for j, a, b in zip(own[starts].tolist(), bounds, bounds[1:], strict=False):  # bounds: one longer
            levels[j].append(local[a:b])
        inner = frontier[inner_node[frontier]]
        if inner.size and depth >= MAX_TREE_DEPTH:
            ctx = ctxs[int(owner[inner[0]])]
            raise ctx.fail(f"tree is deeper than {MAX_TREE_DEPTH} levels", "children_left")
        frontier = kids[inner].ravel()
        depth += 1
    for t, lv in zip(trees, levels, strict=True):
        t.levels = lv
        t.depth = len(lv) - 1


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

class Categorical:
    """Categorical input columns (HGB): column -> number of known categories. Inputs in such a column
    are category codes ``0..K-1`` (as floats) or NaN for missing / unknown."""

    def __init__(self, n_categories: dict[int, int]) -> None:
        self.n_categories = dict(n_categories)


FLOAT32_MAX = float(np.finfo(np.float32).max)
# float64 values from this magnitude up round to an infinite float32 (the tie rounds away: FLT_MAX is odd)
FLOAT32_OVERFLOW = (FLOAT32_MAX + 2.0**128) / 2


def float32_equivalent(thr: np.ndarray) -> np.ndarray:
    """Thresholds ``T`` such that ``x <= T`` equals scikit-learn's ``float32(x) <= thr`` for every float64
    ``x`` (NaN aside), so float64 inputs never need rounding at predict time.

    ``float32(x) <= thr`` iff ``float32(x) <= t``, ``t`` the largest float32 not above ``thr``; ``x``
    rounds to at most ``t`` iff it is below the midpoint of ``t`` and the next float32, or exactly on
    it when the tie goes to ``t`` (round half to even: ``t``'s last mantissa bit is 0).
    """
    thr = np.asarray(thr, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = thr.astype(np.float32)
        down = t32.astype(np.float64) > thr
        t32[down] = np.nextafter(t32[down], np.float32(-np.inf))
        nxt = np.nextafter(t32, np.float32(np.inf)).astype(np.float64)
    lo = t32.astype(np.float64)
    nxt[np.isposinf(nxt) & np.isfinite(lo)] = 2.0**128  # past FLT_MAX: the "next" value is 2**128
    mid = (lo + nxt) / 2  # exact: 25 significant bits
    even = (t32.view(np.uint32) & 1) == 0
    out = np.where(even, mid, np.nextafter(mid, -np.inf))
    out[np.isposinf(lo)] = np.inf
    out[np.isneginf(lo)] = -FLOAT32_OVERFLOW  # float32(x) == -inf iff x <= -FLOAT32_OVERFLOW
    return out


def float32_floor(thr: np.ndarray) -> np.ndarray:
    """The largest float32 not above each threshold (``float32(x) <= thr`` iff ``float32(x) <= floor``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        t32 = np.asarray(thr, dtype=np.float64).astype(np.float32)
        down = t32.astype(np.float64) > thr
        t32[down] = np.nextafter(t32[down], np.float32(-np.inf))
    return t32


def float32_key(x32: np.ndarray) -> np.ndarray:
    """Order-preserving int64 keys of float32 values (``a <= b`` iff ``key(a) <= key(b)``), -0.0 as +0.0,
    NaN above +inf; shifted left 32 bits so that a key compares with a packed (key, column) word."""
    x32 = np.asarray(x32, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 = +0.0
    nan = np.isnan(x32)
    if nan.any():
        x32 = np.where(nan, np.float32(np.nan), x32)  # one positive NaN, above +inf
    b = x32.view(np.int32)
    return (b ^ ((b >> 31) & 0x7FFFFFFF)).astype(np.int64) << 32


_KEY_INF = int(float32_key(np.array([np.inf], dtype=np.float32))[0])  # key(+inf); NaN keys are larger
_LOW32 = 0xFFFFFFFF


class CompiledForest:
    """An ensemble compiled for scoring: ``sums(X)`` returns, per row, the trees' leaf outputs summed in
    tree order exactly as scikit-learn's loops add them (``out += tree_output``, one tree after the other).

    Trees are stage-major, ``per_stage`` trees per stage, tree ``s * per_stage + k`` adding to column
    ``k``; ``init`` (``(per_stage, n_outputs)``) is folded into the first stage's leaf values at compile
    time (``init + leaf`` is the very first addition scikit-learn makes, so this is exact).
    """

    n_trees: int
    n_outputs: int
    per_stage: int
    chunk_rows: int
    few_rows: int  # up to this many rows, one call of few numpy ops (the single-row path)

    def sums(self, X: np.ndarray, has_nan: bool | None = None) -> np.ndarray:
        """``(rows, per_stage, n_outputs)``. ``has_nan``: whether X holds NaN, if the caller knows."""
        R = X.shape[0]
        T, G, K = self.n_trees, self.per_stage, self.n_outputs
        S = T // G
        if R == 1 and self.few_rows:
            vals = self._few(X, has_nan)  # (T, 1, K)
            if S == 1:
                return vals.reshape(1, G, K)
            return np.add.accumulate(vals.reshape(S, G * K), axis=0)[-1].reshape(1, G, K)
        if self.few_rows >= R:
            vals = self._few(X, has_nan)  # (T, R, K)
            acc = sequential_sum(vals.reshape(S, G * R * K)) if S > 1 else vals
            return acc.reshape(G, R, K).transpose(1, 0, 2)
        result = np.empty((R, G, K))
        step = self.chunk_rows
        for start in range(0, R, step):
            Xc = X[start:start + step]
            r = Xc.shape[0]
            vals = np.empty((S, G, r, K))
            self._chunk(Xc, vals.reshape(T, r, K), has_nan)
            total = sequential_sum(vals.reshape(S, G * r * K))
            result[start:start + r] = total.reshape(G, r, K).transpose(1, 0, 2)
        return result

    def _chunk(self, X: np.ndarray, out: np.ndarray, has_nan: bool | None) -> None:
        raise NotImplementedError

    def _few(self, X: np.ndarray, has_nan: bool | None) -> np.ndarray:
        out = np.empty((self.n_trees, X.shape[0], self.n_outputs))
        self._chunk(X, out, has_nan)
        return out


def sequential_sum(a: np.ndarray) -> np.ndarray:
    """``a[0] + a[1] + ... + a[-1]`` added strictly in that order (scikit-learn adds tree after tree).

    ``np.add.reduce`` over the outer axis of a C-contiguous 2-D array with at least two columns adds
    whole rows one after the other (pairwise summation only happens along the innermost axis); with a
    single column it would be pairwise, so ``accumulate`` (sequential by definition) is used instead.
    tests/parity/test_trees.py checks both against a Python loop.
    """
    if a.shape[0] == 1:
        return a[0]
    if a.shape[1] >= 2:
        return np.add.reduce(np.ascontiguousarray(a), axis=0)
    return np.add.accumulate(a, axis=0)[-1]


def compile_forest(trees: Sequence[Tree], values: Sequence[np.ndarray], n_features: int, *,
                   categorical: Categorical | None = None, float32: bool = False,
                   init: np.ndarray | None = None, per_stage: int = 1,
                   engine: str | None = None) -> CompiledForest:
    """Build the faster layout for these trees. ``values[t]`` is ``(n_nodes_t, n_outputs)``.

    ``float32``: scikit-learn rounds inputs to float32 before comparing (every tree but HGB's).
    """
    engine = engine or FORCE_ENGINE or _choose_engine(trees, n_features, int(values[0].shape[1]))
    values = list(values)
    if init is not None:
        for k in range(per_stage):
            values[k] = init[k] + values[k]
    K = int(values[0].shape[1])
    # a forced layout (tests) still never exceeds the memory bounds
    bitvector = engine == "bitvector" and _bitvector_fits(trees, K)
    keys = None
    if float32:  # every tree's thresholds at once (per tree, the numpy calls would dominate)
        cuts = np.cumsum([t.n_nodes for t in trees])[:-1]
        thr = np.concatenate([t.threshold for t in trees])
        if categorical is None and not bitvector:
            keys = np.split(float32_key(float32_floor(thr)), cuts)
        thr = np.where(np.concatenate([t.left for t in trees]) >= 0, float32_equivalent(thr), thr)
        trees = [_float32_tree(t, tt) for t, tt in zip(trees, np.split(thr, cuts), strict=True)]
    if bitvector:
        forest: CompiledForest = _BitVectorForest(trees, values, n_features, categorical)
    else:
        forest = _TraversalForest(trees, values, n_features, categorical,
                                  heap=None if engine in ("traversal", "bitvector") else engine == "heap",
                                  keys=keys)
    forest.per_stage = per_stage
    return forest


FORCE_ENGINE: str | None = None  # tests set "bitvector" / "heap" / "explicit" to exercise every layout


def _float32_tree(t: Tree, thr: np.ndarray) -> Tree:
    """``t`` with ``thr``: its split thresholds made ``float32_equivalent`` (leaves' left as they were)."""
    return Tree(t.left, t.right, t.feature, thr, t.missing_left, t.levels, t.category_split, t.bitsets)


def _bitvector_fits(trees: Sequence[Tree], n_outputs: int) -> bool:
    max_leaves = max(t.n_leaves for t in trees)
    per_tree = 256 if max_leaves <= 8 else 67
    return max_leaves <= 64 and len(trees) * per_tree * n_outputs <= _COMPILED_MAX_ELEMENTS


def _choose_engine(trees: Sequence[Tree], n_features: int, n_outputs: int) -> str:
    max_leaves = max(t.n_leaves for t in trees)
    if not _bitvector_fits(trees, n_outputs):
        return "traversal"
    T = len(trees)
    feats: set[int] = set()
    n_thresholds = 0
    for t in trees:
        inner = t.left >= 0
        feats.update(np.unique(t.feature[inner]).tolist())
        n_thresholds += int(np.count_nonzero(inner))
    itemsize = 1 if max_leaves <= 8 else 2 if max_leaves <= 16 else 4 if max_leaves <= 32 else 8
    rows = n_thresholds + 2 * len(feats)
    if rows * T * itemsize > _QS_MAX_TABLE_BYTES:
        return "traversal"
    # nanoseconds per row, measured: element gathers ~2.5 ns, row copies + AND ~0.15 ns/byte + 0.5 ns
    qs = len(feats) * T * (0.15 * itemsize + 0.5) + 6.0 * T + 40.0 * len(feats)
    trav = sum(t.depth for t in trees) * 11.0 + 4.0 * T
    return "bitvector" if qs < trav else "traversal"


class _TraversalForest(CompiledForest):
    """Level-synchronous traversal of all trees over a (tree x row) lane matrix, trees deepest first so
    the trees still walking at level ``d`` are a prefix of the lanes (no masking, no early-exit test).

    Shallow-enough forests use complete-binary levels: level ``d`` has one table of ``2**d`` nodes per
    tree still walking, a lane's index there is ``tree * 2**d + position`` and its child's index on the
    next level is ``2 * index + go_right``; a leaf above the last level is padded with always-left
    splits (threshold +inf). Deeper forests use breadth-first renumbering with adjacent siblings
    (``left[node] + go_right``) and leaves that point to themselves.

    Per node: the input column it reads (leaves read column 0), its threshold (+inf for leaves and
    padding, so every non-NaN value goes left, i.e. stays) and whether NaN goes right. With float32
    inputs (every scikit-learn tree but HGB's) one packed word per node holds the threshold's order-
    preserving key and the column's offset: one gather yields both, one int64 comparison decides.
    """

    few_rows = 1

    def __init__(self, trees: Sequence[Tree], values: Sequence[np.ndarray], n_features: int,
                 categorical: Categorical | None, heap: bool | None = None,
                 keys: Sequence[np.ndarray] | None = None) -> None:
        T = len(trees)
        self.n_trees = T
        self.n_outputs = int(values[0].shape[1])
        self.per_stage = 1
        self.n_features = n_features
        depths = np.array([t.depth for t in trees], dtype=np.int64)
        order = np.argsort(-depths, kind="stable")
        self.inverse = np.argsort(order, kind="stable")
        self._identity = bool(np.array_equal(order, np.arange(T)))
        self.active = [int(np.count_nonzero(depths > s)) for s in range(int(depths.max(initial=0)))]
        n_columns = n_features + sum(int(np.count_nonzero(t.category_split >= 0)) for t in trees
                                     if t.category_split is not None)
        rows = min(4096, max(8, _TRAVERSAL_LANES // T), _CHUNK_MAX_ELEMENTS // n_columns)
        self.chunk_rows = rows = max(1, rows)
        if int(depths.max(initial=0)) <= _HEAP_MAX_DEPTH:
            slots = int(sum(1 << (int(d) + 1) for d in depths))
        else:
            slots = _HEAP_MAX_SLOTS + 1
        fits = slots <= _HEAP_MAX_SLOTS and slots * self.n_outputs // 2 <= _COMPILED_MAX_ELEMENTS
        worth = slots <= 8 * sum(t.n_nodes for t in trees) + 64 * T  # padding of sparse deep trees
        heap = fits and (worth if heap is None else heap)
        self.heap = heap
        self._virtual: list[tuple[int, np.ndarray, np.ndarray]] = []  # (column, virtual columns, right table)
        vcol = self._virtual_columns(trees, categorical)
        self.n_columns = n_features + self._n_virtual
        per_node = [self._split_arrays(trees[i], vcol[i]) for i in order.tolist()]
        tkeys = None if keys is None or self._virtual else [keys[i] for i in order.tolist()]
        sorted_trees = [trees[i] for i in order.tolist()]
        sorted_values = [values[i] for i in order.tolist()]
        if heap:
            self._build_levels(sorted_trees, sorted_values, per_node, tkeys)
        else:
            self._build_explicit(sorted_trees, sorted_values, per_node, tkeys)
        self._ar_full = np.broadcast_to(np.arange(rows, dtype=np.int64), (T, rows)).copy()
        self._vshift_orig = self.vshift[self.inverse][:, None]

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
                right = np.empty(k + 2, dtype=np.float64)
                right[0] = j
                right[1:k + 1] = ~bits[int(cs[n]), :k]
                right[k + 1] = 0.0 if t.missing_left[n] else 1.0
                per_column.setdefault(f, []).append(right)
            col += nodes.size
            out.append(vc)
        self._n_virtual = col - self.n_features
        for f, rows in per_column.items():
            table = np.array(rows)  # (n_splits, 1 + k + 1)
            self._virtual.append((f, table[:, 0].astype(np.int64), np.ascontiguousarray(table[:, 1:])))
        return out

    @staticmethod
    def _split_arrays(t: Tree, vc: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

    def _build_levels(self, trees: list[Tree], values: list[np.ndarray],
                      per_node: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                      tkeys: list[np.ndarray] | None) -> None:
        K = self.n_outputs
        rows = self.chunk_rows
        self.lv_feat: list[np.ndarray] = []
        self.lv_featR: list[np.ndarray] = []
        self.lv_thr: list[np.ndarray] = []
        self.lv_mr: list[np.ndarray] = []
        self.lv_packed: list[np.ndarray] | None = [] if tkeys is not None else None
        for d, n in enumerate(self.active):
            size = n << d
            self.lv_feat.append(np.zeros(size, dtype=np.int64))
            self.lv_thr.append(np.full(size, np.inf))
            self.lv_mr.append(np.zeros(size, dtype=bool))
        lv_key = [np.full(n << d, _KEY_INF, dtype=np.int64) for d, n in enumerate(self.active)]
        depths = np.array([t.depth for t in trees], dtype=np.int64)
        vsizes = np.left_shift(1, depths)
        vbases = np.concatenate([[0], np.cumsum(vsizes)[:-1]]).astype(np.int64)
        vals = np.full((int(vsizes.sum()), K), np.nan)
        # all trees at once, one depth level per step: node arrays concatenated, children made global
        sizes = np.array([t.n_nodes for t in trees], dtype=np.int64)
        nbases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        shift = np.repeat(nbases, sizes)
        left = np.concatenate([t.left for t in trees])
        inner_node = left >= 0
        left = np.where(inner_node, left + shift, -1)
        right = np.where(inner_node, np.concatenate([t.right for t in trees]) + shift, -1)
        f_all = np.concatenate([p[0] for p in per_node])
        th_all = np.concatenate([p[1] for p in per_node])
        mr_all = np.concatenate([p[2] for p in per_node])
        key_all = np.concatenate(tkeys) if tkeys is not None else None
        v_all = np.ascontiguousarray(np.concatenate(values), dtype=np.float64)
        g = nbases  # the frontier: global node indices, their sorted tree and index within the level
        tree = np.arange(len(trees), dtype=np.int64)
        pos = np.zeros(len(trees), dtype=np.int64)
        leaf_dst: list[np.ndarray] = []
        leaf_src: list[np.ndarray] = []
        d = 0
        while g.size:
            inner = inner_node[g]
            gi, ji, pi = g[inner], tree[inner], pos[inner]
            if gi.size:
                at = (ji << d) + pi
                self.lv_feat[d][at] = f_all[gi]
                self.lv_thr[d][at] = th_all[gi]
                self.lv_mr[d][at] = mr_all[gi]
                if key_all is not None:
                    lv_key[d][at] = key_all[gi]
            leaf = ~inner
            jl = tree[leaf]
            leaf_dst.append(vbases[jl] + (pos[leaf] << (depths[jl] - d)))
            leaf_src.append(g[leaf])
            g = np.concatenate((left[gi], right[gi]))
            tree = np.concatenate((ji, ji))
            pi = pi + pi
            pos = np.concatenate((pi, pi + 1))
            d += 1
        row = np.dtype((np.void, 8 * K))  # whole value rows as one item: a 1-D gather, bytes copied as is
        dst, src = np.concatenate(leaf_dst), np.concatenate(leaf_src)
        vals.view(row).reshape(-1)[dst] = v_all.view(row).reshape(-1)[src]
        self.lv_featR = [f * rows for f in self.lv_feat]
        if self.lv_packed is not None:
            self.lv_packed = [k | fr for k, fr in zip(lv_key, self.lv_featR, strict=True)]
        self.vals = vals
        self.roots = np.arange(len(trees), dtype=np.int64)
        # a lane of sorted tree j ends at index j * 2**D + position: its value row is vbase + position
        self.vshift = vbases - (np.arange(len(trees), dtype=np.int64) << depths)

    def _build_explicit(self, trees: list[Tree], values: list[np.ndarray],
                        per_node: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                        tkeys: list[np.ndarray] | None) -> None:
        """Breadth-first renumbering (siblings adjacent: right = left + 1); leaves point to themselves."""
        K = self.n_outputs
        sizes = [t.n_nodes for t in trees]
        bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = int(sum(sizes))
        feat = np.empty(total, dtype=np.int64)
        thr = np.empty(total)
        mr = np.empty(total, dtype=bool)
        left = np.empty(total, dtype=np.int64)
        tkey = np.empty(total, dtype=np.int64)
        vals = np.empty((total, K))
        for j, t in enumerate(trees):
            bfs = np.concatenate(t.levels)  # parents before children; siblings adjacent
            new = np.empty(t.n_nodes, dtype=np.int64)
            new[bfs] = np.arange(t.n_nodes)
            f_t, th_t, mr_t = per_node[j]
            sl = slice(int(bases[j]), int(bases[j]) + t.n_nodes)
            feat[sl] = f_t[bfs]
            thr[sl] = th_t[bfs]
            mr[sl] = mr_t[bfs]
            lc = t.left[bfs]
            left[sl] = bases[j] + np.where(lc >= 0, new[np.maximum(lc, 0)], np.arange(t.n_nodes))
            vals[sl] = values[j][bfs]
            if tkeys is not None:
                tkey[sl] = np.where(lc >= 0, tkeys[j][bfs], _KEY_INF)
        self.feat, self.thr, self.mr, self.left, self.vals = feat, thr, mr, left, vals
        self.featR = feat * self.chunk_rows
        self.packed = tkey | self.featR if tkeys is not None else None
        self.roots = bases
        self.vshift = np.zeros(len(trees), dtype=np.int64)

    def _columns(self, X: np.ndarray, width: int) -> np.ndarray:
        """The chunk transposed (column-major reads are contiguous per split), plus virtual columns."""
        r = X.shape[0]
        Xt = np.empty((self.n_columns, width))
        Xt[: self.n_features, :r] = X.T
        for f, cols, right in self._virtual:
            x = X[:, f]
            k = right.shape[1] - 1
            code = np.where(np.isnan(x), k, x).astype(np.int64)
            Xt[cols, :r] = right[:, code]
        return Xt

    def _few(self, X: np.ndarray, has_nan: bool | None) -> np.ndarray:
        """One row: the lanes are the trees; five numpy calls per level."""
        x = self._columns(X, 1).ravel() if self._virtual else X.reshape(-1)
        if has_nan is None:
            has_nan = bool(np.isnan(x).any())
        g = self.roots.copy()
        if self.heap:
            for d, n in enumerate(self.active):
                gs = g[:n]
                xv = x[self.lv_feat[d][gs]]
                gr = xv > self.lv_thr[d][gs]
                if has_nan:
                    gr |= np.isnan(xv) & self.lv_mr[d][gs]
                g[:n] = gs + gs + gr
        else:
            feat, thr, left, mr = self.feat, self.thr, self.left, self.mr
            for n in self.active:
                gs = g[:n]
                xv = x[feat[gs]]
                gr = xv > thr[gs]
                if has_nan:
                    gr |= np.isnan(xv) & mr[gs]
                g[:n] = left[gs] + gr
        g += self.vshift
        v = self.vals[g]
        return (v if self._identity else v[self.inverse]).reshape(self.n_trees, 1, self.n_outputs)

    def _chunk(self, X: np.ndarray, out: np.ndarray, has_nan: bool | None) -> None:
        r = X.shape[0]
        T = self.n_trees
        full = r == self.chunk_rows
        if has_nan is None or has_nan:
            has_nan = bool(np.isnan(X).any())
        keyed = (self.lv_packed if self.heap else self.packed) is not None
        if keyed:
            Xt = np.empty((self.n_columns, self.chunk_rows), dtype=np.int64)
            with np.errstate(over="ignore"):  # beyond float32's range is +-inf, as for scikit-learn
                Xt[:, :r] = float32_key(X.T.astype(np.float32))
            flat = Xt.ravel()
            work = np.empty((T, r), dtype=np.int64)
        else:
            flat = self._columns(X, self.chunk_rows).ravel()
            th = np.empty((T, r))
        xv = np.empty((T, r), dtype=np.int64 if keyed else np.float64)
        g = np.empty((T, r), dtype=np.int64)
        g[:] = self.roots[:, None]
        fo = np.empty((T, r), dtype=np.int64)
        gr = np.empty((T, r), dtype=bool)
        if has_nan:
            nan = np.empty((T, r), dtype=bool)
            mrb = np.empty((T, r), dtype=bool)
        ar = self._ar_full if full else np.arange(r, dtype=np.int64)
        for d, n in enumerate(self.active):
            gs, fos, grs, xvs = g[:n], fo[:n], gr[:n], xv[:n]
            arn = ar[:n] if full else ar
            if self.heap:
                packed = self.lv_packed[d] if self.lv_packed is not None else None
                featR, thr, mr = self.lv_featR[d], self.lv_thr[d], self.lv_mr[d]
            else:
                packed, featR, thr, mr = self.packed, self.featR, self.thr, self.mr
            if packed is not None:
                ws = work[:n]
                np.take(packed, gs, out=ws, mode="wrap")
                np.bitwise_and(ws, _LOW32, out=fos)
                np.add(fos, arn, out=fos)
                np.take(flat, fos, out=xvs, mode="wrap")
                np.greater(xvs, ws, out=grs)  # key(x) > key(threshold); equal keys go left
                if has_nan:
                    ns, ms = nan[:n], mrb[:n]
                    np.greater(xvs, _KEY_INF + _LOW32, out=ns)  # NaN keys sit above +inf
                    np.take(mr, gs, out=ms, mode="wrap")
                    np.copyto(grs, ms, where=ns)
            else:
                ths = th[:n]
                np.take(featR, gs, out=fos, mode="wrap")
                np.add(fos, arn, out=fos)
                np.take(flat, fos, out=xvs, mode="wrap")
                np.take(thr, gs, out=ths, mode="wrap")
                np.greater(xvs, ths, out=grs)
                if has_nan:
                    ns, ms = nan[:n], mrb[:n]
                    np.isnan(xvs, out=ns)
                    np.take(mr, gs, out=ms, mode="wrap")
                    np.logical_and(ns, ms, out=ns)
                    np.logical_or(grs, ns, out=grs)
            if self.heap:
                np.left_shift(gs, 1, out=gs)
            else:
                np.take(self.left, gs, out=gs, mode="wrap")
            np.add(gs, grs, out=gs)
        gv = g if self._identity else g[self.inverse]
        gv += self._vshift_orig
        np.take(self.vals, gv, axis=0, out=out, mode="wrap")


_LOWBIT_PRIME = {2: 19, 4: 37, 8: 67}  # 2**k mod p is distinct for k < 8 * itemsize


class _BitVectorForest(CompiledForest):
    """QuickScorer over per-feature tables of leaf masks (see the module docstring)."""

    def __init__(self, trees: Sequence[Tree], values: Sequence[np.ndarray], n_features: int,
                 categorical: Categorical | None) -> None:
        T = len(trees)
        self.n_trees = T
        self.per_stage = 1
        K = self.n_outputs = int(values[0].shape[1])
        max_leaves = max(t.n_leaves for t in trees)
        itemsize = 1 if max_leaves <= 8 else 2 if max_leaves <= 16 else 4 if max_leaves <= 32 else 8
        wdt = np.dtype(f"u{itemsize}")
        self.wdtype = wdt
        ones = np.array(np.iinfo(wdt).max, dtype=wdt)
        cats = categorical.n_categories if categorical is not None else {}
        # per feature: (thresholds or bitsets, tree, mask, missing-goes-right) of its splits
        num: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        cat: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        P = _LOWBIT_PRIME[itemsize] if itemsize > 1 else 256
        self.P = P
        vq = np.full((T * P, K), np.nan)
        ctz8 = _ctz8(np.arange(256))
        for ti, t in enumerate(trees):
            nl = np.ones(t.n_nodes, dtype=np.int64)  # leaves under each node
            for nodes in reversed(t.levels):
                inner = nodes[t.left[nodes] >= 0]
                nl[inner] = nl[t.left[inner]] + nl[t.right[inner]]
            lo = np.zeros(t.n_nodes, dtype=np.int64)  # in-order number of each subtree's first leaf
            for nodes in t.levels:
                inner = nodes[t.left[nodes] >= 0]
                lo[t.left[inner]] = lo[inner]
                lo[t.right[inner]] = lo[inner] + nl[t.left[inner]]
            inner = np.flatnonzero(t.left >= 0)
            width = nl[t.left[inner]]
            ones64 = np.uint64(0xFFFFFFFFFFFFFFFF)
            m64 = (ones64 >> (64 - width).astype(np.uint64)) << lo[inner].astype(np.uint64)
            masks = (~m64).astype(wdt)  # a false split removes the leaves of its left subtree
            f = t.feature[inner]
            mr = ~t.missing_left[inner]
            tree_id = np.full(inner.size, ti, dtype=np.int64)
            cs = t.category_split
            is_cat = (cs[inner] >= 0) if cs is not None else np.zeros(inner.size, dtype=bool)
            for fv in np.unique(f).tolist():
                sel = (f == fv) & ~is_cat
                if sel.any():
                    entry = (t.threshold[inner[sel]], tree_id[sel], masks[sel], mr[sel])
                    num.setdefault(fv, []).append(entry)
                sel = (f == fv) & is_cat
                if sel.any():
                    assert cs is not None and t.bitsets is not None
                    entry = (t.bitsets[cs[inner[sel]]], tree_id[sel], masks[sel], mr[sel])
                    cat.setdefault(fv, []).append(entry)
            leaves = np.flatnonzero(t.left < 0)
            bits = lo[leaves]
            if itemsize == 1:  # a direct table over the 256 mask values: exit leaf = lowest set bit
                leaf_of_bit = np.full(8, -1, dtype=np.int64)
                leaf_of_bit[bits] = leaves
                v = np.arange(1, 256)
                ok = leaf_of_bit[ctz8[v]] >= 0
                vq[ti * P + v[ok]] = values[ti][leaf_of_bit[ctz8[v[ok]]]]
            else:
                res = (np.left_shift(np.ones(bits.size, dtype=np.uint64), bits.astype(np.uint64))
                       % np.uint64(P)).astype(np.int64)
                vq[ti * P + res] = values[ti][leaves]
        self.vq = vq
        # per used feature, a block of table rows: numeric features one per rank of x among the
        # feature's distinct thresholds plus one for NaN; categorical ones one per category plus missing
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
                    goes_left = np.unpackbits(bitsets, axis=1, bitorder="little")[:, :k].astype(bool)
                    rr, cc = np.nonzero(~goes_left)
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
        self.n_used = len(self.features)
        self._numeric = [i for i, u in enumerate(self.uniq) if u is not None]
        self._categorical = [i for i, u in enumerate(self.uniq) if u is None]
        per_row = max(1, self.n_used) * T * itemsize
        self.chunk_rows = int(max(1, min(4096, _QS_CHUNK_BYTES // per_row)))
        nn = len(self._numeric)
        self._num_cols = np.array([self.features[i] for i in self._numeric], dtype=np.int64)
        self._num_off = np.array([self.offsets[i] for i in self._numeric], dtype=np.int64)
        self._num_nan = np.array([self.offsets[i] + self.nan_row[i] for i in self._numeric], dtype=np.int64)
        self.few_rows = 0
        if nn:
            us: list[np.ndarray] = [self.uniq[i] for i in self._numeric]  # type: ignore[misc]
            sizes = np.array([u.size for u in us], dtype=np.int64)
            # few rows: compare x with every threshold of its feature plus a +inf sentinel; "not <="
            # counts the thresholds below x, and for NaN (never <=) all of them plus the sentinel,
            # which is exactly the NaN row. One comparison, one per-feature count.
            self._few_u = np.concatenate([np.append(u, np.inf) for u in us])
            self._few_col = np.concatenate([np.full(u.size + 1, c) for u, c in
                                            zip(us, self._num_cols.tolist(), strict=True)])
            self._few_starts = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype(np.int64)
            self._few_base = self._num_off + sizes + 1  # offset + count(all) - count(<=)
            self.few_rows = max(1, _QS_COMPARE_ELEMENTS // self._few_u.size)
            # many rows: padded to a power of two > size with +inf, for a branch-free binary search
            self._P = 1 << int(sizes.max()).bit_length()
            padded = np.full((nn, self._P), np.inf)
            for j, u in enumerate(us):
                padded[j, : u.size] = u
            self._padded = padded.ravel()
            self._pad_base = (np.arange(nn, dtype=np.int64) * self._P - 1)[:, None]
        self._tree_off = np.arange(T, dtype=np.int64) * P
        self._tree_off_col = self._tree_off[:, None]
        self._tree_off_full = np.broadcast_to(self._tree_off_col, (T, self.chunk_rows)).copy()
        small = T * 128 * K <= _COMPILED_MAX_ELEMENTS
        self._lut = self._lookup_tables(trees, values) if categorical is None and small else None

    def _lookup_tables(self, trees: Sequence[Tree],
                       values: Sequence[np.ndarray]) -> tuple[np.ndarray, ...] | None:
        """Single rows of forests of depth <= 3 (gradient boosting's default): every tree's 7 split
        decisions (a complete depth-3 tree, padded with always-left splits; an eighth, always-left slot
        makes whole bytes) pack into one byte that indexes a 128-entry table of the tree's leaf outputs.
        Five numpy calls score all trees."""
        if max(t.depth for t in trees) > 3:
            return None
        T, K = len(trees), self.n_outputs
        feat = np.zeros((T, 8), dtype=np.int64)
        thr = np.full((T, 8), np.inf)
        mr = np.zeros((T, 8), dtype=bool)
        lut = np.full((T, 128, K), np.nan)
        patterns = np.arange(128)
        for j, t in enumerate(trees):
            slot = np.zeros(t.n_nodes, dtype=np.int64)  # heap slot, 0-based: children of s are 2s+1, 2s+2
            for nodes in t.levels:
                inner = nodes[t.left[nodes] >= 0]
                slot[t.left[inner]] = 2 * slot[inner] + 1
                slot[t.right[inner]] = 2 * slot[inner] + 2
            inner = np.flatnonzero(t.left >= 0)
            feat[j, slot[inner]] = t.feature[inner]
            thr[j, slot[inner]] = t.threshold[inner]
            mr[j, slot[inner]] = ~t.missing_left[inner]
            # walk every decision pattern down the padded tree: the leaf reached is the first leaf slot
            node = np.zeros(128, dtype=np.int64)
            at = np.zeros(128, dtype=np.int64)  # slot per pattern
            is_leaf = np.ones(15, dtype=bool)
            is_leaf[slot[inner]] = False
            node_of_slot = np.full(15, -1, dtype=np.int64)
            node_of_slot[slot] = np.arange(t.n_nodes)
            for _ in range(3):
                go = (patterns >> np.minimum(at, 6)) & 1
                step = ~is_leaf[at]
                at = np.where(step, 2 * at + 1 + go, at)
            node = node_of_slot[at]
            lut[j] = values[j][node]
        tree_off = np.arange(T, dtype=np.int64) * 128
        return feat.ravel(), thr.ravel(), mr.ravel(), lut.reshape(T * 128, K), tree_off

    def _ranks(self, X: np.ndarray) -> np.ndarray:
        """Table row per (used feature, row): the feature's offset + the rank of x among its thresholds
        (how many are < x), or its NaN / missing row. Shape (used features, rows)."""
        r = X.shape[0]
        G = np.empty((self.n_used, r), dtype=np.int64)
        if self._numeric:
            Xn = np.ascontiguousarray(X[:, self._num_cols].T)  # (numeric features, rows)
            ranks = np.zeros(Xn.shape, dtype=np.int64)
            step = self._P >> 1
            cand = np.empty(Xn.shape, dtype=np.int64)
            vals = np.empty(Xn.shape)
            hit = np.empty(Xn.shape, dtype=bool)
            while step:  # branch-free binary search of every (feature, row) at once
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

    def _leaf_values(self, v: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        """Masks (trees, rows) -> leaf outputs (trees, rows, n_outputs)."""
        if self.P == 256:
            idx = v.astype(np.int64)
        else:
            low = v & (-v)
            low %= self.wdtype.type(self.P)
            idx = low.astype(np.int64)
        r = idx.shape[1]
        idx += self._tree_off_full if r == self.chunk_rows else self._tree_off_col
        return self.vq.take(idx, axis=0, out=out, mode="clip")

    def _few(self, X: np.ndarray, has_nan: bool | None) -> np.ndarray:
        r = X.shape[0]
        if r == 1 and self._lut is not None:
            feat, thr, mr, lut, tree_off = self._lut
            x = X.reshape(-1)
            xv = x[feat]
            d = xv > thr
            if has_nan is None or has_nan:
                d |= np.isnan(xv) & mr
            bits = np.packbits(d, bitorder="little")  # one byte per tree
            return lut.take(tree_off + bits, axis=0).reshape(self.n_trees, 1, self.n_outputs)
        if r == 1 and not self._categorical:
            x = X.reshape(-1)
            G = self._few_base - np.add.reduceat(x[self._few_col] <= self._few_u, self._few_starts,
                                                 dtype=np.int64)
            v = np.bitwise_and.reduce(self.table.take(G, axis=0), 0)
            if self.P == 256:
                idx = self._tree_off + v
            else:
                low = v & (-v)
                low %= self.wdtype.type(self.P)
                idx = self._tree_off + low.astype(np.int64)  # (int64 + uint64 would be float64)
            return self.vq.take(idx, axis=0).reshape(self.n_trees, 1, self.n_outputs)
        G = np.empty((r, self.n_used), dtype=np.int64)
        if self._numeric:
            below = np.add.reduceat(X[:, self._few_col] <= self._few_u, self._few_starts, axis=1,
                                    dtype=np.int64)
            G[:, self._numeric] = self._few_base - below
        for i in self._categorical:
            x = X[:, self.features[i]]
            G[:, i] = np.where(np.isnan(x), self.nan_row[i], x).astype(np.int64) + self.offsets[i]
        gathered = self.table.take(G.ravel(), axis=0).reshape(r, self.n_used, self.n_trees)
        return self._leaf_values(np.bitwise_and.reduce(gathered, axis=1).T, None)

    def _chunk(self, X: np.ndarray, out: np.ndarray, has_nan: bool | None) -> None:
        r = X.shape[0]
        if not self.n_used:
            v = np.broadcast_to(self.table[0][:, None], (self.n_trees, r))
        else:
            G = self._ranks(X)
            gathered = self.table.take(G.ravel(), axis=0, mode="clip").reshape(self.n_used, r, self.n_trees)
            v = np.bitwise_and.reduce(gathered, axis=0).T
        self._leaf_values(v, out)


def _ctz8(v: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each value in 1..255 (0 for 0)."""
    out = np.zeros(v.shape, dtype=np.int64)
    for b in range(7, -1, -1):
        out = np.where((v >> b) & 1 == 1, b, out)
    return out


# -- input checks ------------------------------------------------------------------------------------

def check_matrix(X: np.ndarray, n_features: int, type_name: str) -> np.ndarray:
    """Numbers of the right width (composites hand sub-matrices to their children)."""
    if X.ndim != 2:
        raise InvalidInput(f"{type_name}: expected a 2-D matrix, got {X.ndim}-D")
    if X.shape[1] != n_features:
        raise InvalidInput(f"{type_name}: expected {n_features} columns, got {X.shape[1]}")
    return as_float(X, type_name)


_SAFE_SQUARES = FLOAT32_MAX * FLOAT32_MAX / 4  # a sum of squares below this has no value near overflow


def float32_checks(X: np.ndarray, type_name: str, allow_nan: bool, allow_inf: bool = False) -> bool:
    """scikit-learn's ``check_array(dtype=float32)``: values that round to an infinite float32 are refused,
    as is NaN unless the estimator supports missing values. Returns whether X holds NaN.

    One dot product decides the common case (no NaN, nothing near float32's range); only then is the
    matrix inspected value by value.
    """
    ss = float(np.vdot(X, X))  # BLAS, one call: no floating-point warnings, 0.0 when empty
    if ss < _SAFE_SQUARES:
        return False
    nan = np.isnan(X)
    bad = (np.abs(np.where(nan, 0.0, X)) >= FLOAT32_OVERFLOW) if not allow_inf else np.zeros(X.shape, bool)
    if not allow_nan:
        bad |= nan
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        v = X[r, c]
        what = ("a missing value (NaN)" if np.isnan(v) else "an infinite value" if np.isinf(v)
                else f"{v!r}, too large for float32")
        raise InvalidInput(f"row {r}, column {c}: {type_name} cannot handle {what}", row=r)
    return bool(nan.any())


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
    class_lists: list[np.ndarray]
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
            tree, value = load_tree(tnode, tctx, self.n_features_in, value_shape, levels=False)
            trees.append(tree)
            values.append(value.reshape(value.shape[0], -1))
        forest_levels(trees, tctxs)
        self.forest = compile_forest(trees, values, self.n_features_in, float32=True)
        return self

    def _sums(self, X: np.ndarray) -> np.ndarray:
        """Per row, the leaf values summed over trees then divided by their number (forest average)."""
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        has_nan = float32_checks(Xf, self.type_name, self.allow_nan)
        total = self.forest.sums(Xf, has_nan)[:, 0, :]
        if not self.single:
            total /= self.forest.n_trees
        return total


class _TreeClassifier(_SklearnTrees):
    classifier = True

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


_MATH_EXP = np.frompyfunc(math.exp, 1, 1)
_EXP_OVERFLOW = 709.782712893384  # math.log(sys.float_info.max): above it C's exp() is +inf


def libm_exp(x: np.ndarray) -> np.ndarray:
    """exp() as the C library computes it, which scikit-learn's scipy/Cython link functions call.

    numpy's own SIMD exp differs from the C library's by one ulp on a few percent of inputs, so the
    boosting probabilities would differ from scikit-learn's in the last bit; this keeps trees exact.
    One C call per element (through a ufunc, no Python loop in this module).
    """
    x = np.asarray(x, dtype=np.float64)
    over = x > _EXP_OVERFLOW
    if over.any():
        out = np.asarray(_MATH_EXP(np.where(over, 0.0, x)), dtype=np.float64)
        out[over] = np.inf
        return out
    return np.asarray(_MATH_EXP(x), dtype=np.float64)


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function as scipy.special.expit computes it: 1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + libm_exp(-x))


def softmax(raw: np.ndarray) -> np.ndarray:
    """scikit-learn's ``utils.extmath.softmax`` (numpy's exp, as there): subtract the row max, exp, divide
    by the row sum."""
    p = raw - raw.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


def binary_proba(score: np.ndarray) -> np.ndarray:
    """``[1 - expit(score), expit(score)]`` per row, as scikit-learn's binomial losses return it."""
    p1 = expit(score)
    proba = np.empty((score.shape[0], 2))
    proba[:, 1] = p1
    proba[:, 0] = 1 - p1
    return proba


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
        self.forest = compile_forest(trees, values, self.n_features_in, float32=True, init=self.init,
                                     per_stage=K)
        return self

    def _raw(self, X: np.ndarray) -> np.ndarray:
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        float32_checks(Xf, self.type_name, allow_nan=False)
        return self.forest.sums(Xf, False)[:, :, 0]


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
        return binary_proba(2.0 * raw[:, 0] if self.loss == "exponential" else raw[:, 0])

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
        self.forest = compile_forest(trees, values, self.n_features_in, float32=True)
        self.denominator = len(trees) * float(average_path_length(np.array([max_samples]))[0])
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        depths = self.forest.sums(Xf)[:, 0, 0]
        ratio = depths / self.denominator if self.denominator != 0 else np.ones_like(depths)
        return -(2 ** (-ratio))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.score_samples(X) - self.offset

    def predict(self, X: np.ndarray) -> np.ndarray:
        decision = self.decision_function(X)
        out = np.ones(decision.shape, dtype=np.int64)
        out[decision < 0] = -1
        return out
