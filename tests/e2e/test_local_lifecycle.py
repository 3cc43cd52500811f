"""``modelsync local`` as a user meets it when something is wrong: a taken port, a handler that cannot
import, Ctrl-C or SIGTERM while it starts, and each function's log lines carrying only its own keys.

Every subprocess here is bounded in time: a hang is a failure, not a stuck suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import REPO, Published, Stack, wait_for

pytestmark = pytest.mark.e2e

LOCAL = [sys.executable, "-m", "modelsync.cli", "local"]

# a handler whose import takes long: the stack is then certainly still starting when the signal comes
SLOW_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.11
"""
SLOW_HANDLER = """\
import os, pathlib, time
pathlib.Path(os.environ["MARKER"]).write_text("importing")
time.sleep(60)


def handler(event, context):
    return {}
"""

# the real template with aws_lambda_powertools missing, as in an install without the extra
WITHOUT_POWERTOOLS = """\
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == "aws_lambda_powertools":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
from modelsync.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.mark.parametrize("option", ["--aws-port", "--api-port"])
def test_a_taken_port_ends_start_up_with_one_line(option: str) -> None:
    # GIVEN a port held by this test  WHEN modelsync local is asked to listen there
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        ports = {"--aws-port": "0", "--api-port": "0", option: str(port)}
        t0 = time.monotonic()
        proc = subprocess.run([*LOCAL, *(x for kv in ports.items() for x in kv)], cwd=REPO, env=_env(),
                              capture_output=True, text=True, timeout=60)
    # THEN it exits at once, non-zero, with one line naming the port and the option (no ready line)
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    assert proc.stderr.splitlines() == [
        f"modelsync local: port {port} on 127.0.0.1 for the "
        f"{'AWS endpoint' if option == '--aws-port' else 'API'} is already in use: stop what holds it or "
        f"pass {option} (0 picks a free port)"]
    assert time.monotonic() - t0 < 30


def test_a_handler_that_cannot_import_refuses_start() -> None:
    # GIVEN an install without aws_lambda_powertools  WHEN modelsync local starts the real template
    proc = subprocess.run([sys.executable, "-c", WITHOUT_POWERTOOLS, "local", "--aws-port", "0",
                           "--api-port", "0"], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=90)
    # THEN it refuses with one line naming a handler file and the extra to install, before any ready line
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("modelsync local: functions/") and line.endswith(
        "/app.py cannot import aws_lambda_powertools: pip install 'modelsync[local]'"), line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_start_up_stops_it(tmp_path: Path, signum: signal.Signals) -> None:
    # GIVEN modelsync local importing a handler that takes a minute to import
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(SLOW_HANDLER)
    (tmp_path / "template.yaml").write_text(SLOW_TEMPLATE)
    marker = tmp_path / "importing"
    proc = subprocess.Popen([*LOCAL, "--template", str(tmp_path / "template.yaml"), "--aws-port", "0",
                             "--api-port", "0"], cwd=REPO, env=_env(MARKER=str(marker)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for("the handler import to begin", marker.exists, timeout=60, interval=0.05)
        # WHEN it gets the signal in the middle of start-up
        t0 = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=15)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    # THEN it stops cleanly within a couple of seconds, without ever saying it is ready
    assert proc.returncode == 0, err
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert out == "" and f"received {signum.name}: shutting down" in err and "Traceback" not in err, err


def test_each_function_logs_only_its_own_keys(stack: Stack, published: Published) -> None:
    # GIVEN Publish has logged with its object_key (the published fixture)
    # WHEN Score refuses an oversized telemetry body and the schedule runs Batch
    r = stack.http("POST", "/models/iris/telemetry", body=b"x" * (1024 * 1024 + 1),
                   headers={"Content-Type": "application/json"})
    assert r.status == 413

    def lines() -> list[dict[str, object]]:
        out = []
        for raw in stack.logs().splitlines():
            if raw.startswith("{") and '"function_name"' in raw:
                out.append(json.loads(raw))
        return out

    def seen() -> list[dict[str, object]] | None:
        got = lines()
        first = next((i for i, x in enumerate(got) if "object_key" in x), None)  # Publish's, today anyone's
        if first is None:
            return None
        after = {x["function_name"] for x in got[first:]}
        return got if {"modelsync-score", "modelsync-batch"} <= after else None

    got = wait_for("Score and Batch log lines after Publish's", seen, timeout=30)
    # THEN only Publish's lines carry object_key (it did log one), and no line carries another's keys
    assert any("object_key" in x for x in got if x["function_name"] == "modelsync-publish")
    leaked = [x for x in got if x["function_name"] != "modelsync-publish" and "object_key" in x]
    assert leaked == []
    assert all("batch_action" not in x for x in got if x["function_name"] != "modelsync-batch")


def test_invoke_of_an_unknown_function_is_one_line(stack: Stack) -> None:
    proc = subprocess.run([sys.executable, "-m", "modelsync.cli", "invoke", "NoSuchFunction",
                           "--endpoint-url", stack.endpoint], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("modelsync invoke: no function 'NoSuchFunction' in the template (functions: ")
    assert "ScoreFunction" in line
