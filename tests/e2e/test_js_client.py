"""The JavaScript sync client (scorer-js, ``@modelsync/scorer/sync``) against the local stack, in Node.

A model published through the Publish function is synced by ``scorer-js/tools/sync.mjs`` (signed manifest
checked with the local ``/signing-key``, document verified, test vectors re-scored), then scored offline;
its answers equal the API's. The store it writes is the Python device client's layout: ``modelsync device
predict`` reads it as is.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from e2e_support import FEATURES, Stack, api_answers, assert_same_answers, publish_model, run_js_sync

from modelsync.cli import main as modelsync_main

pytestmark = pytest.mark.e2e

MODEL = "js-iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


@pytest.fixture(scope="module")
def js_doc(iris: tuple[Any, Any], iris_model: Any) -> dict[str, Any]:
    from modelsync.export import export_model

    X, _ = iris
    return export_model(iris_model, X.iloc[::10], name=MODEL)


def test_js_client_syncs_and_scores_like_the_api(stack: Stack, js_doc: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    version = publish_model(stack, js_doc, MODEL)
    pem = stack.http("GET", "/signing-key", headers={"Accept": "application/x-pem-file"})
    assert pem.status == 200
    (tmp_path / "registry.pem").write_bytes(pem.body)
    store = tmp_path / "store"
    signed = ["--public-key", str(tmp_path / "registry.pem"), "--version", str(version)]

    rc, out = run_js_sync(stack.api, MODEL, store, *signed, rows=ROWS)
    assert rc == 0, out
    assert (out["sync"]["status"], out["version"], out["sha256"]) == ("updated", version, js_doc["sha256"])
    assert_same_answers(out, api_answers(stack, MODEL, ROWS, version))

    rc, out = run_js_sync(stack.api, MODEL, store, *signed)  # If-None-Match: 304
    assert rc == 0 and out["sync"]["status"] == "unchanged", out

    # a key the registry did not sign with: refused, the installed model kept
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "other.pem").write_bytes(other)
    rc, out = run_js_sync(stack.api, MODEL, tmp_path / "fresh", "--public-key", str(tmp_path / "other.pem"))
    assert rc == 1 and "does not verify" in out["sync"]["reason"], out

    # offline: the registry unreachable, the stored model still answers
    rc, out = run_js_sync("http://127.0.0.1:9", MODEL, store, rows=ROWS)
    assert rc == 3 and out["sync"]["status"] == "offline" and out["version"] == version, out

    # the Python device client reads the store the JavaScript client wrote
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text(",".join(FEATURES) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in ROWS))
    capsys.readouterr()
    assert modelsync_main(["device", "predict", "--dir", str(store), "--no-telemetry", str(rows_csv)]) == 0
    predicted = [r["prediction"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert predicted == [str(p) for p in api_answers(stack, MODEL, ROWS, version)["predictions"]]
