"""Drift: the training baseline a document carries, the bin counts scorers send, and PSI between them.

The baseline (``metadata.baseline`` in a document, written by the exporter; docs/model-format.md) holds,
per numeric feature, quantile bin ``edges`` and the baseline ``counts`` per bin; per categorical feature
the category ``counts``; and the same for the predictions (``prediction``: numeric bins for numeric
outputs, label counts for classifiers). Whoever scores rows (the Score function, a device) counts them in
the same bins with :func:`bin_counts`; counts add, so windows merge exactly (:func:`merge_bins`). The
drift view compares the two with the population stability index (:func:`psi`) and shows both
distributions as shares per bin (:func:`distributions`).

Bin ``i`` of ``n = len(edges) + 1`` holds the values ``v`` with ``edges[i-1] < v <= edges[i]`` (bin 0:
``v <= edges[0]``; the last bin: ``v > edges[-1]``). ``min``/``max`` are the baseline's range; served values
outside it are counted in ``outside`` (they also fall in the first or last bin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_BINS = 10
SMALL_BASELINE_ROWS = 100  # fewer rows than this: quantile bins are coarse (the exporter warns)
MAX_CATEGORIES = 100  # category / label counts kept per feature; the rest count as OTHER
OTHER = "__other__"
PSI_WARN = 0.1  # the usual thresholds: < 0.1 no significant shift, 0.1-0.25 moderate, > 0.25 major
PSI_ALERT = 0.25
PSI_EPSILON = 1e-4  # share used for an empty bin (PSI is undefined with a zero share)
PREDICTION = "__prediction__"  # the name the predictions' entry carries in the drift view


def _key(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _floats(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=object).ravel()
    out = np.full(x.shape, np.nan)
    for i, v in enumerate(x.tolist()):
        try:
            out[i] = float(v) if v is not None else np.nan
        except (TypeError, ValueError):
            out[i] = np.nan
    return out


def numeric_baseline(values: Any, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Quantile edges (distinct) and the counts of the finite values per bin."""
    x = _floats(values)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"kind": "numeric", "edges": [], "counts": [0], "min": None, "max": None}
    qs = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    edges = sorted({float(q) for q in qs})
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    return {"kind": "numeric", "edges": edges, "counts": [int(c) for c in counts],
            "min": float(x.min()), "max": float(x.max())}


def categorical_baseline(values: Any) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for v in np.asarray(values, dtype=object).ravel().tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        counts[_key(v)] = counts.get(_key(v), 0) + 1
    return {"kind": "categorical", "counts": _bounded(counts)}


def _bounded(counts: dict[str, int]) -> dict[str, int]:
    if len(counts) <= MAX_CATEGORIES:
        return counts
    top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[: MAX_CATEGORIES - 1])
    top[OTHER] = top.get(OTHER, 0) + sum(counts.values()) - sum(top.values())
    return top


def make_baseline(columns: Mapping[str, Any], kinds: Mapping[str, str], predictions: Any,
                  prediction_kind: str, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """The ``metadata.baseline`` object: every feature of ``columns`` (name -> values) by its kind, and
    the predictions (``prediction_kind`` "numeric" or "categorical")."""
    rows = len(np.asarray(predictions, dtype=object).ravel()) if predictions is not None else 0
    features = {name: (categorical_baseline(col) if kinds[name] == "categorical"
                       else numeric_baseline(col, bins)) for name, col in columns.items()}
    out: dict[str, Any] = {"rows": rows, "features": features}
    if predictions is not None:
        out["prediction"] = (categorical_baseline(predictions) if prediction_kind == "categorical"
                             else numeric_baseline(predictions, bins))
    return out


def count_in(entry: Mapping[str, Any], values: Any) -> dict[str, Any]:
    """``values`` counted in the bins of one baseline entry: ``{"bins": [...], "outside": n}`` (numeric)
    or ``{"categories": {...}, "outside": n}`` (categorical: outside = categories the baseline lacks)."""
    if entry.get("kind") == "categorical":
        cats = categorical_baseline(values)["counts"]
        known = entry.get("counts") or {}
        return {"categories": cats, "outside": sum(n for c, n in cats.items() if c not in known)}
    x = _floats(values)
    x = x[np.isfinite(x)]
    edges = entry.get("edges") or []
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    lo, hi = entry.get("min"), entry.get("max")
    outside = int(((x < lo) | (x > hi)).sum()) if lo is not None and hi is not None and x.size else 0
    return {"bins": [int(c) for c in counts], "outside": outside}


def bin_counts(baseline: Mapping[str, Any], columns: Mapping[str, Any], predictions: Any
               ) -> dict[str, Any]:
    """What a scorer sends: per baseline feature found in ``columns`` and for the predictions, the
    served values counted in the baseline's bins (:func:`count_in`)."""
    out: dict[str, Any] = {"features": {}}
    for name, entry in (baseline.get("features") or {}).items():
        if name in columns:
            out["features"][name] = count_in(entry, columns[name])
    if predictions is not None and baseline.get("prediction"):
        out["prediction"] = count_in(baseline["prediction"], predictions)
    return out


def merge_bins(into: dict[str, Any] | None, c: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Add counts ``c`` (one entry of :func:`count_in`) into ``into``; bins of another length (another
    baseline) are not added. Returns ``into`` (None and None stay None)."""
    if c is None:
        return into
    if into is None:
        into = {}
    into["outside"] = int(into.get("outside", 0)) + int(c.get("outside") or 0)
    if "bins" in c:
        have = into.get("bins")
        if have is None:
            into["bins"] = [int(n) for n in c["bins"]]
        elif len(have) == len(c["bins"]):
            into["bins"] = [int(a) + int(b) for a, b in zip(have, c["bins"], strict=True)]
    if "categories" in c:
        cats = into.setdefault("categories", {})
        for k, n in c["categories"].items():
            cats[k] = int(cats.get(k, 0)) + int(n)
        into["categories"] = _bounded(cats)
    return into


def merge_all(into: dict[str, Any], c: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a whole :func:`bin_counts` result into ``into`` (``{"features": {}, ...}``)."""
    feats = into.setdefault("features", {})
    for name, counts in (c.get("features") or {}).items():
        feats[name] = merge_bins(feats.get(name), counts)
    if c.get("prediction"):
        into["prediction"] = merge_bins(into.get("prediction"), c["prediction"])
    return into


def psi(expected: Sequence[float], actual: Sequence[float]) -> float | None:
    """Population stability index of two count vectors over the same bins (None without data)."""
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if e.sum() <= 0 or a.sum() <= 0 or e.shape != a.shape:
        return None
    pe = np.maximum(e / e.sum(), PSI_EPSILON)
    pa = np.maximum(a / a.sum(), PSI_EPSILON)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def status_of(value: float | None, warn: float = PSI_WARN, alert: float = PSI_ALERT) -> str:
    if value is None or value < warn:
        return "ok"
    return "warn" if value < alert else "alert"


def _aligned(entry: Mapping[str, Any], seen: Mapping[str, Any] | None
             ) -> tuple[list[str] | None, list[int], list[int]]:
    """The baseline's and the served counts over the same bins: (category labels or None for numeric
    bins, expected, actual). Categorical: the categories of either side, sorted."""
    seen = seen or {}
    if entry.get("kind") == "categorical":
        base = dict(entry.get("counts") or {})
        served = dict(seen.get("categories") or {})
        keys = sorted(set(base) | set(served))
        return keys, [int(base.get(k, 0)) for k in keys], [int(served.get(k, 0)) for k in keys]
    expected = [int(n) for n in entry.get("counts") or []]
    actual = [int(n) for n in seen.get("bins") or [0] * len(expected)]
    return None, expected, actual


def compare(name: str, entry: Mapping[str, Any], seen: Mapping[str, Any] | None) -> dict[str, Any]:
    """One drift entry: ``{"feature", "psi", "outside_range", "rows", "status"}`` (outside_range: the
    share of served values outside the baseline's range or categories)."""
    _, expected, actual = _aligned(entry, seen)
    rows = int(sum(actual))
    value = psi(expected, actual)
    return {"feature": name, "psi": None if value is None else round(value, 6),
            "outside_range": (int((seen or {}).get("outside") or 0) / rows) if rows else None, "rows": rows,
            "status": status_of(value)}


def _shares(counts: Sequence[int]) -> list[float] | None:
    total = sum(counts)
    return [round(n / total, 6) for n in counts] if total else None


def distribution(name: str, entry: Mapping[str, Any], seen: Mapping[str, Any] | None) -> dict[str, Any]:
    """Baseline vs observed share per bin, for charts: ``{"feature", "kind", "bins", "baseline",
    "observed"}``. ``bins`` labels the bins: the categories, or for numeric features ``[lo, hi]`` pairs
    from the edges (``null`` for the open ends); ``observed`` is null without served rows."""
    keys, expected, actual = _aligned(entry, seen)
    if keys is None:
        edges = [float(e) for e in entry.get("edges") or []]
        bounds: list[float | None] = [None, *edges, None]
        bins: list[Any] = [[bounds[i], bounds[i + 1]] for i in range(len(expected))]
    else:
        bins = list(keys)
    return {"feature": name, "kind": "categorical" if keys is not None else "numeric", "bins": bins,
            "baseline": _shares(expected), "observed": _shares(actual)}


def drift_entries(baseline: Mapping[str, Any], seen: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per baseline feature, then the predictions (feature :data:`PREDICTION`)."""
    out = [compare(name, entry, (seen.get("features") or {}).get(name))
           for name, entry in (baseline.get("features") or {}).items()]
    if baseline.get("prediction"):
        out.append(compare(PREDICTION, baseline["prediction"], seen.get("prediction")))
    return out


def distributions(baseline: Mapping[str, Any], seen: Mapping[str, Any]) -> list[dict[str, Any]]:
    """:func:`distribution` per baseline feature, then the predictions (as :func:`drift_entries`)."""
    out = [distribution(name, entry, (seen.get("features") or {}).get(name))
           for name, entry in (baseline.get("features") or {}).items()]
    if baseline.get("prediction"):
        out.append(distribution(PREDICTION, baseline["prediction"], seen.get("prediction")))
    return out
