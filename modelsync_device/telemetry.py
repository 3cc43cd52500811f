"""Bounded, persisted per-version summaries of what the device scored, flushed to the registry.

Windows and their merge follow :mod:`modelsync_protocol.telemetry` (the server merges with the same code);
the payload goes to ``POST {api}/models/{name}/telemetry``.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime as _dt
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelsync_protocol import check_model_name, drift
from modelsync_protocol.telemetry import (
    DEVICE_BATCHES_PER_REQUEST,
    DEVICE_MAX_FEATURES,
    DEVICE_MAX_LABELS,
    OTHER_LABEL,
    TELEMETRY_SCHEMA,
    finish_summary,
    merge_window,
)
from scorer import Feature, loads_strict

from .store import atomic_write, dump_json, file_lock, now_iso, read_json_file
from .transport import MAX_ANSWER_BYTES, NETWORK_ERRORS, Opener, default_opener, http_error_text, read_capped

log = logging.getLogger("modelsync_device")


@dataclass
class FlushResult:
    status: str  # "ok" (all acknowledged) | "empty" | "failed"
    sent: int = 0
    acknowledged: int = 0
    remaining: int = 0
    reason: str | None = None


def new_window(version: int, sha256: str) -> dict[str, Any]:
    return {"model_version": int(version), "sha256": sha256, "window_start": now_iso(), "window_end": None,
            "calls": 0, "rows": 0, "errors": 0,
            "latency_ms": {"sum": 0.0, "min": None, "max": None},
            "features": {}, "features_truncated": False, "predictions": {}, "output": None}


def numeric_summary(x: np.ndarray) -> dict[str, Any]:
    """count (finite values), missing (NaN), infinite, running sums, min and max: all mergeable."""
    x = np.asarray(x, dtype=np.float64).ravel()
    nan = np.isnan(x)
    inf = np.isinf(x)
    ok = x[~(nan | inf)]
    return {"type": "numeric", "count": int(ok.size), "missing": int(nan.sum()), "infinite": int(inf.sum()),
            "sum": float(ok.sum()), "sum_squares": float(np.dot(ok, ok)),
            "min": float(ok.min()) if ok.size else None, "max": float(ok.max()) if ok.size else None}


def _label_key(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 2**53 else repr(v)
    return str(v)


DEFAULT_MIN_ROWS = 10


def finalise(window: Mapping[str, Any], min_rows: int = DEFAULT_MIN_ROWS) -> dict[str, Any]:
    """A sealed batch as sent: the raw sums plus what they imply (mean, missing_rate, std).

    A window of fewer than ``min_rows`` rows sends its counts (calls, rows, errors, latency) only: no
    feature summaries, predicted labels or outputs, so that no single row's values leave the device.
    """
    out = copy.deepcopy(dict(window))
    if out["rows"] < min_rows:
        out["features"], out["predictions"], out["output"] = {}, {}, None
        out.pop("drift", None)
    lat = out["latency_ms"]
    lat["mean"] = lat["sum"] / out["calls"] if out["calls"] else None
    for s in [*out["features"].values(), *([out["output"]] if out.get("output") else [])]:
        finish_summary(s)
    return out


class Telemetry:
    """Per model version: calls, rows, errors, latency and a per-feature summary of the inputs, on disk.

    ``record`` accumulates in memory and persists at most every ``persist_interval`` seconds (and on
    :meth:`save`/:meth:`flush`), so that scoring does not fsync on every call; a crash loses at most
    that much. A window is sealed into a pending batch at each flush or once ``window_seconds`` old
    (so a device offline for days still reports hourly). The file is bounded: at most ``max_pending``
    sealed batches and ``max_bytes`` bytes; the oldest batches are dropped first and counted in
    ``dropped_batches``.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_pending: int = 500,
                 max_bytes: int = 1_000_000, persist_interval: float = 5.0, window_seconds: float = 3600.0,
                 max_features: int = DEVICE_MAX_FEATURES,
                 batches_per_request: int = DEVICE_BATCHES_PER_REQUEST,
                 min_rows: int = DEFAULT_MIN_ROWS) -> None:
        self.root = os.fspath(root)
        self.min_rows = min_rows
        self.window_seconds = window_seconds
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self.persist_interval = persist_interval
        self.max_features = max_features
        self.batches_per_request = batches_per_request
        self._lock = threading.Lock()
        self._delta: dict[str, dict[str, dict[str, Any]]] = {}  # model -> window key -> unsaved window
        self._last_save: dict[str, float] = {}

    def path(self, model: str) -> str:
        return os.path.join(self.root, check_model_name(model), "telemetry.json")

    def _merge_into(self, windows: dict[str, dict[str, Any]], key: str, w: dict[str, Any]) -> None:
        if key in windows:
            merge_window(windows[key], w, self.max_features, DEVICE_MAX_LABELS)
        else:
            windows[key] = w

    # recording
    def record(self, model: str, version: int, sha256: str, X: np.ndarray | None, features: list[Feature],
               predictions: np.ndarray | None, latency_s: float, error: bool = False,
               labels: bool = True, baseline: Mapping[str, Any] | None = None) -> None:
        """Account for one scoring call. ``X`` is the converted input matrix (feature order).

        ``labels``: count ``predictions`` per class (classifiers); otherwise summarise them as numbers.
        ``baseline``: the document's ``metadata.baseline``; the rows are also counted in its bins
        (``drift``, for the server's drift view).
        """
        w = new_window(version, sha256)
        w["calls"] = 1
        w["errors"] = int(error)
        ms = float(latency_s) * 1000.0
        w["latency_ms"] = {"sum": ms, "min": ms, "max": ms}
        if X is not None and X.ndim == 2:
            w["rows"] = int(X.shape[0])
            for j, feat in enumerate(features[: self.max_features]):
                w["features"][feat.name] = self._summarise(X[:, j], feat.categorical)
            w["features_truncated"] = len(features) > self.max_features
        if baseline is not None and X is not None and X.ndim == 2:
            try:
                w["drift"] = drift.bin_counts(
                    baseline, {f.name: X[:, j] for j, f in enumerate(features) if j < X.shape[1]},
                    predictions)
            except (ValueError, TypeError, IndexError) as exc:  # a malformed baseline must not break scoring
                log.debug("drift counts skipped: %s", exc)
        if predictions is not None:
            arr = np.asarray(predictions)
            if labels and arr.ndim == 1:
                counts = collections.Counter(_label_key(v) for v in arr.tolist())
                if len(counts) > DEVICE_MAX_LABELS:
                    top = dict(counts.most_common(DEVICE_MAX_LABELS - 1))
                    top[OTHER_LABEL] = top.get(OTHER_LABEL, 0) + sum(counts.values()) - sum(top.values())
                    counts = collections.Counter(top)
                w["predictions"] = dict(counts)
            elif arr.dtype.kind in "iufb":
                w["output"] = numeric_summary(arr)
        key = f"{int(version)}-{sha256[:12]}"
        with self._lock:
            self._merge_into(self._delta.setdefault(model, {}), key, w)
            due = time.monotonic() - self._last_save.get(model, -math.inf) >= self.persist_interval
        if due:
            try:
                self.save(model)
            except OSError as exc:  # a full disk must not break scoring
                log.warning("telemetry for %s not persisted: %s", model, exc)

    @staticmethod
    def _summarise(col: np.ndarray, categorical: bool) -> dict[str, Any]:
        if categorical:
            missing = sum(1 for v in col.tolist() if v is None or (isinstance(v, float) and math.isnan(v)))
            return {"type": "categorical", "count": int(col.shape[0]) - missing, "missing": missing,
                    "infinite": 0}
        return numeric_summary(col)

    # persistence
    def _read(self, model: str) -> dict[str, Any]:
        try:
            data = read_json_file(self.path(model))
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as exc:
            log.warning("telemetry file for %s unreadable, starting afresh: %s", model, exc)
            data = None
        if not isinstance(data, dict) or data.get("schema") != TELEMETRY_SCHEMA:
            data = {"schema": TELEMETRY_SCHEMA, "model": model, "open": {}, "pending": [],
                    "dropped_batches": 0}
        return data

    def _write(self, model: str, data: dict[str, Any]) -> None:
        """Enforce the bounds (oldest pending batches go first), then write atomically."""
        pending = data["pending"]
        if len(pending) > self.max_pending:
            drop = len(pending) - self.max_pending
            del pending[:drop]
            data["dropped_batches"] += drop
        blob = dump_json(data)
        while len(blob) > self.max_bytes and pending:
            pending.pop(0)
            data["dropped_batches"] += 1
            blob = dump_json(data)
        if len(blob) > self.max_bytes:  # only open windows left and still too big: drop them too
            data["dropped_batches"] += len(data["open"])
            data["open"] = {}
            blob = dump_json(data)
        os.makedirs(os.path.dirname(self.path(model)), exist_ok=True)
        atomic_write(self.path(model), blob)

    @contextlib.contextmanager
    def _locked(self, model: str) -> Iterator[dict[str, Any]]:
        with file_lock(os.path.join(self.root, check_model_name(model), ".telemetry.lock")):
            data = self._read(model)
            yield data
            self._write(model, data)

    def save(self, model: str | None = None) -> None:
        """Merge what was recorded in memory into the file (under the file lock: processes may share it)."""
        with self._lock:
            models = [model] if model is not None else list(self._delta)
            deltas = {m: self._delta.pop(m, {}) for m in models}
            for m in models:
                self._last_save[m] = time.monotonic()
        for m, windows in deltas.items():
            if not windows:
                continue
            try:
                with self._locked(m) as data:
                    for key, w in windows.items():
                        self._merge_into(data["open"], key, w)
                    self._seal_old(data)
            except OSError:
                with self._lock:  # put it back: it is retried on the next save
                    mine = self._delta.setdefault(m, {})
                    for key, w in windows.items():
                        self._merge_into(mine, key, w)
                raise

    def _seal_old(self, data: dict[str, Any], everything: bool = False) -> None:
        """Move open windows into pending batches: all of them, or those older than ``window_seconds``."""
        now = _dt.datetime.now(_dt.UTC)
        for key, w in sorted(data["open"].items(), key=lambda kv: kv[1]["window_start"]):
            started = _dt.datetime.strptime(w["window_start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
            if everything or (now - started).total_seconds() >= self.window_seconds:
                data["pending"].append({"batch_id": str(uuid.uuid4()), **w, "window_end": now_iso()})
                del data["open"][key]

    def pending(self, model: str) -> list[dict[str, Any]]:
        """Sealed batches waiting for the server (does not include the open window)."""
        return list(self._read(model)["pending"])

    def snapshot(self, model: str) -> dict[str, Any]:
        """Everything on disk for ``model`` plus what is still in memory, for status displays."""
        data = self._read(model)
        with self._lock:
            for key, w in self._delta.get(model, {}).items():
                self._merge_into(data["open"], key, copy.deepcopy(w))
        return data

    def seal(self, model: str) -> int:
        """Close the open windows into pending batches (each gets a ``batch_id``); returns how many wait."""
        self.save(model)
        current = self._read(model)
        if not current["open"]:  # nothing to seal: do not rewrite the file
            return len(current["pending"])
        with self._locked(model) as data:
            self._seal_old(data, everything=True)
            n = len(data["pending"])
        return n

    # sending
    def flush(self, api_url: str, model: str, device_id: str | None = None, *, http: Opener | None = None,
              retries: int = 3, backoff: float = 0.5, max_backoff: float = 30.0,
              sleep: Callable[[float], None] = time.sleep, timeout: float = 15.0) -> FlushResult:
        """POST pending batches to ``{api}/models/{model}/telemetry``; clear only what a 2xx acknowledged.

        Transient failures (network, 408, 429, 5xx) are retried ``retries`` times with exponential
        backoff and jitter (``Retry-After`` honoured up to ``max_backoff``); then it stops, keeping the
        rest for the next flush. A 2xx acknowledges every batch in that request, unless its JSON body
        has ``"accepted": [batch_id, ...]``, in which case only those are cleared.
        """
        try:
            self.seal(model)
        except OSError as exc:
            return FlushResult("failed", reason=f"cannot seal telemetry: {exc}",
                               remaining=len(self.pending(model)))
        opener = http if http is not None else default_opener()
        url = f"{api_url.rstrip('/')}/models/{urllib.parse.quote(model, safe='')}/telemetry"
        snapshot = self._read(model)
        todo = list(snapshot["pending"])  # batches sealed later wait for the next flush
        if not todo:
            return FlushResult("empty")
        dropped = int(snapshot["dropped_batches"])
        sent = acked = 0
        for i in range(0, len(todo), self.batches_per_request):
            batch = todo[i: i + self.batches_per_request]
            payload = {"schema": TELEMETRY_SCHEMA, "model": model, "device_id": device_id,
                       "sent_at": now_iso(), "dropped_batches": dropped,
                       "batches": [finalise(b, self.min_rows) for b in batch]}
            ok, reason, accepted = self._post(opener, url, payload, device_id, retries, backoff, max_backoff,
                                              sleep, timeout)
            sent += len(batch)
            if not ok:
                return FlushResult("failed", sent, acked, len(self.pending(model)), reason)
            ids = {b["batch_id"] for b in batch}
            if accepted is not None:
                ids &= set(accepted)
            with self._locked(model) as cur:
                before = len(cur["pending"])
                cur["pending"] = [b for b in cur["pending"] if b["batch_id"] not in ids]
                acked += before - len(cur["pending"])
                cur["dropped_batches"] = max(0, int(cur["dropped_batches"]) - dropped)
            dropped = 0  # reported once, in the first acknowledged request
        remaining = len(self.pending(model))
        if acked < sent:
            return FlushResult("failed", sent, acked, remaining, f"server accepted {acked} of {sent} batches")
        return FlushResult("ok", sent, acked, remaining)

    @staticmethod
    def _post(opener: Opener, url: str, payload: dict[str, Any], device_id: str | None, retries: int,
              backoff: float, max_backoff: float, sleep: Callable[[float], None],
              timeout: float) -> tuple[bool, str | None, list[str] | None]:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if device_id:
            headers["X-Device-Id"] = device_id
        reason = "not sent"
        for attempt in range(retries + 1):
            retry_after: float | None = None
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with opener.open(req, timeout=timeout) as resp:
                    answer = read_capped(resp, MAX_ANSWER_BYTES)
                accepted = None
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    parsed = loads_strict(answer.decode("utf-8")) if answer.strip() else None
                    if isinstance(parsed, dict) and isinstance(parsed.get("accepted"), list):
                        accepted = [str(a) for a in parsed["accepted"]]
                return True, None, accepted
            except urllib.error.HTTPError as exc:
                reason = f"telemetry upload answered {http_error_text(exc)}"
                if exc.code not in (408, 429) and exc.code < 500:
                    return False, reason, None
                ra = exc.headers.get("Retry-After") if exc.headers else None
                if ra and ra.strip().isdigit():
                    retry_after = float(ra.strip())
            except NETWORK_ERRORS as exc:
                reason = f"telemetry upload failed: {getattr(exc, 'reason', exc)}"
            if attempt < retries:
                delay = min(max_backoff, backoff * (2 ** attempt)) * random.uniform(0.5, 1.0)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, max_backoff))
                log.info("%s; retrying in %.2fs", reason, delay)
                sleep(delay)
        return False, reason, None
