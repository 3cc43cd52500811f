"""Each served version measured: one CloudWatch embedded-metric-format (EMF) record per scoring request
(requests, rows, errors by kind, what the errors count out of, scoring and total latency; dimensions
model, version, side), and the per-version read-back behind ``GET /models/{name}/metrics``: totals, the
error rate and latency percentiles (p50, p90, p99) over the window, and a ``series`` of time buckets
(``bucket_seconds`` wide, at most :data:`MAX_BUCKETS` of them) for charts (``modelsync report``,
``/console/``).

Writing goes through Powertools' ``EphemeralMetrics`` (one instance per request: its dimension set is that
request's, never shared with another). Reading goes through a :class:`MetricStore`: in memory from the
emitted records (the local stack and tests: the same records the function prints), or CloudWatch
``GetMetricData`` in AWS.

The error rate is a fraction of what the errors count: an API request counts one error when it fails
(out of one request), a batch input counts its refused rows (out of the rows it read; a failed input: one
error out of one). Each record carries that denominator (``ErrorBase``), so a (version, side) row mixing
API requests and batch inputs still gets ``errors / error base``, never above 1. Records without it
(written before it existed) count their requests.
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

from .rules import parse_since as _parse_since

REQUESTS, ROWS, ERRORS = "Requests", "Rows", "Errors"
ERROR_BASE = "ErrorBase"  # what Errors counts out of: 1 per API request, the rows read per batch input
SCORING_LATENCY, TOTAL_LATENCY = "ScoringLatency", "TotalLatency"
ERROR_PREFIX = "Errors_"  # one metric per error kind: Errors_invalid_input, ...
DIMENSIONS = ("model", "version", "side")
DEFAULT_WINDOW = _dt.timedelta(hours=24)
MAX_RECORDS = 100_000  # the in-memory store's bound (oldest dropped first)
PERCENTILES = (50, 90, 99)  # latency percentiles served (CloudWatch extended statistics p50, p90, p99)
BUCKETS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)  # series widths (seconds)
MAX_BUCKETS = 52  # at most this many buckets: 48 over 24 hours (30 min), with room so that the
# same window read a little later (a console refreshing) keeps its width


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

    @property
    def error_base(self) -> int:
        """What ``error_count`` is out of: the rows read by a batch input (at least its errors: a failed
        input is one error out of one), one request elsewhere."""
        return max(self.rows, self.error_count) if self.route == "batch" else 1

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
    metrics.add_metric(ERROR_BASE, MetricUnit.Count, m.error_base)
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

    def per_version(self, model: str, since: _dt.datetime, width: int | None = None
                    ) -> list[dict[str, Any]]:
        """Per (version, side): totals, latency summaries and the ``series`` in ``width``-second buckets
        from ``since`` (default: :func:`bucket_seconds` up to now)."""
        ...


def _values(v: Any) -> list[float]:
    if isinstance(v, list):
        return [float(x) for x in v]
    return [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []


@dataclass
class _Acc:
    requests: float = 0
    rows: float = 0
    errors: float = 0
    base: float = 0  # what errors counts out of (ErrorBase; requests in records without it)
    by_kind: dict[str, float] = field(default_factory=dict)
    scoring: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)


def _summary(values: list[float]) -> dict[str, float | None]:
    """Mean, nearest-rank percentiles and max (p50 is the lower median)."""
    if not values:
        return {"mean": None, **{f"p{p}": None for p in PERCENTILES}, "max": None}
    ordered = sorted(values)
    n = len(ordered)
    ranks = {f"p{p}": ordered[max(0, -(-p * n // 100) - 1)] for p in PERCENTILES}
    return {"mean": sum(values) / n, **ranks, "max": ordered[-1]}


def bucket_seconds(since: _dt.datetime, until: _dt.datetime) -> int:
    """The series' bucket width: the narrowest of :data:`BUCKETS` giving at most :data:`MAX_BUCKETS`
    buckets over the window (whole days beyond)."""
    span = max(1, int((until - since).total_seconds()))
    for width in BUCKETS:
        if -(-span // width) <= MAX_BUCKETS:
            return width
    return -(-span // (MAX_BUCKETS * 86400)) * 86400


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_rate(acc: _Acc) -> float | None:
    """Errors over what they count (see the module's docstring): a fraction, never above 1."""
    return min(1.0, acc.errors / acc.base) if acc.base else None


def _bucket_view(since: _dt.datetime, width: int, index: int, acc: _Acc,
                 latency: dict[str, Any] | None = None) -> dict[str, Any]:
    """One series point: the bucket's start, counts, error rate and total latency."""
    return {"start": _iso(since + _dt.timedelta(seconds=index * width)), "requests": int(acc.requests),
            "rows": int(acc.rows), "errors": int(acc.errors), "error_rate": _error_rate(acc),
            "total_latency_ms": latency if latency is not None else _summary(acc.total)}


def _view(key: tuple[str, str], acc: _Acc, scoring: dict[str, Any] | None = None,
          total: dict[str, Any] | None = None, series: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    version, side = key
    requests = int(acc.requests)
    return {"version": int(version) if version.isdigit() else version, "side": side, "requests": requests,
            "rows": int(acc.rows), "errors": int(acc.errors), "error_rate": _error_rate(acc),
            "errors_by_kind": {k: int(v) for k, v in sorted(acc.by_kind.items())},
            "scoring_latency_ms": scoring if scoring is not None else _summary(acc.scoring),
            "total_latency_ms": total if total is not None else _summary(acc.total),
            "series": series or []}


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

    def per_version(self, model: str, since: _dt.datetime, width: int | None = None
                    ) -> list[dict[str, Any]]:
        floor = since.timestamp() * 1000
        width = width or bucket_seconds(since, _dt.datetime.now(_dt.UTC))
        accs: dict[tuple[str, str], _Acc] = {}
        buckets: dict[tuple[str, str], dict[int, _Acc]] = {}
        with self._lock:
            records = list(self._records)
        for r in records:
            stamp = float(r["_aws"].get("Timestamp", 0))
            if r.get("model") != model or stamp < floor:
                continue
            key = (str(r.get("version")), str(r.get("side")))
            index = int((stamp - floor) // (width * 1000))
            for acc in (accs.setdefault(key, _Acc()), buckets.setdefault(key, {}).setdefault(index, _Acc())):
                acc.requests += sum(_values(r.get(REQUESTS)))
                acc.rows += sum(_values(r.get(ROWS)))
                acc.errors += sum(_values(r.get(ERRORS)))
                acc.base += sum(_values(r.get(ERROR_BASE) if ERROR_BASE in r else r.get(REQUESTS)))
                acc.total += _values(r.get(TOTAL_LATENCY))
            acc = accs[key]
            for name, value in r.items():
                if name.startswith(ERROR_PREFIX):
                    kind = name[len(ERROR_PREFIX):]
                    acc.by_kind[kind] = acc.by_kind.get(kind, 0) + sum(_values(value))
            acc.scoring += _values(r.get(SCORING_LATENCY))
        return _sort(_view(k, a, series=[_bucket_view(since, width, i, b) for i, b in
                                         sorted(buckets[k].items())]) for k, a in accs.items())


class CloudWatchMetricStore:
    """The figures from CloudWatch (``ListMetrics`` for the version/side pairs, ``GetMetricData``): the
    window's totals and latency statistics (Average, Maximum and the extended statistics p50/p90/p99)
    with one period spanning the window, and the series with ``width``-second periods."""

    LATENCY_STATS = ("Average", "Maximum", *(f"p{p}" for p in PERCENTILES))
    SERIES_METRICS = (REQUESTS, ROWS, ERRORS, ERROR_BASE)

    def __init__(self, cloudwatch: Any, namespace: str,
                 now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC)) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace
        self.now = now

    def per_version(self, model: str, since: _dt.datetime, width: int | None = None
                    ) -> list[dict[str, Any]]:
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
        width = width or bucket_seconds(since, end)
        period = max(60, int((end - since).total_seconds()) // 60 * 60 or 60)
        queries: list[dict[str, Any]] = []
        index: dict[str, tuple[tuple[str, str], str, str, bool]] = {}  # id -> (key, metric, stat, series?)

        def query(key: tuple[str, str], name: str, dimensions: Any, stat: str, bucketed: bool) -> None:
            qid = f"q{len(queries)}"
            index[qid] = (key, name, stat, bucketed)
            queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": name, "Dimensions": dimensions},
                "Period": width if bucketed else period, "Stat": stat}})

        for key, metrics in series.items():
            for name, dimensions in metrics:
                is_latency = name in (SCORING_LATENCY, TOTAL_LATENCY)
                for stat in self.LATENCY_STATS if is_latency else ("Sum",):
                    query(key, name, dimensions, stat, False)
                if name == TOTAL_LATENCY:
                    for stat in self.LATENCY_STATS:
                        query(key, name, dimensions, stat, True)
                elif name in self.SERIES_METRICS:
                    query(key, name, dimensions, "Sum", True)
        values: dict[tuple[tuple[str, str], str, str], list[float]] = {}
        points: dict[tuple[str, str], dict[int, dict[tuple[str, str], float]]] = {}
        for start in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
            kwargs = {"MetricDataQueries": queries[start:start + 500], "StartTime": since, "EndTime": end}
            for page in self.cloudwatch.get_paginator("get_metric_data").paginate(**kwargs):
                for result in page.get("MetricDataResults", []):
                    key, name, stat, bucketed = index[result["Id"]]
                    if not bucketed:
                        values.setdefault((key, name, stat), []).extend(result.get("Values", []))
                        continue
                    for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []),
                                            strict=False):
                        i = max(0, int((stamp - since).total_seconds() // width))
                        points.setdefault(key, {}).setdefault(i, {})[(name, stat)] = float(value)
        views = []
        for key in series:
            acc = _Acc()

            def total(name: str, stat: str = "Sum", k: tuple[str, str] = key) -> float:
                return float(sum(values.get((k, name, stat), [])))

            acc.requests, acc.rows, acc.errors = total(REQUESTS), total(ROWS), total(ERRORS)
            has_base = any(name == ERROR_BASE for name, _ in series[key])
            acc.base = total(ERROR_BASE) if has_base else acc.requests
            acc.by_kind = {name[len(ERROR_PREFIX):]: total(name) for name, _ in series[key]
                           if name.startswith(ERROR_PREFIX)}
            latency = {name: _stats({s: values.get((key, name, s), []) for s in self.LATENCY_STATS})
                       for name in (SCORING_LATENCY, TOTAL_LATENCY)}
            buckets = []
            for i, point in sorted(points.get(key, {}).items()):
                b = _Acc(requests=point.get((REQUESTS, "Sum"), 0.0), rows=point.get((ROWS, "Sum"), 0.0),
                         errors=point.get((ERRORS, "Sum"), 0.0))
                b.base = point.get((ERROR_BASE, "Sum"), 0.0) if has_base else b.requests
                if b.requests:
                    stats = {s: [point[(TOTAL_LATENCY, s)]] if (TOTAL_LATENCY, s) in point else []
                             for s in self.LATENCY_STATS}
                    buckets.append(_bucket_view(since, width, i, b, _stats(stats)))
            views.append(_view(key, acc, latency[SCORING_LATENCY], latency[TOTAL_LATENCY], buckets))
        return _sort(views)


def _stats(by_stat: Mapping[str, list[float]]) -> dict[str, float | None]:
    """A latency summary from CloudWatch statistics (one value per statistic; a window split over
    several periods: the mean of the averages and percentiles, the largest maximum)."""
    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    maxs = by_stat.get("Maximum") or []
    return {"mean": mean(by_stat.get("Average") or []),
            **{f"p{p}": mean(by_stat.get(f"p{p}") or []) for p in PERCENTILES},
            "max": max(maxs) if maxs else None}


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
    return CloudWatchMetricStore(_OnFirstUse(cloudwatch), namespace), None


class _OnFirstUse:
    """A client created on its first use: only the operator's ``GET .../metrics`` reads CloudWatch, so
    the Score import (the cold start) does not pay for creating it."""

    def __init__(self, create: Callable[[], Any]) -> None:
        self._create, self._client, self._lock = create, None, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._create()
        return getattr(self._client, name)


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
    """``since`` as :func:`.rules.parse_since` reads it (default: the last 24 hours)."""
    value = _parse_since(since)
    return value if value is not None else (now or _dt.datetime.now(_dt.UTC)) - DEFAULT_WINDOW


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
        until = _dt.datetime.now(_dt.UTC)
        width = bucket_seconds(start, until)
        return {"name": name, "since": _iso(start), "until": _iso(until), "bucket_seconds": width,
                "versions": self.store.per_version(name, start, width)}
