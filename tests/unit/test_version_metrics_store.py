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
    assert base["total_latency_ms"] == {"mean": 5.0, "p50": None, "p90": None, "p99": None, "max": 9.0}
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


def test_cloudwatch_percentiles_and_series_through_get_metric_data():
    """The real client (botocore Stubber): p50/p90/p99 as extended statistics over the window, and the
    series as ``width``-second periods mapped onto buckets from ``since``."""
    import boto3
    from botocore.stub import Stubber

    cw = boto3.client("cloudwatch", region_name="us-east-1")
    dims = [{"Name": "model", "Value": "iris"}, {"Name": "version", "Value": "2"},
            {"Name": "side", "Value": "canary"}, {"Name": "service", "Value": "modelsync"}]
    since = NOW - _dt.timedelta(hours=2)
    width = metrics.bucket_seconds(since, NOW)
    assert width == 300  # 2 hours: 24 buckets of 5 minutes
    t1, t2 = since + _dt.timedelta(seconds=10 * width), since + _dt.timedelta(seconds=11 * width)
    # (metric, stat) -> (the window's value, the two buckets' values)
    table = {("Requests", "Sum"): (7, [3, 4]), ("Rows", "Sum"): (21, [9, 12]),
             ("Errors", "Sum"): (1, [0, 1]), ("TotalLatency", "Average"): (5.0, [4.0, 6.0]),
             ("TotalLatency", "Maximum"): (30.0, [12.0, 30.0]), ("TotalLatency", "p50"): (4.5, [4.0, 5.0]),
             ("TotalLatency", "p90"): (11.0, [10.0, 12.0]), ("TotalLatency", "p99"): (29.0, [12.0, 29.0])}
    answer: dict[str, Any] = {"MetricDataResults": []}
    sent: list[dict[str, Any]] = []

    def fill(params: dict[str, Any], **_: Any) -> None:
        """Answer each query as CloudWatch would (the stubbed answer is filled in from the request)."""
        assert params["StartTime"] == since and params["EndTime"] == NOW
        for q in params["MetricDataQueries"]:
            stat = q["MetricStat"]
            sent.append(q)
            whole, per = table[(stat["Metric"]["MetricName"], stat["Stat"])]
            if stat["Period"] == width:  # CloudWatch answers newest first
                answer["MetricDataResults"].append({"Id": q["Id"], "Timestamps": [t2, t1],
                                                    "Values": [per[1], per[0]], "StatusCode": "Complete"})
            else:
                answer["MetricDataResults"].append({"Id": q["Id"], "Timestamps": [since], "Values": [whole],
                                                    "StatusCode": "Complete"})

    cw.meta.events.register("provide-client-params.cloudwatch.GetMetricData", fill)
    with Stubber(cw) as stub:
        stub.add_response("list_metrics", {"Metrics": [
            {"Namespace": "modelsync", "MetricName": m, "Dimensions": dims}
            for m in ("Requests", "Rows", "Errors", "TotalLatency")]},
            {"Namespace": "modelsync", "Dimensions": [{"Name": "model", "Value": "iris"}]})
        stub.add_response("get_metric_data", answer)
        (view,) = metrics.CloudWatchMetricStore(cw, "modelsync", now=lambda: NOW).per_version("iris", since)
        stub.assert_no_pending_responses()
    stats = {(q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"], q["MetricStat"]["Period"])
             for q in sent}
    assert {("TotalLatency", "p99", 7200), ("TotalLatency", "p90", 300), ("Requests", "Sum", 300),
            ("Requests", "Sum", 7200)} <= stats
    assert (view["version"], view["side"], view["requests"], view["rows"], view["errors"]) == (2, "canary", 7,
                                                                                               21, 1)
    assert view["total_latency_ms"] == {"mean": 5.0, "p50": 4.5, "p90": 11.0, "p99": 29.0, "max": 30.0}
    first, second = view["series"]
    assert first["start"] == t1.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (first["requests"], first["rows"], first["errors"], first["error_rate"]) == (3, 9, 0, 0.0)
    assert first["total_latency_ms"] == {"mean": 4.0, "p50": 4.0, "p90": 10.0, "p99": 12.0, "max": 12.0}
    assert second["errors"] == 1 and second["total_latency_ms"]["p99"] == 29.0


def test_memory_store_percentiles_and_series_buckets():
    store = metrics.MemoryMetricStore()
    since = _dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=58)  # mid-bucket: 11.6 buckets ago
    for ms in range(1, 101):  # 100 requests, total latency 1..100 ms
        record = metrics.emf_record(metrics.Measure("m", "1", "base", "predict", rows=2, total_ms=float(ms),
                                                    error="invalid_input" if ms <= 5 else None), "ns")
        store.add(record)
    (view,) = store.per_version("m", since, 300)
    lat = view["total_latency_ms"]
    assert (lat["p50"], lat["p90"], lat["p99"], lat["max"]) == (50.0, 90.0, 99.0, 100.0)
    assert view["error_rate"] == 0.05
    (bucket,) = view["series"]  # all in the last 5 minutes: one bucket, the totals
    assert (bucket["requests"], bucket["rows"], bucket["errors"]) == (100, 200, 5)
    assert bucket["total_latency_ms"] == lat
    start = _dt.datetime.fromisoformat(bucket["start"].replace("Z", "+00:00"))
    assert 0 <= (start - since.replace(microsecond=0)).total_seconds() <= 3600
    assert metrics.bucket_seconds(NOW - _dt.timedelta(days=7), NOW) == 6 * 3600
    assert metrics.bucket_seconds(NOW - _dt.timedelta(days=365), NOW) == 8 * 86400


def test_error_rate_counts_errors_out_of_what_they_count():
    """An API request errs out of one request; a batch input's refused rows out of the rows it read (the
    demo's batch: 1 refused row of 21 is 1/21, not 1 error per request = 100 %); mixed in one row, a
    fraction of both (never above 1). A failed batch input is one error out of one."""
    store = metrics.MemoryMetricStore()
    batch = metrics.batch_measure({"status": "scored", "model": "wine", "version": 2, "rows": 21,
                                   "errors": 1, "seconds": 0.03, "key": "batch/input/wine/demo.csv"})
    assert batch is not None and (batch.error_count, batch.error_base) == (1, 21)
    store.add(metrics.emf_record(batch, "ns"))
    (view,) = store.per_version("wine", NOW - _dt.timedelta(days=3650))
    assert (view["requests"], view["rows"], view["errors"]) == (1, 21, 1)
    assert view["error_rate"] == pytest.approx(1 / 21)
    assert view["series"][0]["error_rate"] == pytest.approx(1 / 21)

    many = metrics.batch_measure({"status": "scored", "model": "wine", "version": 2, "rows": 10,
                                  "errors": 4, "seconds": 0.01})
    failed = metrics.batch_measure({"status": "failed", "model": "wine", "version": 2, "seconds": 0.01})
    assert failed is not None and (failed.error_count, failed.error_base) == (1, 1)
    api_ok = metrics.Measure("wine", "2", "base", "predict", rows=3)
    api_bad = metrics.Measure("wine", "2", "base", "v2", error="invalid_input")
    assert (api_ok.error_base, api_bad.error_base) == (1, 1)
    for m in (many, failed, api_ok, api_bad):
        assert m is not None
        store.add(metrics.emf_record(m, "ns"))
    (view,) = store.per_version("wine", NOW - _dt.timedelta(days=3650))
    # errors 1 + 4 + 1 + 0 + 1 over 21 + 10 + 1 (batch rows, failed input) + 1 + 1 (API requests)
    assert (view["requests"], view["errors"]) == (5, 7)
    assert view["error_rate"] == pytest.approx(7 / 34)
    assert all(0 <= b["error_rate"] <= 1 for b in view["series"])


def test_records_without_error_base_count_requests():
    """EMF records written before ErrorBase (CloudWatch keeps 15 months) are read as before: per request."""
    store = metrics.MemoryMetricStore()
    bad = metrics.Measure("m", "1", "base", "predict", rows=2, error="invalid_input")
    record = metrics.emf_record(bad, "ns")
    record.pop(metrics.ERROR_BASE)
    store.add(record)
    store.add(metrics.emf_record(metrics.Measure("m", "1", "base", "predict", rows=2), "ns"))
    (view,) = store.per_version("m", NOW - _dt.timedelta(days=3650))
    assert view["error_rate"] == 0.5


def test_cloudwatch_error_rate_uses_error_base():
    cw = FakeCloudWatch({
        ("2", "base", "Requests", "Sum"): [1], ("2", "base", "Rows", "Sum"): [21],
        ("2", "base", "Errors", "Sum"): [1], ("2", "base", "ErrorBase", "Sum"): [21],
        ("3", "base", "Requests", "Sum"): [4], ("3", "base", "Errors", "Sum"): [1],  # older records: no base
    })
    v2, v3 = metrics.CloudWatchMetricStore(cw, "modelsync", now=lambda: NOW).per_version(
        "iris", NOW - _dt.timedelta(hours=1))
    assert v2["error_rate"] == pytest.approx(1 / 21) and v3["error_rate"] == pytest.approx(1 / 4)
    assert any(q["MetricStat"]["Metric"]["MetricName"] == "ErrorBase" for q in cw.queries)
