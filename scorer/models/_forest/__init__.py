"""The forest engine: scikit-learn trees validated at load and compiled into a layout that scores them fast.

A document stores every tree as parallel arrays (``children_left``, ``children_right``, ``feature``,
``threshold``, ``missing_go_to_left``, ``value``) in scikit-learn's node order (docs/format/trees.md).
At load each tree is validated with a few vectorised checks (no recursion, no per-node Python) and the
whole ensemble is compiled ONCE into a flat layout that scores every tree of a chunk of rows with a few
numpy calls per tree level:

* :class:`BitVectorForest` (trees of at most 64 leaves: gradient boosting, HGB): QuickScorer. A split
  that sends a row right removes the leaves of its left subtree. The splits of feature ``f`` that send
  ``x`` right are those with the smallest thresholds, so one table row per (feature, rank of ``x``
  among that feature's thresholds) holds, for every tree, the AND of their leaf masks (plus a NaN row,
  and one row per category for categorical features). Scoring = ranks (a branch-free binary search, or
  one comparison with every threshold for few rows), one gather of table rows, one AND over features;
  the exit leaf is the lowest set bit. Single rows of depth-3 forests use byte lookup tables.
* :class:`TraversalForest` (deeper trees: random forests, isolation forests): all trees advance one
  level per step over a (tree x row) lane matrix, deepest trees first so that the trees still walking
  are a prefix of the lanes. A single row on the level tables advances three levels per step: the
  subtree's seven comparisons read as one integer, one multiply gathers their bits, a lookup gives the
  exit. Forests that fit use complete-binary level tables (child index
  ``2 * index + go_right``, leaves padded with always-left splits); the others breadth-first numbering
  with adjacent siblings (``left[node] + go_right``). With float32 inputs, threshold and column offset
  are packed into one int64 word next to order-preserving keys of the inputs: one gather, one compare.

Both reach, per tree and row, the leaf scikit-learn's ``apply`` reaches, bit for bit: float32 rounding
is reproduced exactly (``float32_equivalent`` thresholds, or binary32 keys), thresholds stay float64,
NaN follows ``missing_go_to_left`` and is only looked for in chunks that hold one. The trees' leaf outputs

Single rows of small forests (few trees, or shallow ones) are walked node by node in Python instead
(:mod:`.rowwalk`, picked by a cost model): the same trees and leaf outputs, the same sums.

Modules: :mod:`.tree` (one tree: load and validate), :mod:`.float32` (scikit-learn's float32 comparisons
and input checks), :mod:`.base` (the :class:`CompiledForest` interface, the sequential sum),
:mod:`.traversal` and :mod:`.bitvector` (the two layouts); :func:`compile_forest` picks one;
:mod:`.rowwalk` (single rows in Python).
The estimator families that use it: :mod:`scorer.models.trees`, :mod:`scorer.models.hist_gradient_boosting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import COMPILED_MAX_ELEMENTS, Categorical, CompiledForest, sequential_sum
from .bitvector import BitVectorForest
from .float32 import (
    FLOAT32_MAX,
    FLOAT32_OVERFLOW,
    check_matrix,
    float32_checks,
    float32_equivalent,
    float32_floor,
    float32_key,
)
from .rowwalk import RowWalker, walk_is_faster
from .traversal import TraversalForest
from .tree import MAX_TREE_DEPTH, MAX_TREES, Tree, check_node_count, forest_levels, load_tree, load_trees

__all__ = ["FLOAT32_MAX", "FLOAT32_OVERFLOW", "MAX_TREES", "MAX_TREE_DEPTH", "BitVectorForest", "Categorical",
           "CompiledForest", "TraversalForest", "Tree", "check_matrix", "check_node_count", "compile_forest",
           "float32_checks", "float32_equivalent", "forest_levels", "load_tree", "load_trees",
           "sequential_sum"]

QS_MAX_TABLE_BYTES = 48 << 20


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
        forest: CompiledForest = BitVectorForest(trees, values, n_features, categorical)
    else:
        forest = TraversalForest(trees, values, n_features, categorical,
                                  heap=None if engine in ("traversal", "bitvector") else engine == "heap",
                                  keys=keys)
    forest.per_stage = per_stage
    forest.nodes_per_row = sum(t.depth + 1 for t in trees)
    # single rows: numpy calls of the layout's path, plus those that add a walk's leaf outputs when they
    # are not one float per tree
    if isinstance(forest, TraversalForest):
        per_level = FEW_CALLS_PER_LEVEL * len(forest.active)
        calls = (FEW_CALLS_PER_STEP * len(forest._steps) if forest.heap else per_level) + FEW_CALLS_FIXED
    else:
        calls = FEW_CALLS_LUT if isinstance(forest, BitVectorForest) and forest._lut is not None \
            else FEW_CALLS_BITVECTOR
    extra = 0 if K == 1 and per_stage == 1 else WALK_SUM_CALLS
    walk = FORCE_WALK if FORCE_WALK is not None else walk_is_faster(trees, calls - extra)
    if categorical is None and walk:
        forest.walker = RowWalker(trees, values)
    return forest


# numpy calls of the single-row paths (TraversalForest._few per step of up to four levels of the level
# tables, or per level of the breadth-first ones, and fixed; BitVectorForest._few with its byte lookup
# tables or not), and of adding a walk's leaf outputs with numpy
FEW_CALLS_PER_STEP = 9
FEW_CALLS_PER_LEVEL = 5
FEW_CALLS_FIXED = 6
FEW_CALLS_LUT = 7
FEW_CALLS_BITVECTOR = 10
WALK_SUM_CALLS = 3


FORCE_ENGINE: str | None = None  # tests set "bitvector" / "heap" / "explicit" to exercise every layout
FORCE_WALK: bool | None = None  # tests: True / False to walk single rows in Python always / never


def _float32_tree(t: Tree, thr: np.ndarray) -> Tree:
    """``t`` with ``thr``: its split thresholds made ``float32_equivalent`` (leaves' left as they were)."""
    return Tree(t.left, t.right, t.feature, thr, t.missing_left, t.levels, t.category_split, t.bitsets)


def _bitvector_fits(trees: Sequence[Tree], n_outputs: int) -> bool:
    max_leaves = max(t.n_leaves for t in trees)
    per_tree = 256 if max_leaves <= 8 else 67
    return max_leaves <= 64 and len(trees) * per_tree * n_outputs <= COMPILED_MAX_ELEMENTS


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
    if rows * T * itemsize > QS_MAX_TABLE_BYTES:
        return "traversal"
    # nanoseconds per row, measured: element gathers ~2.5 ns, row copies + AND ~0.15 ns/byte + 0.5 ns
    qs = len(feats) * T * (0.15 * itemsize + 0.5) + 6.0 * T + 40.0 * len(feats)
    trav = sum(t.depth for t in trees) * 11.0 + 4.0 * T
    return "bitvector" if qs < trav else "traversal"
