"""`make demo` runs `modelsync demo`: the whole tour passes on the embedded local stack and reads as one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_figures import assert_figures_match, expected_figures, parse

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_demo_tour_passes(tmp_path: Path) -> None:
    # GIVEN a fresh process  WHEN the demo runs  THEN every step checks out and it exits 0
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "modelsync.cli", "demo"], cwd=REPO, capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for step in ("Publish:", "Reject:", "Score over HTTP", "Batch:", "Device:", "Roll out:"):
        assert step in out
    assert "offline probabilities equal the API's, bit for bit" in out
    assert "DEMO FAILED" not in out and out.rstrip().splitlines()[-1].startswith("Done in ")

    # AND the terminal carries the story only: the logs are in the file whose path it printed first
    match = re.match(r"Logs of the local stack and its functions: (\S+) ", out)
    assert match, out[:300]
    log_path = Path(match.group(1))
    try:
        logs = log_path.read_text(encoding="utf-8")
    finally:
        log_path.unlink(missing_ok=True)
    assert proc.stderr == ""
    assert not [line for line in out.splitlines() if line.startswith("{")], "JSON log lines on the terminal"
    assert "Warning" not in out
    assert '"function_name":"modelsync-publish"' in logs and "PublishFunction [S3:Upload" in logs
    # AND Score no longer flushes an empty metric set on every call (nor the others when they add none)
    assert "No application metrics to publish" not in logs

    # AND `modelsync report wine` (no --api, no local stack on :3000) draws the answers the demo saved:
    # every figure in the page is the API's number
    saved = tmp_path / "cache" / "modelsync" / "demo" / "wine.json"
    data = json.loads(saved.read_text(encoding="utf-8"))
    report = subprocess.run([sys.executable, "-m", "modelsync.cli", "report", "wine", "-o", "wine.html"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**env, "PYTHONPATH": str(REPO)})
    assert report.returncode == 0, report.stderr
    assert f"using the demo's saved data from {saved}" in report.stderr
    page = (tmp_path / "wine.html").read_text(encoding="utf-8")
    assert_figures_match(parse(page).figures, expected_figures(data))
    figures = parse(page).figures
    assert figures["aliases/production/canary_weight"] == ["0.5"]
    assert figures["drift/alcohol/status"] == ["alert"] and figures["summary/devices"] == ["6"]
    # error rates are fractions of what the errors count (the batch input's 1 refused row of 21: 1/21)
    rates = [float(v) for k, vs in figures.items() if k.endswith("/error_rate") for v in vs if v]
    assert rates and all(0 <= r <= 1 for r in rates), rates
    assert [d["device_id"] for d in data["telemetry"]["last_seen"]] and all(
        figures[f"telemetry/device/{d['device_id']}/version"] == [str(d["version"])]
        for d in data["telemetry"]["last_seen"])
    assert {k.split("/")[1:3] == ["2", "canary"] for k in figures if k.startswith("metrics"
                    "/")} == {True, False}
