"""Each served version measured: one CloudWatch embedded-metric-format (EMF) record per scoring request
(requests, rows, errors by kind, scoring and total latency; dimensions model, version, side), and the
per-version read-back behind ``GET /models/{name}/metrics``.

Writing goes through Powertools' ``EphemeralMetrics`` (one instance per request: its dimension set is that
request's, never shared with another). Reading goes through a :class:`MetricStore`: in memory from the
emitted records (the local stack and tests: the same records the function prints), or CloudWatch
``GetMetricData`` in AWS.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from .errors import InvalidRequest

REQUESTS, ROWS, ERRORS = "Requests", "Rows", "Errors"
SCORING_LATENCY, TOTAL_LATENCY = "ScoringLatency", "TotalLatency"
ERROR_PREFIX = "Errors_"  # one metric per error kind: Errors_invalid_input, ...
DIMENSIONS = ("model", "version", "side")
DEFAULT_WINDOW = _dt.timedelta(hours=24)
MAX_RECORDS = 100_000  # the in-memory store's bound (oldest dropped first)


@dataclass
class Measure:
    """One scoring request as measured by the serving service."""

    model: str
    version: str  # "-" when the request failed before a version was resolved
    side: str  # "base" or "canary"
    route: str  # "v2" | "predict" | "batch"
    rows: int = 0
    scoring_ms: float = 0.0
    total_ms: float = 0.0
    error: str | None = None  # the error code, e.g. "invalid_input"
    errors: int = 0  # how many (batch: refused rows); a request with ``error`` and no count counts 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return self.errors or (1 if self.error else 0)

    def fields(self) -> dict[str, Any]:
        """The structured log line's fields (the metric record's, by name)."""
        return {"model": self.model, "version": self.version, "side": self.side, "route": self.route,
                "rows": self.rows, "scoring_ms": round(self.scoring_ms, 3),
                "total_ms": round(self.total_ms, 3), "error": self.error, "errors": self.error_count,
                **self.extra}


def _request_metrics(m: Measure, namespace: str) -> Any:
    """Powertools' EphemeralMetrics holding this request's metrics under its own dimension set."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics(namespace=namespace)
    metrics.add_dimension("model", m.model)
    metrics.add_dimension("version", m.version)
    metrics.add_dimension("side", m.side)
    metrics.add_metric(REQUESTS, MetricUnit.Count, 1)
    metrics.add_metric(ROWS, MetricUnit.Count, m.rows)
    metrics.add_metric(ERRORS, MetricUnit.Count, m.error_count)
    if m.error:
        metrics.add_metric(ERROR_PREFIX + m.error, MetricUnit.Count, m.error_count)
    metrics.add_metric(SCORING_LATENCY, MetricUnit.Milliseconds, m.scoring_ms)
    metrics.add_metric(TOTAL_LATENCY, MetricUnit.Milliseconds, m.total_ms)
    return metrics


def emf_record(m: Measure, namespace: str) -> dict[str, Any]:
    """The EMF record of one request (what :func:`emit` prints)."""
    return dict(_request_metrics(m, namespace).serialize_metric_set())


def emit(m: Measure, namespace: str, sink: MemoryMetricStore | None = None) -> None:
    """Print the request's EMF record (CloudWatch reads it from the function's log); with a ``sink``
    (the local stack), keep the same record for :class:`MemoryMetricStore` reads."""
    metrics = _request_metrics(m, namespace)
    record = metrics.serialize_metric_set()  # once: flush_metrics would serialise it again
    if sink is not None:
        sink.add(dict(record))
    if not is_metrics_disabled():  # what flush_metrics checks before printing the same line
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")  # EMF: one line on stdout


class MetricStore(Protocol):
    """Where ``GET /models/{name}/metrics`` reads the per-version figures from."""

    def per_version(self, model: str, since: _dt.datetime) -> list[dict[str, Any]]: ...


def _values(v: Any) -> list[float]:
    if isinstance(v, list):
        return [float(x) for x in v]
    return [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []


@dataclass
class _Acc:
    requests: float = 0
    rows: float = 0
    errors: float = 0
    by_kind: dict[str, float] = field(default_factory=dict)
    scoring: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "max": None}
    ordered = sorted(values)
    return {"mean": sum(values) / len(values), "p50": ordered[(len(ordered) - 1) // 2], "max": ordered[-1]}


def _view(key: tuple[str, str], acc: _Acc, scoring: dict[str, Any] | None = None,
          total: dict[str, Any] | None = None) -> dict[str, Any]:
    version, side = key
    requests = int(acc.requests)
    return {"version": int(version) if version.isdigit() else version, "side": side, "requests": requests,
            "rows": int(acc.rows), "errors": int(acc.errors),
            "error_rate": acc.errors / requests if requests else None,
            "errors_by_kind": {k: int(v) for k, v in sorted(acc.by_kind.items())},
            "scoring_latency_ms": scoring if scoring is not None else _summary(acc.scoring),
            "total_latency_ms": total if total is not None else _summary(acc.total)}


def _sort(views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(views, key=lambda v: (str(v["version"]).zfill(12), v["side"]))


class MemoryMetricStore:
    """The emitted EMF records, kept in memory (bounded): the local stack's and the tests' store."""

    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(record)

    def add_line(self, line: str) -> None:
        """A printed line, kept when it is an EMF record."""
        try:
            record = json.loads(line)
        except ValueError:
            return
        if isinstance(record, dict) and "_aws" in record:
            self.add(record)

    def per_version(self, model: str, since: _dt.datetime) -> list[dict[str, Any]]:
        floor = since.timestamp() * 1000
        accs: dict[tuple[str, str], _Acc] = {}
        with self._lock:
            records = list(self._records)
        for r in records:
            if r.get("model") != model or float(r["_aws"].get("Timestamp", 0)) < floor:
                continue
            acc = accs.setdefault((str(r.get("version")), str(r.get("side"))), _Acc())
            acc.requests += sum(_values(r.get(REQUESTS)))
            acc.rows += sum(_values(r.get(ROWS)))
            acc.errors += sum(_values(r.get(ERRORS)))
            for name, value in r.items():
                if name.startswith(ERROR_PREFIX):
                    kind = name[len(ERROR_PREFIX):]
                    acc.by_kind[kind] = acc.by_kind.get(kind, 0) + sum(_values(value))
            acc.scoring += _values(r.get(SCORING_LATENCY))
            acc.total += _values(r.get(TOTAL_LATENCY))
        return _sort(_view(k, a) for k, a in accs.items())


class CloudWatchMetricStore:
    """The figures from CloudWatch (``ListMetrics`` for the version/side pairs, ``GetMetricData``)."""

    def __init__(self, cloudwatch: Any, namespace: str,
                 now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC)) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace
        self.now = now

    def per_version(self, model: str, since: _dt.datetime) -> list[dict[str, Any]]:
        series: dict[tuple[str, str], list[tuple[str, list[dict[str, str]]]]] = {}
        paginator = self.cloudwatch.get_paginator("list_metrics")
        for page in paginator.paginate(Namespace=self.namespace,
                                       Dimensions=[{"Name": "model", "Value": model}]):
            for metric in page.get("Metrics", []):
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if not set(DIMENSIONS) <= set(dims):  # (Powertools adds "service")
                    continue
                series.setdefault((dims["version"], dims["side"]), []).append(
                    (metric["MetricName"], metric["Dimensions"]))
        if not series:
            return []
        end = self.now()
        period = max(60, int((end - since).total_seconds()) // 60 * 60 or 60)
        queries: list[dict[str, Any]] = []
        index: dict[str, tuple[tuple[str, str], str, str]] = {}
        for key, metrics in series.items():
            for name, dimensions in metrics:
                stats = ["Average", "Maximum"] if name in (SCORING_LATENCY, TOTAL_LATENCY) else ["Sum"]
                for stat in stats:
                    qid = f"q{len(queries)}"
                    index[qid] = (key, name, stat)
                    queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
                        "Metric": {"Namespace": self.namespace, "MetricName": name, "Dimensions": dimensions},
                        "Period": period, "Stat": stat}})
        values: dict[tuple[tuple[str, str], str, str], list[float]] = {}
        for start in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
            kwargs = {"MetricDataQueries": queries[start:start + 500], "StartTime": since, "EndTime": end}
            for page in self.cloudwatch.get_paginator("get_metric_data").paginate(**kwargs):
                for result in page.get("MetricDataResults", []):
                    values.setdefault(index[result["Id"]], []).extend(result.get("Values", []))
        views = []
        for key in series:
            acc = _Acc()

            def total(name: str, stat: str = "Sum", k: tuple[str, str] = key) -> float:
                return float(sum(values.get((k, name, stat), [])))

            acc.requests, acc.rows, acc.errors = total(REQUESTS), total(ROWS), total(ERRORS)
            acc.by_kind = {name[len(ERROR_PREFIX):]: total(name) for name, _ in series[key]
                           if name.startswith(ERROR_PREFIX)}
            latency = {}
            for name in (SCORING_LATENCY, TOTAL_LATENCY):
                avgs, maxs = values.get((key, name, "Average"), []), values.get((key, name, "Maximum"), [])
                latency[name] = {"mean": sum(avgs) / len(avgs) if avgs else None, "p50": None,
                                 "max": max(maxs) if maxs else None}
            views.append(_view(key, acc, latency[SCORING_LATENCY], latency[TOTAL_LATENCY]))
        return _sort(views)


LOCAL_STORE = MemoryMetricStore()  # the local stack's records (its functions share the process)


def local_sink(env: Any) -> MemoryMetricStore | None:
    """Where the local stack (``AWS_SAM_LOCAL``) keeps the emitted records; None in AWS (CloudWatch
    reads them from the log)."""
    return LOCAL_STORE if str(env.get("AWS_SAM_LOCAL", "")).lower() == "true" else None


def local_or_cloudwatch(env: Any, cloudwatch: Callable[[], Any], namespace: str
                        ) -> tuple[MetricStore, MemoryMetricStore | None]:
    """(store to read, sink to write): the in-memory records on the local stack, CloudWatch in AWS."""
    sink = local_sink(env)
    if sink is not None:
        return sink, sink
    return CloudWatchMetricStore(cloudwatch(), namespace), None


def batch_measure(result: Mapping[str, Any]) -> Measure | None:
    """One batch input scored (or failed) as a Measure; None for inputs skipped or handed off."""
    status = result.get("status")
    if status not in ("scored", "failed") or result.get("version") is None:
        return None
    ms = float(result.get("seconds") or 0) * 1000
    refused = int(result.get("errors") or 0)
    error = "input_failed" if status == "failed" else ("invalid_row" if refused else None)
    return Measure(model=str(result["model"]), version=str(result["version"]), side="base", route="batch",
                   rows=int(result.get("rows") or 0), scoring_ms=ms, total_ms=ms, error=error,
                   errors=refused, extra={"key": result.get("key")})


def parse_since(since: str | None, now: _dt.datetime | None = None) -> _dt.datetime:
    """``since`` as a UTC date or time (default: the last 24 hours)."""
    now = now or _dt.datetime.now(_dt.UTC)
    if since is None or not since.strip():
        return now - DEFAULT_WINDOW
    text = since.strip().replace("Z", "+00:00")
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"since must be a UTC date or time (e.g. 2025-01-07T00:00:00Z), got "
                             f"{since[:40]!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)


class MetricsService:
    """``GET /models/{name}/metrics``: per version and rollout side, side by side."""

    def __init__(self, store: MetricStore, registry: Any) -> None:
        self.store = store
        self.registry = registry

    def per_version(self, name: str, since: str | None = None) -> dict[str, Any]:
        from .rules import check_model_name, require_model

        check_model_name(name)
        require_model(self.registry, name)
        start = parse_since(since)
        return {"name": name, "since": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "versions": self.store.per_version(name, start)}
