"""The report and the live console in headless Chromium, after a canary with shifted traffic: every
figure the page shows equals the API's number; the report also renders with JavaScript disabled.

On the session's ``modelsync local``: v1 and v2 of a model published, production at v1 with v2 as a 50 %
canary, callers sending rows shifted on petal_length through production, devices on both sides sending
telemetry. Then ``modelsync report --api`` writes the page (opened as file://, with and without
JavaScript) and ``/console/`` renders it live; screenshots are saved as test artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import screenshot
from e2e_support import FEATURES, REPO, Stack, wait_for
from report_figures import assert_figures_match, expected_figures

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.xdist_group("browser")]

MODEL = "glance"
FIGURES_JS = ("() => [...document.querySelectorAll('[data-figure]')]"
              ".map(e => [e.dataset.figure, e.dataset.value])")


def _figures(page: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in page.evaluate(FIGURES_JS):
        out.setdefault(key, []).append(value)
    return out


def _publish(stack: Stack, doc: dict[str, Any], file: str, version: int) -> None:
    stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{MODEL}/{file}",
                                  Body=json.dumps(doc).encode(), ContentType="application/json")
    wait_for(f"{MODEL} v{version}", lambda: (r := stack.http("GET", f"/models/{MODEL}")).status == 200
             and version in [v["version"] for v in r.json()["versions"]], timeout=30)


def _api_answers(stack: Stack, since: str, version: int) -> dict[str, Any]:
    """The API's own answers for the same window (what the page must show)."""
    def get(path: str) -> Any:
        r = stack.http("GET", f"/models/{MODEL}{path}")
        assert r.status == 200, (path, r.body)
        return r.json()

    return {"name": MODEL, "version": version, "model": get(""), "metrics": get(f"/metrics?since={since}"),
            "drift": get(f"/drift?since={since}&version={version}"),
            "telemetry": get(f"/telemetry?since={since}")}


@pytest.fixture(scope="module")
def rolled_out(stack: Stack, iris: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> int:
    """v1 + v2 behind a 50 % canary on production, shifted traffic and device telemetry; returns v2."""
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model
    from modelsync_device import ModelStore, Telemetry, sync

    X, y = iris
    docs = [export_model(LogisticRegression(C=c, max_iter=1000).fit(X, y), X.iloc[::10], name=MODEL,
                         baseline=X) for c in (1.0, 0.05)]
    _publish(stack, docs[0], "v1.json", 1)
    _publish(stack, docs[1], "v2.json", 2)
    r = stack.http("PUT", f"/models/{MODEL}/aliases/production", {"version": 1, "canary": {"version": 2,
                                                                                           "weight": 0.5}})
    assert r.status == 200, r.body
    shifted = X.copy()
    shifted["petal_length"] = shifted["petal_length"] + 3.0
    rows = shifted.to_numpy().tolist()
    sides = set()
    for i in range(30):
        r = stack.http("POST", f"/models/{MODEL}/predict?alias=production",
                       {"instances": rows[5 * i:5 * i + 5]}, headers={"X-Device-Id": f"caller-{i:02d}"})
        assert r.status == 200, r.body
        sides.add(r.json()["model_version"])
    assert sides == {1, 2}
    root = tmp_path_factory.mktemp("fleet")
    on: dict[int, int] = {1: 0, 2: 0}
    for n in range(20):
        device = f"kiosk-{n:02d}"
        store = ModelStore(root / device)
        result = sync(stack.api, MODEL, store, alias="production", device_id=device)
        assert result.version in (1, 2), result
        if on[result.version] >= 2:
            continue
        telemetry = Telemetry(root / device)
        store.predict(MODEL, np.asarray(rows), telemetry=telemetry)
        assert telemetry.flush(stack.api, MODEL, device).status == "ok"
        on[result.version] += 1
        if min(on.values()) >= 2:
            break
    assert on == {1: 2, 2: 2}
    return 2


def _report(stack: Stack, out: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "modelsync.cli", "report", MODEL, "--api", stack.api,
                           "--since", "1h", "--json", "-o", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_report_figures_match_the_api_with_and_without_javascript(stack: Stack, rolled_out: int,
                                                                   chromium: Any, tmp_path: Path) -> None:
    out = tmp_path / "glance.html"
    data = _report(stack, out)
    expected = expected_figures(_api_answers(stack, data["since"], rolled_out))
    # the shifted feature, and only it among the inputs, is flagged; both rollout sides were measured
    assert expected["drift/petal_length/status"] == "alert"
    flagged = [f for f in FEATURES if expected[f"drift/{f}/status"] != "ok"]
    assert flagged == ["petal_length"]
    assert expected["metrics/2/canary/requests"] > 0 and expected["metrics/1/base/requests"] > 0
    assert expected["aliases/production/canary_weight"] == 0.5
    for js in (True, False):
        context = chromium.new_context(java_script_enabled=js, viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.goto(out.as_uri())
            shown = _figures(page) if js else _figures_without_js(page)
            assert_figures_match(shown, expected)
            # what a reader sees: the table cells' text
            cell = page.locator('td[data-figure="metrics/2/canary/requests"]').inner_text()
            assert cell == f"{expected['metrics/2/canary/requests']:,}"
            assert page.locator('[data-figure="drift/status"]').inner_text() == expected["drift/status"]
            assert page.locator("svg.chart").count() >= 8
            screenshot(page, "report-js" if js else "report-no-js")
        finally:
            context.close()


def _figures_without_js(page: Any) -> dict[str, list[str]]:
    """The figures read through Playwright's locators (no page script runs with JavaScript disabled)."""
    out: dict[str, list[str]] = {}
    loc = page.locator("[data-figure]")
    for i in range(loc.count()):
        el = loc.nth(i)
        out.setdefault(str(el.get_attribute("data-figure")), []).append(str(el.get_attribute("data-value")))
    return out


def test_live_console_shows_the_apis_figures(stack: Stack, rolled_out: int, page: Any) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{stack.api}/console/?model={MODEL}&every=2")
    page.wait_for_selector('#report [data-figure="name"]')
    since = page.locator("#report").get_attribute("data-since")
    first = page.locator("#report").get_attribute("data-generated-at")
    assert_figures_match(_figures(page), expected_figures(_api_answers(stack, str(since), rolled_out)))
    assert "live: refreshed" in page.locator("#live").inner_text()
    # it refreshes from the API on its own
    page.wait_for_function(f"document.getElementById('report').dataset.generatedAt !== {json.dumps(first)}",
                           timeout=15_000)
    screenshot(page, "console")
