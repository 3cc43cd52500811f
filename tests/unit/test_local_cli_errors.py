"""``modelsync invoke`` and the local stack's start-up checks: a mistake is one line, never a traceback."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from modelsync.cli import main
from modelsync.local.preflight import StackStartError, extra_providing, import_handlers, listen
from modelsync.local.runtime import FunctionSpec, Runtime

REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "events" / "score_v2_infer.json"


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc != 0 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_invoke_missing_event_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line_error(capsys, ["invoke", "score", "-e", str(tmp_path / "nope.json")])
    assert line.startswith("modelsync invoke: ") and "nope.json" in line and "No such file" in line


def test_invoke_event_file_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"httpMethod": "GET",\n  oops}')
    line = _one_line_error(capsys, ["invoke", "score", "-e", str(bad)])
    assert "bad.json is not JSON" in line and "line 2" in line


def test_invoke_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    line = _one_line_error(capsys, ["invoke", "score", "-e", str(EVENT), "--endpoint-url", endpoint])
    assert f"cannot reach {endpoint}" in line and "modelsync local" in line


def test_invoke_endpoint_not_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(capsys, ["invoke", "score", "-e", str(EVENT), "--endpoint-url", "localhost"])
    assert "is not a URL" in line


def test_a_taken_port_is_one_line_naming_the_option() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        with pytest.raises(StackStartError) as err:
            listen("127.0.0.1", port, role="AWS endpoint", option="--aws-port")
    assert str(err.value) == (f"port {port} on 127.0.0.1 for the AWS endpoint is already in use: stop what "
                              "holds it or pass --aws-port (0 picks a free port)")


def test_extra_providing_names_the_extra_that_installs_a_module() -> None:
    assert extra_providing("aws_lambda_powertools") == "local"  # in `aws` and `local`: local is named
    assert extra_providing("moto") == "local"
    assert extra_providing("sklearn") is None  # installed as scikit-learn: no import name to match
    assert extra_providing("no_such_module_anywhere") is None


@pytest.mark.parametrize(("source", "expected"), [
    ("import aws_lambda_powertools\n",
     "fn/app.py cannot import aws_lambda_powertools: pip install 'modelsync[local]'"),
    ("import modelsync_no_such_dependency\n",
     "fn/app.py cannot import modelsync_no_such_dependency: no modelsync extra declares it; "
     "add it to fn/requirements.txt"),
    ("raise RuntimeError('MODELS_BUCKET is not set\\nsecond line')\n",
     "fn/app.py (BrokenFunction) failed to import: RuntimeError: MODELS_BUCKET is not set"),
])
def test_a_handler_that_cannot_import_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      source: str, expected: str) -> None:
    monkeypatch.setitem(sys.modules, "aws_lambda_powertools", None)  # as if the extra were not installed
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(source + "def handler(event, context):\n    return {}\n")
    ok = FunctionSpec("OkFunction", tmp_path / "fn", "ok.handler", {}, "ok", "us-east-1")
    (tmp_path / "fn" / "ok.py").write_text("def handler(event, context):\n    return {}\n")
    broken = FunctionSpec("BrokenFunction", tmp_path / "fn", "app.handler", {}, "broken", "us-east-1")
    with pytest.raises(StackStartError) as err:
        import_handlers(Runtime(region="us-east-1", endpoint=None), [ok, broken], tmp_path)
    assert str(err.value) == expected
