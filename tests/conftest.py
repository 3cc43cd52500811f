"""Fixtures shared by every test folder: a Lambda context, the sample events, dummy AWS credentials."""

from __future__ import annotations

import copy
import json
import pathlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

# the headless-Chromium fixtures (chromium, browser_context, page) for the browser tests
pytest_plugins = ["browser"]

EVENTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "events"

# Anything that could point boto3 at a real account or another endpoint is removed for the tests.
_AWS_SCRUB = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
              "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region for every test: moto needs them, real AWS must never be reached."""
    for name in _AWS_SCRUB:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    function_name: str = "modelsync-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/modelsync-test"
    log_stream_name: str = "2024/06/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 300_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture(scope="session")
def events() -> Callable[[str], dict[str, Any]]:
    """``events("publish_good_upload")`` -> a fresh copy of events/publish_good_upload.json."""
    cache: dict[str, dict[str, Any]] = {}

    def load(name: str) -> dict[str, Any]:
        if name not in cache:
            path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
            cache[name] = json.loads(path.read_text(encoding="utf-8"))
        return copy.deepcopy(cache[name])

    return load
