"""One tree: decoding and validating a document's tree node (scikit-learn's parallel node arrays) without
recursion, and the nodes of every depth (computed for a whole forest at once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._base import InvalidModel, LoadContext, declared_shape

MAX_TREES = 100_000
MAX_TREE_DEPTH = 4_096
BITSET_BYTES = 32  # categorical splits: one bit per category code, 256 codes


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
    if len(trees) > ctx.limits.max_trees:
        raise ctx.fail(f"{len(trees)} trees, over the limit of {ctx.limits.max_trees} (MODEL_MAX_TREES)", key)
    if count is not None and len(trees) != count:
        raise ctx.fail(f"expected {count} trees, got {len(trees)}", key)
    check_node_count(trees, ctx, key)
    return trees


def check_node_count(trees: Sequence[Any], ctx: LoadContext, key: str) -> None:
    """Refuse a forest over the node limit from the lengths its trees declare, before any tree is
    decoded or the engine built (which holds several times the document's arrays)."""
    total = 0
    for tnode in trees:
        if isinstance(tnode, dict):
            total += (declared_shape(tnode.get("children_left")) or [0])[0]
    if total > ctx.limits.max_nodes:
        raise ctx.fail(f"the trees hold {total} nodes, over the limit of {ctx.limits.max_nodes} "
                       "(MODEL_MAX_NODES)", key)
