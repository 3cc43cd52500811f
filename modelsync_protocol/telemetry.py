"""Device telemetry (schema ``modelsync.telemetry/1``): the limits and the one merge both sides use.

A window (the device's unit, sent as a sealed *batch*) holds running sums per model version: ``calls``,
``rows``, ``errors``, ``latency_ms`` {sum, min, max}, per-feature summaries, predicted-label counts and a
summary of numeric outputs, and (optional, ``drift``) the rows counted in the bins of the model's
``metadata.baseline`` (:mod:`modelsync_protocol.drift`; older devices send none). Sums add and min/max
combine, so windows merge exactly in any order: the
device merges calls into its open window, the server merges stored batches into per-version totals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .drift import merge_all

TELEMETRY_SCHEMA = "modelsync.telemetry/1"
SCHEMA_RE = re.compile(r"^modelsync\.telemetry/1(\.[0-9]+)?$")  # major 1 only; minors are compatible

# what a device sends at most
DEVICE_MAX_FEATURES = 256  # features summarised per window (the rest: features_truncated)
DEVICE_MAX_LABELS = 100  # distinct predicted labels counted per window; the rest go to OTHER_LABEL
OTHER_LABEL = "__other__"
DEVICE_BATCHES_PER_REQUEST = 20
# what the server accepts (room for newer devices)
MAX_BATCHES = 100  # per request
MAX_FEATURES = 1024  # per batch
MAX_LABELS = 1000  # predicted labels per batch

COUNTS = ("calls", "rows", "errors")
_NUMERIC_SUMS = ("sum", "sum_squares", "min", "max")


def _combine(a: Any, b: Any, fn: Callable[[Any, Any], Any]) -> Any:
    """min/max that treat None as "nothing seen yet"."""
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


def merge_summary(into: dict[str, Any] | None, s: Mapping[str, Any]) -> dict[str, Any]:
    """Merge feature/output summary ``s`` into ``into`` (None: start from empty); returns ``into``.

    A name summarised both ways (a model changed a feature's kind) becomes ``"mixed"``: counts only.
    """
    if into is None:
        into = {"type": s.get("type"), "count": 0, "missing": 0, "infinite": 0}
        if s.get("type") == "numeric":
            into.update(sum=0.0, sum_squares=0.0, min=None, max=None)
    elif into.get("type") != s.get("type"):
        into["type"] = "mixed"
        for k in _NUMERIC_SUMS:
            into.pop(k, None)
    for k in ("count", "missing", "infinite"):
        into[k] = into.get(k, 0) + int(s.get(k) or 0)
    if into.get("type") == "numeric":
        into["sum"] += float(s.get("sum") or 0.0)
        into["sum_squares"] += float(s.get("sum_squares") or 0.0)
        into["min"] = _combine(into["min"], s.get("min"), min)
        into["max"] = _combine(into["max"], s.get("max"), max)
    return into


def merge_window(into: dict[str, Any], w: Mapping[str, Any], max_features: int | None = None,
                 max_labels: int | None = None) -> dict[str, Any]:
    """Merge window ``w`` into ``into`` (both with the keys of a telemetry batch); returns ``into``.

    ``max_features`` / ``max_labels`` bound what ``into`` may grow to (the device keeps its file small:
    features beyond the bound set ``features_truncated``, labels are counted as :data:`OTHER_LABEL`);
    None means unbounded (the server's totals).
    """
    for k in COUNTS:
        into[k] = into.get(k, 0) + int(w.get(k) or 0)
    lat, wl = into["latency_ms"], w.get("latency_ms") or {}
    lat["sum"] += float(wl.get("sum") or 0.0)
    lat["min"] = _combine(lat["min"], wl.get("min"), min)
    lat["max"] = _combine(lat["max"], wl.get("max"), max)
    into["window_start"] = _combine(into.get("window_start"), w.get("window_start"), min)
    into["window_end"] = _combine(into.get("window_end"), w.get("window_end"), max)
    into["features_truncated"] = bool(into.get("features_truncated") or w.get("features_truncated"))
    features = into["features"]
    for name, s in (w.get("features") or {}).items():
        if name not in features and max_features is not None and len(features) >= max_features:
            into["features_truncated"] = True
            continue
        features[name] = merge_summary(features.get(name), s)
    preds = into["predictions"]
    for label, n in (w.get("predictions") or {}).items():
        if label not in preds and max_labels is not None and len(preds) >= max_labels:
            label = OTHER_LABEL
        preds[label] = preds.get(label, 0) + int(n)
    if w.get("output"):
        into["output"] = merge_summary(into.get("output"), w["output"])
    if w.get("drift"):  # bin counts in the model's baseline bins (modelsync_protocol.drift); optional
        into["drift"] = merge_all(into.get("drift") or {}, w["drift"])
    return into


def finish_summary(s: dict[str, Any]) -> dict[str, Any]:
    """Add what the sums imply: ``missing_rate``; for numeric summaries ``mean`` and (population) ``std``."""
    seen = s["count"] + s["missing"] + s.get("infinite", 0)
    s["missing_rate"] = s["missing"] / seen if seen else None
    if s.get("type") == "numeric":
        n = s["count"]
        mean = s["sum"] / n if n else None
        s["mean"] = mean
        s["std"] = math.sqrt(max(0.0, s["sum_squares"] / n - mean * mean)) if n and mean is not None else None
    return s
