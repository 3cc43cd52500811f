"""Devices and rollout, server side: canary split, promote, rollback, approval, signed manifests, telemetry.

The device client (modelsync_device) is exercised for real through ``device_http`` (conftest): its requests go
to the Score handler as API Gateway events and its presigned downloads to the moto bucket.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

import modelsync_device as device
import scorer
from modelsync.service import rollout
from modelsync_device import telemetry as device_telemetry

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
CANARY_50 = {"version": 1, "canary": {"version": 2, "weight": 0.5}}


def _error(body: dict) -> tuple[str, str]:
    """(code, message); V2 routes answer ``{"error": message}`` (Open Inference Protocol): code ""."""
    err = body["error"]
    if isinstance(err, str):
        return "", err
    return err["code"], err["message"]


@pytest.fixture
def two_versions(publish, models):
    assert publish("iris", models.iris)["version"] == 1
    assert publish("iris", models.iris_v2)["version"] == 2


# -- canary ------------------------------------------------------------------------------------------

def test_canary_split_is_stable_and_about_half(api, two_versions):
    # GIVEN production at v1 with a 50 % canary on v2
    status, headers, body = api("PUT", "/models/iris/aliases/production", body=CANARY_50)
    assert status == 200 and headers["etag"] == '"1"'
    assert (body["version"], body["revision"], body["canary"]) == (1, 1, {"version": 2, "weight": 0.5})
    # WHEN 1,000 devices are split with the stored alias (the rule resolve() applies to each request)
    service = api.app.SERVICE
    stored = rollout.canary_of(api.app.registry.get_alias("iris", "production"))
    assert stored == rollout.Canary(2, 0.5)
    ids = [f"device-{i:04d}" for i in range(1000)]
    first = {d: 2 if rollout.in_canary("iris", "production", d, stored.weight) else 1 for d in ids}
    # THEN about half get the canary
    sides = Counter(first.values())
    assert 430 <= sides[2] <= 570, sides
    # AND requests resolve exactly so, and the same device lands on the same side every time
    for d in ids[:40]:  # (~40 ms per resolve on moto)
        for _ in range(2):
            resolved = service.resolve("iris", alias="production", caller=d)
            assert (resolved.version, resolved.cohort) == (first[d], "canary" if first[d] == 2 else "base")
    # the HTTP routes agree with each other: manifest (header or query), plain predict, for the same device
    canary_id = next(d for d in ids if first[d] == 2)
    base_id = next(d for d in ids if first[d] == 1)
    for d, want in ((canary_id, 2), (base_id, 1)):
        _, h1, m1 = api("GET", "/models/iris/manifest", query={"alias": "production"},
                        headers={"X-Device-Id": d})
        _, _, m2 = api("GET", "/models/iris/manifest", query={"alias": "production", "device_id": d})
        _, _, p = api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS},
                      query={"alias": "production"}, headers={"X-Device-Id": d})
        assert m1["version"] == m2["version"] == p["model_version"] == want
        assert m1["cohort"] == ("canary" if want == 2 else "base") and h1["vary"] == "X-Device-Id"
    # no caller id: the base version; an explicit version is never split
    assert api("GET", "/models/iris/manifest", query={"alias": "production"})[2]["version"] == 1
    _, _, pinned = api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS}, query={"version": "1"},
                       headers={"X-Device-Id": canary_id})
    assert pinned["model_version"] == 1
    # the two cohorts have different ETags under the same revision
    etags = {api("GET", "/models/iris/manifest", query={"alias": "production"},
                 headers={"X-Device-Id": d})[1]["etag"] for d in (canary_id, base_id)}
    assert len(etags) == 2
    # raising the weight only moves devices from base to canary
    wider = {"version": 1, "canary": {"version": 2, "weight": 0.8}}
    api("PUT", "/models/iris/aliases/production", body=wider)
    after = {d: service.resolve("iris", alias="production", caller=d).version for d in ids[:40]}
    assert all(after[d] == 2 for d in after if first[d] == 2)
    assert sum(v == 2 for v in after.values()) > sum(first[d] == 2 for d in after)


def test_canary_on_latest_splits_plain_and_v2_requests(api, two_versions):
    # latest back on v1 with v2 as a canary: requests naming no version are split by caller
    assert api("PUT", "/models/iris/aliases/latest", body=CANARY_50)[0] == 200
    ids = [f"kiosk-{i}" for i in range(60)]
    tensor = {"name": "x", "shape": [3, 4], "datatype": "FP64", "data": IRIS_ROWS}
    plain = {d: api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS},
                    headers={"X-Device-Id": d})[2]["model_version"] for d in ids}
    v2 = {d: int(api("POST", "/v2/models/iris/infer", body={"inputs": [tensor]},
                     query={"device_id": d})[2]["model_version"]) for d in ids}
    assert plain == v2 and set(plain.values()) == {1, 2}
    assert api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})[2]["model_version"] == 1


def test_canary_request_validation(api, two_versions):
    bad = [({"version": 1, "canary": {"version": 1, "weight": 0.5}}, "canary.version"),
           ({"version": 1, "canary": {"version": 2, "weight": 1.0}}, "weight"),
           ({"version": 1, "canary": {"version": 2, "weight": 0}}, "weight"),
           ({"version": 1, "canary": {"version": 2}}, "weight"),
           ({"version": 1, "canary": {"version": 2, "weight": 0.5, "x": 1}}, "x")]
    for body, fragment in bad:
        status, _, resp = api("PUT", "/models/iris/aliases/production", body=body)
        assert status == 400 and fragment in _error(resp)[1], (body, resp)
    status, _, resp = api("PUT", "/models/iris/aliases/production",
                          body={"version": 1, "canary": {"version": 9, "weight": 0.5}})
    assert status == 404 and "canary.version" in _error(resp)[1]
    status, _, resp = api("GET", "/models/iris/manifest", headers={"X-Device-Id": "has space"})
    assert status == 400 and "X-Device-Id" in _error(resp)[1]


# -- promote and rollback ----------------------------------------------------------------------------

def test_promote_moves_the_canary_version_to_the_alias(api, two_versions):
    api("PUT", "/models/iris/aliases/production", body=CANARY_50)
    # a stale If-Match is refused, the current one promotes
    assert api("POST", "/models/iris/aliases/production/promote", headers={"If-Match": '"7"'})[0] == 412
    status, headers, body = api("POST", "/models/iris/aliases/production/promote",
                                headers={"If-Match": '"1"'})
    assert status == 200 and headers["etag"] == '"2"'
    assert (body["version"], body["revision"], body["canary"], body["history"]) == (2, 2, None, [1])
    assert body["action"] == "promote"
    # every device now gets v2, whatever its cohort was
    versions = {api("GET", "/models/iris/manifest", query={"alias": "production"},
                    headers={"X-Device-Id": f"d{i}"})[2]["version"] for i in range(20)}
    assert versions == {2}
    # nothing left to promote
    status, _, body = api("POST", "/models/iris/aliases/production/promote")
    assert status == 409 and "no canary" in _error(body)[1]
    assert api("POST", "/models/iris/aliases/nope/promote")[0] == 404
    assert api("POST", "/models/nomodel/aliases/production/promote")[0] == 404


def test_rollback_removes_the_canary_then_walks_back_the_history(api, publish, models, two_versions):
    publish("iris", models.iris)  # v3 (same document as v1, another version)
    api("PUT", "/models/iris/aliases/production", body={"version": 1})  # rev 1
    api("PUT", "/models/iris/aliases/production", body={"version": 2})  # rev 2, history [1]
    api("PUT", "/models/iris/aliases/production",
        body={"version": 2, "canary": {"version": 3, "weight": 0.25}})  # rev 3, history [1]
    # rollback with a canary: the canary goes, the base stays
    status, _, body = api("POST", "/models/iris/aliases/production/rollback")
    assert status == 200 and (body["version"], body["canary"], body["revision"]) == (2, None, 4)
    # rollback without a canary: back to the previous version, then further back, then nothing left
    status, _, body = api("POST", "/models/iris/aliases/production/rollback", headers={"If-Match": '"4"'})
    assert status == 200 and (body["version"], body["revision"], body["history"]) == (1, 5, [])
    status, _, body = api("POST", "/models/iris/aliases/production/rollback")
    assert status == 409 and "roll back" in _error(body)[1]
    assert api("POST", "/models/iris/aliases/production/rollback", headers={"If-Match": '"1"'})[0] == 412
    # the registry view shows it all
    alias = api("GET", "/models/iris")[2]["aliases"]["production"]
    assert (alias["version"], alias["revision"], alias["canary"], alias["action"]) == (1, 5, None, "rollback")


def test_publish_keeps_a_canary_that_is_still_ahead(api, publish, models, two_versions):
    # latest on v1 with a canary on v2; a v3 upload supersedes both
    api("PUT", "/models/iris/aliases/latest", body=CANARY_50)
    publish("iris", models.iris)
    latest = api("GET", "/models/iris")[2]["aliases"]["latest"]
    assert (latest["version"], latest["canary"], latest["action"]) == (3, None, "publish")


def test_alias_events_carry_the_canary(aws, api, handler, lambda_context, two_versions):
    handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)  # the publishes
    sink = aws.subscribe_queue()
    api("PUT", "/models/iris/aliases/production", body=CANARY_50)
    api("POST", "/models/iris/aliases/production/promote")
    api("POST", "/models/iris/aliases/production/rollback")
    assert handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)[
        "batchItemFailures"] == []
    moved = [m["message"]["detail"] for m in aws.received(sink)]
    assert [(d["action"], d["old_version"], d["new_version"], d["revision"]) for d in moved] == [
        ("put", None, 1, 1), ("promote", 1, 2, 2), ("rollback", 2, 1, 3)]
    assert moved[0]["canary"] == {"version": 2, "weight": 0.5} and moved[0]["old_canary"] is None
    assert moved[1]["canary"] is None and moved[1]["old_canary"] == {"version": 2, "weight": 0.5}
    assert "canary" not in moved[2]  # no canary before or after: the plain alias.moved shape


# -- approval ----------------------------------------------------------------------------------------

def test_approval_flow(aws, api, handler, publish, models, lambda_context, monkeypatch):
    app = handler("PublishFunction")
    monkeypatch.setattr(app, "SETTINGS", dataclasses.replace(app.SETTINGS, require_approval=True))
    sink = aws.subscribe_queue()
    # GIVEN v1 published on a deployment that requires approval
    result = publish("iris", models.iris)
    assert result["version"] == 1 and result["pending_approval"] and not result["latest_moved"]
    detail = api("GET", "/models/iris")[2]
    assert detail["versions"][0]["status"] == "pending" and "latest" not in detail["aliases"]
    # THEN latest serves nothing yet, the explicit version scores, aliases refuse it
    assert api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})[0] == 503
    status, _, body = api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS},
                          query={"version": "1"})
    assert status == 200 and body["model_version"] == 1
    assert api("GET", "/models/iris/manifest", query={"version": "1"})[0] == 200
    status, _, body = api("PUT", "/models/iris/aliases/production", body={"version": 1})
    assert status == 409 and "pending approval" in _error(body)[1]
    # WHEN an operator approves it, latest moves to it
    status, _, body = api("POST", "/models/iris/versions/1/approve")
    assert status == 200 and body["status"] == "approved" and body["approved"] and body["latest_moved"]
    assert body["latest"]["version"] == 1 and body["latest"]["action"] == "approve"
    assert api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})[2]["model_version"] == 1
    # v2 arrives pending: latest stays on v1 until it is approved; approving v1 again changes nothing
    publish("iris", models.iris_v2)
    assert api("GET", "/models/iris/manifest")[2]["version"] == 1
    assert api("POST", "/models/iris/versions/2/approve")[2]["latest"]["version"] == 2
    status, _, body = api("POST", "/models/iris/versions/1/approve")
    assert status == 200 and not body["approved"] and not body["latest_moved"]
    assert body["latest"]["version"] == 2  # only forward
    assert api("POST", "/models/iris/versions/9/approve")[0] == 404
    assert api("POST", "/models/iris/versions/x/approve")[0] == 400
    # the events say so
    handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)
    events = [(m["message"]["event_type"], m["message"]["detail"].get("version",
                                                                      m["message"]["detail"].get("new_version")))
              for m in aws.received(sink)]
    assert ("version.published", 1) in events and ("version.approved", 1) in events
    assert ("alias.moved", 1) in events and ("alias.moved", 2) in events
    published = [m for m in events if m[0] == "version.published"]
    assert len(published) == 2


# -- signed manifests --------------------------------------------------------------------------------

def test_signed_manifest_verifies_with_the_public_key_from_the_endpoint(api, publish, models):
    publish("iris", models.iris)
    status, _, key = api("GET", "/signing-key")
    assert status == 200 and (key["key_spec"], key["signing_algorithm"]) == ("ECC_NIST_P256", "ECDSA_SHA_256")
    public = device.load_public_key(key["public_key_pem"])
    pem_request = api.event("GET", "/signing-key", headers={"Accept": "application/x-pem-file"})
    resp = api.app.lambda_handler(pem_request, api.context)
    assert resp["body"] == key["public_key_pem"] and resp["body"].startswith("-----BEGIN PUBLIC KEY-----")
    manifest = api("GET", "/models/iris/manifest")[2]
    assert manifest["signature_algorithm"] == "ECDSA_SHA_256" and manifest["key_id"] == key["key_id"]
    assert device.verify_manifest_signature(manifest, public) is None
    assert device.check_manifest(manifest, "iris", "latest") == []
    # the URL is outside the signature (it changes per request); everything else is inside
    assert device.verify_manifest_signature({**manifest, "url": "https://elsewhere/x"}, public) is None
    for field, value in (("version", 2), ("revision", 9), ("sha256", "0" * 64), ("cohort", "canary")):
        assert device.verify_manifest_signature({**manifest, field: value}, public), field
    # one KMS Sign per manifest content: repeated requests reuse the signature, an alias move signs anew
    signer = api.app.SIGNER
    calls = signer.kms_sign_calls
    for _ in range(3):
        assert api("GET", "/models/iris/manifest")[2]["signature"] == manifest["signature"]
    assert signer.kms_sign_calls == calls
    api("PUT", "/models/iris/aliases/latest", body={"version": 1})
    moved = api("GET", "/models/iris/manifest")[2]
    assert moved["revision"] == 2 and device.verify_manifest_signature(moved, public) is None
    assert signer.kms_sign_calls == calls + 1


def test_device_sync_with_the_registry_key(api, publish, models, device_http, tmp_path):
    """The device client end to end: signed manifest, download, checks, canary cohort, rollback."""
    publish("iris", models.iris)
    publish("iris", models.iris_v2)
    pem = api("GET", "/signing-key")[2]["public_key_pem"]
    api("PUT", "/models/iris/aliases/production", body=CANARY_50)
    service = api.app.SERVICE
    ids = [f"unit-{i}" for i in range(40)]
    canary_id = next(d for d in ids if service.resolve("iris", alias="production", caller=d).version == 2)
    store = device.ModelStore(tmp_path / "store")
    def sync() -> device.SyncResult:
        return device.sync(device_http.base, "iris", store, alias="production", device_id=canary_id,
                           public_key=pem, http=device_http)

    result = sync()
    assert (result.status, result.version, result.revision) == ("updated", 2, 1), result
    assert sync().status == "unchanged"  # 304 on the cohort's ETag
    api("POST", "/models/iris/aliases/production/rollback")
    result = sync()
    assert (result.status, result.version, result.revision) == ("updated", 1, 2)
    scored = store.predict("iris", IRIS_ROWS)
    assert scored.version == 1 and scored.prediction.tolist() == scorer.load_model(models.iris).predict(
        IRIS_ROWS).tolist()
    # a device provisioned with another key refuses the registry's manifests
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    refused = device.sync(device_http.base, "iris", device.ModelStore(tmp_path / "other"), alias="production",
                          public_key=other, http=device_http)
    assert refused.status == "refused" and "does not verify" in (refused.reason or "")


def test_unsigned_deployment_and_kms_failures(api, publish, models, monkeypatch):
    publish("iris", models.iris)
    signer = api.app.SERVICE.signer

    def broken(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "KMSInternalException", "Message": "down"}}, "Sign")

    monkeypatch.setattr(signer.kms, "sign", broken)
    status, headers, body = api("GET", "/models/iris/manifest")
    assert status == 503 and _error(body)[0] == "signing_unavailable" and headers["retry-after"]
    monkeypatch.setattr(api.app.SERVICE, "signer", None)
    status, _, manifest = api("GET", "/models/iris/manifest")
    assert status == 200 and "signature" not in manifest and "key_id" not in manifest
    status, _, body = api("GET", "/signing-key")
    assert status == 404 and _error(body)[0] == "signing_not_configured"


# -- telemetry ---------------------------------------------------------------------------------------

def _payload(batches: list[dict[str, Any]], device_id: str | None = "kiosk-1", model: str = "iris",
             dropped: int = 0) -> dict[str, Any]:
    return {"schema": "modelsync.telemetry/1", "model": model, "device_id": device_id,
            "sent_at": "2025-01-07T10:05:00Z", "dropped_batches": dropped, "batches": batches}


def _batch(models: Any, batch_id: str, x: np.ndarray, version: int = 1, preds: dict[str, int] | None = None
           ) -> dict[str, Any]:
    """A sealed batch as the device sends it, built with the device's own summary code."""
    w = device_telemetry.new_window(version, models.iris["sha256"])
    w.update(calls=2, rows=int(x.shape[0]), errors=0, latency_ms={"sum": 3.0, "min": 1.0, "max": 2.0},
             predictions=preds or {"setosa": int(x.shape[0])}, window_start="2025-01-07T10:00:00Z",
             window_end="2025-01-07T10:05:00Z")
    w["features"] = {"sepal_length": device_telemetry.numeric_summary(x[:, 0]),
                     "plan": {"type": "categorical", "count": int(x.shape[0]) - 1, "missing": 1}}
    return {"batch_id": batch_id, **device_telemetry.finalise(w, min_rows=0)}


def test_telemetry_post_dedupes_and_get_aggregates(aws, api, handler, publish, models, lambda_context):
    publish("iris", models.iris)
    handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)
    sink = aws.subscribe_queue()
    rng = np.random.default_rng(7)
    a, b, c = rng.normal(5, 1, (30, 1)), rng.normal(6, 2, (20, 1)), rng.normal(4, 1, (10, 1))
    a[3, 0], b[0, 0] = np.nan, np.inf
    first = _payload([_batch(models, "00000000-0000-4000-8000-00000000000a", a),
                      _batch(models, "00000000-0000-4000-8000-00000000000b", b,
                             preds={"setosa": 5, "virginica": 15})], dropped=3)
    # WHEN a device posts two batches, then retries the same request (a lost acknowledgement)
    status, _, body = api("POST", "/models/iris/telemetry", body=first, headers={"X-Device-Id": "kiosk-1"})
    assert status == 200, body
    assert body == {"accepted": [b["batch_id"] for b in first["batches"]], "duplicates": 0,
                                      "stored": 2}
    status, _, body = api("POST", "/models/iris/telemetry", body=first, headers={"X-Device-Id": "kiosk-1"})
    assert status == 200 and body["duplicates"] == 2 and len(body["accepted"]) == 2
    # AND another device posts a batch with the same id (ids are per device), for version 1 too
    other = _payload([_batch(models, "00000000-0000-4000-8000-00000000000a", c)], device_id="kiosk-2")
    assert api("POST", "/models/iris/telemetry", body=other)[2]["stored"] == 1
    # THEN the aggregate counts every batch once and merges the sums exactly
    status, _, agg = api("GET", "/models/iris/telemetry")
    assert status == 200 and (agg["batches"], agg["devices"], agg["dropped_batches"]) == (3, 2, 3)
    (v1,) = agg["versions"]
    assert (v1["version"], v1["devices"], v1["batches"], v1["calls"], v1["rows"]) == (1, 2, 3, 6, 60)
    assert v1["latency_ms"] == {"sum": 9.0, "min": 1.0, "max": 2.0, "mean": 1.5}
    assert v1["predictions"] == {"setosa": 45, "virginica": 15}
    x = np.concatenate([a, b, c])[:, 0]
    finite = x[np.isfinite(x)]
    f = v1["features"]["sepal_length"]
    assert (f["count"], f["missing"], f["infinite"]) == (finite.size, 1, 1)
    assert f["mean"] == pytest.approx(finite.mean(), rel=1e-12) and f["std"] == pytest.approx(finite.std(),
                                                                                                rel=1e-9)
    assert (f["min"], f["max"]) == (finite.min(), finite.max())
    assert f["missing_rate"] == pytest.approx(1 / 60)
    assert v1["features"]["plan"] == {"type": "categorical", "count": 57, "missing": 3, "infinite": 0,
                                      "missing_rate": 3 / 60}
    # filters: one device, a version, a time
    assert api("GET", "/models/iris/telemetry", query={"device_id": "kiosk-2"})[2]["batches"] == 1
    assert api("GET", "/models/iris/telemetry", query={"version": "2"})[2]["versions"] == []
    assert api("GET", "/models/iris/telemetry", query={"since": "2030-01-01"})[2]["batches"] == 0
    assert api("GET", "/models/iris/telemetry", query={"since": "yesterday"})[0] == 400
    # telemetry items expire through the table's TTL and never become model events
    items = [i for i in aws.registry_items() if i["kind"] == "telemetry"]
    assert len(items) == 3 and all(i["pk"] == "TELEMETRY#iris" and i["expires_at"] > 0 for i in items)
    assert handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)[
        "batchItemFailures"] == []
    assert aws.received(sink) == []


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda p: p.update(schema="modelsync.telemetry/2"), "body.schema"),
    (lambda p: p.update(model="other"), "body.model"),
    (lambda p: p["batches"][0].update(calls=-1), "body.batches[0].calls"),
    (lambda p: p["batches"][0].update(rows="many"), "body.batches[0].rows"),
    (lambda p: p["batches"][0].update(sha256="xyz"), "body.batches[0].sha256"),
    (lambda p: p["batches"][0].update(model_version=True), "body.batches[0].model_version"),
    (lambda p: p["batches"][0]["features"]["sepal_length"].update(count=1.5),
     "body.batches[0].features.sepal_length.count"),
    (lambda p: p["batches"][0].pop("latency_ms"), "body.batches[0].latency_ms"),
    (lambda p: p["batches"][0].update(window_start="yesterday"), "body.batches[0].window_start"),
    (lambda p: p.update(batches=[]), "body.batches"),
    (lambda p: p.update(device_id="kiosk-9"), "body.device_id"),
    (lambda p: p.pop("schema"), "body.schema"),
])
def test_telemetry_validation_names_the_field(api, publish, models, mutate, fragment):
    publish("iris", models.iris)
    payload = _payload([_batch(models, "00000000-0000-4000-8000-000000000001", np.ones((4, 1)))])
    mutate(payload)
    status, _, body = api("POST", "/models/iris/telemetry", body=payload, headers={"X-Device-Id": "kiosk-1"})
    assert status == 400 and fragment in _error(body)[1], body


def test_telemetry_limits_and_unknown_models(api, publish, models):
    payload = _payload([_batch(models, "00000000-0000-4000-8000-000000000001", np.ones((4, 1)))])
    assert api("POST", "/models/iris/telemetry", body=payload)[0] == 404
    publish("iris", models.iris)
    big = _payload([_batch(models, f"00000000-0000-4000-8000-{i:012d}", np.ones((4, 1))) for i in range(100)])
    big["batches"][0]["predictions"] = {f"label-{i}": 1 for i in range(900)}
    big["batches"][1]["predictions"] = {f"label-{i}": 1 for i in range(900)}
    assert len(json.dumps(big).encode()) < 1024 * 1024
    assert api("POST", "/models/iris/telemetry", body=big)[0] == 200
    big["sent_at"] = "x" * (1024 * 1024)  # over MAX_TELEMETRY_BYTES (1 MiB), refused before parsing
    status, _, body = api("POST", "/models/iris/telemetry", body=big)
    assert status == 413 and _error(body)[0] == "payload_too_large"
    too_many = _payload([_batch(models, f"00000000-0000-4000-8000-{i:012d}", np.ones((1, 1)))
                         for i in range(101)])
    status, _, body = api("POST", "/models/iris/telemetry", body=too_many)
    assert status == 400 and "body.batches" in _error(body)[1]


def test_device_telemetry_flush_with_a_lost_acknowledgement(api, publish, models, device_http, tmp_path):
    """The device's own flush: an answer lost after the server stored the batches is retried, deduped."""
    publish("iris", models.iris)
    store = device.ModelStore(tmp_path / "store")
    tel = device.Telemetry(tmp_path / "store")
    synced = device.sync(device_http.base, "iris", store, device_id="gw-7", http=device_http)
    assert synced.status == "updated"
    rows = np.array(IRIS_ROWS * 5, dtype=float)
    store.predict("iris", rows, telemetry=tel)
    bad = rows[:2].copy()
    bad[0, 2] = np.nan  # this model cannot score a missing value: an error call
    with pytest.raises(scorer.InvalidInput):
        store.predict("iris", bad, telemetry=tel)
    store.predict("iris", rows[:4], telemetry=tel)
    device_http.fail_next.append(503)  # the first POST is stored, but its answer is lost
    flushed = tel.flush(device_http.base, "iris", "gw-7", http=device_http, sleep=lambda s: None)
    assert (flushed.status, flushed.acknowledged, flushed.remaining) == ("ok", 1, 0), flushed
    posts = [c for c in device_http.calls if c[0] == "POST"]
    assert [c[2] for c in posts] == [503, 200]
    agg = api("GET", "/models/iris/telemetry")[2]
    (v1,) = agg["versions"]
    assert (v1["calls"], v1["errors"], v1["rows"], v1["devices"], v1["batches"]) == (3, 1, 19, 1, 1)
    petal = v1["features"]["petal_length"]
    values = np.concatenate([rows[:, 2], rows[:4, 2]])
    assert (petal["count"], petal["missing"], petal["max"]) == (19, 0, values.max())
    assert petal["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert petal["std"] == pytest.approx(values.std(), rel=1e-9)
    assert sum(v1["predictions"].values()) == 19


def test_sample_events(aws, api, handler, two_versions, events, lambda_context):
    # `sam local invoke ScoreFunction -e events/score_alias_canary_put.json` and friends
    resp = api.app.lambda_handler(events("score_alias_canary_put"), api.context)
    body = json.loads(resp["body"])
    assert resp["statusCode"] == 200 and body["canary"] == {"version": 2, "weight": 0.1}
    resp = api.app.lambda_handler(events("score_telemetry_post"), api.context)
    assert resp["statusCode"] == 200 and json.loads(resp["body"])["stored"] == 1
    sink = aws.subscribe_queue()
    app = handler("NotifyFunction")
    assert app.lambda_handler(events("notify_stream_alias_canary"), lambda_context)["batchItemFailures"] == []
    (msg,) = aws.received(sink)
    assert msg["attributes"] == {"event_type": "alias.moved", "model": "iris"}
    assert msg["message"]["detail"] == {
        "alias": "production", "old_version": 1, "new_version": 1, "revision": 5, "updated_by": "api",
        "action": "put", "canary": {"version": 2, "weight": 0.1}, "old_canary": None}


def test_a_batch_too_large_to_store_is_refused_before_anything_is_stored(api, publish, models):
    publish("iris", models.iris)
    small = _batch(models, "00000000-0000-4000-8000-000000000001", np.ones((4, 1)))
    huge = _batch(models, "00000000-0000-4000-8000-000000000002", np.ones((4, 1)))
    summary = huge["features"]["sepal_length"]
    huge["features"] = {f"{i:04d}-" + "f" * 250: summary for i in range(1024)}
    status, _, body = api("POST", "/models/iris/telemetry", body=_payload([small, huge]))
    assert status == 400 and "body.batches[1]" in _error(body)[1]
    assert api("GET", "/models/iris/telemetry")[2]["batches"] == 0
