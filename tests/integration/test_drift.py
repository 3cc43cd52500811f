"""Drift: rows scored through the API, counted in the baseline's bins, compared by GET .../drift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelsync.export import export_model

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def iris_with_baseline() -> tuple[dict[str, Any], np.ndarray]:
    data = load_iris()
    X = pd.DataFrame(data.data, columns=FEATURES)
    est = LogisticRegression(max_iter=500).fit(X, data.target_names[data.target])
    return export_model(est, X.iloc[::10], name="iris", baseline=X), data.data


def _score(api: Any, rows: np.ndarray) -> None:
    for start in range(0, len(rows), 50):
        chunk = rows[start:start + 50].tolist()
        status, _, body = api("POST", "/models/iris/predict", body={"instances": chunk})
        assert status == 200, body


def test_rows_shifted_on_one_feature_flag_that_feature_only(api, publish, handler, iris_with_baseline):
    doc, rows = iris_with_baseline
    assert publish("iris", doc)["version"] == 1
    app = handler("ScoreFunction")
    # GIVEN the training rows with petal_length shifted by +3 cm, scored through the API
    shifted = rows.copy()
    shifted[:, 2] += 3.0
    _score(api, shifted)
    assert app.DRIFT.flush() == 1
    # WHEN the operator reads the drift of latest (defaults: latest, the last 24 hours)
    status, _, body = api("GET", "/models/iris/drift")
    # THEN petal_length, and no other feature, is flagged
    assert status == 200, body
    assert body["version"] == 1 and body["rows"] == len(rows) and body["baseline"]
    by_name = {e["feature"]: e for e in body["features"]}
    assert set(by_name) == {*FEATURES, "__prediction__"}
    flagged = [f for f in FEATURES if by_name[f]["status"] != "ok"]
    assert flagged == ["petal_length"]
    assert by_name["petal_length"]["status"] == "alert" and by_name["petal_length"]["psi"] > 0.25
    assert by_name["petal_length"]["outside_range"] > 0.5
    for f in ("sepal_length", "sepal_width", "petal_width"):
        assert by_name[f]["psi"] == pytest.approx(0.0, abs=1e-9) and by_name[f]["outside_range"] == 0
    assert body["status"] == "alert"


def test_unshifted_rows_are_ok_and_fleet_view_ignores_score_counts(api, publish, handler, iris_with_baseline):
    doc, rows = iris_with_baseline
    publish("iris", doc)
    app = handler("ScoreFunction")
    _score(api, rows)
    app.DRIFT.flush()
    status, _, body = api("GET", "/models/iris/drift", query={"version": "1", "since": "2020-01-01"})
    assert status == 200 and body["status"] == "ok", body
    assert all(e["status"] == "ok" for e in body["features"])
    # the Score function's counts are not a device in the fleet telemetry view
    status, _, fleet = api("GET", "/models/iris/telemetry")
    assert status == 200 and fleet["devices"] == 0 and fleet["batches"] == 0
    assert api("GET", "/models/iris/drift", query={"version": "7"})[0] == 404


def test_single_rows_are_counted_together_and_all_of_them(api, publish, handler, iris_with_baseline):
    """Counting is batched (drift.BIN_ROWS): single-row requests and a v2 tensor request, counted at the
    flush, give the same drift as the rows scored in chunks."""
    from modelsync.service.drift import BIN_ROWS

    doc, rows = iris_with_baseline
    publish("iris", doc)
    app = handler("ScoreFunction")
    shifted = rows[:30].copy()
    shifted[:, 2] += 3.0
    for row in shifted[:20]:
        assert api("POST", "/models/iris/predict", body={"instances": [row.tolist()]})[0] == 200
    tensor = {"name": "x", "shape": [10, 4], "datatype": "FP64", "data": shifted[20:].tolist()}
    assert api("POST", "/v2/models/iris/infer", body={"inputs": [tensor]})[0] == 200
    assert BIN_ROWS > 30  # nothing counted before the flush ...
    assert app.DRIFT.flush() == 1  # ... then every row, in one window
    status, _, body = api("GET", "/models/iris/drift")
    assert status == 200 and body["rows"] == 30, body
    by_name = {e["feature"]: e for e in body["features"]}
    assert by_name["petal_length"]["status"] == "alert"
    assert by_name["__prediction__"]["rows"] == 30  # the V2 request's predictions count too


def test_v2_predictions_are_counted_and_only_when_computed(api, publish, handler, iris_with_baseline):
    """A V2 client (tritonclient's default outputs) feeds the prediction drift as the plain route does;
    a request for other outputs only counts its features."""
    doc, rows = iris_with_baseline
    publish("iris", doc)
    app = handler("ScoreFunction")
    tensor = {"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows.tolist()}
    assert api("POST", "/v2/models/iris/infer", body={"inputs": [tensor]})[0] == 200
    assert api("POST", "/v2/models/iris/infer", body={"inputs": [tensor],
                                                      "outputs": [{"name": "predict_proba"}]})[0] == 200
    assert app.DRIFT.flush() == 1
    status, _, body = api("GET", "/models/iris/drift")
    assert status == 200 and body["rows"] == 2 * len(rows), body
    by_name = {e["feature"]: e for e in body["features"]}
    assert by_name["__prediction__"]["rows"] == len(rows)
    assert by_name["__prediction__"]["status"] == "ok" and by_name["__prediction__"]["psi"] is not None


def test_since_reads_iso_8601_with_offsets_and_epoch_seconds_on_every_route(api, publish, handler,
                                                                            iris_with_baseline):
    """``since`` is one rule on /drift, /metrics and /telemetry: ISO 8601 (Z, an offset, a date) or Unix
    epoch seconds (milliseconds too); the same instant written either way selects the same rows."""
    import datetime as dt

    doc, rows = iris_with_baseline
    publish("iris", doc)
    app = handler("ScoreFunction")
    _score(api, rows[:50])
    app.DRIFT.flush()
    now = dt.datetime.now(dt.UTC)
    hour_ago, in_an_hour = now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)
    past = [str(int(hour_ago.timestamp())), str(int(hour_ago.timestamp() * 1000)),
            hour_ago.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(timespec="seconds"),
            hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{hour_ago.timestamp():.3f}"]
    requests = set()
    for since in past:
        status, _, body = api("GET", "/models/iris/drift", query={"since": since})
        assert status == 200 and body["rows"] == 50, (since, body)
        status, _, metrics = api("GET", "/models/iris/metrics", query={"since": since})
        assert status == 200 and metrics["since"] == hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ"), (since, metrics)
        requests.add(sum(v["requests"] for v in metrics["versions"]))
        assert api("GET", "/models/iris/telemetry", query={"since": since})[0] == 200
    assert len(requests) == 1 and min(requests) >= 1  # the same instant, the same requests
    for since in (str(int(in_an_hour.timestamp())), in_an_hour.isoformat()):
        status, _, body = api("GET", "/models/iris/drift", query={"since": since})
        assert status == 200 and body["rows"] == 0, (since, body)
    for route in ("drift", "metrics", "telemetry"):
        status, _, body = api("GET", f"/models/iris/{route}", query={"since": "yesterday"})
        assert status == 400 and "epoch" in body["error"]["message"], body


def test_a_categorical_feature_shift_is_flagged_alone(api, publish, handler):
    """A categorical baseline (category frequencies): served rows with the categories' mix changed, and a
    category never seen, flag that feature and no numeric one."""
    import warnings

    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600),
                      "color": rng.choice(["red", "green", "blue"], size=600, p=[0.5, 0.3, 0.2])})
    est = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["a", "b"]),
                                           ("c", OneHotEncoder(handle_unknown="ignore"), ["color"])]),
                        LogisticRegression()).fit(X, (X["a"] > 0).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = export_model(est, X.iloc[:30], name="paint", baseline=X)
    assert doc["metadata"]["baseline"]["features"]["color"]["kind"] == "categorical"
    publish("paint", doc)
    app = handler("ScoreFunction")
    served = X.copy()
    served["color"] = rng.choice(["blue", "purple"], size=600, p=[0.7, 0.3])
    rows = served.to_dict(orient="records")
    for start in range(0, len(rows), 100):
        assert api("POST", "/models/paint/predict", body={"instances": rows[start:start + 100]})[0] == 200
    app.DRIFT.flush()
    status, _, body = api("GET", "/models/paint/drift")
    assert status == 200 and body["rows"] == 600, body
    by_name = {e["feature"]: e for e in body["features"]}
    assert [f for f in ("a", "b", "color") if by_name[f]["status"] != "ok"] == ["color"]
    assert by_name["color"]["status"] == "alert"
    assert by_name["color"]["outside_range"] == pytest.approx((served["color"] == "purple").mean())
    (color,) = [d for d in body["distributions"] if d["feature"] == "color"]
    assert color["kind"] == "categorical" and "purple" in color["bins"]
