"""Device telemetry, server side: checks, storage (deduplicated per batch) and aggregation.

The payload is the one ``modelsync_device.Telemetry.flush`` sends (docs/devices.md, "Telemetry"): a request
carries up to :data:`MAX_BATCHES` sealed batches, each a per-version window of running sums. Its schema
is the HTTP layer's (modelsync.service.http.models.TelemetryRequest), which hands the parsed request here
as plain JSON data. Each batch is stored as one registry item keyed ``TELEMETRY#{model}`` /
``TELEMETRY#{device}#{batch_id}`` with a conditional put, so a retried request stores nothing twice; the
response acknowledges every batch that is stored (now or before).

Aggregation merges the running sums per model version with the device's own merge
(:func:`modelsync_protocol.telemetry.merge_window`: counts and sums add, min/min and max/max) and derives
the means, standard deviations and missing rates from the merged sums.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from modelsync_protocol.telemetry import (
    SCHEMA_RE,
    TELEMETRY_SCHEMA,
    finish_summary,
    merge_window,
)

from . import rollout
from .errors import InvalidRequest
from .registry import Registry, now_iso
from .rules import check_model_name, parse_since, require_model

SCORE_DEVICE = "score-function"  # the Score function's drift counts (modelsync.service.drift): not a device
MAX_AGGREGATED_ITEMS = 20_000  # GET reads at most this many batches (then says truncated)
MAX_LISTED_DEVICES = 100  # ``last_seen`` lists at most this many devices (the most recently heard from)
MAX_STORED_SUMMARY_BYTES = 350_000  # one batch is one item: DynamoDB items are at most 400 KB
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
SINCE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?Z)?$")


class TelemetryService:
    """Device telemetry in (``receive``) and the fleet view out (``fleet``), with the registry passed in."""

    def __init__(self, registry: Registry, retention_days: int) -> None:
        self.registry = registry
        self.retention_days = retention_days

    def receive(self, name: str, request: Mapping[str, Any], header_device: str | None) -> dict[str, Any]:
        """Store a schema-valid request (plain JSON data, ``schema`` key included) once per batch."""
        check_model_name(name)
        device = check_request(name, request, header_device)
        require_model(self.registry, name)
        return store(self.registry, name, device, request, self.retention_days)

    def fleet(self, name: str, version: int | None, since: str | None, device: str | None) -> dict[str, Any]:
        """Stored batches merged per version, filtered by version, window end and device."""
        check_model_name(name)
        since = check_since(since)
        device = rollout.check_caller_id(device, "device_id")
        require_model(self.registry, name)
        items = self.registry.query_telemetry(name, device=device, version=version, since=since,
                                              limit=MAX_AGGREGATED_ITEMS + 1)
        out = aggregate(name, (i for i in items if i.get("device_id") != SCORE_DEVICE))
        out["filters"] = {"version": version, "since": since, "device_id": device}
        return out


def check_request(name: str, request: Mapping[str, Any], header_device: str | None) -> str | None:
    """The checks a schema cannot express; returns the device id (body or header). 400 names the field."""
    schema, device = request["schema"], request.get("device_id")
    if not SCHEMA_RE.match(schema):
        raise InvalidRequest(f"body.schema: {schema!r} is not supported; this server reads "
                             f"{TELEMETRY_SCHEMA}")
    if request["model"] != name:
        raise InvalidRequest(f"body.model: is {request['model']!r}, but the URL names model {name!r}")
    if device is not None and not rollout.CALLER_ID_RE.match(device):
        raise InvalidRequest("body.device_id: must be 1 to 128 printable ASCII characters without spaces "
                             "or '#'")
    if device is not None and header_device is not None and device != header_device:
        raise InvalidRequest("body.device_id: differs from the X-Device-Id header")
    for i, b in enumerate(request["batches"]):
        if b.get("window_end") is not None and b["window_end"] < b["window_start"]:
            raise InvalidRequest(f"body.batches[{i}].window_end: is before window_start")
        if b["errors"] > b["calls"]:
            raise InvalidRequest(f"body.batches[{i}].errors: more errors than calls")
    return device if device is not None else header_device


def store(registry: Registry, name: str, device: str | None, request: Mapping[str, Any],
          retention_days: int) -> dict[str, Any]:
    """Store every batch once; ``{"accepted": [batch ids stored now or before], "duplicates": n}``."""
    received = now_iso()
    expires = None
    if retention_days > 0:
        expires = int((_dt.datetime.now(_dt.UTC) + _dt.timedelta(days=retention_days)).timestamp())
    batches = request["batches"]
    summaries = []
    for i, batch in enumerate(batches):  # every batch is checked before any is stored
        text = json.dumps({k: v for k, v in batch.items() if k != "batch_id"}, separators=(",", ":"),
                          allow_nan=False)
        if len(text.encode()) > MAX_STORED_SUMMARY_BYTES:
            raise InvalidRequest(f"body.batches[{i}]: {len(text.encode())} bytes of summaries, over the "
                                 f"{MAX_STORED_SUMMARY_BYTES} bytes one batch may hold")
        summaries.append(text)
    accepted: list[str] = []
    duplicates = 0
    dropped = request.get("dropped_batches") or 0
    for i, (batch, summary) in enumerate(zip(batches, summaries, strict=True)):
        item: dict[str, Any] = {
            "model": name, "device_id": device, "batch_id": batch["batch_id"],
            "model_version": batch["model_version"], "sha256": batch["sha256"],
            "window_start": batch["window_start"],
            "window_end": batch.get("window_end") or batch["window_start"],
            "received_at": received, "expires_at": expires,
            # the exact sums as JSON text: no Decimal rounding, no DynamoDB number range limits
            "summary": summary,
        }
        if i == 0 and dropped:
            item["dropped_batches"] = dropped  # reported once, with the first batch
        if not registry.put_telemetry(item):
            duplicates += 1  # stored by an earlier attempt: acknowledged all the same
        accepted.append(batch["batch_id"])
    return {"accepted": accepted, "duplicates": duplicates, "stored": len(accepted) - duplicates}


def check_since(since: str | None) -> str | None:
    """``since`` as the stored ``window_end`` texts compare with: a UTC form as given, any other form
    :func:`.rules.parse_since` reads (an offset, epoch seconds) as UTC text."""
    if since is None or since == "" or SINCE_RE.match(since):
        return since or None
    value = parse_since(since)
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ")


# -- aggregation --------------------------------------------------------------------------------------

def _new_version(version: int) -> dict[str, Any]:
    return {"version": version, "sha256": set(), "devices": set(), "batches": 0, "calls": 0, "rows": 0,
            "errors": 0, "latency_ms": {"sum": 0.0, "min": None, "max": None},
            "window_start": None, "window_end": None, "features": {}, "features_truncated": False,
            "predictions": {}, "output": None}


def aggregate(name: str, items: Iterable[Mapping[str, Any]], limit: int = MAX_AGGREGATED_ITEMS
              ) -> dict[str, Any]:
    """Merge stored batches per model version (see the module docstring), and when each device was last
    heard from (``last_seen``: the newest ``received_at`` of its batches, the version it ran then)."""
    versions: dict[int, dict[str, Any]] = {}
    devices: set[str] = set()
    seen: dict[str, tuple[str, int]] = {}  # device -> (received_at, version) of its newest batch
    dropped = batches = 0
    truncated = False
    for item in items:
        if batches >= limit:
            truncated = True
            break
        batches += 1
        s = json.loads(item["summary"])
        v = versions.setdefault(int(item["model_version"]), _new_version(int(item["model_version"])))
        device = item.get("device_id") or "(none)"
        devices.add(device)
        v["devices"].add(device)
        if item.get("device_id"):
            heard = (str(item.get("received_at") or item.get("window_end") or ""), int(item["model_version"]))
            seen[device] = max(seen.get(device, heard), heard)
        v["sha256"].add(item.get("sha256"))
        v["batches"] += 1
        dropped += int(item.get("dropped_batches") or 0)
        # the item's window (window_end defaults to window_start when the device sent none)
        merge_window(v, {**s, "window_start": item.get("window_start"), "window_end": item.get("window_end")})
    out_versions = []
    for version in sorted(versions):
        v = versions[version]
        v["sha256"] = sorted(x for x in v["sha256"] if x)
        v["devices"] = len(v["devices"])
        lat = v["latency_ms"]
        lat["mean"] = lat["sum"] / v["calls"] if v["calls"] else None
        v["error_rate"] = v["errors"] / v["calls"] if v["calls"] else None
        v["features"] = {k: finish_summary(f) for k, f in sorted(v["features"].items())}
        if v["output"] is not None:
            v["output"] = finish_summary(v["output"])
        out_versions.append(v)
    newest = sorted(seen.items(), key=lambda kv: (kv[1][0], kv[0]), reverse=True)[:MAX_LISTED_DEVICES]
    return {"name": name, "batches": batches, "devices": len(devices), "dropped_batches": dropped,
            "truncated": truncated, "versions": out_versions,
            "last_seen": [{"device_id": d, "version": v, "last_seen": at} for d, (at, v) in newest]}
