"""`make demo` runs `modelsync demo`: the whole tour must pass on the embedded local stack."""

from __future__ import annotations

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
