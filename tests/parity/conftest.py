"""Shared fixtures for the parity tests: small deterministic data sets and an export/reload round trip.

Everything here is generic (any family's parity tests may use it). Data come from what scikit-learn
ships or generates, so the tests need no network and no files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from harness import forest_layouts  # noqa: F401  (a fixture every parity file may use)


@dataclass
class Dataset:
    """Train/test split of one data set; ``frame_*`` are DataFrames when the set is tabular-with-names."""

    X_train: Any
    X_test: Any
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]


def _split(X: Any, y: np.ndarray, names: list[str], n_test: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(y))
    test, train = order[:n_test], order[n_test:]
    if hasattr(X, "iloc"):
        return Dataset(X.iloc[train].reset_index(drop=True), X.iloc[test].reset_index(drop=True),
                       y[train], y[test], names)
    return Dataset(X[train], X[test], y[train], y[test], names)


def load_dataset(name: str) -> Dataset:
    """``iris``, ``wine``, ``breast_cancer``, ``diabetes``, ``classification`` (3 classes),
    ``binary``, ``regression``, ``regression_multi`` (3 targets), ``regression_multi_small``,
    ``classification_nan`` (10% NaN), ``mixed`` (a DataFrame with string categorical columns, missing
    values and string class labels), ``mixed_complete`` (its gaps filled), ``mixed_categories`` (its string
    columns)."""
    from sklearn import datasets as sk

    if name in ("iris", "wine", "breast_cancer", "diabetes"):
        bunch = getattr(sk, f"load_{name}")()
        return _split(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target),
                      [str(n).replace(" ", "_") for n in bunch.feature_names])
    if name == "classification":
        X, y = sk.make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                                      random_state=0)
        return _split(X, y, [f"f{i}" for i in range(X.shape[1])])
    if name == "binary":
        X, y = sk.make_classification(n_samples=300, n_features=6, n_informative=4, random_state=1)
        return _split(X, y, [f"f{i}" for i in range(X.shape[1])])
    if name == "regression":
        X, y = sk.make_regression(n_samples=300, n_features=7, noise=3.0, random_state=0)
        return _split(X, y, [f"f{i}" for i in range(X.shape[1])])
    if name == "regression_multi":
        X, y = sk.make_regression(n_samples=300, n_features=6, n_targets=3, noise=1.0, random_state=2)
        return _split(X, y, [f"f{i}" for i in range(X.shape[1])])
    if name == "classification_nan":  # 10% missing values
        X, y = sk.make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3,
                                      random_state=0)
        X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
        return _split(X, y, [f"f{i}" for i in range(X.shape[1])])
    if name == "regression_multi_small":
        X, y = sk.make_regression(n_samples=200, n_features=5, n_targets=3, noise=1.0, random_state=2)
        return _split(X, y, [f"f{i}" for i in range(X.shape[1])])
    if name == "isotonic":  # one column (IsotonicRegression); two test rows outside the training range
        rng = np.random.RandomState(0)
        x = rng.uniform(-3, 3, size=(300, 1))
        d = _split(x, np.sin(x[:, 0]) + x[:, 0] + rng.normal(0, 0.3, 300), ["x"])
        keep = np.abs(d.X_train[:, 0]) < 2.5
        return Dataset(d.X_train[keep], np.r_[d.X_test, [[-2.9], [2.9]]], d.y_train[keep],
                       np.r_[d.y_test, [0.0, 0.0]], ["x"])
    if name == "mixed":
        return _mixed()
    if name in ("mixed_complete", "mixed_categories"):  # ``mixed`` with its gaps filled; its string columns
        d = _mixed()
        fill = {"malic_acid": 0.0, "magnesium": 0.0, "ash_level": "none", "hue_band": "none"}
        cols = ["ash_level", "hue_band", "proline_class"] if name == "mixed_categories" else d.feature_names
        X_train, X_test = d.X_train.fillna(fill)[cols], d.X_test.fillna(fill)[cols]
        return Dataset(X_train, X_test, d.y_train, d.y_test, list(cols))
    raise KeyError(name)


def _mixed() -> Dataset:
    """Wine, with three columns binned into strings ('low'/'mid'/'high' etc.), NaN and None injected,
    and the class labels turned into strings. Deterministic."""
    import pandas as pd
    from sklearn.datasets import load_wine

    bunch = load_wine()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.array(["barolo", "grignolino", "barbera"], dtype=object)[bunch.target]
    rng = np.random.RandomState(7)

    def bins(col: np.ndarray, labels: list[str]) -> np.ndarray:
        edges = np.quantile(col, np.linspace(0, 1, len(labels) + 1)[1:-1])
        return np.array(labels, dtype=object)[np.searchsorted(edges, col)]

    frame = pd.DataFrame({
        "alcohol": X[:, 0],
        "malic_acid": X[:, 1],
        "ash_level": bins(X[:, 2], ["low", "mid", "high"]),
        "magnesium": X[:, 4],
        "hue_band": bins(X[:, 10], ["pale", "medium", "deep", "dark"]),
        "color_intensity": X[:, 9],
        "proline_class": bins(X[:, 12], ["a", "b"]),
    })
    frame = frame.astype({"ash_level": object, "hue_band": object, "proline_class": object})
    n = len(frame)
    for col, frac in (("malic_acid", 0.08), ("magnesium", 0.05), ("ash_level", 0.07), ("hue_band", 0.05)):
        idx = rng.choice(n, int(n * frac), replace=False)
        frame.loc[idx, col] = np.nan
    return _split(frame, y, list(frame.columns), n_test=40, seed=3)


@pytest.fixture(scope="session")
def datasets() -> Callable[[str], Dataset]:
    """``datasets("iris")`` -> :class:`Dataset` (cached per session)."""
    cache: dict[str, Dataset] = {}

    def get(name: str) -> Dataset:
        if name not in cache:
            cache[name] = load_dataset(name)
        return cache[name]

    return get


def export_and_reload(est: Any, X_sample: Any, *, compact: bool = True, name: str = "parity",
                      feature_names: list[str] | None = None,
                      validate: bool = True) -> tuple[dict[str, Any], Any]:
    """Export ``est``, serialise to JSON text, reload with the scorer; optionally validate_model too."""
    import scorer
    from modelsync.export import export_model

    if feature_names is None and not hasattr(X_sample, "columns"):
        feature_names = [f"x{i}" for i in range(np.asarray(X_sample).shape[1])]
    doc = export_model(est, X_sample, name=name, compact=compact, feature_names=feature_names)
    text = json.dumps(doc)
    model = scorer.load_model(text)
    if validate:
        scorer.validate_model(json.loads(text))
    return doc, model


@pytest.fixture(scope="session")
def roundtrip() -> Callable[..., tuple[dict[str, Any], Any]]:
    """``doc, model = roundtrip(est, X_sample, compact=True)``: export -> JSON text -> scorer.load_model."""
    return export_and_reload
