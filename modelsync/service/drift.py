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
BIN_ROWS = 256  # pending rows of one version counted together (one bin_counts call)
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
        # requests not counted yet, per (model, version, sha256): (model, instances, predictions, matrix)
        self._pending: dict[tuple[str, int, str], list[tuple[Any, Any, Any, Any]]] = {}
        self._pending_rows: dict[tuple[str, int, str], int] = {}

    def clear(self) -> None:
        """Drop what is not flushed (tests; a container never needs it)."""
        with self._lock:
            self._open, self._rows, self._last = {}, 0, self.clock()
            self._pending, self._pending_rows = {}, {}

    def observe(self, name: str, version: int, model: scorer.Model, instances: Any,
                predictions: Any = None, matrix: np.ndarray | None = None) -> None:
        """Note one request's rows (never raises: drift must not break scoring).

        Counting is batched: rows wait until ``BIN_ROWS`` of one version are pending (or the flush), then
        are converted and counted in one go, so a single-row request pays an append, not the bins."""
        base = baseline_of(model)
        if base is None:
            return
        if matrix is not None:
            rows = int(matrix.shape[0])
        elif isinstance(instances, list):
            rows = len(instances)
        else:  # a dict of columns or a DataFrame: converted now (it is not a list to count)
            try:
                matrix = scorer.to_matrix(instances, model.features)
            except (ValueError, TypeError, IndexError) as exc:  # InvalidInput is a ValueError
                log.debug("drift counts skipped: %s", exc)
                return
            rows = int(matrix.shape[0])
        key = (name, int(version), str(model.sha256))
        with self._lock:
            self._pending.setdefault(key, []).append((model, instances, predictions, matrix))
            self._pending_rows[key] = self._pending_rows.get(key, 0) + rows
            self._rows += rows
            ready = self._pending_rows[key] >= BIN_ROWS
            due = self.clock() - self._last >= self.flush_seconds or self._rows >= FLUSH_ROWS
            batch = self._take(key) if ready and not due else None
        if batch:
            self._count(key, batch)
        if due:
            self.flush()

    def _take(self, key: tuple[str, int, str]) -> list[tuple[Any, Any, Any, Any]]:
        """The pending rows of ``key`` (under the lock)."""
        self._pending_rows.pop(key, None)
        return self._pending.pop(key, [])

    def _count(self, key: tuple[str, int, str], batch: list[tuple[Any, Any, Any, Any]]) -> None:
        """Count pending requests in the baseline's bins: those with predictions and those without in
        one bin_counts call each."""
        model = batch[0][0]
        base = baseline_of(model)
        if base is None:
            return
        groups: dict[bool, tuple[list[np.ndarray], list[Any]]] = {True: ([], []), False: ([], [])}
        for _, instances, predictions, matrix in batch:
            try:
                X = matrix if matrix is not None else scorer.to_matrix(instances, model.features)
            except (ValueError, TypeError, IndexError) as exc:  # InvalidInput is a ValueError
                log.debug("drift counts skipped: %s", exc)
                continue
            has = predictions is not None and len(predictions) == X.shape[0]
            groups[has][0].append(X)
            if has:
                groups[has][1].extend(predictions)
        for has, (matrices, preds) in groups.items():
            if not matrices:
                continue
            try:
                X = matrices[0] if len(matrices) == 1 else np.concatenate(matrices, axis=0)
                counts = drift.bin_counts(base, columns_of(model, X), preds if has else None)
            except (ValueError, TypeError, IndexError) as exc:
                log.debug("drift counts skipped: %s", exc)
                continue
            with self._lock:
                window = self._open.setdefault(key, {"rows": 0, "window_start": now_iso(), "drift": {},
                                                     "baseline": base})
                window["rows"] += int(X.shape[0])
                drift.merge_all(window["drift"], counts)

    def flush(self) -> int:
        """Store every open window as one telemetry batch; returns how many were stored."""
        with self._lock:
            pending = [(k, self._take(k)) for k in list(self._pending)]
        for key, requests in pending:
            self._count(key, requests)
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
