"""Each version measured and drift detected, on the local stack (issue 11, "Done when"): v1 and v2 behind a
50 % canary, per-version request counts and latencies read back from ``GET /models/{name}/metrics`` (the
records the Score function emitted, as the stack keeps them); rows shifted on one feature, and only that
feature, flagged by ``GET /models/{name}/drift`` once the Score function flushed its bin counts."""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from typing import Any

import numpy as np
from e2e_support import FEATURES, Stack, wait_for


def _publish(stack: Stack, name: str, doc: dict[str, Any], key: str, versions: int) -> None:
    stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{name}/{key}",
                                  Body=json.dumps(doc).encode(), ContentType="application/json")

    def listed() -> Any:
        r = stack.http("GET", f"/models/{name}")
        return r.status == 200 and len(r.json().get("versions", [])) >= versions

    wait_for(f"{name} version {versions} published", listed, timeout=30)


def test_canary_versions_measured_side_by_side(stack: Stack, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    X, y = iris
    name = "e2e-canary"
    for version, c in ((1, 1.0), (2, 0.05)):
        doc = export_model(LogisticRegression(C=c, max_iter=1000).fit(X, y), X, name=name)
        _publish(stack, name, doc, f"v{version}.json", version)
    r = stack.http("PUT", f"/models/{name}/aliases/production",
                   {"version": 1, "canary": {"version": 2, "weight": 0.5}})
    assert r.status == 200, r.body
    since = (_dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    served: Counter[str] = Counter()
    row = X.iloc[0].tolist()
    for i in range(30):
        r = stack.http("POST", f"/models/{name}/predict?alias=production", {"instances": [row, row, row]},
                       headers={"X-Device-Id": f"device-{i:03d}"})
        assert r.status == 200, r.body
        assert r.headers["X-Model-Version"] == str(r.json()["model_version"])
        served[r.headers["X-Model-Version"]] += 1
    assert set(served) == {"1", "2"}, served  # 30 devices split 50/50: both sides hit

    r = stack.http("GET", f"/models/{name}/metrics?since={since}")
    assert r.status == 200, r.body
    by = {(v["version"], v["side"]): v for v in r.json()["versions"]}
    assert set(by) == {(1, "base"), (2, "canary")}
    for (version, _), view in by.items():
        assert view["requests"] == served[str(version)] and view["rows"] == 3 * served[str(version)]
        assert view["errors"] == 0
        assert view["total_latency_ms"]["mean"] > 0 and view["scoring_latency_ms"]["mean"] > 0
        assert view["total_latency_ms"]["max"] >= view["scoring_latency_ms"]["mean"]


def test_rows_shifted_on_one_feature_flag_it_alone(stack: Stack, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    X, y = iris
    name = "e2e-drift"
    doc = export_model(LogisticRegression(max_iter=1000).fit(X, y), X.iloc[::10], name=name, baseline=X)
    _publish(stack, name, doc, "model.json", 1)
    # the training rows with petal_length shifted by +3 cm, scored through the API in requests of 10,000
    # rows until the Score function has flushed its counts (every 100,000 rows or 60 s)
    shifted = X.to_numpy().copy()
    shifted[:, FEATURES.index("petal_length")] += 3.0
    block = np.tile(shifted, (67, 1))[:10_000].tolist()

    def drift() -> Any:
        r = stack.http("POST", f"/models/{name}/predict", {"instances": block}, timeout=60)
        assert r.status == 200, r.body[:300]
        body = stack.http("GET", f"/models/{name}/drift").json()
        return body if body.get("rows") else None

    body = wait_for("the Score function's drift counts stored", drift, timeout=120, interval=0)
    assert body["version"] == 1 and body["baseline"] is True
    by_name = {e["feature"]: e for e in body["features"]}
    flagged = [f for f in FEATURES if by_name[f]["status"] != "ok"]
    assert flagged == ["petal_length"] and by_name["petal_length"]["status"] == "alert"
    assert by_name["petal_length"]["outside_range"] > 0.5
    assert all(by_name[f]["outside_range"] == 0 for f in FEATURES if f != "petal_length")
    assert body["status"] == "alert"
