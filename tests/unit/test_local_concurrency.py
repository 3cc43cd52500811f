"""The local Runtime runs a function's invocations concurrently in up to ``concurrency`` execution
environments (each its own import of the handler), one invocation per environment at a time, and every
environment is created and invoked with its function's variables (the endpoint first of all)."""

from __future__ import annotations

import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelsync.local.commands import register
from modelsync.local.runtime import FunctionSpec, Runtime

ENDPOINT = "http://127.0.0.1:9"  # never contacted: the handlers only read their environment

PROBE = '''
"""Shared by every environment of the test's functions (siblings import as top-level modules)."""
import threading

lock = threading.Lock()
release = threading.Event()
active = 0
most = 0
'''

APP = '''
import os
import threading
import time

import {probe} as probe

ENDPOINT_AT_IMPORT = os.environ.get("AWS_ENDPOINT_URL")
NAME_AT_IMPORT = os.environ.get("WHO")


def lambda_handler(event, context):
    with probe.lock:
        probe.active += 1
        probe.most = max(probe.most, probe.active)
    try:
        if event.get("hold"):
            probe.release.wait(30)  # a bound, not a measurement: the test releases it
        else:
            time.sleep(event.get("sleep", 0))
        return {{"who": os.environ.get("WHO"), "who_at_import": NAME_AT_IMPORT,
                "endpoint_at_import": ENDPOINT_AT_IMPORT, "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                "env": id(lambda_handler)}}
    finally:
        with probe.lock:
            probe.active -= 1
'''


@pytest.fixture
def code(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, Any]]:
    """A code directory with app.py and a uniquely named probe module (cleaned from sys.modules)."""
    probe = f"probe_{abs(hash(request.node.name)) % 10**8}"
    (tmp_path / f"{probe}.py").write_text(textwrap.dedent(PROBE))
    (tmp_path / "app.py").write_text(textwrap.dedent(APP.format(probe=probe)))
    yield tmp_path, lambda: sys.modules.get(probe)
    for name in [m for m in sys.modules if m == probe or m.startswith("modelsync_local_fn_Conc")]:
        sys.modules.pop(name, None)


def _spec(code_dir: Path, lid: str, who: str) -> FunctionSpec:
    return FunctionSpec(lid, code_dir, "app.lambda_handler", {"WHO": who}, f"local-{lid}", "us-east-1",
                        timeout=60)


def _run_all(runtime: Runtime, calls: list[tuple[FunctionSpec, dict[str, Any]]]
             ) -> tuple[list[threading.Thread], list[Any]]:
    """Start one thread per call; the caller joins them (results fill in as they end)."""
    results: list[Any] = [None] * len(calls)

    def one(i: int, fn: FunctionSpec, event: dict[str, Any]) -> None:
        results[i] = runtime.invoke(fn, event)

    threads = [threading.Thread(target=one, args=(i, fn, ev)) for i, (fn, ev) in enumerate(calls)]
    for t in threads:
        t.start()
    return threads, results


def test_concurrency_n_overlaps_n_invocations(code: tuple[Path, Any]) -> None:
    code_dir, probe = code
    fn = _spec(code_dir, "ConcN", "n")
    runtime = Runtime(region="us-east-1", endpoint=ENDPOINT, on_invoke=lambda *a: None, concurrency=3)
    threads, results = _run_all(runtime, [(fn, {"hold": True})] * 3)
    try:
        # all three are inside the handler at once: each in its own execution environment
        for _ in range(3000):
            if probe() is not None and probe().active == 3:
                break
            threading.Event().wait(0.01)
        assert probe().active == 3
    finally:
        if probe() is not None:
            probe().release.set()
        for t in threads:
            t.join()
    assert probe().most == 3 and runtime.environments(fn) == 3
    assert all(r.ok for r in results)
    assert len({r.result["env"] for r in results}) == 3  # three imports of the handler module


def test_concurrency_one_serialises(code: tuple[Path, Any]) -> None:
    code_dir, probe = code
    fn = _spec(code_dir, "Conc1", "one")
    runtime = Runtime(region="us-east-1", endpoint=ENDPOINT, on_invoke=lambda *a: None, concurrency=1)
    threads, results = _run_all(runtime, [(fn, {"sleep": 0.02})] * 4)
    for t in threads:
        t.join()
    assert all(r.ok for r in results)
    assert probe().most == 1 and runtime.environments(fn) == 1


def test_each_environment_sees_its_function_variables(code: tuple[Path, Any]) -> None:
    """Two functions with different variables, invoked concurrently: every invocation (and every
    environment's import) sees its own function's values and the endpoint, never the other's or none."""
    code_dir, _ = code
    fa, fb = _spec(code_dir, "ConcA", "a"), _spec(code_dir, "ConcB", "b")
    runtime = Runtime(region="us-east-1", endpoint=ENDPOINT, on_invoke=lambda *a: None, concurrency=3)
    calls = [(fa if i % 2 else fb, {"sleep": 0.005}) for i in range(24)]
    threads, results = _run_all(runtime, calls)
    for t in threads:
        t.join()
    for (fn, _), inv in zip(calls, results, strict=True):
        assert inv.ok, inv.error
        want = fn.environment["WHO"]
        assert inv.result["who"] == want and inv.result["who_at_import"] == want
        assert inv.result["endpoint"] == ENDPOINT and inv.result["endpoint_at_import"] == ENDPOINT
    assert 1 <= runtime.environments(fa) <= 3 and 1 <= runtime.environments(fb) <= 3


def test_local_command_concurrency_flag() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["local", "--concurrency", "8"]).concurrency == 8
    assert parser.parse_args(["local"]).concurrency >= 2  # concurrent by default, as Lambda is
    with pytest.raises(SystemExit):
        parser.parse_args(["local", "--concurrency", "0"])
