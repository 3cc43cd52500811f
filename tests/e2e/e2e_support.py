"""Helpers shared by the e2e tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
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
