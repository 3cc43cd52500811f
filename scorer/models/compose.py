"""Composites: Pipeline and ColumnTransformer. Children are loaded with ``load_estimator``.

A child written as the string ``"passthrough"`` is the identity (scikit-learn's 'passthrough').
Widths are checked at load wherever both sides declare them, so a mis-assembled document fails
with a JSON pointer instead of producing wrong numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, InvalidInput, LoadContext, MethodNotSupported, load_estimator, register
from .._limits import RowCost
from .linear import check_width
from .preprocessing import output_width

PASSTHROUGH = "passthrough"


def _child(node: Any, ctx: LoadContext, *parts: str | int) -> Estimator | None:
    if node == PASSTHROUGH:
        return None
    if isinstance(node, str):
        raise ctx.fail(f"expected an estimator object or {PASSTHROUGH!r}, got {node!r}", *parts)
    return load_estimator(node, ctx.nested(*parts))


def _name(entry: dict[str, Any], ctx: LoadContext, seen: set[str], *parts: str | int) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ctx.fail("expected a non-empty string", *parts, "name")
    if name in seen:
        raise ctx.fail(f"duplicate name {name!r}", *parts, "name")
    seen.add(name)
    return name


@register("pipeline")
class Pipeline(Estimator):
    """Transform through every step but the last, then call the last step's method.

    ``transform`` also transforms with the last step (identity when it is 'passthrough').
    """

    n_features_out: int | None

    def __init__(self, names: list[str], steps: list[Estimator | None], width: int | None) -> None:
        self.names = names
        self.steps = steps
        last = steps[-1]
        self.final = last
        self.classes = last.classes if last is not None else None
        first = next((s for s in steps if s is not None), None)
        self.n_features_in = first.n_features_in if first is not None else 0
        self.n_features_out = width

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Pipeline:
        raw = ctx.get(node, "steps", list)
        if not raw:
            raise ctx.fail("a pipeline needs at least one step", "steps")
        names: list[str] = []
        steps: list[Estimator | None] = []
        seen: set[str] = set()
        width: int | None = None  # columns flowing out of the steps so far, when known
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise ctx.fail("a step must be an object {name, estimator}", "steps", i)
            names.append(_name(entry, ctx, seen, "steps", i))
            if "estimator" not in entry:
                raise ctx.fail("required field is missing", "steps", i, "estimator")
            step = _child(entry["estimator"], ctx, "steps", i, "estimator")
            if step is not None:
                if i < len(raw) - 1 and not step.supports("transform"):
                    raise ctx.fail(f"{step.type_name} cannot be an intermediate step: it has no transform",
                                   "steps", i, "estimator", "type")
                if width is not None and step.n_features_in and step.n_features_in != width:
                    raise ctx.fail(f"the previous steps produce {width} columns, this step expects "
                                   f"{step.n_features_in}", "steps", i, "estimator", "n_features_in")
                width = output_width(step)
            steps.append(step)
        return cls(names, steps, width)

    def supports(self, method: str) -> bool:
        if self.final is None:
            return method == "transform"
        return self.final.supports(method)

    def row_cost(self) -> RowCost:
        """The steps run one after the other: the widest step (plus the pipeline's own input, which the
        caller still holds), the work of all of them."""
        costs = [s.row_cost() for s in self.steps if s is not None]
        if not costs:
            n = max(self.n_features_in, 1)
            return RowCost(width=n, work=n, out=n)
        return RowCost(width=max(self.n_features_in, 0) + max(c.width for c in costs),
                       work=sum(c.work for c in costs), out=costs[-1].out)

    def _head(self, X: np.ndarray) -> np.ndarray:
        for step in self.steps[:-1]:
            if step is not None:
                X = step.transform(X)
        return X

    def _final(self, method: str) -> Estimator:
        if self.final is None:
            raise MethodNotSupported(f"pipeline ending in 'passthrough' has no {method}")
        return self.final

    def predict(self, X: np.ndarray) -> np.ndarray:
        final = self._final("predict")
        return final.predict(self._head(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        final = self._final("predict_proba")
        return final.predict_proba(self._head(X))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        final = self._final("decision_function")
        return final.decision_function(self._head(X))

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xt = self._head(X)
        return Xt if self.final is None else self.final.transform(Xt)


class _Part:
    __slots__ = ("columns", "estimator", "name", "weight")

    def __init__(self, name: str, estimator: Estimator | None, columns: np.ndarray,
                 weight: float | None) -> None:
        self.name, self.estimator, self.columns, self.weight = name, estimator, columns, weight


@register("column_transformer")
class ColumnTransformer(Estimator):
    """Each transformer sees its ``columns`` (integer indices into this node's input); the outputs are
    stacked left to right in document order (scikit-learn's order, remainder last)."""

    parts: list[_Part]
    n_features_out: int | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> ColumnTransformer:
        self = cls()
        n = ctx.integer(node, "n_features_in", minimum=1)
        self.n_features_in = n
        raw = ctx.get(node, "transformers", list)
        self.parts = []
        seen: set[str] = set()
        widths: list[int | None] = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise ctx.fail("a transformer must be an object {name, estimator, columns}",
                               "transformers", i)
            name = _name(entry, ctx, seen, "transformers", i)
            cols = ctx.child("transformers", i).array(entry, "columns", "int64", ndim=1)
            if cols.size == 0:
                raise ctx.fail("select at least one column (empty selections are left out)",
                               "transformers", i, "columns")
            if cols.min() < 0 or cols.max() >= n:
                raise ctx.fail(f"column indices must be in [0, {n})", "transformers", i, "columns")
            weight = ctx.child("transformers", i).number(entry, "weight", default=None)
            if "estimator" not in entry:
                raise ctx.fail("required field is missing", "transformers", i, "estimator")
            est = _child(entry["estimator"], ctx, "transformers", i, "estimator")
            if est is not None:
                if not est.supports("transform"):
                    raise ctx.fail(f"{est.type_name} has no transform",
                                   "transformers", i, "estimator", "type")
                if est.n_features_in and est.n_features_in != cols.size:
                    raise ctx.fail(f"selects {cols.size} columns but the transformer expects "
                                   f"{est.n_features_in}", "transformers", i, "columns")
                widths.append(output_width(est))
            else:
                widths.append(int(cols.size))
            self.parts.append(_Part(name, est, cols.astype(np.intp), weight))
        known = [w for w in widths if w is not None]
        self.n_features_out = sum(known) if len(known) == len(widths) else None
        return self

    def row_cost(self) -> RowCost:
        """Every part's output is kept until they are stacked (a copy), besides the widest part at work."""
        outs, widths, work = 0, [0], 0
        for part in self.parts:
            if part.estimator is None:
                outs += int(part.columns.size)
                continue
            c = part.estimator.row_cost()
            outs += c.out
            widths.append(c.width)
            work += c.work
        return RowCost(width=self.n_features_in + 2 * outs + max(widths), work=work + 2 * outs,
                       out=max(outs, 1))

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_width(X, self.n_features_in, self.type_name)
        outs = []
        for part in self.parts:
            sub = X[:, part.columns]
            out = sub if part.estimator is None else part.estimator.transform(sub)
            if out.ndim != 2 or out.shape[0] != X.shape[0]:
                raise InvalidInput(f"column_transformer: {part.name!r} returned shape {out.shape}")
            if part.weight is not None:
                out = out * part.weight
            outs.append(out)
        if not outs:
            return np.zeros((X.shape[0], 0))
        return np.hstack(outs)
