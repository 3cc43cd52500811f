"""What a handler's import pays for (the cold start): not the X-Ray SDK, and for Score not the resolver's
validation machinery (pydantic, Powertools' event handler). Each handler is imported in a fresh process
with the template's environment as Lambda sets it (tracing active), so nothing else has loaded them."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from modelsync import template as tpl
from modelsync.local.resources import StackNames, function_specs
from modelsync.local.runtime import FunctionSpec, Runtime
from modelsync.service.tracing import LazyTracer

ROOT = pathlib.Path(__file__).resolve().parents[2]
NEVER_AT_IMPORT = ("aws_xray_sdk",)
NOT_FOR_SCORE = ("pydantic", "aws_lambda_powertools.event_handler")

PROBE = """
import json, sys, time
import app
from modelsync.service.tracing import LazyTracer
print(json.dumps({"modules": sorted(sys.modules), "tracing": LazyTracer.active()}))
"""


def _specs() -> dict[str, FunctionSpec]:
    names = StackNames.local(tpl.load(), region="us-east-1", endpoint="http://127.0.0.1:9")
    return dict(function_specs(names, ROOT))


SPECS = _specs()


@pytest.mark.parametrize("lid", sorted(SPECS))
def test_handler_import_defers_tracing_and_validation(lid: str) -> None:
    fn = SPECS[lid]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(Runtime(region="us-east-1", endpoint="http://127.0.0.1:9").aws_environment(fn))
    env["PYTHONPATH"] = os.pathsep.join([str(fn.code_dir), str(ROOT)])
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                          cwd=str(fn.code_dir), check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tracing"] is True  # tracing is active, as deployed: the SDK waits for the first request
    modules = set(out["modules"])
    loaded = [m for m in modules for p in NEVER_AT_IMPORT if m == p or m.startswith(p + ".")]
    assert not loaded
    if lid == "ScoreFunction":
        loaded = [m for m in modules for p in NOT_FOR_SCORE if m == p or m.startswith(p + ".")]
        assert not loaded
        assert "boto3" in modules  # the clients are created at import


def test_lazy_tracer_does_nothing_while_tracing_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tracer = LazyTracer()
    calls = []

    @tracer.capture_lambda_handler
    def handler(event: dict[str, int], context: object) -> int:
        calls.append(event)
        return event["x"] * 2

    @tracer.capture_method
    def helper(x: int) -> int:
        return x + 1

    assert handler({"x": 2}, None) == 4 and helper(1) == 2 and calls == [{"x": 2}]
    tracer.put_annotation("k", "v")
    assert tracer.real() is None and not LazyTracer.active()
    assert handler.__name__ == "handler"  # wrapped as Powertools wraps


def test_lazy_tracer_builds_the_real_tracer_when_active(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    from aws_lambda_powertools.tracing.tracer import Tracer

    tracer = LazyTracer(auto_patch=False)
    assert LazyTracer.active()
    try:
        real = tracer.real()
        assert real is not None and tracer.real() is real  # built once
    finally:
        Tracer._reset_config()  # Powertools keeps the last Tracer's options at class level


def test_cloudwatch_client_is_created_on_first_use() -> None:
    """In AWS the metrics store reads CloudWatch for the operator's route only: not created at import."""
    from modelsync.service.metrics import local_or_cloudwatch

    made: list[int] = []

    class Client:
        def get_metric_data(self) -> str:
            return "data"

    def create() -> Client:
        made.append(1)
        return Client()

    store, sink = local_or_cloudwatch({}, create, "modelsync")
    assert sink is None and made == []
    assert store.cloudwatch.get_metric_data() == "data"  # type: ignore[attr-defined]
    store.cloudwatch.get_metric_data()  # type: ignore[attr-defined]
    assert made == [1]
