"""modelsync_protocol: the rules the registry and the device share, and that both sides really use them."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

import modelsync_device.telemetry as device_telemetry
import modelsync_protocol
import scorer
from modelsync.service import layout, signing
from modelsync.service import telemetry as service_telemetry
from modelsync_protocol.telemetry import OTHER_LABEL, finish_summary, merge_window


def test_one_name_rule_everywhere() -> None:
    assert modelsync_protocol.MODEL_NAME_RE is scorer._envelope.NAME_PATTERN
    assert layout.valid_model_name is modelsync_protocol.valid_model_name
    for good in ("iris", "a", "A.b_c-9", "x" * 128):
        assert modelsync_protocol.valid_model_name(good)
        assert modelsync_protocol.check_model_name(good) == good
    for bad in ("", ".", "..", "-a", "a/b", "../etc", "a b", "x" * 129, "é", None, 3):
        assert not modelsync_protocol.valid_model_name(bad), bad
        with pytest.raises(ValueError, match="invalid model name"):
            modelsync_protocol.check_model_name(bad)


def test_server_signs_the_protocol_bytes() -> None:
    assert signing.manifest_signing_bytes is modelsync_protocol.manifest_signing_bytes
    m = {"b": 1, "a": [1.5, True, None], "url": "x", "url_expires_at": "y", "signature": "z"}
    want = scorer.canonical_json({"a": [1.5, True, None], "b": 1})
    assert modelsync_protocol.manifest_signing_bytes(m) == want == b'{"a":[1.5,true,null],"b":1}'


def _window(rng: random.Random, labels: list[str]) -> dict[str, Any]:
    w = device_telemetry.new_window(1, "f" * 64)
    lat = [rng.uniform(0.1, 5.0) for _ in range(rng.randint(1, 4))]
    x = np.array([rng.choice([rng.gauss(0, 3), float("nan"), float("inf")]) for _ in range(20)])
    w.update(calls=len(lat), rows=20, errors=rng.randint(0, 1),
             latency_ms={"sum": sum(lat), "min": min(lat), "max": max(lat)},
             features={"x": device_telemetry.numeric_summary(x),
                       "c": {"type": "categorical", "count": 18, "missing": 2, "infinite": 0}},
             predictions={rng.choice(labels): rng.randint(1, 9) for _ in range(3)})
    return w


def test_merge_is_exact_in_any_order_and_the_server_merges_the_same() -> None:
    rng = random.Random(7)
    windows = [_window(rng, ["a", "b", "c"]) for _ in range(6)]

    def merged(order: list[dict[str, Any]]) -> dict[str, Any]:
        into = device_telemetry.new_window(1, "f" * 64)
        for w in order:
            merge_window(into, w)
        return into

    one, other = merged(windows), merged(list(reversed(windows)))
    assert one["calls"] == sum(w["calls"] for w in windows) == other["calls"]
    assert one["predictions"] == other["predictions"]
    assert one["latency_ms"]["max"] == max(w["latency_ms"]["max"] for w in windows)
    fx = finish_summary(dict(one["features"]["x"]))
    assert fx["count"] == sum(w["features"]["x"]["count"] for w in windows)
    assert fx["mean"] == pytest.approx(finish_summary(dict(other["features"]["x"]))["mean"], rel=1e-12)

    items = [{"model_version": 1, "device_id": "d", "sha256": "f" * 64,
              "window_start": "2025-01-01T00:00:00Z", "window_end": "2025-01-01T01:00:00Z",
              "summary": json.dumps(device_telemetry.finalise(w))} for w in windows]
    (v,) = service_telemetry.aggregate("m", items)["versions"]
    assert (v["calls"], v["rows"], v["errors"]) == (one["calls"], one["rows"], one["errors"])
    assert v["predictions"] == one["predictions"]
    assert v["features"]["x"] == finish_summary(dict(one["features"]["x"]))
    assert v["features"]["c"]["missing_rate"] == pytest.approx(12 / 120)


def test_device_bounds_features_and_labels() -> None:
    into = device_telemetry.new_window(1, "f" * 64)
    merge_window(into, {**into, "features": {"a": {"type": "numeric", "count": 1, "sum": 1.0,
                                                   "sum_squares": 1.0, "min": 1.0, "max": 1.0}},
                        "predictions": {"x": 1, "y": 2}}, max_features=1, max_labels=2)
    merge_window(into, {**into, "features": {"b": {"type": "numeric", "count": 1}}, "predictions": {"z": 5}},
                 max_features=1, max_labels=2)
    assert list(into["features"]) == ["a"] and into["features_truncated"] is True
    assert into["predictions"] == {"x": 1, "y": 2, OTHER_LABEL: 5}
