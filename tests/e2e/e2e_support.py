"""Helpers shared by the e2e tests (imported by name: tests/ has no packages)."""

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
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - kept for the failure message
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stack:
    """The running ``modelsync local``: its ready line and clients for its public interfaces."""

    info: dict[str, Any]
    proc: subprocess.Popen[str]
    log_path: Path
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return str(self.info["api"])

    @property
    def endpoint(self) -> str:
        return str(self.info["aws_endpoint"])

    @property
    def bucket(self) -> str:
        return str(self.info["bucket"])

    @property
    def region(self) -> str:
        return str(self.info["region"])

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.session.Session().client(
                service, endpoint_url=self.endpoint, region_name=self.region,
                aws_access_key_id="testing", aws_secret_access_key="testing")
        return self._clients[service]

    def http(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             timeout: float = 30.0) -> HttpResult:
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResult(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return HttpResult(err.code, dict(err.headers.items()), err.read())

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")




@dataclass
class Published:
    """The version the Publish function gave ``iris_doc`` and what GET /models/iris said then."""

    version: int
    model: dict[str, Any]


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


@contextlib.contextmanager
def launch_stack(log_path: Path, *extra: str) -> Iterator[Stack]:
    """``modelsync local --aws-port 0 --api-port 0 --schedule-every 2`` as a subprocess, for the block."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "modelsync.cli", "local", "--aws-port", "0", "--api-port", "0",
           "--schedule-every", "2", "--exit-with-parent", *extra]
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


JS_SYNC = REPO / "scorer-js" / "tools" / "sync.mjs"


def run_js_sync(api: str, model: str, store: Path, *extra: str, rows: list[list[float]] | None = None
                ) -> tuple[int, dict[str, Any]]:
    """One sync with the JavaScript client (scorer-js/tools/sync.mjs) in Node, then, with ``rows``, the
    active model's answers for them: (exit code, its JSON output)."""
    import shutil

    node = shutil.which("node")
    if node is None:
        import pytest

        pytest.skip("no node on PATH (the JavaScript client needs Node 20+)")
    args = [node, str(JS_SYNC), "--api", api, "--model", model, "--dir", str(store), *extra]
    if rows is not None:
        rows_file = store.parent / f"{store.name}-rows.json"
        rows_file.write_text(json.dumps(rows))
        args += ["--rows", str(rows_file)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip(), f"sync.mjs printed nothing (exit {proc.returncode}): {proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def publish_model(stack: Stack, doc: dict[str, Any], model: str) -> int:
    """Upload under incoming/ and wait for the Publish function to list it; its version."""
    stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{model}/model.json",
                                  Body=json.dumps(doc).encode(), ContentType="application/json")

    def version() -> int | None:
        r = stack.http("GET", f"/models/{model}")
        if r.status != 200:
            return None
        mine = [v["version"] for v in r.json().get("versions", []) if v.get("sha256") == doc["sha256"]]
        return int(mine[0]) if mine else None

    return int(wait_for(f"{model} published", version, timeout=30))


def api_answers(stack: Stack, model: str, rows: list[list[float]], version: int,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = stack.http("POST", f"/models/{model}/predict?version={version}", {"instances": rows}, headers=headers)
    assert r.status == 200, r.body
    return dict(r.json())


def assert_same_answers(js: dict[str, Any], api: dict[str, Any]) -> None:
    """Labels exactly; probabilities within 1e-12 (softmax's exp may differ by an ulp between libms)."""
    assert js["predictions"] == api["predictions"]
    labels = [str(c) for c in js["classes"]]
    for got, want in zip(js["probabilities"], api["probabilities"], strict=True):
        assert list(want) == labels
        assert max(abs(g - want[c]) for g, c in zip(got, labels, strict=True)) <= 1e-12
