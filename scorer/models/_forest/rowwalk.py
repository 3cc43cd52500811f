"""Single rows of small forests in plain Python: each tree walked node by node over Python lists.

For one row the layouts' numpy paths pay a few numpy calls (about a microsecond each) per tree level;
a forest of few trees, or shallow ones, is walked faster node by node in the interpreter (tens of
nanoseconds a node). :func:`walk_is_faster` is the cost model that picks it; :class:`RowWalker` holds
the forest as flat Python lists built once (at load) from the same trees, thresholds and leaf values
the layouts use, so the leaf each tree reaches is the layout's, bit for bit.

The walk compares ``x <= threshold`` (left) as every layout does; it serves rows without NaN only (the
caller checks), so ``missing_go_to_left`` never matters here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .tree import Tree

# The cost model, nanoseconds on the reference 2-core x86 box (CPython 3.11, numpy 2): one node of the
# list walk, one tree (root and leaf bookkeeping), one numpy call of a layout's single-row path.
WALK_NODE_NS = 45.0
WALK_TREE_NS = 60.0
NUMPY_CALL_NS = 1_000.0
# Past a few tens of thousands of nodes the lists (about 40 bytes a node, floats boxed) leave the CPU's
# caches and a node costs several times as much (a 100-tree depth-10 forest walks at half the speed of
# its level-synchronous numpy path): bigger forests keep the numpy paths.
WALK_MAX_NODES = 1 << 15


def walk_is_faster(trees: Sequence[Tree], numpy_calls: float) -> bool:
    """Whether walking every tree node by node beats ``numpy_calls`` calls of a layout's single-row path."""
    if sum(t.n_nodes for t in trees) > WALK_MAX_NODES:
        return False
    walk = WALK_NODE_NS * sum(t.depth for t in trees) + WALK_TREE_NS * len(trees)
    return walk < NUMPY_CALL_NS * numpy_calls


class RowWalker:
    """The trees as flat lists over all nodes of the forest: a split's children are global node indices
    when they are splits and ``~index`` when they are leaves, so the walk ends on a negative index whose
    complement indexes the leaf outputs (``values``, the forest's nodes concatenated)."""

    def __init__(self, trees: Sequence[Tree], values: Sequence[np.ndarray]) -> None:
        sizes = np.array([t.n_nodes for t in trees], dtype=np.int64)
        bases = np.zeros(len(trees), dtype=np.int64)
        np.cumsum(sizes[:-1], out=bases[1:])
        shift = np.repeat(bases, sizes)
        left = np.concatenate([t.left for t in trees])
        right = np.concatenate([t.right for t in trees])
        inner = left >= 0
        gl = np.where(inner, left + shift, 0)
        gr = np.where(inner, right + shift, 0)
        # a child that is a leaf is stored as ~index: the walk's loop test (index >= 0) is its only branch
        gl = np.where(inner[gl], gl, ~gl)
        gr = np.where(inner[gr], gr, ~gr)
        self.left: list[int] = gl.tolist()
        self.right: list[int] = gr.tolist()
        self.feature: list[int] = np.where(inner, np.concatenate([t.feature for t in trees]), 0).tolist()
        self.threshold: list[float] = np.concatenate([t.threshold for t in trees]).tolist()
        self.roots: list[int] = np.where(inner[bases], bases, ~bases).tolist()
        self.values = np.ascontiguousarray(np.concatenate(values), dtype=np.float64)  # (nodes, outputs)
        self.scalar: list[float] | None = (self.values[:, 0].tolist() if self.values.shape[1] == 1
                                           else None)

    def leaves(self, row: list[float]) -> list[int]:
        """The global node index of the leaf each tree reaches, in tree order."""
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        out: list[int] = []
        append = out.append
        for n in self.roots:
            while n >= 0:
                n = left[n] if row[feature[n]] <= threshold[n] else right[n]
            append(~n)
        return out

    def total(self, row: list[float]) -> float:
        """One output per tree (``values`` of one column): the leaf outputs added in tree order, as
        Python floats (float64, one addition after the other: what the layouts' sums compute)."""
        leaves = self.leaves(row)
        value = self.scalar
        assert value is not None
        total = value[leaves[0]]
        for n in leaves[1:]:
            total += value[n]
        return total
