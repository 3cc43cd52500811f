"""A tiny self-contained model type for testing the scorer core without any model family.

``test_affine``: ``predict = X_num @ coef + intercept + sum(len(category) or -1)``, or, with ``classes``,
the class ``round(score) mod n_classes`` with one-hot ``predict_proba``. Registered only while a
test module uses the :func:`affine_type` fixture.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np

import scorer
from scorer import Estimator, LoadContext, as_float, encode_array
from scorer._base import REGISTRY

TYPE = "test_affine"


class Affine(Estimator):
    coef: np.ndarray
    intercept: float
    categorical: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Affine:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.coef = ctx.array(node, "coef", "float64", ndim=1, shape=(self.n_features_in,))
        self.intercept = ctx.number(node, "intercept")
        self.categorical = ctx.array(
            node,
            "categorical",
            "bool",
            ndim=1,
            shape=(self.n_features_in,),
            default=np.zeros(self.n_features_in, dtype=bool),
        )
        if "classes" in node:
            self.classes = ctx.labels(node, "classes")
        if node.get("boom"):
            raise KeyError("boom")  # a buggy implementation: must surface as InvalidModel
        return self

    def _score(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self._raw_score(X)

    def _raw_score(self, X: np.ndarray) -> np.ndarray:
        cat = self.categorical
        num = as_float(X[:, ~cat]) if cat.any() else as_float(X)
        score = num @ self.coef[~cat] + self.intercept
        for j in np.flatnonzero(cat):
            score = score + np.array([-1.0 if v is None else float(len(str(v))) for v in X[:, j]])
        return score

    def predict(self, X: np.ndarray) -> np.ndarray:
        score = self._score(X)
        if self.classes is None:
            return score
        with np.errstate(all="ignore"):
            idx = np.mod(np.nan_to_num(np.round(score)).astype(np.int64), len(self.classes))
        return self.classes[idx]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise scorer.MethodNotSupported("regressor")
        with np.errstate(all="ignore"):
            idx = np.mod(np.nan_to_num(np.round(self._score(X))).astype(np.int64), len(self.classes))
        return np.eye(len(self.classes))[idx]

    def supports(self, method: str) -> bool:
        if method == "predict_proba":
            return self.classes is not None
        return super().supports(method)


def install() -> None:
    REGISTRY[TYPE] = Affine
    Affine.type_name = TYPE


def uninstall() -> None:
    REGISTRY.pop(TYPE, None)


def affine_fixture() -> Iterator[None]:
    install()
    yield
    uninstall()


def make_doc(
    coef: Any = (1.0, -2.0, 0.5),
    intercept: float = 0.25,
    classes: list[Any] | None = None,
    categorical: list[int] | None = None,
    compact: bool = True,
    rows: list[list[Any]] | None = None,
    name: str = "affine",
) -> dict[str, Any]:
    """A complete, valid document (test vectors computed with the scorer itself, sha256 set)."""
    coef = list(coef)
    n = len(coef)
    cat = set(categorical or [])
    features = [
        {"name": f"f{i}", "type": "categorical", "categories": ["a", "bb"]}
        if i in cat
        else {"name": f"f{i}", "type": "numeric"}
        for i in range(n)
    ]
    node: dict[str, Any] = {
        "type": TYPE,
        "n_features_in": n,
        "coef": encode_array(np.array(coef, dtype=np.float64), compact=compact),
        "intercept": intercept,
    }
    if cat:
        node["categorical"] = [i in cat for i in range(n)]
    output: dict[str, Any] = {"task": "regression", "methods": ["predict"]}
    if classes is not None:
        node["classes"] = classes
        output = {"task": "classification", "methods": ["predict", "predict_proba"], "classes": classes}
    if rows is None:
        rng = np.random.RandomState(0)
        rows = [
            [("a" if r % 2 else "bb") if i in cat else round(float(v), 3) for i, v in enumerate(vals)]
            for r, vals in enumerate(rng.uniform(-3, 3, size=(6, n)))
        ]
    doc: dict[str, Any] = {
        "format_version": scorer.FORMAT_VERSION,
        "metadata": {
            "name": name,
            "description": "test",
            "created": "2024-05-01T12:00:00Z",
            "producer": {"name": "tests", "version": "0"},
            "sklearn_version": "1.9.1",
        },
        "input": {"features": features},
        "output": output,
        "estimator": node,
        "test_vectors": {"inputs": rows, "outputs": {}, "tolerance": 1e-9},
    }
    model = scorer.load_model(doc)
    for m in output["methods"]:
        values = np.asarray(getattr(model, m)(rows))
        doc["test_vectors"]["outputs"][m] = [
            None if isinstance(v, float) and v != v else v for v in values.tolist()
        ]
    doc["sha256"] = scorer.content_sha256(doc)
    return doc


def resign(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy with the sha256 recomputed (for tests that change a field on purpose)."""
    out = copy.deepcopy(doc)
    out["sha256"] = scorer.content_sha256(out)
    return out
