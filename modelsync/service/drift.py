"""Drift: the Score function's bin counts (accumulated per warm container, flushed bounded) and the
``GET /models/{name}/drift`` view comparing served rows with the version's baseline.

Score counts the rows it scores in the bins of the version's ``metadata.baseline``
(:mod:`modelsync_protocol.drift`) in memory, per (model, version); at most every
:data:`FLUSH_SECONDS` (checked when a request arrives) or past :data:`FLUSH_ROWS` rows it stores the
counts as one telemetry batch (device id :data:`SCORE_DEVICE`), so the drift view merges Score's rows and
devices' rows the same way. A container that is frozen before flushing loses at most one interval.
Each flush also emits the largest PSI of that window (features and predictions) as the CloudWatch metric
``modelsync/DriftPsi`` (by ``model``, and without dimensions for the alarm; embedded metric format),
which the template's ``DriftAlarm`` watches (alert at :data:`modelsync_protocol.drift.PSI_ALERT`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

import scorer
from modelsync_protocol import drift

from .errors import InvalidRequest, NoPublishedVersion, ServiceError, VersionNotFound
from .layout import LATEST
from .registry import Registry, now_iso
from .rules import check_model_name, parse_version, require_model
from .telemetry import MAX_AGGREGATED_ITEMS, SCORE_DEVICE, check_since, store

log = logging.getLogger(__name__)

FLUSH_SECONDS = 60.0
FLUSH_ROWS = 100_000
METRIC_NAMESPACE = "modelsync"
METRIC_NAME = "DriftPsi"
DEFAULT_WINDOW = _dt.timedelta(hours=24)


def baseline_of(model: scorer.Model) -> dict[str, Any] | None:
    base = (model.document.get("metadata") or {}).get("baseline")
    return base if isinstance(base, dict) and base.get("features") is not None else None


def columns_of(model: scorer.Model, X: np.ndarray) -> dict[str, Any]:
    """The converted input matrix's columns by feature name."""
    return {f.name: X[:, j] for j, f in enumerate(model.features) if j < X.shape[1]}


class DriftRecorder:
    """Per warm container: bin counts per (model, version, sha256), flushed as telemetry batches."""

    def __init__(self, registry: Registry, retention_days: int, flush_seconds: float = FLUSH_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 emit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.registry, self.retention_days = registry, retention_days
        self.flush_seconds, self.clock = flush_seconds, clock
        self.emit = emit or _print_emf
        self._lock = threading.Lock()
        self._open: dict[tuple[str, int, str], dict[str, Any]] = {}
        self._last = clock()
        self._rows = 0

    def clear(self) -> None:
        """Drop what is not flushed (tests; a container never needs it)."""
        with self._lock:
            self._open, self._rows, self._last = {}, 0, self.clock()

    def observe(self, name: str, version: int, model: scorer.Model, instances: Any,
                predictions: Any = None, matrix: np.ndarray | None = None) -> None:
        """Count one request's rows (never raises: drift must not break scoring)."""
        base = baseline_of(model)
        if base is None:
            return
        try:
            X = matrix if matrix is not None else scorer.to_matrix(instances, model.features)
            counts = drift.bin_counts(base, columns_of(model, X), predictions)
        except (ValueError, TypeError, IndexError) as exc:  # InvalidInput is a ValueError
            log.debug("drift counts skipped: %s", exc)
            return
        key = (name, int(version), str(model.sha256))
        with self._lock:
            window = self._open.setdefault(key, {"rows": 0, "window_start": now_iso(), "drift": {},
                                                 "baseline": base})
            window["rows"] += int(X.shape[0])
            drift.merge_all(window["drift"], counts)
            self._rows += int(X.shape[0])
            due = self.clock() - self._last >= self.flush_seconds or self._rows >= FLUSH_ROWS
        if due:
            self.flush()

    def flush(self) -> int:
        """Store every open window as one telemetry batch; returns how many were stored."""
        with self._lock:
            windows, self._open = self._open, {}
            self._last, self._rows = self.clock(), 0
        stored = 0
        for (name, version, sha), w in windows.items():
            batch = {"batch_id": uuid.uuid4().hex, "model_version": version, "sha256": sha,
                     "window_start": w["window_start"], "window_end": now_iso(), "calls": 0,
                     "rows": w["rows"], "errors": 0, "latency_ms": {"sum": 0.0, "min": None, "max": None},
                     "drift": w["drift"]}
            worst = max_psi(w["baseline"], w["drift"])
            if worst is not None:
                self.emit(metric_record(name, version, worst))
            try:
                store(self.registry, name, SCORE_DEVICE, {"batches": [batch]}, self.retention_days)
                stored += 1
            except (ClientError, BotoCoreError, ServiceError):  # a failed flush loses one window only
                log.exception("drift counts of %s version %d not stored", name, version)
        return stored


def max_psi(baseline: Mapping[str, Any], seen: Mapping[str, Any]) -> float | None:
    """The largest PSI over the features and the predictions (None without data)."""
    return max((e["psi"] for e in drift.drift_entries(baseline, seen) if e["psi"] is not None),
               default=None)


def _print_emf(record: dict[str, Any]) -> None:
    """CloudWatch embedded metric format: one JSON line on stdout (Lambda ships it to the logs)."""
    os.write(1, (json.dumps(record) + "\n").encode())


def metric_record(name: str, version: int, max_psi: float) -> dict[str, Any]:
    return {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
        "Namespace": METRIC_NAMESPACE, "Dimensions": [["model"], []],
        "Metrics": [{"Name": METRIC_NAME, "Unit": "None"}]}]},
        "model": name, "version": str(version), METRIC_NAME: max_psi}


class DriftService:
    """``GET /models/{name}/drift``: PSI per feature and for the predictions, against the baseline."""

    def __init__(self, registry: Registry, load: Callable[[Mapping[str, Any]], scorer.Model]) -> None:
        self.registry, self.load = registry, load

    def drift(self, name: str, version: int | str | None = None, since: str | None = None) -> dict[str, Any]:
        check_model_name(name)
        since = check_since(since) or (_dt.datetime.now(_dt.UTC) - DEFAULT_WINDOW).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        require_model(self.registry, name)
        v = parse_version(version) if version not in (None, "") else None
        if version not in (None, "") and v is None:
            raise InvalidRequest("version must be a positive integer")
        if v is None:
            alias = self.registry.get_alias(name, LATEST, consistent=True)
            if alias is None:
                raise NoPublishedVersion(f"model {name} has no published version yet")
            v = int(alias["version"])
        record = self.registry.get_version(name, v)
        if record is None:
            raise VersionNotFound(f"model {name} has no version {v}")
        base = baseline_of(self.load(record))
        seen: dict[str, Any] = {}
        rows = batches = 0
        for item in self.registry.query_telemetry(name, version=v, since=since,
                                                  limit=MAX_AGGREGATED_ITEMS):
            s = json.loads(item["summary"])
            if s.get("drift"):
                drift.merge_all(seen, s["drift"])
                batches += 1
                rows += int(s.get("rows") or 0)
        entries = drift.drift_entries(base, seen) if base else []
        return {"name": name, "version": v, "since": since, "baseline": base is not None,
                "batches": batches, "rows": rows,
                "thresholds": {"warn": drift.PSI_WARN, "alert": drift.PSI_ALERT},
                "status": max((e["status"] for e in entries), key=_severity, default="ok"),
                "features": entries, "distributions": drift.distributions(base, seen) if base else []}


def _severity(status: str) -> int:
    return {"ok": 0, "warn": 1, "alert": 2}[status]
