"""The traversal layout (deeper trees: random forests, isolation forests): every tree advances one level
per step over a (tree x row) lane matrix; see :mod:`scorer.models._forest`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import COMPILED_MAX_ELEMENTS, Categorical, CompiledForest
from .float32 import KEY_INF, LOW32, float32_key
from .tree import Tree

# Layout choices (measured on a 2-core x86 box).
HEAP_MAX_SLOTS = 1 << 22  # complete-binary layout for all trees together, in nodes
HEAP_MAX_DEPTH = 22
CHUNK_MAX_ELEMENTS = 1 << 22  # transposed inputs per traversal chunk (very wide inputs: fewer rows)
TRAVERSAL_LANES = 1 << 15  # trees x rows per traversal chunk
ROW_STEP_LEVELS = 3  # levels one single-row step decides: 7 splits and a spare column, 8 bytes of results
# A step's comparisons (one byte each, 0 or 1) read as one integer: multiplied by MAGIC, its top byte holds
# them as distinct bits (a multiply gathers the bytes' low bits; no carry reaches the top byte).
_VIEW = {4: np.int32, 8: np.int64, 16: np.int64}
_MAGIC = {4: np.int32(0x01020408), 8: np.int64(0x0102040810204080), 16: np.int64(0x0102040810204080)}
_TOP = {w: (min(w, 8) - 1 if sys.byteorder == "little" else 0) for w in _VIEW}  # top byte, in memory


def _step_code(c: np.ndarray) -> np.ndarray:
    """A step's comparisons ``(n, W)`` (``W`` of 4, 8 or 16 bytes) -> ``(n,)`` indices of its exits table:
    the top byte of each 8-byte word times MAGIC (two words: their two top bytes read as one uint16)."""
    W = c.shape[1]
    top = (c.view(_VIEW[W]) * _MAGIC[W]).view(np.uint8)
    if W <= 8:
        return top[:, _TOP[W]]
    return np.ascontiguousarray(top[:, _TOP[W]::8]).view(np.uint16).reshape(-1)


def _step_exits(k: int) -> np.ndarray:
    """For a step of ``k`` levels (``W = 2**k`` columns: ``W - 1`` splits in heap order, and the spare
    one that never goes right): :func:`_step_code` of every outcome -> the exit position among the
    ``W`` nodes ``k`` levels down."""
    W = 1 << k
    pattern = np.arange(1 << (W - 1), dtype=np.int64)
    bits = (pattern[:, None] >> np.arange(W - 1)) & 1
    c = np.zeros((pattern.size, W), dtype=bool)
    c[:, : W - 1] = bits
    s = np.zeros(pattern.size, dtype=np.int64)
    for _ in range(k):
        s = 2 * s + 1 + bits[np.arange(pattern.size), s]
    exits = np.zeros(1 << (16 if W > 8 else 8), dtype=np.uint8)
    with np.errstate(over="ignore"):
        exits[_step_code(c)] = s - (W - 1)
    return exits


class TraversalForest(CompiledForest):
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
        rows = min(4096, max(8, TRAVERSAL_LANES // T), CHUNK_MAX_ELEMENTS // n_columns)
        self.chunk_rows = rows = max(1, rows)
        if int(depths.max(initial=0)) <= HEAP_MAX_DEPTH:
            slots = int(sum(1 << (int(d) + 1) for d in depths))
        else:
            slots = HEAP_MAX_SLOTS + 1
        fits = slots <= HEAP_MAX_SLOTS and slots * self.n_outputs // 2 <= COMPILED_MAX_ELEMENTS
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
        lv_key = [np.full(n << d, KEY_INF, dtype=np.int64) for d, n in enumerate(self.active)]
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
        self._build_steps(depths)

    def _build_steps(self, depths: np.ndarray) -> None:
        """The single-row tables: levels grouped in steps of ``ROW_STEP_LEVELS``, one table row per lane
        (tree and position) at a step's first level holding the columns and thresholds of the subtree's
        ``2**k - 1`` splits (heap order) plus one spare column: the lane's index on the step's last
        level, ``index << k`` (for a tree that ends there, its value row: its ``vshift`` added). A tree
        that ends inside a step is padded with always-left splits (column 0, threshold +inf)."""
        L = len(self.active)
        # steps of three levels; the first (no gathers: its lanes are the roots) takes the rest, 1 to 4
        step = ROW_STEP_LEVELS
        first = L % step + (step if L % step == 1 and step < L else 0)
        ks = ([first] if first else []) + [step] * ((L - first) // step)
        bounds = np.cumsum([0, *ks])
        padded = bounds[np.searchsorted(bounds, depths)]  # the step boundary where each tree ends
        extra = padded - depths
        fused = not extra.any()  # else: the index is shifted back and vshift added after the walk
        self._row_extra = None if fused else extra
        self._row_g0 = (self.vshift + self.roots) if fused else self.roots.copy()  # trees of depth 0: done
        self._steps: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, Any]] = []
        d = 0
        for k in ks:
            n = self.active[d]
            rows, W = n << d, 1 << k
            feat = np.zeros((rows, W), dtype=np.int64)
            thr = np.full((rows, W), np.inf)
            mr = np.zeros((rows, W), dtype=bool)
            lane = np.arange(rows, dtype=np.int64)
            tree = lane >> d
            for i in range(k):
                ok = tree < self.active[d + i]  # the trees still walking on level d + i (a prefix)
                src = lane[ok] << i
                for q in range(1 << i):
                    s = (1 << i) - 1 + q
                    feat[ok, s] = self.lv_feat[d + i][src + q]
                    thr[ok, s] = self.lv_thr[d + i][src + q]
                    mr[ok, s] = self.lv_mr[d + i][src + q]
            nxt = lane << k
            if fused:
                nxt += np.where(padded[tree] == d + k, self.vshift[tree], 0)
            feat[:, W - 1] = nxt
            # one word of comparisons: _step_code inlined (its view, magic and top byte)
            word = (_VIEW[W], _MAGIC[W], _TOP[W]) if 2 < W <= 8 else None
            self._steps.append((n, d, feat, thr, mr, None if k == 1 else _step_exits(k), word))
            d += k

    def _walk_steps(self, x: np.ndarray, has_nan: bool) -> np.ndarray:
        """The value row (heap layout) each sorted tree's lane reaches for the one row ``x``: per step of
        up to three levels: the splits' columns and thresholds (two gathers of table rows), the row's
        values (one gather), the comparisons, their bits (one multiply), the subtree's exit (a lookup)
        added to the spare column: seven numpy calls where a level at a time takes eighteen."""
        T = self.n_trees
        g = self._row_g0.copy()
        add = np.add
        for n, d, feat, thr, mr, exits, word in self._steps:
            gs = g if n == T else g[:n]
            if d:
                feat, thr = feat.take(gs, 0), thr.take(gs, 0)  # (positional: no keyword parsing)
            xv = x.take(feat, mode="clip")  # the spare column's index is clipped; its threshold is +inf
            c = xv > thr
            if has_nan:
                c |= np.isnan(xv) & (mr.take(gs, axis=0) if d else mr)
            if word is not None and exits is not None:
                view, magic, top = word
                add(feat[:, -1], exits.take((c.view(view) * magic).view(np.uint8)[:, top]), out=gs)
            else:  # one level: the comparison is the exit; two words: _step_code
                add(feat[:, -1], c[:, 0] if exits is None else exits.take(_step_code(c)), out=gs)
        if self._row_extra is not None:
            g >>= self._row_extra
            g += self.vshift
        return g

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
                tkey[sl] = np.where(lc >= 0, tkeys[j][bfs], KEY_INF)
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
        """One row: the lanes are the trees. Level tables: steps of three levels (:meth:`_walk_steps`);
        breadth-first: four numpy calls per level (takes, in-place adds: no fancy indexing)."""
        x = self._columns(X, 1).ravel() if self._virtual else X.reshape(-1)
        if has_nan is None:
            has_nan = bool(np.isnan(x).any())
        if self.heap:
            g = self._walk_steps(x, has_nan)
        else:
            g = self.roots.copy()
            feat, thr, left, mr = self.feat, self.thr, self.left, self.mr
            for n in self.active:
                gs = g[:n]
                xv = x[feat[gs]]
                gr = xv > thr[gs]
                if has_nan:
                    gr |= np.isnan(xv) & mr[gs]
                g[:n] = left[gs] + gr
            g += self.vshift
        v = self.vals.take(g if self._identity else g[self.inverse], axis=0)
        return v.reshape(self.n_trees, 1, self.n_outputs)

    def row_sums(self, row: list[float]) -> np.ndarray:
        """One row without NaN (the caller checked): the level tables' steps straight from the list."""
        if self.walker is not None or not self.heap or self._virtual:
            return super().row_sums(row)
        g = self._walk_steps(np.array(row), False)
        v = self.vals.take(g if self._identity else g[self.inverse], axis=0)  # (T, K), tree order
        if self.per_stage == 1 and self.sum_dtype is np.float64:
            return np.add.accumulate(v, axis=0)[-1:]  # added tree after tree, as _one_row does
        return self._one_row(v.reshape(self.n_trees, 1, self.n_outputs))[0]

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
                np.bitwise_and(ws, LOW32, out=fos)
                np.add(fos, arn, out=fos)
                np.take(flat, fos, out=xvs, mode="wrap")
                np.greater(xvs, ws, out=grs)  # key(x) > key(threshold); equal keys go left
                if has_nan:
                    ns, ms = nan[:n], mrb[:n]
                    np.greater(xvs, KEY_INF + LOW32, out=ns)  # NaN keys sit above +inf
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
