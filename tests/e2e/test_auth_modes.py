"""Every AuthMode on the local stack (``modelsync local --auth iam|api-key|cognito``), end to end.

Per mode: requests without credentials get API Gateway's 401/403 (open routes stay open, operator routes
stay IAM-only); a device without credentials reports an authentication failure (exit 4) and keeps the
model it shipped with; a device with the right credentials syncs, verifies the signed manifest and scores
offline; ``modelsync publish`` and ``modelsync alias set/promote/rollback`` work through the signed
client. In IAM mode, the device package copied alone into a numpy-only Python does the same.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import FEATURES, Stack, launch_stack, run_js_sync
from vendoring import CLI_PRELUDE, numpy_only, run_isolated, vendored_app

from modelsync.cli import main as modelsync_main

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("auth-modes")]

MODEL = "auth-iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


@pytest.fixture(scope="module", params=["iam", "api-key", "cognito"])
def auth_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mode = request.param
    with launch_stack(tmp_path_factory.mktemp(f"auth-{mode}") / "modelsync-local.log", "--auth", mode) as s:
        yield s


@pytest.fixture(scope="module")
def docs(iris: tuple[Any, Any]) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    X, y = iris
    return [export_model(LogisticRegression(C=c, max_iter=1000).fit(X, y), X.iloc[::10], name=MODEL)
            for c in (1.0, 0.01)]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = modelsync_main(list(argv))
    return rc, capsys.readouterr().out


def _operator(stack: Stack) -> list[str]:
    """The operator's flags: IAM (alias moves are IAM-only in every mode)."""
    return ["--api", stack.api, "--auth", "iam", "--json"]


def _device_auth(stack: Stack, tmp_path: Path) -> list[str]:
    mode = stack.info["auth"]
    if mode == "iam":
        return ["--auth", "iam"]
    if mode == "api-key":
        (tmp_path / "api-key").write_text(stack.info["api_key"] + "\n")
        return ["--auth", "api-key", "--api-key-file", str(tmp_path / "api-key")]
    # cognito: the token comes from a command, here `modelsync local token`
    return ["--auth", "token", "--token-command",
            f"{sys.executable} -m modelsync.cli local token --api {stack.api} --ttl 600"]


def _write_rows(path: Path) -> None:
    path.write_text(",".join(FEATURES) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in ROWS))


def _predictions(out: str) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(ROWS)
    return [r["prediction"] for r in rows]


def test_auth_mode_end_to_end(auth_stack: Stack, docs: list[dict[str, Any]], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, mode = auth_stack, auth_stack.info["auth"]
    creds = stack.info["credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["secret_access_key"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials-file"))
    assert ("api_key" in stack.info) == (mode == "api-key") and ("token" in stack.info) == (mode == "cognito")

    # unauthenticated: API Gateway's answers; open routes stay open
    denied = 401 if mode == "cognito" else 403
    assert stack.http("GET", f"/models/{MODEL}/manifest?alias=latest").status == denied
    assert stack.http("GET", "/models").status == denied
    assert stack.http("GET", "/v2/health/live").status == 200
    assert stack.http("POST", f"/models/{MODEL}/aliases/latest/promote").status == 403
    if mode == "cognito":
        bearer = {"Authorization": f"Bearer {stack.info['token']}"}
        assert stack.http("GET", "/models", headers=bearer).status == 200
        assert stack.http("GET", "/models", headers={"Authorization": "Bearer x.y.z"}).status == 401
        # IAM-only stays IAM-only: a valid token does not move an alias
        assert stack.http("POST", f"/models/{MODEL}/aliases/latest/promote", headers=bearer).status == 403
    if mode == "api-key":
        key = {"x-api-key": stack.info["api_key"]}
        assert stack.http("GET", "/models", headers=key).status == 200
        assert stack.http("GET", "/models", headers={"x-api-key": "wrong"}).status == 403
        assert stack.http("POST", f"/models/{MODEL}/aliases/latest/promote", headers=key).status == 403
        # an operator sends both: SigV4 for the operator routes, the key for the read routes
        (tmp_path / "operator-key").write_text(stack.info["api_key"])
        rc, out = _cli(capsys, "models", "list", *_operator(stack))
        assert rc == 4
        rc, out = _cli(capsys, "models", "list", *_operator(stack), "--api-key-file",
                       str(tmp_path / "operator-key"))
        assert rc == 0 and "models" in json.loads(out)

    # publish through the operator CLI: the published version, then a rejection report
    doc_files = []
    for i, doc in enumerate(docs):
        doc_files.append(tmp_path / f"{MODEL}-{i + 1}.json")
        doc_files[-1].write_text(json.dumps(doc))
    rc, out = _cli(capsys, "publish", str(doc_files[0]), *_operator(stack))
    assert rc == 0, out
    report = json.loads(out)
    assert (report["status"], report["version"]) == ("published", 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**docs[0], "sha256": "0" * 64}))
    rc, out = _cli(capsys, "publish", str(bad), *_operator(stack))
    assert rc == 1 and json.loads(out)["status"] == "rejected"

    # a device with the bundled model and no credentials: authentication failure, model kept
    store = tmp_path / "device"
    rc, out = _cli(capsys, "device", "install", "--dir", str(store), str(doc_files[0]))
    assert rc == 0 and json.loads(out)["version"] == 0
    rows = tmp_path / "rows.csv"
    _write_rows(rows)
    sync_args = ["device", "sync", "--api", stack.api, "--model", MODEL, "--dir", str(store), "--once",
                 "--no-telemetry"]
    rc, out = _cli(capsys, *sync_args, "--auth", "none")
    result = json.loads(out)
    assert rc == 4 and (result["status"], result["version"]) == ("unauthorized", 0)
    assert "authentication failed" in result["reason"]
    rc, out = _cli(capsys, "device", "predict", "--dir", str(store), "--no-telemetry", str(rows))
    assert rc == 0
    bundled_predictions = _predictions(out)

    # the right credentials: a signed manifest verified (the key fetched with the same credentials)
    device = _device_auth(stack, tmp_path)
    from modelsync_device.auth import AuthOpener, auth_from_args
    from modelsync_device.cli import build_parser

    parsed = build_parser().parse_args(["sync", "--api", stack.api, "--model", MODEL, "--dir", "x", *device])
    opener = AuthOpener(stack.api, auth_from_args(parsed, stack.api))
    import urllib.request

    req = urllib.request.Request(stack.api + "/signing-key", headers={"Accept": "application/x-pem-file"})
    with opener.open(req, timeout=30) as resp:
        (tmp_path / "registry.pem").write_bytes(resp.read())
    signed = [*sync_args, *device, "--public-key", str(tmp_path / "registry.pem")]
    rc, out = _cli(capsys, *signed)
    result = json.loads(out)
    assert rc == 0 and (result["status"], result["version"]) == ("updated", 1), out
    rc, out = _cli(capsys, "device", "predict", "--dir", str(store), "--no-telemetry", str(rows))
    assert rc == 0 and _predictions(out) == bundled_predictions  # version 1 is the bundled document
    if mode in ("api-key", "cognito"):
        _js_client_authenticates(stack, tmp_path)

    # operators move aliases through the signed client; without credentials they cannot
    rc, out = _cli(capsys, "publish", str(doc_files[1]), *_operator(stack))
    assert rc == 0 and json.loads(out)["version"] == 2
    rc, out = _cli(capsys, "alias", "set", MODEL, "production", "1", *_operator(stack))
    assert rc == 0 and json.loads(out)["version"] == 1
    rc, out = _cli(capsys, "alias", "set", MODEL, "production", "1", "--canary", "2", "--weight", "0.5",
                   *_operator(stack))
    assert rc == 0 and json.loads(out)["canary"]["version"] == 2
    rc, _ = _cli(capsys, "alias", "promote", MODEL, "production", "--api", stack.api, "--auth", "none")
    assert rc == 4
    rc, out = _cli(capsys, "alias", "promote", MODEL, "production", *_operator(stack))
    assert rc == 0 and json.loads(out)["version"] == 2 and not json.loads(out).get("canary")
    rc, out = _cli(capsys, *signed, "--alias", "production")
    assert rc == 0 and json.loads(out)["version"] == 2, out
    rc, out = _cli(capsys, "alias", "rollback", MODEL, "production", *_operator(stack))
    assert rc == 0 and json.loads(out)["version"] == 1
    rc, out = _cli(capsys, *signed, "--alias", "production")
    assert rc == 0 and json.loads(out)["version"] == 1, out
    rc, out = _cli(capsys, *signed, "--version", "2")  # pinned, whatever the aliases say
    assert rc == 0 and json.loads(out)["version"] == 2, out

    # offline: the registry unreachable, the model still scores
    rc, out = _cli(capsys, "device", "sync", "--api", "http://127.0.0.1:9", "--model", MODEL, "--dir",
                   str(store), "--once", "--no-telemetry", *device)
    assert rc == 3 and json.loads(out)["version"] == 2
    rc, out = _cli(capsys, "device", "predict", "--dir", str(store), "--no-telemetry", str(rows))
    assert rc == 0 and len(_predictions(out)) == len(ROWS)

    if mode == "iam":
        _vendored_copy_syncs_with_iam(stack, tmp_path, rows)


def _js_client_authenticates(stack: Stack, tmp_path: Path) -> None:
    """The JavaScript client (scorer-js/tools/sync.mjs): refused without credentials, then a signed sync
    with the API key (x-api-key) or the bearer token, scoring like the API."""
    js_store = tmp_path / "js-device"
    rc, out = run_js_sync(stack.api, MODEL, js_store)
    assert rc == 4 and out["sync"]["status"] == "unauthorized", out
    if stack.info["auth"] == "api-key":
        creds, headers = ["--api-key", stack.info["api_key"]], {"x-api-key": stack.info["api_key"]}
    else:
        creds, headers = ["--token", stack.info["token"]], {"Authorization": f"Bearer {stack.info['token']}"}
    rc, out = run_js_sync(stack.api, MODEL, js_store, *creds, "--public-key", str(tmp_path / "registry.pem"),
                          rows=ROWS)
    assert rc == 0 and (out["sync"]["status"], out["version"]) == ("updated", 1), out
    api = stack.http("POST", f"/models/{MODEL}/predict?version=1", {"instances": ROWS}, headers=headers)
    assert api.status == 200 and out["predictions"] == api.json()["predictions"]


def _vendored_copy_syncs_with_iam(stack: Stack, tmp_path: Path, rows: Path) -> None:
    """scorer/, modelsync_protocol/ and modelsync_device/ alone in a numpy-only Python: SigV4 from the
    environment, a signed manifest, offline scoring."""
    app = vendored_app(tmp_path / "vendored")
    for name in ("registry.pem", "rows.csv"):
        (app / name).write_bytes((tmp_path / name).read_bytes())
    creds = stack.info["credentials"]
    code = (CLI_PRELUDE +
            "import os\n"
            f"os.environ['AWS_ACCESS_KEY_ID'] = {creds['access_key_id']!r}\n"
            f"os.environ['AWS_SECRET_ACCESS_KEY'] = {creds['secret_access_key']!r}\n"
            "os.environ['AWS_SHARED_CREDENTIALS_FILE'] = 'none'\n"
            f"rc = cli('sync', '--api', {stack.api!r}, '--model', {MODEL!r}, '--dir', 'store', '--once',\n"
            "         '--auth', 'iam', '--public-key', 'registry.pem')\n"
            "assert rc == 0, rc\n"
            "assert cli('predict', '--dir', 'store', 'rows.csv') == 0\n"
            "assert 'cryptography' not in sys.modules and 'botocore' not in sys.modules\n")
    proc = run_isolated([str(app), numpy_only(tmp_path / "vendored")], code, cwd=app)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert json.loads(lines[0])["status"] == "updated"
    assert len(list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))) == len(ROWS)
