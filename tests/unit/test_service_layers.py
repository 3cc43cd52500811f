"""The plain services (serving, registry administration, telemetry) with in-memory fakes, the shared LRU
cache, and the HTTP adapter's error table and request checks."""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

import pytest

from modelsync.service import rollout
from modelsync.service.admin import RegistryAdmin
from modelsync.service.alias_cache import AliasCache
from modelsync.service.config import Settings
from modelsync.service.errors import (
    AliasNotFound,
    Conflict,
    InvalidModelInput,
    InvalidRequest,
    ModelNotFound,
    NoPublishedVersion,
    PayloadTooLarge,
    ServiceError,
    SigningNotConfigured,
    VersionNotFound,
)
from modelsync.service.http.errors import ERROR_STATUS, describe_validation, error_proxy_response, status_for
from modelsync.service.http.models import TelemetryRequest
from modelsync.service.http.routes import check_request_size, manifest_etag, request_size_limit
from modelsync.service.lru import LRUCache
from modelsync.service.serving import ServingService
from modelsync.service.store import ModelCache
from modelsync.service.telemetry import TelemetryService

SETTINGS = Settings(models_bucket="models", registry_table="registry", max_request_bytes=1000,
                    max_telemetry_bytes=100, alias_cache_ttl_seconds=0)


class FakeRegistry:
    """The Registry methods the services call, over dicts (no DynamoDB, no conditions)."""

    table = "fake-registry"

    def __init__(self) -> None:
        self.reads = 0  # get_version / get_alias calls (the alias cache's tests count them)
        self.versions: dict[tuple[str, int], dict[str, Any]] = {}
        self.aliases: dict[tuple[str, str], dict[str, Any]] = {}
        self.telemetry: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.uploads: set[str] = set()

    def add(self, name: str, version: int, **fields: Any) -> None:
        self.versions[(name, version)] = {"model": name, "version": version, "sha256": f"{version:064d}",
                                          "size": 10, "format_version": "1.0",
                                          "document_key": f"models/{name}/{version}.json", **fields}

    def point(self, name: str, alias: str, version: int, canary: rollout.Canary | None = None) -> None:
        current = self.aliases.get((name, alias))
        revision = int(current["revision"]) + 1 if current else 1
        item: dict[str, Any] = {"model": name, "alias": alias, "version": version, "revision": revision}
        if canary is not None:
            item["canary"] = canary.as_item()
        self.aliases[(name, alias)] = item

    def model_known(self, name: str) -> bool:
        return name in self.uploads or any(n == name for n, _ in self.versions)

    def get_version(self, name: str, version: int) -> dict[str, Any] | None:
        self.reads += 1
        return self.versions.get((name, version))

    def get_alias(self, name: str, alias: str, consistent: bool = False) -> dict[str, Any] | None:
        self.reads += 1
        return self.aliases.get((name, alias))

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        return [v for (n, _), v in sorted(self.versions.items()) if n == name]

    def move_alias(self, name: str, alias: str, version: int, expected_revision: int | None = None,
                   canary: rollout.Canary | None = None) -> dict[str, Any]:
        self.point(name, alias, version, canary)
        return self.aliases[(name, alias)]

    def approve_version(self, name: str, version: int) -> tuple[dict[str, Any], bool]:
        record = self.versions[(name, version)]
        changed = record.get("status") == "pending"
        record.update(status="approved", approved_at="now")
        return record, changed

    def advance_latest(self, name: str, version: int, actor: str, action: str) -> dict[str, Any] | None:
        latest = self.aliases.get((name, "latest"))
        if latest and int(latest["version"]) >= version:
            return None
        self.point(name, "latest", version)
        return self.aliases[(name, "latest")]

    def put_telemetry(self, item: dict[str, Any]) -> bool:
        key = (item["model"], item.get("device_id"), item["batch_id"])
        if key in self.telemetry:
            return False
        self.telemetry[key] = dict(item)
        return True

    def query_telemetry(self, name: str, device: str | None = None, version: int | None = None,
                        since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return [i for (n, d, _), i in self.telemetry.items() if n == name and (device is None or d == device)
                and (version is None or i["model_version"] == version)]


class FakeS3:
    def generate_presigned_url(self, op: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://{Params['Bucket']}/{Params['Key']}?expires={ExpiresIn}"


def _serving(registry: FakeRegistry, settings: Settings = SETTINGS,
             aliases: AliasCache | None = None) -> ServingService:
    """A serving service with its own alias cache (TTL 0 unless the settings say otherwise)."""
    return ServingService(FakeS3(), registry, settings, ModelCache(2),  # type: ignore[arg-type]
                          aliases=aliases or AliasCache())


# -- serving ------------------------------------------------------------------------------------------

def test_resolve_by_version_alias_and_canary():
    reg = FakeRegistry()
    reg.add("iris", 1)
    reg.add("iris", 2)
    serving = _serving(reg)
    with pytest.raises(NoPublishedVersion):
        serving.resolve("iris")  # known, but latest was never set
    reg.point("iris", "latest", 1)
    assert serving.resolve("iris").version == 1 and serving.resolve("iris", "2").version == 2
    with pytest.raises(ModelNotFound):
        serving.resolve("../iris")
    with pytest.raises(ModelNotFound):
        serving.resolve("wine", 1)
    with pytest.raises(VersionNotFound):
        serving.resolve("iris", 3)
    with pytest.raises(AliasNotFound):
        serving.resolve("iris", alias="production")
    for bad in ({"version": "0"}, {"version": "x"}, {"version": 1, "alias": "latest"}, {"alias": "Prod"}):
        with pytest.raises(InvalidRequest):
            serving.resolve("iris", **bad)  # type: ignore[arg-type]
    # a canary takes exactly the callers rollout.in_canary puts under its weight; no caller: the base
    reg.point("iris", "production", 1, rollout.Canary(2, 0.5))
    for caller in [f"d{i}" for i in range(20)]:
        resolved = serving.resolve("iris", alias="production", caller=caller)
        canary = rollout.in_canary("iris", "production", caller, 0.5)
        assert (resolved.version, resolved.cohort) == ((2, "canary") if canary else (1, "base"))
        assert resolved.revision == 1
    assert serving.resolve("iris", alias="production").cohort == "base"


def test_manifest_and_signing_key_without_a_signer():
    reg = FakeRegistry()
    reg.add("iris", 1, model_type="forest")
    reg.point("iris", "latest", 1)
    serving = _serving(reg)
    manifest = serving.manifest("iris", None, None)
    assert (manifest["name"], manifest["version"], manifest["alias"], manifest["revision"]) == \
        ("iris", 1, "latest", 1)
    assert manifest["url"] == "https://models/models/iris/1.json?expires=300" and "signature" not in manifest
    assert "cohort" not in manifest and serving.manifest("iris", 1, None)["alias"] is None
    assert manifest_etag(manifest["sha256"], manifest["revision"]) == f'"{1:064d}-1"'
    with pytest.raises(SigningNotConfigured):
        serving.signing_key()


def test_scoring_loads_each_version_once():
    reg = FakeRegistry()
    reg.add("m", 1)
    reg.point("m", "latest", 1)
    serving = _serving(reg)
    loads = []

    class Model:
        features = [SimpleNamespace(name="x", kind="numeric")]
        classes = None
        methods = ["predict"]

        def has(self, method: str) -> bool:
            return method in self.methods

        def max_rows(self, limits: Any = None) -> int:
            return 10_000

        def predict(self, X: Any) -> Any:
            import numpy as np

            return np.asarray(X, dtype=float)[:, 0] * 2

    def fake_load(resolved: Any) -> Any:
        return serving.cache.get((resolved.name, resolved.version), lambda: loads.append(1) or Model())

    serving.load = fake_load  # type: ignore[method-assign]  # no S3 document to read
    assert serving.predict("m", None, None, [[1.0], [2.5]]) == {"model_name": "m", "model_version": 1,
                                                                 "predictions": [2.0, 5.0]}
    out = serving.infer_v2("m", None, {"id": "r", "inputs": [
        {"name": "t", "shape": [1, 1], "datatype": "FP64", "data": [4.0]}]})
    assert out["id"] == "r" and out["outputs"][0]["data"] == [8.0] and len(loads) == 1
    with pytest.raises(InvalidModelInput):
        serving.predict("m", None, None, "not rows")


# -- registry administration ---------------------------------------------------------------------------

def test_alias_rules_and_approval():
    reg = FakeRegistry()
    reg.add("iris", 1)
    reg.add("iris", 2, status="pending")
    admin = RegistryAdmin(reg)  # type: ignore[arg-type]
    result = admin.put_alias("iris", "production", 1)
    assert (result["name"], result["alias"], result["version"], result["revision"]) == \
        ("iris", "production", 1, 1)
    with pytest.raises(Conflict, match="pending approval"):
        admin.put_alias("iris", "production", 2)
    with pytest.raises(Conflict, match="pending approval"):
        admin.put_alias("iris", "production", 1, canary=rollout.Canary(2, 0.1))
    with pytest.raises(InvalidRequest, match="must differ"):
        admin.put_alias("iris", "production", 1, canary=rollout.Canary(1, 0.1))
    with pytest.raises(VersionNotFound):
        admin.put_alias("iris", "production", 9)
    with pytest.raises(ModelNotFound):
        admin.put_alias("wine", "production", 1)
    with pytest.raises(InvalidRequest, match="alias"):
        admin.put_alias("iris", "Production", 1)
    with pytest.raises(Conflict, match="latest"):
        admin.delete_alias("iris", "latest")
    approved = admin.approve_version("iris", "2")
    assert approved["approved"] and approved["latest_moved"] and approved["latest"]["version"] == 2
    again = admin.approve_version("iris", 2)
    assert not again["approved"] and not again["latest_moved"] and again["status"] == "approved"
    with pytest.raises(InvalidRequest):
        admin.approve_version("iris", "two")


# -- telemetry ------------------------------------------------------------------------------------------

def _telemetry_body(model: str = "iris", **kw: Any) -> dict[str, Any]:
    batch = {"batch_id": "batch-0001", "model_version": 1, "sha256": "a" * 64,
             "window_start": "2025-01-07T10:00:00Z", "calls": 2, "rows": 3, "errors": 0,
             "latency_ms": {"sum": 4.0, "min": 1.0, "max": 3.0},
             "features": {"x": {"type": "numeric", "count": 3, "sum": 6.0, "sum_squares": 14.0,
                                "min": 1.0, "max": 3.0}},
             "predictions": {"a": 3}, "future_field": 1}
    return {"schema": "modelsync.telemetry/1", "model": model, "batches": [batch], **kw}


def test_telemetry_is_stored_once_and_aggregated():
    reg = FakeRegistry()
    reg.add("iris", 1)
    service = TelemetryService(reg, retention_days=0)  # type: ignore[arg-type]
    request = TelemetryRequest.model_validate(_telemetry_body(device_id="dev-1")).plain()
    assert service.receive("iris", request, None) == {"accepted": ["batch-0001"], "duplicates": 0,
                                                      "stored": 1}
    assert service.receive("iris", request, "dev-1")["duplicates"] == 1
    stored = next(iter(reg.telemetry.values()))
    assert stored["device_id"] == "dev-1" and stored["expires_at"] is None
    summary = json.loads(stored["summary"])
    assert "batch_id" not in summary and "future_field" not in summary
    assert summary["features_truncated"] is False
    fleet = service.fleet("iris", None, "2025-01-07", "dev-1")
    assert fleet["batches"] == 1 and fleet["versions"][0]["features"]["x"]["mean"] == 2.0
    assert fleet["filters"] == {"version": None, "since": "2025-01-07", "device_id": "dev-1"}
    for body, header, message in (
            (_telemetry_body(model="wine"), None, "body.model"),
            (_telemetry_body(schema="modelsync.telemetry/2"), None, "body.schema"),
            (_telemetry_body(device_id="dev-1"), "dev-2", "X-Device-Id")):
        with pytest.raises(InvalidRequest, match=message):
            service.receive("iris", TelemetryRequest.model_validate(body).plain(), header)
    with pytest.raises(ModelNotFound):
        service.receive("wine", TelemetryRequest.model_validate(_telemetry_body("wine")).plain(), None)
    with pytest.raises(InvalidRequest, match="since"):
        service.fleet("iris", None, "yesterday", None)


# -- the shared LRU cache -------------------------------------------------------------------------------

def test_lru_cache_evicts_least_recent_and_never_stores_a_failed_load():
    cache: LRUCache[str, int] = LRUCache(2)
    assert cache.get("a", lambda: 1) == 1 and cache.get("b", lambda: 2) == 2
    assert cache.get("a", lambda: 99) == 1  # hit: "b" is now the least recent
    assert cache.get("c", lambda: 3) == 3 and len(cache) == 2
    assert cache.get("b", lambda: 20) == 20  # "b" was evicted, loaded again
    assert (cache.hits, cache.misses) == (1, 4)

    def fail() -> int:
        raise RuntimeError("kms down")

    with pytest.raises(RuntimeError):
        cache.get("d", fail)
    assert cache.get("d", lambda: 4) == 4
    cache.clear()
    assert len(cache) == 0 and (cache.hits, cache.misses) == (0, 0)


# -- the HTTP adapter -----------------------------------------------------------------------------------

def test_error_table_walks_the_mro():
    class Special(InvalidModelInput):
        code = "special"

    assert status_for(Special("x")) == HTTPStatus.BAD_REQUEST
    assert status_for(ServiceError("x")) == HTTPStatus.INTERNAL_SERVER_ERROR
    assert ERROR_STATUS[NoPublishedVersion] == HTTPStatus.SERVICE_UNAVAILABLE
    resp = error_proxy_response(PayloadTooLarge("too big"))
    assert resp["statusCode"] == 413 and json.loads(resp["body"]) == {
        "error": {"code": "payload_too_large", "message": "too big"}}


def test_validation_messages_name_the_field_and_tensor():
    body = json.dumps({"inputs": [{"name": "petals", "shape": "x"}]})
    errors = [{"loc": ("body", "inputs", 0, "shape"), "msg": "Input should be a valid list"}]
    assert describe_validation(errors, body, False) == \
        "input tensor 'petals': body.inputs[0].shape: Input should be a valid list"
    assert describe_validation([{"type": "json_invalid", "loc": ("body",)}], "{", False) == \
        "request body is not valid JSON"


def test_request_size_limits():
    telemetry = {"httpMethod": "POST", "resource": "/models/{name}/telemetry", "body": "x" * 101}
    predict = {"httpMethod": "POST", "resource": "/models/{name}/predict", "body": "x" * 101}
    assert request_size_limit(telemetry, SETTINGS) == 100 and request_size_limit(predict, SETTINGS) == 1000
    with pytest.raises(PayloadTooLarge, match="101 bytes"):
        check_request_size(telemetry, 100)
    check_request_size(predict, 1000)
    check_request_size({**telemetry, "isBase64Encoded": True, "body": "x" * 132}, 100)  # 99 bytes decoded


# -- request bodies before Powertools reads them (issue 9) -----------------------------------------------

@pytest.mark.parametrize(("content_type", "ok"), [
    (None, True), ("", True), ("application/json", True), ("APPLICATION/JSON ; charset=\"UTF-8\"", True),
    ("application/json; charset=utf8", True), ("text/plain", False),
    ("application/json; charset=latin-1", False),
    ("application/merge-patch+json", False), ("multipart/form-data; boundary=x", False)])
def test_body_media_types(content_type, ok):
    from modelsync.service.http.body import check_content_type
    from modelsync.service.http.errors import UnsupportedMediaType

    if ok:
        check_content_type(content_type)
    else:
        with pytest.raises(UnsupportedMediaType):
            check_content_type(content_type)
        assert status_for(UnsupportedMediaType("x")) == 415


def test_body_encodings_and_json_bounds():
    from modelsync.service.errors import InvalidRequest
    from modelsync.service.http.body import MAX_JSON_DEPTH, check_content_encoding, parse_json, prepare_body
    from modelsync.service.http.errors import UnsupportedMediaType

    check_content_encoding(None)
    check_content_encoding("identity")
    for encoding in ("gzip", "br", "deflate, gzip"):
        with pytest.raises(UnsupportedMediaType):
            check_content_encoding(encoding)
    assert parse_json('{"a": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}")
    for text, words in (("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
                        ("1" * 4301, "number"), ("{", "not valid JSON"), ('"\\ud800"x', "not valid JSON")):
        with pytest.raises(InvalidRequest, match=words):
            parse_json(text)
    event = {"httpMethod": "POST", "headers": {"content-type": "Application/Json"},
             "multiValueHeaders": {"content-type": ["Application/Json"]},
             "body": base64.b64encode('{"é": 1}'.encode()).decode(), "isBase64Encoded": True}
    prepare_body(event)
    assert event["body"] == '{"é": 1}' and event["isBase64Encoded"] is False
    assert event["headers"] == {"content-type": "application/json"}
    assert event["multiValueHeaders"] == {"content-type": ["application/json"]}


def test_telemetry_lists_when_each_device_was_last_seen():
    """``last_seen``: per device, its newest batch's ``received_at`` and version, newest first, at most
    MAX_LISTED_DEVICES (the report's per-device "last seen")."""
    from modelsync.service import telemetry

    summary = json.dumps({"calls": 1, "rows": 1, "errors": 0})

    def item(device: str | None, version: int, at: str) -> dict[str, Any]:
        return {"device_id": device, "model_version": version, "sha256": "s", "window_start": at,
                "window_end": at, "received_at": at, "summary": summary}

    out = telemetry.aggregate("iris", [
        item("kiosk-1", 1, "2026-01-01T10:00:00.000000Z"), item("kiosk-1", 2, "2026-01-01T12:00:00.000000Z"),
        item("kiosk-2", 1, "2026-01-01T11:00:00.000000Z"), item(None, 1, "2026-01-01T13:00:00.000000Z"),
        item("kiosk-1", 1, "2026-01-01T09:00:00.000000Z")])
    assert out["last_seen"] == [
        {"device_id": "kiosk-1", "version": 2, "last_seen": "2026-01-01T12:00:00.000000Z"},
        {"device_id": "kiosk-2", "version": 1, "last_seen": "2026-01-01T11:00:00.000000Z"}]
    many = telemetry.aggregate("iris", [
        item(f"d{i:03d}", 1, f"2026-01-01T10:{i // 60:02d}:{i % 60:02d}.000000Z")
        for i in range(telemetry.MAX_LISTED_DEVICES + 20)])
    assert len(many["last_seen"]) == telemetry.MAX_LISTED_DEVICES and many["devices"] == 120
    assert many["last_seen"][0]["device_id"] == "d119"
