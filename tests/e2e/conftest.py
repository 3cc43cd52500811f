"""The e2e suite drives ``modelsync local`` as a subprocess, only through public interfaces.

One stack per test session (per xdist worker): ``modelsync local --aws-port 0 --api-port 0
--schedule-every 2``; its ready line gives the endpoints. boto3 (dummy credentials) talks to the embedded
AWS, urllib to the API. The subprocess runs in its own process group and is always terminated.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import FEATURES, REPO, Published, Stack, wait_for

READY_TIMEOUT = 60.0


def _terminate(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the stack's process group (clean shutdown), SIGKILL it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children, if any, and a process that ignored SIGTERM
    proc.wait(timeout=5)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_path = tmp_path_factory.mktemp("local-stack") / "modelsync-local.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "modelsync.cli", "local", "--aws-port", "0", "--api-port", "0",
           "--schedule-every", "2"]
    with open(log_path, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log_file, text=True,
                                start_new_session=True)
        try:
            info = _ready_line(proc, log_path)
            s = Stack(info, proc, log_path)
            wait_for("GET /v2/health/ready", lambda: s.http("GET", "/v2/health/ready").status == 200,
                     timeout=20)
            yield s
        finally:
            _terminate(proc)
            if os.environ.get("MODELSYNC_E2E_SHOW_LOGS"):
                sys.stderr.write(log_path.read_text(errors="replace"))


def _ready_line(proc: subprocess.Popen[str], log_path: Path) -> dict[str, Any]:
    """The first JSON line on stdout (the rest of stdout is drained so the process never blocks)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            raise RuntimeError("modelsync local did not print its ready line:\n"
                               + log_path.read_text(errors="replace")[-5000:])
        if line.strip().startswith("{"):
            info = json.loads(line)
            if isinstance(info, dict) and "api" in info:
                return info
            raise RuntimeError(f"stdout carried something before the ready line: {line!r}")


# -- models -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    """The iris data as a DataFrame with plain feature names, and the targets."""
    import pandas as pd
    from sklearn.datasets import load_iris

    data = load_iris()
    return pd.DataFrame(data.data, columns=FEATURES), data.target


@pytest.fixture(scope="session")
def iris_model(iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=1000).fit(X, y)


@pytest.fixture(scope="session")
def iris_doc(iris: tuple[Any, Any], iris_model: Any) -> dict[str, Any]:
    from modelsync.export import export_model

    X, _ = iris
    return export_model(iris_model, X.iloc[::10], name="iris")


@pytest.fixture(scope="session")
def device_queue(stack: Stack) -> str:
    """An SQS queue subscribed to the events topic, as a device would, before anything is published."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="e2e-device")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.info["topic_arn"], Protocol="sqs", Endpoint=arn)
    return str(url)


@pytest.fixture(scope="session")
def published(stack: Stack, iris_doc: dict[str, Any], device_queue: str) -> Published:
    """iris uploaded under incoming/ and published by the Publish function (seen through GET /models/iris).

    Tests address this version explicitly: other tests on the same stack (the docs examples) may publish
    further iris versions.
    """
    stack.client("s3").put_object(Bucket=stack.bucket, Key="incoming/iris/model.json",
                                  Body=json.dumps(iris_doc).encode(), ContentType="application/json")

    def version() -> Any:
        r = stack.http("GET", "/models/iris")
        if r.status != 200:
            return None
        body = r.json()
        mine = [v["version"] for v in body.get("versions", []) if v.get("sha256") == iris_doc["sha256"]]
        return mine and body.get("aliases", {}).get("latest") and Published(int(mine[0]), body)

    return wait_for("iris published (GET /models/iris lists its sha256)", version, timeout=30)
