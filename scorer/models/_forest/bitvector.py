"""The bit-vector layout (QuickScorer; trees of at most 64 leaves: gradient boosting, HGB): per-feature
tables of leaf masks ANDed over features; see :mod:`scorer.models._forest`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import COMPILED_MAX_ELEMENTS, Categorical, CompiledForest
from .tree import Tree

QS_CHUNK_BYTES = 1 << 19  # bytes of gathered masks per QuickScorer sub-chunk (they stay in cache)
# Rows ranked at once (one binary search over a block: its numpy calls are paid per block, not per
# sub-chunk of a few dozen rows), bounded by the bytes of leaf outputs a block holds (trees x rows x outputs)
QS_RANK_ROWS = 8192
QS_BLOCK_BYTES = 16 << 20
QS_COMPARE_ELEMENTS = 1 << 15  # up to (rows x thresholds): rank inputs by comparing with every threshold
_LOWBIT_PRIME = {2: 19, 4: 37, 8: 67}  # 2**k mod p is distinct for k < 8 * itemsize


class BitVectorForest(CompiledForest):
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
        self._vq1 = np.ascontiguousarray(vq[:, 0])  # one output: the leaf values as a 1-D table
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
        self.sub_rows = int(max(1, min(4096, QS_CHUNK_BYTES // per_row)))
        self.chunk_rows = int(max(self.sub_rows, min(QS_RANK_ROWS, QS_BLOCK_BYTES // (8 * T * K))))
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
            self.few_rows = max(1, QS_COMPARE_ELEMENTS // self._few_u.size)
            # many rows: padded to a power of two > size with +inf, for a branch-free binary search
            self._P = 1 << int(sizes.max()).bit_length()
            padded = np.full((nn, self._P), np.inf)
            for j, u in enumerate(us):
                padded[j, : u.size] = u
            self._padded = padded.ravel()
            self._pad_base = (np.arange(nn, dtype=np.int64) * self._P - 1)[:, None]
        self._tree_off = np.arange(T, dtype=np.int64) * P
        self._tree_off_col = self._tree_off[:, None]
        self._tree_off_full = np.broadcast_to(self._tree_off_col, (T, self.sub_rows)).copy()
        small = T * 128 * K <= COMPILED_MAX_ELEMENTS
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
        idx += self._tree_off_full if r == self.sub_rows else self._tree_off_col
        if out is not None and self.n_outputs == 1:  # one output: a 1-D gather (faster than rows of one)
            np.take(self._vq1, idx, out=out.reshape(idx.shape), mode="clip")
            return out
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
            G = self._few_base - np.add.reduceat(x.take(self._few_col) <= self._few_u, self._few_starts,
                                                 dtype=np.int64)
            v = np.bitwise_and.reduce(self.table.take(G, axis=0), 0)
            if self.P == 256:
                idx = self._tree_off + v
            else:
                low = v & (-v)
                low %= self.wdtype.type(self.P)
                idx = self._tree_off + low.astype(np.int64)  # (int64 + uint64 would be float64)
            if self.n_outputs == 1:
                return self._vq1.take(idx).reshape(self.n_trees, 1, 1)
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
        """Ranks of the whole block, then per sub-chunk (its gathered masks in cache): gather, AND, leaves."""
        r = X.shape[0]
        if not self.n_used:
            self._leaf_values(np.broadcast_to(self.table[0][:, None], (self.n_trees, r)), out)
            return
        G = self._ranks(X)
        step = self.sub_rows
        if r <= step:
            gathered = self.table.take(G.ravel(), axis=0, mode="clip").reshape(self.n_used, r, self.n_trees)
            self._leaf_values(np.bitwise_and.reduce(gathered, axis=0).T, out)
            return
        V = np.empty((r, self.n_trees), dtype=self.wdtype)  # every row's exit masks, then one leaf lookup
        for start in range(0, r, step):
            stop = min(r, start + step)
            gathered = self.table.take(G[:, start:stop].ravel(), axis=0, mode="clip")
            np.bitwise_and.reduce(gathered.reshape(self.n_used, stop - start, self.n_trees), axis=0,
                                  out=V[start:stop])
        self._leaf_values(np.ascontiguousarray(V.T), out)  # (trees, rows): the lookups run contiguously


def _ctz8(v: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each value in 1..255 (0 for 0)."""
    out = np.zeros(v.shape, dtype=np.int64)
    for b in range(7, -1, -1):
        out = np.where((v >> b) & 1 == 1, b, out)
    return out
