"""The metrics read-back without a stack: CloudWatch GetMetricData figures per version and side, batch
results as measures, and the in-memory store reading printed EMF lines."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import pytest

from modelsync.service import metrics
from modelsync.service.errors import InvalidRequest

NOW = _dt.datetime(2026, 1, 2, 12, 0, tzinfo=_dt.UTC)


class FakeCloudWatch:
    """list_metrics / get_metric_data paginators over fixed series (what CloudWatch keeps of the EMF)."""

    def __init__(self, values: dict[tuple[str, str, str, str], list[float]]) -> None:
        self.values = values  # (version, side, metric, stat) -> datapoints
        self.queries: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> Any:
        fake = self

        class Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                if name == "list_metrics":
                    seen = {(v, s, m) for v, s, m, _ in fake.values}
                    dims = [{"Name": "model", "Value": "iris"}, {"Name": "service", "Value": "modelsync"}]
                    return [{"Metrics": [{"MetricName": m, "Dimensions": [
                        *dims, {"Name": "version", "Value": v}, {"Name": "side", "Value": s}]}
                        for v, s, m in sorted(seen)]}]
                fake.queries += kwargs["MetricDataQueries"]
                out = []
                for q in kwargs["MetricDataQueries"]:
                    stat = q["MetricStat"]
                    dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
                    key = (dims["version"], dims["side"], stat["Metric"]["MetricName"], stat["Stat"])
                    out.append({"Id": q["Id"], "Values": fake.values.get(key, [])})
                return [{"MetricDataResults": out}]

        return Pages()


def test_cloudwatch_store_sums_counts_and_latencies_per_version_and_side():
    cw = FakeCloudWatch({
        ("1", "base", "Requests", "Sum"): [10, 2], ("1", "base", "Rows", "Sum"): [30],
        ("1", "base", "Errors", "Sum"): [1], ("1", "base", "Errors_invalid_input", "Sum"): [1],
        ("1", "base", "TotalLatency", "Average"): [4.0, 6.0], ("1", "base", "TotalLatency", "Maximum"): [9.0],
        ("2", "canary", "Requests", "Sum"): [7], ("2", "canary", "ScoringLatency", "Average"): [1.5],
    })
    views = metrics.CloudWatchMetricStore(cw, "modelsync", now=lambda: NOW).per_version(
        "iris", NOW - _dt.timedelta(hours=1))
    assert [(v["version"], v["side"]) for v in views] == [(1, "base"), (2, "canary")]
    base, canary = views
    assert (base["requests"], base["rows"], base["errors"]) == (12, 30, 1)
    assert base["errors_by_kind"] == {"invalid_input": 1} and base["error_rate"] == pytest.approx(1 / 12)
    assert base["total_latency_ms"] == {"mean": 5.0, "p50": None, "max": 9.0}
    assert canary["requests"] == 7 and canary["scoring_latency_ms"]["mean"] == 1.5
    assert all(q["MetricStat"]["Period"] % 60 == 0 for q in cw.queries)
    assert metrics.CloudWatchMetricStore(FakeCloudWatch({}), "ns").per_version("iris", NOW) == []


def test_batch_results_are_measured_and_printed_lines_are_read_back():
    m = metrics.batch_measure({"status": "scored", "model": "iris", "version": 3, "rows": 100, "errors": 4,
                               "seconds": 1.5, "key": "batch/input/iris/a.csv"})
    assert m is not None and (m.version, m.side, m.rows, m.error, m.error_count) == ("3", "base", 100,
                                                                                       "invalid_row", 4)
    assert metrics.batch_measure({"status": "skipped", "model": "iris", "version": None}) is None
    store = metrics.MemoryMetricStore(limit=10)
    store.add_line(json.dumps(metrics.emf_record(m, "ns")))
    store.add_line("not json")
    store.add_line(json.dumps({"level": "INFO"}))
    (view,) = store.per_version("iris", NOW - _dt.timedelta(days=3650))
    assert (view["requests"], view["rows"], view["errors"]) == (1, 100, 4)
    assert view["errors_by_kind"] == {"invalid_row": 4} and view["total_latency_ms"]["max"] == 1500.0
    assert store.per_version("iris", _dt.datetime.now(_dt.UTC) + _dt.timedelta(hours=1)) == []


def test_since_is_a_utc_date_or_time():
    assert metrics.parse_since(None, NOW) == NOW - metrics.DEFAULT_WINDOW
    assert metrics.parse_since("2026-01-01", NOW) == _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
    assert metrics.parse_since("2026-01-01T10:00:00Z", NOW).hour == 10
    with pytest.raises(InvalidRequest):
        metrics.parse_since("yesterday", NOW)
