"""The device client (modelsync_device, modelsync device) against a real HTTP server on 127.0.0.1.

The fake registry serves manifests and documents the tests control, exactly as the API does: manifest
with ETag / 304, a presigned-like document URL, and the telemetry endpoint. Models come from the
exporter, so what is installed is what production would install.
"""

from __future__ import annotations

import base64
import collections
import copy
import csv
import errno
import hashlib
import io
import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from vendoring import CLI_PRELUDE, numpy_only, run_isolated, vendored_app

import scorer
from modelsync_device import (
    ModelStore,
    StoreError,
    SyncLoop,
    SyncResult,
    Telemetry,
    install_bundled,
    sync,
    transport,
)
from modelsync_device.client import Refused, parse_json
from modelsync_device.loop import parse_notification, serve_notifications
from modelsync_device.telemetry import finalise
from modelsync_protocol import manifest_signing_bytes

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from modelsync.export import export_model  # noqa: E402

MODEL = "iris"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def sign_manifest(manifest: dict[str, Any], private_key: Any) -> str:
    """What the registry's KMS key does: base64 DER ECDSA-P256-SHA256 over the signing bytes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(private_key.sign(manifest_signing_bytes(manifest),
                                             ec.ECDSA(hashes.SHA256()))).decode("ascii")


# -- models -----------------------------------------------------------------------------------------

class Trained:
    def __init__(self, est: Any, doc: dict[str, Any]) -> None:
        self.est = est
        self.doc = doc
        self.raw = json.dumps(doc).encode()
        self.sha = doc["sha256"]


Iris = tuple[np.ndarray, np.ndarray]
Models = dict[int, Trained]


@pytest.fixture(scope="module")
def iris() -> Iris:
    X, y = load_iris(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


@pytest.fixture(scope="module")
def models(iris: Iris) -> Models:
    """Three versions that differ in their predictions (different regularisation)."""
    X, y = iris
    out = {}
    for version, c in ((1, 1.0), (2, 0.05), (3, 0.01)):
        est = LogisticRegression(C=c, max_iter=2000).fit(X, y)
        out[version] = Trained(est, export_model(est, X[::6], MODEL, feature_names=FEATURES))
    assert len({m.sha for m in out.values()}) == 3
    return out


# -- the fake registry ------------------------------------------------------------------------------

class Registry:
    """State of the fake registry API; tests change it between syncs."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any]] = {}  # alias -> manifest (without url)
        self.documents: dict[str, bytes] = {}
        self.doc_mode: dict[str, str] = {}  # key -> "truncate"
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.telemetry: list[dict[str, Any]] = []
        self.telemetry_failures = 0
        self.telemetry_answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.manifest_status = 200
        self.base = ""

    def publish(self, alias: str, trained: Trained, version: int, revision: int | None, key: Any = None,
                raw: bytes | None = None, **overrides: Any) -> dict[str, Any]:
        raw = trained.raw if raw is None else raw
        doc_key = f"models/{MODEL}/{version}-{hashlib.sha256(raw).hexdigest()[:8]}.json"
        self.documents[doc_key] = raw
        manifest = {"name": MODEL, "version": version, "sha256": trained.sha, "size": len(raw),
                    "format_version": trained.doc["format_version"], "document_key": doc_key, "alias": alias,
                    "revision": revision}
        manifest.update(overrides)
        if key is not None:
            manifest["signature"] = sign_manifest(manifest, key)
        self.manifests[alias] = manifest
        return manifest

    def downloads(self) -> int:
        return sum(1 for m, p, _ in self.requests if m == "GET" and p.startswith("/docs/"))

    def manifest_requests(self) -> list[dict[str, str]]:
        return [h for m, p, h in self.requests if m == "GET" and "/manifest" in p]


def _handler(reg: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            reg.requests.append(("GET", self.path, dict(self.headers)))
            url = urlsplit(self.path)
            if url.path == f"/models/{MODEL}/manifest":
                if reg.manifest_status != 200:
                    return self._send(reg.manifest_status, b'{"message": "boom"}')
                alias = parse_qs(url.query).get("alias", ["latest"])[0]
                manifest = reg.manifests.get(alias)
                if manifest is None:
                    return self._send(404, b'{"message": "no such alias"}')
                etag = '"' + hashlib.sha256(manifest_signing_bytes(manifest)).hexdigest()[:20] + '"'
                if self.headers.get("If-None-Match") == etag:
                    return self._send(304, headers={"ETag": etag})
                body = {**manifest, "url": f"{reg.base}/docs/{manifest['document_key']}?X-Amz-Signature=abc",
                        "url_expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 900))}
                return self._send(200, json.dumps(body).encode(),
                                  {"ETag": etag, "Content-Type": "application/json"})
            if url.path.startswith("/docs/"):
                key = url.path[len("/docs/"):]
                raw = reg.documents.get(key)
                if raw is None:
                    return self._send(404)
                if reg.doc_mode.get(key) == "drip":  # a server that sends one byte every 20 ms, for ever
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    try:
                        for i in range(len(raw)):
                            self.wfile.write(raw[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.02)
                    except OSError:  # the client gave up
                        pass
                    self.close_connection = True
                    return None
                if reg.doc_mode.get(key) == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw[: len(raw) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(200, raw, {"Content-Type": "application/json"})
            return self._send(404)

        def do_POST(self) -> None:
            reg.requests.append(("POST", self.path, dict(self.headers)))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == f"/models/{MODEL}/telemetry":
                payload = json.loads(body)
                reg.telemetry.append(payload)
                if reg.telemetry_failures > 0:
                    reg.telemetry_failures -= 1
                    return self._send(503, b'{"message": "try later"}')
                answer = reg.telemetry_answer(payload) if reg.telemetry_answer else {"ok": True}
                return self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})
            return self._send(404)

    return Handler


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reg))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    reg.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield reg
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(tmp_path: Any) -> ModelStore:
    return ModelStore(tmp_path / "device")


@pytest.fixture
def signing_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def _assert_serving(store: ModelStore, trained: Trained, version: int, X: np.ndarray) -> None:
    """The given version is active on disk, loads offline and scores exactly like scikit-learn."""
    state = store.read_state(MODEL)
    assert state is not None
    assert state["active"]["version"] == version
    assert state["active"]["sha256"] == trained.sha
    model = store.load_active(MODEL)
    assert model.sha256 == trained.sha
    np.testing.assert_array_equal(model.predict(X), trained.est.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), trained.est.predict_proba(X), rtol=0, atol=1e-9)
    scored = store.predict(MODEL, X)
    assert scored.version == version
    np.testing.assert_array_equal(scored.prediction, trained.est.predict(X))


def _no_temp_files(store: ModelStore) -> None:
    for dirpath, _, files in os.walk(store.root):
        assert not [f for f in files if f.startswith(".tmp-")], dirpath


@pytest.fixture
def installed_v1(registry: Registry, store: ModelStore, models: Models) -> ModelStore:
    registry.publish("production", models[1], 1, revision=1)
    result = sync(registry.base, MODEL, store, alias="production")
    assert result.status == "updated", result
    return store


# -- happy paths ------------------------------------------------------------------------------------

def test_first_sync_installs_verified_model(registry: Registry, store: ModelStore, models: Models,
                                            iris: Iris) -> None:
    registry.publish("production", models[1], 1, revision=1)
    result = sync(registry.base, MODEL, store, alias="production", device_id="dev-42")
    assert (result.status, result.version, result.revision, result.sha256) == ("updated", 1, 1, models[1].sha)
    assert result.ok and result.reason is None
    _assert_serving(store, models[1], 1, iris[0])

    state = store.read_state(MODEL)
    assert state is not None
    assert state["alias"] == "production" and state["revision"] == 1 and state["etag"]
    assert state["revisions"] == {"production": 1}
    assert state["previous"] is None
    path = os.path.join(store.root, MODEL, "versions", f"1-{models[1].sha[:12]}.json")
    with open(path, "rb") as f:
        assert f.read() == models[1].raw  # bytes exactly as downloaded
    # the device id goes to the registry, not to the storage URL
    assert registry.manifest_requests()[0]["X-Device-Id"] == "dev-42"
    doc_headers = next(h for m, p, h in registry.requests if p.startswith("/docs/"))
    assert "X-Device-Id" not in doc_headers
    assert store.last_sync(MODEL)["status"] == "updated"  # type: ignore[index]
    _no_temp_files(store)


def test_304_when_unchanged(installed_v1: ModelStore, registry: Registry, models: Models,
                            iris: Iris) -> None:
    result = sync(registry.base, MODEL, installed_v1, alias="production")
    assert (result.status, result.version) == ("unchanged", 1)
    sent = registry.manifest_requests()[-1]
    assert sent["If-None-Match"] == installed_v1.read_state(MODEL)["etag"]  # type: ignore[index]
    assert registry.downloads() == 1
    _assert_serving(installed_v1, models[1], 1, iris[0])


def test_new_etag_same_document_is_unchanged(installed_v1: ModelStore, registry: Registry,
                                             models: Models) -> None:
    """An alias move back and forth (higher revision, same version): no download, new revision remembered."""
    registry.publish("production", models[1], 1, revision=5)
    result = sync(registry.base, MODEL, installed_v1, alias="production")
    assert (result.status, result.version, result.revision) == ("unchanged", 1, 5)
    assert registry.downloads() == 1
    assert installed_v1.read_state(MODEL)["revisions"]["production"] == 5  # type: ignore[index]


def test_update_then_rollback_via_alias_move(installed_v1: ModelStore, registry: Registry,
                                             models: Models,
                                             iris: Iris) -> None:
    store = installed_v1
    registry.publish("production", models[2], 2, revision=2)
    result = sync(registry.base, MODEL, store, alias="production")
    assert (result.status, result.version) == ("updated", 2)
    _assert_serving(store, models[2], 2, iris[0])
    state = store.read_state(MODEL)
    assert state is not None and state["previous"]["version"] == 1

    # rollback = the alias moves back to v1; revision still grows, so it is accepted
    registry.publish("production", models[1], 1, revision=3)
    downloads = registry.downloads()
    result = sync(registry.base, MODEL, store, alias="production")
    assert (result.status, result.version, result.revision) == ("updated", 1, 3)
    assert registry.downloads() == downloads  # the kept previous file was reused: no download
    _assert_serving(store, models[1], 1, iris[0])
    state = store.read_state(MODEL)
    assert state is not None and state["previous"]["version"] == 2


def test_keeps_two_versions_and_prunes_older(installed_v1: ModelStore, registry: Registry,
                                             models: Models) -> None:
    for version, revision in ((2, 2), (3, 3)):
        registry.publish("production", models[version], version, revision=revision)
        assert sync(registry.base, MODEL, installed_v1, alias="production").status == "updated"
    files = sorted(os.listdir(os.path.join(installed_v1.root, MODEL, "versions")))
    assert files == sorted([f"2-{models[2].sha[:12]}.json", f"3-{models[3].sha[:12]}.json"])


def test_damaged_active_file_falls_back_then_heals(installed_v1: ModelStore, registry: Registry,
                                                   models: Models,
                                                   iris: Iris) -> None:
    store = installed_v1
    registry.publish("production", models[2], 2, revision=2)
    assert sync(registry.base, MODEL, store, alias="production").status == "updated"
    active = store.entry_path(MODEL, store.active_entry(MODEL))  # type: ignore[arg-type]
    with open(active, "r+b") as f:
        f.truncate(100)
    fresh = ModelStore(store.root)
    assert fresh.load_active(MODEL).sha256 == models[1].sha  # the previous version still serves
    # the damaged file means no If-None-Match: the device downloads v2 again and heals
    result = sync(registry.base, MODEL, fresh, alias="production")
    assert (result.status, result.version) == ("updated", 2)
    assert "If-None-Match" not in registry.manifest_requests()[-1]
    _assert_serving(ModelStore(store.root), models[2], 2, iris[0])


# -- refusals: each keeps v1 active and scoring -----------------------------------------------------

def _refused(store: ModelStore, registry: Registry, models: Models, X: np.ndarray,
             expect: str, **kwargs: Any) -> SyncResult:
    result = sync(registry.base, MODEL, store, alias="production", **kwargs)
    assert result.status == "refused", result
    assert result.version == 1
    assert expect in (result.reason or ""), result.reason
    _assert_serving(store, models[1], 1, X)
    assert store.last_sync(MODEL)["status"] == "refused"  # type: ignore[index]
    _no_temp_files(store)
    files = os.listdir(os.path.join(store.root, MODEL, "versions"))
    assert files == [f"1-{models[1].sha[:12]}.json"]
    return result


def test_refuses_manifest_sha256_mismatch(installed_v1: ModelStore, registry: Registry,
                                          models: Models, iris: Iris) -> None:
    registry.publish("production", models[2], 2, revision=2, sha256="ab" * 32)
    r = _refused(installed_v1, registry, models, iris[0], "sha256 mismatch")
    assert r.offered_version == 2


def test_refuses_tampered_content(installed_v1: ModelStore, registry: Registry, models: Models,
                                  iris: Iris) -> None:
    """The document keeps its sha256 field but its content changed: recomputing content_sha256 catches it."""
    doc = copy.deepcopy(models[2].doc)
    doc["metadata"]["description"] = "tampered"
    _refused_after(installed_v1, registry, models, iris[0], doc, "content hashes to")


def test_refuses_content_that_cannot_be_hashed(installed_v1: ModelStore, registry: Registry, models: Models,
                                               iris: Iris) -> None:
    """An integer beyond 2**53 has no canonical form (JCS): content_sha256 raises; the sync refuses."""
    doc = copy.deepcopy(models[2].doc)
    doc["metadata"]["huge"] = 2**64
    _refused_after(installed_v1, registry, models, iris[0], doc, "content cannot be hashed")


def test_bundled_document_that_cannot_be_hashed_is_a_value_error(store: ModelStore, models: Models) -> None:
    doc = copy.deepcopy(models[1].doc)
    doc["metadata"]["huge"] = -(2**60)
    with pytest.raises(ValueError, match="content cannot be hashed"):
        install_bundled(json.dumps(doc).encode(), store)
    assert store.read_state(MODEL) is None


def _refused_after(store: ModelStore, registry: Registry, models: Models, X: np.ndarray,
                   doc: dict[str, Any], expect: str) -> None:
    raw = json.dumps(doc).encode()
    registry.publish("production", models[2], 2, revision=2, raw=raw)
    _refused(store, registry, models, X, expect)


def test_refuses_truncated_download(installed_v1: ModelStore, registry: Registry, models: Models,
                                    iris: Iris) -> None:
    manifest = registry.publish("production", models[2], 2, revision=2)
    registry.doc_mode[manifest["document_key"]] = "truncate"
    _refused(installed_v1, registry, models, iris[0], "truncated download")


def test_a_dripping_download_is_abandoned_at_its_deadline(installed_v1: ModelStore, registry: Registry,
                                                          models: Models, iris: Iris) -> None:
    # GIVEN a server that drips the document one byte at a time (each read is quick: no socket timeout)
    manifest = registry.publish("production", models[2], 2, revision=2)
    registry.doc_mode[manifest["document_key"]] = "drip"
    # WHEN a sync has a 1 s deadline for the whole download
    started = time.monotonic()
    result = sync(registry.base, MODEL, installed_v1, alias="production", download_timeout=1.0)
    # THEN it gives up in about that time, offline (retried later), the current model still serving
    assert time.monotonic() - started < 5
    assert result.status == "offline" and "deadline" in (result.reason or ""), result
    assert result.version == 1
    _assert_serving(installed_v1, models[1], 1, iris[0])
    _no_temp_files(installed_v1)


def test_a_download_under_the_minimum_rate_is_abandoned() -> None:
    class Dripping:  # a response whose every receive gives one byte after 10 ms
        def read1(self, n: int) -> bytes:
            time.sleep(0.01)
            return b"x"

    started = time.monotonic()
    with pytest.raises(transport.TooSlow, match="under the minimum"):
        transport.read_within(Dripping(), 10_000, deadline_seconds=60, min_rate=1000, grace_seconds=0.3)
    assert time.monotonic() - started < 3
    # and a steady fast response is read whole
    body = io.BytesIO(b"y" * 200_000)
    got = transport.read_within(body, 200_000, deadline_seconds=60, min_rate=1000, grace_seconds=0)
    assert got == body.getvalue()


def test_refuses_size_mismatch(installed_v1: ModelStore, registry: Registry, models: Models,
                               iris: Iris) -> None:
    registry.publish("production", models[2], 2, revision=2, size=len(models[2].raw) + 10)
    _refused(installed_v1, registry, models, iris[0], "size mismatch")


def test_refuses_document_larger_than_manifest_size(installed_v1: ModelStore, registry: Registry,
                                                    models: Models,
                                                    iris: Iris) -> None:
    registry.publish("production", models[2], 2, revision=2, size=100)
    _refused(installed_v1, registry, models, iris[0], "larger than the manifest's size 100")


def test_refuses_bad_signature(registry: Registry, store: ModelStore, models: Models,
                               iris: Iris, signing_key: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = _pem(signing_key)
    registry.publish("production", models[1], 1, revision=1, key=signing_key)
    assert sync(registry.base, MODEL, store, alias="production", public_key=pem).status == "updated"

    other = ec.generate_private_key(ec.SECP256R1())
    registry.publish("production", models[2], 2, revision=2, key=other)
    _refused(store, registry, models, iris[0], "does not verify", public_key=pem)

    # signed by the right key, then altered in transit (version bumped): the signature no longer covers it
    manifest = registry.publish("production", models[2], 2, revision=2, key=signing_key)
    manifest["revision"] = 7
    _refused(store, registry, models, iris[0], "does not verify", public_key=pem)

    registry.publish("production", models[2], 2, revision=2, signature="not base64!")
    _refused(store, registry, models, iris[0], "not valid base64", public_key=pem)


def test_refuses_unsigned_when_key_configured(installed_v1: ModelStore, registry: Registry,
                                              models: Models, iris: Iris,
                                              signing_key: Any) -> None:
    registry.publish("production", models[2], 2, revision=2)
    _refused(installed_v1, registry, models, iris[0], "unsigned", public_key=_pem(signing_key))


def test_signed_manifest_accepted_with_key_file_and_raw_signature(registry: Registry, store: ModelStore,
                                                                  models: Models,
                                                                  signing_key: Any, tmp_path: Any) -> None:
    """DER (KMS) and raw r||s signatures both verify; the key may be a PEM file path."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key_file = tmp_path / "registry.pem"
    key_file.write_bytes(_pem(signing_key))
    manifest = registry.publish("production", models[1], 1, revision=1)
    r, s = decode_dss_signature(base64.b64decode(sign_manifest(manifest, signing_key)))
    manifest["signature"] = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    result = sync(registry.base, MODEL, store, alias="production", public_key=str(key_file))
    assert result.status == "updated", result.reason


def test_signing_bytes_exclude_signature_and_url() -> None:
    m = {"version": 2, "name": "iris", "url": "https://x", "url_expires_at": "2025-01-07T10:15:00Z",
         "signature": "abc", "size": 10, "alias": "pro", "created_at": None, "note": "é"}
    assert manifest_signing_bytes(m) == ('{"alias":"pro","created_at":null,"name":"iris","note":"é",'
                                         '"size":10,"version":2}').encode()


def test_refuses_replayed_manifest(installed_v1: ModelStore, registry: Registry, models: Models,
                                   iris: Iris) -> None:
    store = installed_v1
    registry.publish("production", models[1], 1, revision=4)  # alias moved around: revision 4 now
    assert sync(registry.base, MODEL, store, alias="production").status == "unchanged"
    registry.publish("production", models[2], 2, revision=3)  # an old manifest replayed
    r = _refused(store, registry, models, iris[0], "replayed or out-of-order manifest: revision 3")
    assert r.revision == 3
    # another alias has its own revision sequence
    registry.publish("latest", models[2], 2, revision=1)
    assert sync(registry.base, MODEL, store, alias="latest").status == "updated"


def test_refuses_unknown_format_version(installed_v1: ModelStore, registry: Registry,
                                        models: Models, iris: Iris) -> None:
    registry.publish("production", models[2], 2, revision=2, format_version="2.0")
    _refused(installed_v1, registry, models, iris[0], "this device's scorer understands 1.x")
    assert registry.downloads() == 1  # refused before downloading anything


def test_refuses_failed_test_vectors(installed_v1: ModelStore, registry: Registry, models: Models,
                                     iris: Iris) -> None:
    """An output is tampered and the sha256 recomputed: only re-scoring the test vectors can catch it."""
    doc = copy.deepcopy(models[2].doc)
    doc["test_vectors"]["outputs"]["predict_proba"][0][0] += 0.01
    doc["sha256"] = scorer.content_sha256(doc)
    trained = Trained(models[2].est, doc)
    registry.publish("production", trained, 2, revision=2)
    _refused(installed_v1, registry, models, iris[0], "validation failed")
    assert "test_vectors/outputs/predict_proba" in (installed_v1.last_sync(MODEL) or {})["reason"]


def test_bundled_document_is_the_starting_point(registry: Registry, store: ModelStore, models: Models,
                                                iris: Iris, tmp_path: Any) -> None:
    """``install_bundled``: verified (sha256, test vectors) and active before any sync; kept over a second
    install (an app update must not undo newer syncs); replaced by the next sync."""
    with pytest.raises(ValueError, match="sha256 mismatch"):
        install_bundled(json.dumps({**models[1].doc, "sha256": "0" * 64}).encode(), store)
    bad = copy.deepcopy(models[1].doc)
    bad["test_vectors"]["outputs"]["predict_proba"][0][0] += 0.01
    bad["sha256"] = scorer.content_sha256(bad)
    with pytest.raises(ValueError, match="validation failed"):
        install_bundled(json.dumps(bad).encode(), store)
    assert store.read_state(MODEL) is None  # nothing refused was installed
    path = tmp_path / "bundled.json"
    path.write_bytes(models[2].raw)
    result = install_bundled(str(path), store)
    assert (result.status, result.model, result.version) == ("updated", MODEL, 0)
    _assert_serving(store, models[2], 0, iris[0])
    again = install_bundled(models[3].raw, store)
    assert (again.status, again.version) == ("unchanged", 0)
    assert install_bundled(models[3].raw, store, version=3, force=True).version == 3
    _assert_serving(store, models[3], 3, iris[0])
    registry.publish("latest", models[1], 1, revision=1)
    assert sync(registry.base, MODEL, store).status == "updated"
    _assert_serving(store, models[1], 1, iris[0])


def test_refuses_invalid_manifest(installed_v1: ModelStore, registry: Registry, models: Models,
                                  iris: Iris) -> None:
    registry.publish("production", models[2], 2, revision=2, name="other-model")
    _refused(installed_v1, registry, models, iris[0], "not 'iris'")
    registry.publish("production", models[2], 2, revision=None)
    _refused(installed_v1, registry, models, iris[0], "'revision' must be a non-negative integer")


def test_refuses_non_http_document_url(installed_v1: ModelStore, registry: Registry,
                                       models: Models, iris: Iris,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish("production", models[2], 2, revision=2)
    original = registry.manifests["production"]
    opener = urllib.request.build_opener()
    real_open = opener.open

    def open_(req: Any, timeout: float | None = None) -> Any:
        resp = real_open(req, timeout=timeout)
        if "/manifest" in req.full_url:
            body = json.dumps({**original, "url": "file:///etc/passwd"}).encode()
            return _FakeResponse(body, dict(resp.headers))
        return resp

    opener.open = open_  # type: ignore[method-assign,assignment]
    _refused(installed_v1, registry, models, iris[0], "http(s) URL", http=opener)


class _FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(body)
        self.headers = headers


@pytest.mark.parametrize("target", ["write", "replace_document", "replace_state"])
def test_disk_full_keeps_current_model(installed_v1: ModelStore, registry: Registry, models: Models,
                                       iris: Iris, monkeypatch: pytest.MonkeyPatch,
                                       target: str) -> None:
    registry.publish("production", models[2], 2, revision=2)

    def enospc(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_replace = os.replace
    if target == "write":
        monkeypatch.setattr(os, "write", enospc)
    else:
        wanted = "versions" if target == "replace_document" else "state.json"

        def replace(src: Any, dst: Any) -> None:
            if wanted in str(dst):
                enospc()
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    result = sync(registry.base, MODEL, installed_v1, alias="production")
    monkeypatch.undo()
    assert result.status == "refused" and "No space left on device" in (result.reason or "")
    assert result.version == 1
    _assert_serving(installed_v1, models[1], 1, iris[0])
    _no_temp_files(installed_v1)
    # once the disk has room again the same manifest installs (and any orphan file is pruned)
    assert sync(registry.base, MODEL, installed_v1, alias="production").status == "updated"
    files = os.listdir(os.path.join(installed_v1.root, MODEL, "versions"))
    assert sorted(files) == sorted([f"1-{models[1].sha[:12]}.json", f"2-{models[2].sha[:12]}.json"])


def test_network_down_is_offline_and_still_predicts(installed_v1: ModelStore, models: Models,
                                                    iris: Iris) -> None:
    result = sync(_closed_port_url(), MODEL, installed_v1, alias="production", timeout=2)
    assert (result.status, result.version) == ("offline", 1)
    assert "cannot reach the registry" in (result.reason or "")
    _assert_serving(ModelStore(installed_v1.root), models[1], 1, iris[0])


def test_registry_errors_are_offline(installed_v1: ModelStore, registry: Registry, models: Models,
                                     iris: Iris) -> None:
    registry.manifest_status = 503
    result = sync(registry.base, MODEL, installed_v1, alias="production")
    assert (result.status, result.version) == ("offline", 1)
    assert "HTTP 503" in (result.reason or "")
    registry.manifest_status = 200
    registry.publish("production", models[2], 2, revision=2)
    registry.documents.clear()  # presigned URL expired / object gone
    result = sync(registry.base, MODEL, installed_v1, alias="production")
    assert result.status == "offline" and "document download failed: HTTP 404" in (result.reason or "")
    _assert_serving(installed_v1, models[1], 1, iris[0])


def test_never_synced_store_explains(store: ModelStore) -> None:
    with pytest.raises(StoreError, match="run a sync first"):
        store.load_active(MODEL)
    result = sync(_closed_port_url(), MODEL, store, timeout=2)
    assert (result.status, result.version) == ("offline", None)


def test_model_name_cannot_escape_the_store(store: ModelStore) -> None:
    with pytest.raises(ValueError, match="invalid model name"):
        sync("http://127.0.0.1:1", "../etc", store)


# -- telemetry --------------------------------------------------------------------------------------

def test_telemetry_recorded_and_flushed(installed_v1: ModelStore, registry: Registry,
                                        models: Models, iris: Iris) -> None:
    X = iris[0]
    tel = Telemetry(installed_v1.root)
    scored = installed_v1.predict(MODEL, X, telemetry=tel)
    installed_v1.predict(MODEL, X[:10], telemetry=tel)
    with pytest.raises(scorer.InvalidInput):
        installed_v1.predict(MODEL, [[1.0, 2.0]], telemetry=tel)
    tel.save()

    # persisted: a fresh object (another process) sees it
    snap = Telemetry(installed_v1.root).snapshot(MODEL)
    (window,) = snap["open"].values()
    assert (window["calls"], window["rows"], window["errors"]) == (3, 160, 1)

    sleeps: list[float] = []
    result = tel.flush(registry.base, MODEL, "dev-42", sleep=sleeps.append)
    assert (result.status, result.sent, result.acknowledged, result.remaining) == ("ok", 1, 1, 0)
    assert sleeps == []
    (payload,) = registry.telemetry
    assert payload["schema"] == "modelsync.telemetry/1"
    assert (payload["model"], payload["device_id"], payload["dropped_batches"]) == (MODEL, "dev-42", 0)
    (batch,) = payload["batches"]
    assert (batch["model_version"], batch["sha256"]) == (1, models[1].sha)
    assert (batch["calls"], batch["rows"], batch["errors"]) == (3, 160, 1)
    assert batch["batch_id"] and batch["window_start"] <= batch["window_end"]
    lat = batch["latency_ms"]
    assert 0 < lat["min"] <= lat["mean"] <= lat["max"] and lat["sum"] == pytest.approx(lat["mean"] * 3)
    seen = np.vstack([X, X[:10]])
    for j, name in enumerate(FEATURES):
        f = batch["features"][name]
        assert (f["type"], f["count"], f["missing"], f["missing_rate"]) == ("numeric", 160, 0, 0.0)
        assert f["mean"] == pytest.approx(seen[:, j].mean(), rel=1e-12)
        assert f["sum"] == pytest.approx(seen[:, j].sum(), rel=1e-12)
        assert (f["min"], f["max"]) == (seen[:, j].min(), seen[:, j].max())
    want = collections.Counter(str(v) for v in np.concatenate([scored.prediction, scored.prediction[:10]]))
    assert batch["predictions"] == dict(want)
    headers = next(h for m, p, h in registry.requests if m == "POST")
    assert headers["X-Device-Id"] == "dev-42" and headers["Content-Type"] == "application/json"
    assert tel.pending(MODEL) == [] and tel.flush(registry.base, MODEL).status == "empty"


def test_telemetry_missing_values_summary(tmp_path: Any) -> None:
    tel = Telemetry(tmp_path, persist_interval=0)
    feats = [scorer.Feature("a", "numeric", None), scorer.Feature("c", "categorical", ["x"])]
    X = np.array([[1.0, "x"], [np.nan, None], [3.0, "x"], [np.inf, "x"]], dtype=object)
    tel.record(MODEL, 1, "f" * 64, X, feats, np.array([0.5, 1.5, 2.5, 3.5]), 0.001, labels=False)
    tel.seal(MODEL)
    (batch,) = tel.pending(MODEL)
    fin = finalise(batch, min_rows=0)
    a, c = fin["features"]["a"], fin["features"]["c"]
    assert (a["count"], a["missing"], a["infinite"]) == (2, 1, 1)
    assert (a["min"], a["max"], a["mean"]) == (1.0, 3.0, 2.0)
    assert a["missing_rate"] == 0.25
    assert (c["type"], c["count"], c["missing"]) == ("categorical", 3, 1)
    assert fin["predictions"] == {} and fin["output"]["mean"] == 2.0


def test_small_windows_send_counts_only(tmp_path: Any) -> None:
    """Fewer rows than ``min_rows`` (default 10): counts, never a value of a row (min/max/mean, labels)."""
    feats = [scorer._model.Feature("a", "numeric", None), scorer._model.Feature("c", "categorical", ["x"])]
    for rows, min_rows, private in ((9, None, True), (10, None, False), (3, 3, False), (3, 4, True)):
        tel = Telemetry(tmp_path / f"{rows}-{min_rows}", persist_interval=0,
                        **({} if min_rows is None else {"min_rows": min_rows}))
        X = np.array([[float(i), "x"] for i in range(rows)], dtype=object)
        tel.record(MODEL, 1, "f" * 64, X, feats, np.arange(rows) % 2, 0.001)
        tel.seal(MODEL)
        (batch,) = tel.pending(MODEL)
        sent = finalise(batch, tel.min_rows)
        assert (sent["calls"], sent["rows"], sent["errors"]) == (1, rows, 0)
        if private:
            assert sent["features"] == {} and sent["predictions"] == {} and sent["output"] is None
            row_free = json.dumps({k: v for k, v in sent.items() if k != "latency_ms"})
            assert not any(f'"{k}"' in row_free for k in ("min", "max", "mean", "sum", "x"))
        else:
            assert sent["features"]["a"]["max"] == rows - 1 and sum(sent["predictions"].values()) == rows


def test_telemetry_retries_503_then_succeeds(installed_v1: ModelStore, registry: Registry,
                                             iris: Iris) -> None:
    tel = Telemetry(installed_v1.root)
    installed_v1.predict(MODEL, iris[0][:5], telemetry=tel)
    registry.telemetry_failures = 2
    sleeps: list[float] = []
    result = tel.flush(registry.base, MODEL, "dev-1", retries=3, backoff=0.5, sleep=sleeps.append)
    assert result.status == "ok" and result.acknowledged == 1
    assert len(registry.telemetry) == 3 and len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # exponential backoff with jitter
    ids = {p["batches"][0]["batch_id"] for p in registry.telemetry}
    assert len(ids) == 1  # the same batch, so the server can deduplicate
    assert tel.pending(MODEL) == []


def test_telemetry_kept_until_acknowledged(installed_v1: ModelStore, registry: Registry,
                                           iris: Iris) -> None:
    tel = Telemetry(installed_v1.root)
    installed_v1.predict(MODEL, iris[0][:5], telemetry=tel)
    registry.telemetry_failures = 10
    result = tel.flush(registry.base, MODEL, retries=2, sleep=lambda s: None)
    assert result.status == "failed" and "HTTP 503" in (result.reason or "") and result.remaining == 1
    assert len(registry.telemetry) == 3
    first_id = registry.telemetry[0]["batches"][0]["batch_id"]
    # offline: kept too
    assert tel.flush(_closed_port_url(), MODEL, retries=0).status == "failed"
    installed_v1.predict(MODEL, iris[0][:5], telemetry=tel)  # a second window
    registry.telemetry_failures = 0
    result = tel.flush(registry.base, MODEL, sleep=lambda s: None)
    assert (result.status, result.acknowledged) == ("ok", 2)
    assert registry.telemetry[-1]["batches"][0]["batch_id"] == first_id
    assert tel.pending(MODEL) == []


def test_telemetry_partial_acknowledgement(installed_v1: ModelStore, registry: Registry,
                                           iris: Iris) -> None:
    tel = Telemetry(installed_v1.root)
    for _ in range(2):
        installed_v1.predict(MODEL, iris[0][:5], telemetry=tel)
        tel.seal(MODEL)
    registry.telemetry_answer = lambda p: {"accepted": [p["batches"][0]["batch_id"]]}
    result = tel.flush(registry.base, MODEL)
    assert (result.status, result.sent, result.acknowledged, result.remaining) == ("failed", 2, 1, 1)
    assert tel.pending(MODEL)[0]["batch_id"] == registry.telemetry[0]["batches"][1]["batch_id"]


def test_telemetry_is_bounded(tmp_path: Any, registry: Registry) -> None:
    tel = Telemetry(tmp_path, max_pending=3, persist_interval=0)
    feats = [scorer.Feature("a", "numeric", None)]
    for i in range(5):
        tel.record(MODEL, 1, "f" * 64, np.array([[float(i)]]), feats, np.array([0]), 0.001)
        tel.seal(MODEL)
    pending = tel.pending(MODEL)
    assert len(pending) == 3 and [b["features"]["a"]["min"] for b in pending] == [2.0, 3.0, 4.0]
    assert tel.snapshot(MODEL)["dropped_batches"] == 2
    assert tel.flush(registry.base, MODEL).status == "ok"
    assert registry.telemetry[0]["dropped_batches"] == 2
    assert tel.snapshot(MODEL)["dropped_batches"] == 0

    small = Telemetry(tmp_path / "small", max_bytes=3000, persist_interval=0)
    for i in range(20):
        small.record(MODEL, 1, "f" * 64, np.array([[float(i)]]), feats, np.array([0]), 0.001)
        small.seal(MODEL)
    assert os.path.getsize(small.path(MODEL)) <= 3000
    assert 0 < len(small.pending(MODEL)) < 20
    assert small.snapshot(MODEL)["dropped_batches"] == 20 - len(small.pending(MODEL))


def test_telemetry_windows_sealed_by_age(tmp_path: Any) -> None:
    """Offline for long: each window closes after window_seconds, so the server still gets a time series."""
    feats = [scorer.Feature("a", "numeric", None)]
    hourly = Telemetry(tmp_path, persist_interval=0)  # default window_seconds: one hour
    aged = Telemetry(tmp_path / "aged", persist_interval=0, window_seconds=0)
    for tel in (hourly, aged):
        for i in range(3):
            tel.record(MODEL, 1, "f" * 64, np.array([[float(i)]]), feats, np.array([0]), 0.001)
    assert (len(hourly.pending(MODEL)), len(hourly.snapshot(MODEL)["open"])) == (0, 1)
    assert (len(aged.pending(MODEL)), len(aged.snapshot(MODEL)["open"])) == (3, 0)
    assert [b["rows"] for b in aged.pending(MODEL)] == [1, 1, 1]


# -- polling loop and notifications -----------------------------------------------------------------

def _sns(event: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-west-1:1:modelsync",
            "Message": json.dumps(event), "MessageAttributes": {"event_type": {"Type": "String",
                                                                               "Value": event["event_type"]}}}


def _registry_event(event_type: str, **detail: Any) -> dict[str, Any]:
    """The message modelsync's notify function publishes (modelsync.service.notify.ModelEvent.message)."""
    return {"schema": "modelsync.event/1", "event_type": event_type, "model": MODEL,
            "occurred_at": "2025-01-07T10:00:00Z", "detail": detail}


def test_parse_notification_shapes() -> None:
    event = {"event_type": "alias.moved", "model": MODEL, "alias": "production", "version": 2}
    assert parse_notification(event) == event
    assert parse_notification(json.dumps(event)) == event
    assert parse_notification(_sns(event)) == event
    assert parse_notification(json.dumps(_sns(event)).encode()) == event
    assert parse_notification({"Body": json.dumps(_sns(event))}) == event  # an SQS message
    assert parse_notification({"Type": "SubscriptionConfirmation", "SubscribeURL": "https://x"}) is None
    assert parse_notification("not json") is None


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_event_triggers_immediate_sync(registry: Registry, store: ModelStore, models: Models,
                                       iris: Iris) -> None:
    registry.publish("production", models[1], 1, revision=1)
    loop = SyncLoop(registry.base, MODEL, store, alias="production", interval=3600, event_spread=0)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        _wait(lambda: len(loop.results) == 1)
        assert loop.results[0].status == "updated"
        registry.publish("production", models[2], 2, revision=2)
        assert not loop.on_event(_sns({"event_type": "alias.moved", "model": "other", "alias": "production"}))
        assert not loop.on_event(_sns({"event_type": "alias.moved", "model": MODEL, "alias": "staging"}))
        assert not loop.on_event(_sns(_registry_event("alias.moved", alias="staging", new_version=2)))
        assert not loop.on_event({"event_type": "model.deleted", "model": MODEL})
        time.sleep(0.3)
        assert len(loop.results) == 1  # none of those woke the loop
        server = serve_notifications(loop)
        try:
            body = json.dumps(_sns(_registry_event("alias.moved", alias="production", old_version=1,
                                                   new_version=2, revision=2))).encode()
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as resp:
                assert json.loads(resp.read()) == {"sync": True}
        finally:
            server.shutdown()
            server.server_close()
        _wait(lambda: len(loop.results) == 2)
        assert (loop.results[1].status, loop.results[1].version) == ("updated", 2)
        assert loop.on_event({"event_type": "version.published", "model": MODEL, "version": 3})
        _wait(lambda: len(loop.results) == 3)
        assert loop.results[2].status == "unchanged"
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    _assert_serving(store, models[2], 2, iris[0])


def test_run_forever_polls_with_jitter_and_survives_offline(store: ModelStore) -> None:
    loop = SyncLoop(_closed_port_url(), MODEL, store, interval=0.05, jitter=0.5)
    delays = [loop.next_delay() for _ in range(200)]
    assert min(delays) >= 0.025 and max(delays) <= 0.075 and len(set(delays)) > 1
    stop = threading.Event()
    thread = threading.Thread(target=loop.run_forever, args=(stop,), daemon=True)
    thread.start()
    _wait(lambda: len(loop.results) >= 3)
    stop.set()
    thread.join(5)
    assert {r.status for r in loop.results} == {"offline"}


# -- the CLI ----------------------------------------------------------------------------------------

def _modelsync_device_cli(argv: list[str]) -> int:
    from modelsync.cli import main

    return main(["device", *argv])


def _python_m_cli(argv: list[str]) -> int:
    from modelsync_device.cli import main

    return main(argv)


# `modelsync device ...` and `python -m modelsync_device ...`: one implementation, same flags and results
CLIS = pytest.mark.parametrize("main", [_modelsync_device_cli, _python_m_cli], ids=["modelsync", "python-m"])


@CLIS
def test_cli_sync_predict_status(registry: Registry, tmp_path: Any, models: Models, main: Callable[..., int],
                                 iris: Iris, capsys: pytest.CaptureFixture[str]) -> None:
    device_dir = str(tmp_path / "dev")
    registry.publish("latest", models[1], 1, revision=1)
    rc = main(["sync", "--api", registry.base, "--model", MODEL, "--dir", device_dir, "--once",
               "--device-id", "dev-7"])
    out = capsys.readouterr().out
    assert rc == 0 and json.loads(out)["status"] == "updated"

    X = iris[0][::10]
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *reversed(FEATURES)])  # extra column, any order
        for i, row in enumerate(X):
            w.writerow([f"r{i}", *[repr(v) for v in reversed(row.tolist())]])
    rc = main(["predict", "--dir", device_dir, str(data)])
    assert rc == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["id", *reversed(FEATURES), "prediction", "proba_0", "proba_1", "proba_2"]
    assert len(rows) == len(X) + 1
    assert [r[0] for r in rows[1:]] == [f"r{i}" for i in range(len(X))]
    assert [int(r[5]) for r in rows[1:]] == models[1].est.predict(X).tolist()
    proba = np.array([[float(v) for v in r[6:]] for r in rows[1:]])
    np.testing.assert_allclose(proba, models[1].est.predict_proba(X), rtol=0, atol=1e-12)

    # telemetry recorded by predict is uploaded by the next sync
    rc = main(["sync", "--api", registry.base, "--model", MODEL, "--dir", device_dir, "--once",
               "--device-id", "dev-7"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["status"] == "unchanged"
    assert registry.telemetry and registry.telemetry[0]["batches"][0]["rows"] == len(X)

    rc = main(["status", "--dir", device_dir, "--json"])
    (status,) = json.loads(capsys.readouterr().out)
    assert rc == 0 and status["active"]["version"] == 1 and status["last_sync"]["status"] == "unchanged"
    assert status["telemetry"]["pending_batches"] == 0
    assert main(["status", "--dir", device_dir]) == 0
    assert "active:    version 1" in capsys.readouterr().out

    # refused -> exit 1, offline -> exit 3; predict still works
    registry.publish("latest", models[2], 2, revision=2, format_version="9.0")
    assert main(["sync", "--api", registry.base, "--model", MODEL, "--dir", device_dir,
                 "--once"]) == 1
    assert main(["sync", "--api", _closed_port_url(), "--model", MODEL, "--dir", device_dir,
                 "--once", "--no-telemetry"]) == 3
    capsys.readouterr()
    assert main(["predict", "--dir", device_dir, "--no-telemetry", str(data)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(X) + 1


@CLIS
def test_cli_predict_errors(tmp_path: Any, capsys: pytest.CaptureFixture[str], main: Callable[..., int],
                            installed_v1: ModelStore) -> None:
    assert main(["predict", "--dir", str(tmp_path / "empty"), "x.csv"]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal_length,sepal_width\n1,2\n")
    assert main(["predict", "--dir", installed_v1.root, str(bad)]) == 1
    assert capsys.readouterr().out == ""


def test_device_package_is_vendorable(tmp_path: Any) -> None:
    """Exactly scorer/, modelsync_protocol/ and modelsync_device/ copied beside an app and run isolated:
    the package imports, ``python -m modelsync_device --help`` works, and nothing outside numpy, the
    standard library and those three folders is imported (no cryptography, no modelsync)."""
    app = vendored_app(tmp_path)
    allowed = ["modelsync_device", "modelsync_protocol", "numpy", "scorer"]
    code = ("import runpy\n"
            "sys.argv = ['modelsync_device', '--help']\n"
            "try:\n    runpy.run_module('modelsync_device', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "import modelsync_device, modelsync_device.cli\n"
            "assert modelsync_device.cli.main(['status', '--dir', 'no-store']) == 1\n"
            f"assert modelsync_device.__file__.startswith({str(app)!r}), modelsync_device.__file__\n"
            "top = {m.split('.')[0] for m in sys.modules}\n"
            f"bad = sorted(top - set(sys.stdlib_module_names) - {{*{allowed!r}, '__main__'}})\n"
            "assert not bad, bad\n")
    proc = run_isolated([str(app), numpy_only(tmp_path)], code, cwd=app)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m modelsync_device" in proc.stdout and "predict" in proc.stdout
    assert "no model installed in no-store" in proc.stdout


def test_vendored_copy_syncs_a_signed_model_and_predicts(tmp_path: Any, registry: Registry, models: Models,
                                                        iris: Iris, signing_key: Any) -> None:
    """``python -m modelsync_device`` from the vendored copy alone (numpy + stdlib): a signed manifest is
    verified without cryptography, the model installed, then a CSV scored offline."""
    app = vendored_app(tmp_path)
    (app / "registry.pem").write_bytes(_pem(signing_key))
    registry.publish("production", models[1], 1, revision=1, key=signing_key)
    X = iris[0][:5]
    (app / "rows.csv").write_text(",".join(FEATURES) + "\n" + "".join(
        ",".join(repr(v) for v in row) + "\n" for row in X.tolist()))
    code = (CLI_PRELUDE +
            f"rc = cli('sync', '--api', {registry.base!r}, '--model', 'iris', '--dir', 'store', '--once',\n"
            "         '--alias', 'production', '--public-key', 'registry.pem', '--no-telemetry')\n"
            "assert rc == 0, rc\n"
            "assert cli('predict', '--dir', 'store', 'rows.csv') == 0\n"
            "assert 'cryptography' not in sys.modules\n")
    path = [str(app), numpy_only(tmp_path)]
    proc = run_isolated(path, code, cwd=app)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert json.loads(lines[0])["status"] == "updated"
    rows = list(csv.reader(lines[1:]))
    assert rows[0][-4:] == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert [int(r[len(FEATURES)]) for r in rows[1:]] == models[1].est.predict(X).tolist()

    from cryptography.hazmat.primitives.asymmetric import ec

    # signed by another key: refused (exit 1), version 1 keeps serving
    registry.publish("production", models[2], 2, revision=2, key=ec.generate_private_key(ec.SECP256R1()))
    proc = run_isolated(path, code.replace("assert rc == 0", "assert rc == 1"), cwd=app)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[0])
    assert (result["status"], result["version"]) == ("refused", 1) and "does not verify" in result["reason"]


def test_import_scorer_is_pure(tmp_path: Any) -> None:
    """``import scorer`` pulls in no network, thread or lock code and nothing beyond numpy + stdlib."""
    root = os.path.dirname(os.path.dirname(scorer.__file__ or ""))
    # urllib.parse is string handling that pathlib itself imports (Python 3.11); the rest of urllib is I/O
    code = ("import numpy; before = set(sys.modules)\n"
            "import scorer, scorer.tabular\n"
            "new = set(sys.modules) - before\n"
            "banned = sorted(m for m in new if m.split('.')[0] in {'socket', '_socket', 'http',\n"
            "                'threading', '_thread', 'fcntl', 'ssl', '_ssl', 'selectors', 'select'} or\n"
            "                m.startswith('urllib.') and m != 'urllib.parse')\n"
            "outside = sorted({m.split('.')[0] for m in new} - set(sys.stdlib_module_names) - {'scorer'})\n"
            "assert 'scorer' in new and not banned and not outside, (banned, outside)\n")
    proc = run_isolated([root, numpy_only(tmp_path)], code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_manifest_json_is_strict() -> None:
    with pytest.raises(Refused, match="duplicate key 'version'"):
        parse_json(b'{"version": 1, "version": 2}', "manifest")
    with pytest.raises(Refused, match="not valid JSON"):
        parse_json(b'{"size": NaN}', "manifest")
