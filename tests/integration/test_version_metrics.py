"""Each version measured: v1 and v2 behind a 50 % canary, traffic from distinct devices, and the
per-version request counts, rows, errors and latencies read back from ``GET /models/{name}/metrics``
(the local store: the EMF records the Score function emitted)."""

from __future__ import annotations

import datetime as _dt
from collections import Counter

import pytest
from integration_support import renamed

from modelsync.service import metrics

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def store(api, monkeypatch):
    """The Score function's metrics on an in-memory store fed with the records it emits (as locally)."""
    fresh = metrics.MemoryMetricStore()
    monkeypatch.setattr(api.app, "METRIC_SINK", fresh)
    monkeypatch.setattr(api.app.SERVICES.metrics, "store", fresh)
    return fresh


def test_canary_versions_are_measured_side_by_side(api, publish, models, store):
    assert publish("metered", renamed(models.iris, "metered"))["version"] == 1
    assert publish("metered", renamed(models.iris_v2, "metered"))["version"] == 2
    canary = {"version": 1, "canary": {"version": 2, "weight": 0.5}}
    assert api("PUT", "/models/metered/aliases/production", body=canary)[0] == 200
    since = (_dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    served: Counter[tuple[int, str]] = Counter()
    for i in range(24):
        status, headers, body = api("POST", "/models/metered/predict", body={"instances": [ROW, ROW]},
                                    query={"alias": "production"}, headers={"X-Device-Id": f"dev-{i:03d}"})
        assert status == 200 and headers["x-model-version"] == str(body["model_version"])
        served[(body["model_version"], "canary" if body["model_version"] == 2 else "base")] += 1
    assert set(served) == {(1, "base"), (2, "canary")}, served  # 24 devices: both sides are hit
    # V2 by version: side base; one refused request counted as an error of its kind
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [ROW]}
    status, headers, _ = api("POST", "/v2/models/metered/versions/2/infer", body={"inputs": [tensor]})
    assert status == 200 and headers["x-model-version"] == "2"
    bad = {"instances": [[1.0]]}
    assert api("POST", "/models/metered/predict", body=bad, query={"version": "1"})[0] == 400

    status, _, got = api("GET", "/models/metered/metrics", query={"since": since})
    assert status == 200 and got["name"] == "metered"
    by = {(v["version"], v["side"]): v for v in got["versions"]}
    assert by[(1, "base")]["requests"] == served[(1, "base")] + 1  # + the refused one
    assert by[(1, "base")]["errors"] == 1 and by[(1, "base")]["errors_by_kind"] == {"invalid_input": 1}
    assert by[(2, "canary")]["requests"] == served[(2, "canary")]
    assert by[(2, "canary")]["rows"] == 2 * served[(2, "canary")] and by[(2, "canary")]["errors"] == 0
    assert by[(2, "base")]["requests"] == 1 and by[(2, "base")]["rows"] == 1
    for view in by.values():
        lat = view["total_latency_ms"]
        assert lat["mean"] > 0 and lat["max"] >= lat["mean"]
        assert 0 <= view["scoring_latency_ms"]["mean"] <= lat["max"]
    # the records are EMF, with the three dimensions and the request's figures
    record = metrics.emf_record(metrics.Measure("metered", "1", "base", "predict", rows=3), "ns")
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert {"model", "version", "side"} <= set(directive["Dimensions"][0]) and record["Rows"] == [3.0]
    # an unknown model is a 404; since must be a date or time
    assert api("GET", "/models/nope/metrics")[0] == 404
    assert api("GET", "/models/metered/metrics", query={"since": "yesterday"})[0] == 400


def test_scoring_requests_refused_before_the_service_are_measured_by_kind(api, publish, models, store):
    """A body of the wrong shape, a non-JSON media type, an empty or oversized body: refused before the
    serving service runs, yet each is a request with an error of its kind (version ``-``), with a log
    line; requests to other routes are not scoring requests."""
    assert publish("metered", renamed(models.iris, "metered"))["version"] == 1
    assert api("POST", "/models/metered/predict", body={"rows": [ROW]})[0] == 400
    assert api("POST", "/v2/models/metered/infer", body={"inputs": "x"})[0] == 400
    assert api("POST", "/v2/models/metered/versions/1/infer", raw_body="")[0] == 400
    event = api.event("POST", "/models/metered/predict", body={"instances": [ROW]})
    event["headers"]["Content-Type"] = "text/plain"
    assert api.invoke(event)[0] == 415
    too_big = " " * (api.app.SETTINGS.max_request_bytes + 1)
    huge = api.event("POST", "/models/metered/predict", raw_body=too_big)
    assert api.invoke(huge)[0] == 413
    assert api("PUT", "/models/metered/aliases/production", body={"version": "one"})[0] == 400  # not scoring
    assert api("POST", "/models/no such model/predict", body={"rows": []})[0] in (400, 404)

    status, _, got = api("GET", "/models/metered/metrics")
    assert status == 200
    (refused,) = [v for v in got["versions"] if v["version"] == "-"]
    assert refused["requests"] == refused["errors"] == 5, refused
    assert refused["errors_by_kind"] == {"invalid_request": 3, "unsupported_media_type": 1,
                                         "payload_too_large": 1}
    assert all(v["version"] == "-" for v in got["versions"])  # nothing was scored
