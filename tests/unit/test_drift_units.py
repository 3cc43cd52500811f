"""Drift: baseline bins, the counts scorers send, their merge (device and server), PSI and its status."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import modelsync_device.telemetry as device_telemetry
from modelsync_protocol import drift
from modelsync_protocol.telemetry import merge_window
from scorer import Feature


def _baseline() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    cols = {"x": rng.normal(size=1000), "c": rng.choice(["a", "b", "c"], 1000, p=[0.5, 0.3, 0.2])}
    preds = np.where(cols["x"] > 0, "pos", "neg")
    return drift.make_baseline(cols, {"x": "numeric", "c": "categorical"}, preds, "categorical")


def test_baseline_bins_are_quantiles_and_counts_add_up() -> None:
    base = _baseline()
    x = base["features"]["x"]
    assert len(x["edges"]) == drift.DEFAULT_BINS - 1 and sum(x["counts"]) == 1000
    assert all(90 <= n <= 110 for n in x["counts"])  # deciles: about 100 rows each
    assert sum(base["features"]["c"]["counts"].values()) == 1000
    assert set(base["prediction"]["counts"]) == {"pos", "neg"}


def test_same_distribution_is_ok_and_a_shift_alerts() -> None:
    base = _baseline()
    rng = np.random.default_rng(1)
    same = {"x": rng.normal(size=2000), "c": rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])}
    shifted = {"x": rng.normal(loc=1.5, size=2000), "c": same["c"]}
    ok = {e["feature"]: e for e in drift.drift_entries(base, drift.bin_counts(base, same, None))}
    bad = {e["feature"]: e for e in drift.drift_entries(base, drift.bin_counts(base, shifted, None))}
    assert ok["x"]["status"] == ok["c"]["status"] == "ok" and ok["x"]["psi"] < drift.PSI_WARN
    assert bad["x"]["status"] == "alert" and bad["x"]["psi"] > drift.PSI_ALERT
    assert bad["c"]["status"] == "ok" and bad["x"]["outside_range"] > ok["x"]["outside_range"]
    assert bad[drift.PREDICTION]["rows"] == 0 and bad[drift.PREDICTION]["psi"] is None


def test_unknown_categories_count_as_outside_and_thresholds_are_documented() -> None:
    base = _baseline()
    counts = drift.count_in(base["features"]["c"], ["a", "zzz", "zzz", None])
    assert counts["outside"] == 2 and counts["categories"] == {"a": 1, "zzz": 2}
    assert [drift.status_of(v) for v in (None, 0.05, 0.1, 0.2, 0.25, 3.0)] == [
        "ok", "ok", "warn", "warn", "alert", "alert"]


def test_counts_merge_exactly_through_the_telemetry_merge() -> None:
    base = _baseline()
    a = drift.bin_counts(base, {"x": [0.0, 5.0], "c": ["a"]}, np.array(["pos", "neg"]))
    b = drift.bin_counts(base, {"x": [-5.0], "c": ["b", "b"]}, np.array(["pos"]))
    into = device_telemetry.new_window(1, "f" * 64)
    merge_window(into, {**device_telemetry.new_window(1, "f" * 64), "drift": a})
    merge_window(into, {**device_telemetry.new_window(1, "f" * 64), "drift": b})
    whole = drift.bin_counts(base, {"x": [0.0, 5.0, -5.0], "c": ["a", "b", "b"]},
                             np.array(["pos", "neg", "pos"]))
    assert into["drift"] == drift.merge_all({}, whole)
    assert into["drift"]["features"]["x"]["outside"] == 2  # 5 and -5 lie outside the baseline's range
    merge_window(into, device_telemetry.new_window(1, "f" * 64))  # an older device's window: no drift key
    assert into["drift"]["prediction"]["categories"] == {"pos": 2, "neg": 1}


def test_device_records_bin_counts_with_its_telemetry(tmp_path: Any) -> None:
    base = _baseline()
    t = device_telemetry.Telemetry(tmp_path)
    X = np.array([[0.1, "a"], [9.0, "b"]] * 10, dtype=object)
    feats = [Feature("x", "numeric", None), Feature("c", "categorical", ["a", "b", "c"])]
    t.record("m", 1, "f" * 64, X, feats, np.array(["pos", "neg"] * 10), 0.001, baseline=base)
    t.record("m", 1, "f" * 64, X, feats, np.array(["pos", "neg"] * 10), 0.001)  # no baseline: no counts
    (window,) = t.snapshot("m")["open"].values()
    d = window["drift"]
    assert sum(d["features"]["x"]["bins"]) == 20 and d["features"]["x"]["outside"] == 10
    assert d["features"]["c"]["categories"] == {"a": 10, "b": 10}
    sealed = device_telemetry.finalise(window, min_rows=100)
    assert "drift" not in sealed  # too few rows: nothing about the values leaves the device


@pytest.mark.parametrize("values", [[], [np.nan, None]])
def test_empty_baselines_do_not_fail(values: list[Any]) -> None:
    entry = drift.numeric_baseline(values)
    assert entry["counts"] == [0] and drift.compare("x", entry, None)["psi"] is None


def test_distributions_show_baseline_and_observed_shares_per_bin():
    from modelsync_protocol import drift as d

    base = d.make_baseline({"x": np.arange(100.0), "c": np.array(["a"] * 75 + ["b"] * 25, dtype=object)},
                           {"x": "numeric", "c": "categorical"}, None, "numeric", bins=4)
    seen = d.bin_counts(base, {"x": np.full(10, 1000.0), "c": np.array(["b", "z"], dtype=object)}, None)
    x, c = d.distributions(base, seen)
    edges = base["features"]["x"]["edges"]
    assert x["feature"] == "x" and x["kind"] == "numeric"
    assert x["bins"] == [[None, edges[0]], [edges[0], edges[1]], [edges[1], edges[2]], [edges[2], None]]
    assert x["baseline"] == [0.25, 0.25, 0.25, 0.25] and x["observed"] == [0.0, 0.0, 0.0, 1.0]
    assert c == {"feature": "c", "kind": "categorical", "bins": ["a", "b", "z"],
                 "baseline": [0.75, 0.25, 0.0], "observed": [0.0, 0.5, 0.5]}
    # no served rows: observed is null (the chart shows the baseline alone)
    assert d.distribution("x", base["features"]["x"], None)["observed"] is None


def test_the_template_alarm_watches_what_a_flush_emits_and_fires_on_alert() -> None:
    """Issue 11: "a template alarm fires on alert". The alarm reads the metric a drift flush emits (same
    namespace and name, a dimension set equal to the alarm's) and breaches at PSI_ALERT, not below."""
    import pathlib

    from modelsync import template as tpl
    from modelsync.service.drift import metric_record

    alarm = tpl.load(pathlib.Path(__file__).resolve().parents[2] / "template.yaml").properties("DriftAlarm")
    record = metric_record("iris", 3, drift.PSI_ALERT)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert alarm["Namespace"] == directive["Namespace"]
    assert [m["Name"] for m in directive["Metrics"]] == [alarm["MetricName"]]
    alarm_dims = sorted(d["Name"] for d in alarm.get("Dimensions", []))
    assert alarm_dims in [sorted(s) for s in directive["Dimensions"]]  # else CloudWatch never matches
    assert record[alarm["MetricName"]] == drift.PSI_ALERT
    assert alarm["Threshold"] == drift.PSI_ALERT and alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    threshold = alarm["Threshold"]
    assert drift.status_of(threshold) == "alert" and drift.status_of(threshold - 1e-9) != "alert"
