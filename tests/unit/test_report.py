"""modelsync report: the SVG helpers, the page built from API answers (every figure tagged with the
API's number, self-contained, no script), and the console's JavaScript port rendering the same markup."""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import shutil
import subprocess
from typing import Any

import pytest
from report_figures import assert_figures_match, expected_figures, parse

from modelsync.report import build, svg
from modelsync.report.command import since_iso
from modelsync_protocol import drift as proto_drift

NOW = _dt.datetime(2026, 3, 4, 12, 0, tzinfo=_dt.UTC)


def sample_data(canary: bool = True) -> dict[str, Any]:
    """API answers as the routes give them: two versions behind a 50 % canary, metrics with series,
    drift with distributions (computed by the protocol's own code), device telemetry."""
    import numpy as np

    rng = np.random.default_rng(7)
    base_cols = {"alcohol": rng.normal(13, 0.8, 300), "proline": rng.normal(750, 300, 300),
                 "hue_band": np.array(["dark", "medium", "light"] * 100, dtype=object)}
    baseline = proto_drift.make_baseline(base_cols, {"alcohol": "numeric", "proline": "numeric",
                                                     "hue_band": "categorical"},
                                         np.array(["barolo", "barbera"] * 150, dtype=object), "categorical")
    served = {"alcohol": base_cols["alcohol"][:120] + 2.5, "proline": base_cols["proline"][:120],
              "hue_band": base_cols["hue_band"][:120]}
    seen = proto_drift.bin_counts(baseline, served, np.array(["barolo"] * 120, dtype=object))
    entries = proto_drift.drift_entries(baseline, seen)
    since = NOW - _dt.timedelta(hours=24)

    def series(offsets: list[int], n: int) -> list[dict[str, Any]]:
        out = []
        for i, k in enumerate(offsets):
            out.append({"start": build.iso(since + _dt.timedelta(seconds=1800 * k)), "requests": n + i,
                        "rows": 2 * (n + i), "errors": i % 2, "error_rate": (i % 2) / (n + i),
                        "total_latency_ms": {"mean": 3.25 + i, "p50": 3.0 + i, "p90": 7.5 + i, "p9"
                        "9": 12.125 + i,
                                             "max": 20.0 + i}})
        return out

    def view(v: int, side: str, offsets: list[int], n: int) -> dict[str, Any]:
        s = series(offsets, n)
        req = sum(b["requests"] for b in s)
        err = sum(b["errors"] for b in s)
        return {"version": v, "side": side, "requests": req, "rows": 2 * req, "errors": err,
                "error_rate": err / req, "errors_by_kind": {"invalid_input": err} if err else {},
                "scoring_latency_ms": {"mean": 0.5, "p50": 0.4, "p90": 0.9, "p99": 1.5, "max": 2.0},
                "total_latency_ms": {"mean": 4.1, "p50": 3.5, "p90": 9.25, "p99": 14.0, "max": 22.0},
                "series": s}

    alias = {"version": 1, "revision": 2, "history": [1], "updated_at": "2026-03-04T10:00:00Z",
             "updated_by": "op", "action": "put",
             "canary": {"version": 2, "weight": 0.5} if canary else None}
    return {
        "schema": build.SCHEMA, "name": "wine", "source": "http://127.0.0.1:3000",
        "generated_at": build.iso(NOW), "since": build.iso(since), "version": 2,
        "model": {"name": "wine", "versions": [
            {"version": 2, "status": "approved", "sha256": "b" * 64, "size": 9000, "format_version": "1.0",
             "model_type": "pipeline", "task": "classification", "created_at": "2026-03-04T09:00:00Z",
             "document_key": "models/wine/2.json", "approved_at": None, "feature_count": 7, "class_count": 3,
             "methods": ["predict", "predict_proba"], "schema_change_count": None, "compared_with": None},
            {"version": 1, "status": "approved", "sha256": "a" * 64, "size": 8000, "format_version": "1.0",
             "model_type": "pipeline", "task": "classification", "created_at": "2026-03-03T09:00:00Z",
             "document_key": "models/wine/1.json", "approved_at": None, "feature_count": 7, "class_count": 3,
             "methods": ["predict", "predict_proba"], "schema_change_count": None, "compared_with": None}],
            "aliases": {"latest": {"version": 2, "revision": 2, "history": [1], "canary": None,
                                   "updated_at": "2026-03-04T09:00:01Z", "updated_by": "publish",
                                   "action": "publish"},
                        "production": alias}},
        "metrics": {"name": "wine", "since": build.iso(since), "until": build.iso(NOW), "bucket_second"
        "s": 1800,
                    "versions": [view(1, "base", [40, 44, 47], 10), view(2, "canary", [44, 47], 6)]},
        "drift": {"name": "wine", "version": 2, "since": build.iso(since), "baseline": True, "batches": 3,
                  "rows": 120, "thresholds": {"warn": proto_drift.PSI_WARN, "alert": proto_drift.PSI_ALERT},
                  "status": "alert", "features": entries,
                  "distributions": proto_drift.distributions(baseline, seen)},
        "telemetry": {"name": "wine", "batches": 4, "devices": 3, "dropped_batches": 0, "truncated": False,
                      "filters": {}, "versions": [
                          {"version": 1, "devices": 2, "batches": 3, "calls": 9, "rows": 90, "errors": 1,
                           "error_rate": 1 / 9, "window_end": "2026-03-04T11:58:00Z"},
                          {"version": 2, "devices": 1, "batches": 1, "calls": 3, "rows": 30, "errors": 0,
                           "error_rate": 0.0, "window_end": "2026-03-04T11:59:30Z"}],
                      "last_seen": [  # device ids with characters to escape
                          {"device_id": d, "version": v, "last_seen": f"2026-03-04T{at}.250000Z"}
                          for d, v, at in (("cellar-02", 2, "11:59:31"), ("kiosk<1>&'\"", 1, "11:58:01"),
                                           ("cellar-01", 1, "11:40:00"))]},
    }


# -- svg helpers ------------------------------------------------------------------------------------

def test_numbers_print_as_javascript_does_and_round_half_away():
    cases = {0.1: "0.1", 1e-05: "0.00001", 1e-07: "1e-7", 5.0: "5", 1e21: "1e+21", 1.5e22: "1.5e+22",
             1e16: "10000000000000000", -0.000123: "-0.000123", 3: "3", 2 ** 0.5: "1.4142135623730951"}
    for x, text in cases.items():
        assert svg.num(x) == text and float(svg.num(x)) == x
    assert svg.num(None) == ""
    assert (svg.fixed(0.125, 2), svg.fixed(-0.0001, 2), svg.fixed(2.5, 0), svg.fixed(1234.5678, 1)) == (
        "0.13", "0.00", "3", "1234.6")
    assert (svg.count(1234567), svg.count(-1000), svg.count(None)) == ("1,234,567", "-1,000", svg.DASH)
    assert [svg.nice_max(v) for v in (0, 0.07, 1, 3, 21, 240, 999)] == [1.0, 0.1, 1.0, 5.0, 25.0, 250.0,
                                                                         1000.0]
    assert svg.esc('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"


def test_bars_scale_to_the_largest_value_and_draw_thresholds():
    chart = svg.hbars("PSI", [{"label": "a", "value": 0.5, "key": "k/a", "cls": "status-alert"},
                              {"label": "b", "value": None, "key": "k/b"}], None, [("warn", 0.1), ("aler"
                               "t", 0.25)])
    figures = parse(chart).figures
    assert figures == {"k/a": ["0.5"], "k/b": [""], "threshold/warn": ["0.1"], "threshold/alert": ["0.25"]}
    widths = [float(m) for m in re.findall(r'<rect x="170" y="\d+" width="([\d.]+)"', chart)]
    assert widths == [400.0, 0.0]  # 0.5 is the axis maximum; no value, no bar
    assert 'x1="250.0"' in chart and 'x1="370.0"' in chart  # warn at 0.1 and alert at 0.25 of 0.5


def test_since_takes_durations_and_dates():
    assert since_iso("7d", NOW) == "2026-02-25T12:00:00Z"
    assert since_iso("90m", NOW) == "2026-03-04T10:30:00Z"
    assert since_iso("2026-01-02", NOW) == "2026-01-02T00:00:00Z"
    from modelsync.commands.operator import CommandFailed

    with pytest.raises(CommandFailed):
        since_iso("last week", NOW)


# -- the page ----------------------------------------------------------------------------------------

def test_every_figure_shown_is_the_apis_number():
    data = sample_data()
    page = build.page(data)
    assert_figures_match(parse(page).figures, expected_figures(data))
    # the shifted feature is the worst one: drawn first among the distributions, flagged alert
    by = {e["feature"]: e for e in data["drift"]["features"]}
    assert by["alcohol"]["status"] == "alert" and by["proline"]["status"] == "ok"
    assert page.index("Distribution of alcohol") == page.index("Distribution of ")


def test_the_page_is_self_contained_printable_and_needs_no_script():
    page = build.page(sample_data())
    tags = parse(page).tags
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "img", "object", "embed")]
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)(?!127\.0\.0\.1:3000)", page)  # source only
    assert not [a for _, a in tags if any(k.startswith("on") for k in a)]  # no inline handlers
    assert "@media print" in page and "<style>" in page and "@import" not in page and "url(" not in page
    assert page.count("<svg ") >= 8 and page.startswith("<!DOCTYPE html>")


def test_sections_say_why_they_are_missing():
    data = sample_data(canary=False)
    data["metrics"] = {"unavailable": "authentication failed: GET /models/wine/metrics: HTTP 403: Forbidden"}
    data["telemetry"] = {"name": "wine", "devices": 0, "batches": 0, "versions": []}
    data["drift"] = {**data["drift"], "baseline": False, "features": [], "distributions": []}
    page = build.page(data)
    assert "Metrics unavailable: authentication failed" in page
    assert "No device telemetry in the window" in page
    assert "carries no baseline" in page
    figures = parse(page).figures
    assert figures["aliases/production/canary_version"] == [""] and figures["aliases/production/base_sha"
                   "re"] == ["1"]
    assert not [k for k in figures if k.startswith(("metrics/", "drift/"))]


def test_collect_reads_each_route_and_keeps_unreadable_sections():
    from modelsync.commands.operator import CommandFailed

    data = sample_data()
    asked: list[tuple[str, Any]] = []

    def get(path: str, query: dict[str, str] | None) -> Any:
        asked.append((path, query))
        if path.endswith("/telemetry"):
            raise CommandFailed("authentication failed: HTTP 403", 4)
        return {"/models/wine": data["model"], "/models/wine/metrics": data["metrics"],
                "/models/wine/drift": data["drift"]}[path]

    got = build.collect(get, "wine", "2026-03-03T12:00:00Z", source="x", now=NOW)
    assert got["version"] == 2 and got["telemetry"] == {"unavailable": "authentication failed: HTTP 403"}
    assert ("/models/wine/drift", {"since": "2026-03-03T12:00:00Z", "version": "2"}) in asked
    assert json.loads(json.dumps(got)) == got


# -- the console's JavaScript port -------------------------------------------------------------------

NODE = shutil.which("node")


def render_js(data: dict[str, Any]) -> str:
    script = ("import { render } from " + json.dumps((build.CONSOLE / "console.mjs").as_uri()) + ";\n"
              "let text = ''; process.stdin.setEncoding('utf8');\n"
              "process.stdin.on('data', (c) => { text += c; });\n"
              "process.stdin.on('end', () => { process.stdout.write(render(JSON.parse(text))); });\n")
    proc = subprocess.run([str(NODE), "--input-type=module", "-e", script], input=json.dumps(data),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(NODE is None, reason="needs node (make test-js needs it too)")
@pytest.mark.parametrize("canary", [True, False])
def test_the_console_renders_the_same_markup_as_the_report(canary: bool):
    data = sample_data(canary)
    if not canary:
        data["telemetry"] = {"unavailable": "HTTP 403: Forbidden"}
        data["metrics"]["versions"][0]["error_rate"] = None
    py, js = build.render(data), render_js(data)
    if py != js:  # show the first difference
        i = next(i for i, (a, b) in enumerate(zip(py, js, strict=False)) if a != b)
        pytest.fail(f"differ at {i}:\npy: {py[max(0, i - 200):i + 200]}\njs: {js[max(0, i - 200):i + 200]}")
    assert math.isfinite(len(py)) and py.count("data-figure=") > 50
