"""`make demo` runs `modelsync demo`: the whole tour passes on the embedded local stack and reads as one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_demo_tour_passes() -> None:
    # GIVEN a fresh process  WHEN the demo runs  THEN every step checks out and it exits 0
    proc = subprocess.run([sys.executable, "-m", "modelsync.cli", "demo"], cwd=REPO, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for step in ("Publish:", "Reject:", "Score over HTTP", "Batch:", "Device:"):
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
