"""Pure pieces of the rollout: the canary split, alias transitions, the manifest signer, events, telemetry."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import modelsync_device as device
from modelsync.service import rollout, telemetry
from modelsync.service.config import Settings
from modelsync.service.errors import Conflict, InvalidRequest, SigningUnavailable
from modelsync.service.notify import ALIAS_MOVED, VERSION_APPROVED, VERSION_PUBLISHED, event_for_change
from modelsync.service.signing import ManifestSigner, der_to_pem

# -- the split ---------------------------------------------------------------------------------------

def test_cohort_is_the_documented_hash():
    digest = hashlib.sha256(b"iris:production:kiosk-0042").digest()
    want = int.from_bytes(digest[:8], "big") / 2**64
    assert rollout.cohort_fraction("iris", "production", "kiosk-0042") == want


def test_split_is_stable_uniform_monotonic_and_independent():
    ids = [f"dev-{i}" for i in range(20_000)]
    fractions = [rollout.cohort_fraction("iris", "production", d) for d in ids]
    assert all(0 <= f < 1 for f in fractions)
    for w in (0.01, 0.1, 0.5, 0.9):
        share = sum(f < w for f in fractions) / len(ids)
        assert abs(share - w) < 0.015, (w, share)
    # monotonic: a caller in the canary at 10 % is in it at 50 %
    assert all(rollout.in_canary("iris", "production", d, 0.5) for d in ids[:2000]
               if rollout.in_canary("iris", "production", d, 0.1))
    # other alias or model: another draw (about half of the 50 % cohort overlaps, not all of it)
    a = {d for d in ids if rollout.in_canary("iris", "production", d, 0.5)}
    b = {d for d in ids if rollout.in_canary("iris", "staging", d, 0.5)}
    assert 0.4 < len(a & b) / len(a) < 0.6
    assert not rollout.in_canary("iris", "production", None, 0.99)  # no caller id: base


def test_caller_ids():
    assert rollout.check_caller_id(None) is None and rollout.check_caller_id("") is None
    assert rollout.check_caller_id("kiosk-0042@site:7") == "kiosk-0042@site:7"
    for bad in ("a b", "a#b", "é", "x" * 129, "tab\t"):
        with pytest.raises(InvalidRequest, match="X-Device-Id"):
            rollout.check_caller_id(bad)


# -- transitions -------------------------------------------------------------------------------------

def test_put_promote_rollback_history():
    s = rollout.put(None, 1, None)
    assert (s.version, s.canary, s.history, s.action) == (1, None, [], "put")
    item = {"version": 1, "history": []}
    s = rollout.put(item, 1, rollout.Canary(2, 0.25))  # adding a canary keeps the base and history
    assert (s.version, s.canary, s.history) == (1, rollout.Canary(2, 0.25), [])
    item = {"version": 1, "history": [], "canary": {"version": 2, "weight": 0.25}}
    s = rollout.promote(item, "prod")
    assert (s.version, s.canary, s.history, s.action) == (2, None, [1], "promote")
    item = {"version": 2, "history": [1], "canary": {"version": 3, "weight": 0.5}}
    s = rollout.rollback(item, "prod")
    assert (s.version, s.canary, s.history) == (2, None, [1])
    s = rollout.rollback({"version": 2, "history": [1]}, "prod")
    assert (s.version, s.history, s.action) == (1, [], "rollback")
    with pytest.raises(Conflict, match="no canary"):
        rollout.promote({"version": 1}, "prod")
    with pytest.raises(Conflict, match="roll back"):
        rollout.rollback({"version": 1, "history": []}, "prod")
    with pytest.raises(InvalidRequest):
        rollout.put(item, 3, rollout.Canary(3, 0.5))
    # history is bounded, most recent last
    cur: dict[str, Any] | None = None
    for v in range(1, 30):
        st = rollout.put(cur, v, None)
        cur = {"version": st.version, "history": st.history}
    assert cur is not None and cur["history"] == list(range(19, 29))


def test_advance_only_forward_and_supersedes_canaries():
    assert rollout.advance({"version": 3}, 2, "publish") is None
    assert rollout.advance({"version": 3}, 3, "publish") is None
    s = rollout.advance({"version": 1, "canary": {"version": 3, "weight": 0.5}}, 2, "publish")
    assert s is not None and (s.version, s.canary, s.history) == (2, rollout.Canary(3, 0.5), [1])
    s = rollout.advance({"version": 1, "canary": {"version": 2, "weight": 0.5}}, 2, "approve")
    assert s is not None and (s.version, s.canary, s.action) == (2, None, "approve")
    desc = rollout.describe({"version": 2, "revision": 4, "canary": {"version": 3, "weight": 0.1}})
    assert desc["canary"] == {"version": 3, "weight": 0.1} and desc["history"] == []


# -- signing -----------------------------------------------------------------------------------------

class FakeKms:
    """KMS Sign / GetPublicKey over a local P-256 key (what moto does too)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.sign_calls = 0
        self.fail = False

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"KeyId": f"arn:aws:kms:us-east-1:123456789012:key/{KeyId}", "PublicKey": der,
                "KeySpec": "ECC_NIST_P256", "SigningAlgorithms": ["ECDSA_SHA_256"]}

    def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        assert (MessageType, SigningAlgorithm) == ("RAW", "ECDSA_SHA_256")
        if self.fail:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Sign")
        self.sign_calls += 1
        return {"Signature": self.key.sign(Message, ec.ECDSA(hashes.SHA256()))}


def _manifest(**kw: Any) -> dict[str, Any]:
    return {"name": "iris", "version": 2, "alias": "production", "revision": 3, "sha256": "a" * 64,
            "size": 1000, "format_version": "1.0", "document_key": "models/iris/2.json", "model_type": "x",
            "created_at": "2025-01-07T10:00:00.000000Z", "url": "https://b/k?sig=1",
            "url_expires_at": "2025-01-07T10:05:00Z", "cohort": "canary", **kw}


def test_signer_signs_what_the_device_verifies_and_caches_by_content():
    kms = FakeKms()
    signer = ManifestSigner(kms, "k-1")
    pem = signer.public_key()["public_key_pem"]
    public = device.load_public_key(pem)
    signed = signer.sign(_manifest())
    assert signed["key_id"] == "arn:aws:kms:us-east-1:123456789012:key/k-1"
    assert device.verify_manifest_signature(signed, public) is None
    # a new presigned URL reuses the signature; another revision or cohort is signed again
    again = signer.sign(_manifest(url="https://b/k?sig=2", url_expires_at="2025-01-07T11:00:00Z"))
    assert again["signature"] == signed["signature"] and kms.sign_calls == 1
    assert device.verify_manifest_signature(again, public) is None
    other = signer.sign(_manifest(revision=4))
    assert kms.sign_calls == 2 and device.verify_manifest_signature(other, public) is None
    assert device.verify_manifest_signature({**other, "revision": 3}, public)
    kms.fail = True
    with pytest.raises(SigningUnavailable):
        signer.sign(_manifest(revision=5))
    signer.clear()
    assert signer.kms_sign_calls == 0


def test_der_to_pem():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = der_to_pem(der)
    assert pem == key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert base64.b64decode("".join(pem.splitlines()[1:-1])) == der


# -- events ------------------------------------------------------------------------------------------

def test_events_for_canaries_approvals_and_telemetry():
    old = {"kind": "alias", "model": "iris", "alias": "prod", "version": 1, "revision": 1}
    new = {**old, "revision": 2, "canary": {"version": 2, "weight": 0.1}, "action": "put"}
    ev = event_for_change("MODIFY", old, new)
    assert ev is not None and ev.event_type == ALIAS_MOVED
    assert ev.detail == {"alias": "prod", "old_version": 1, "new_version": 1, "revision": 2,
                         "updated_by": None, "action": "put", "canary": {"version": 2, "weight": 0.1},
                         "old_canary": None}
    version = {"kind": "version", "model": "iris", "version": 2, "sha256": "a" * 64, "size": 9,
               "document_key": "k", "format_version": "1.0", "status": "pending"}
    published = event_for_change("INSERT", None, version)
    assert published is not None and published.event_type == VERSION_PUBLISHED
    assert published.detail["status"] == "pending"
    approved = event_for_change("MODIFY", version, {**version, "status": "approved", "approved_by": "api"})
    assert approved is not None and approved.event_type == VERSION_APPROVED
    done = {**version, "status": "approved"}
    assert event_for_change("MODIFY", done, done) is None
    tele = {"kind": "telemetry", "model": "iris", "pk": "TELEMETRY#iris", "sk": "TELEMETRY#d#b"}
    assert event_for_change("INSERT", None, tele) is None and event_for_change("REMOVE", tele, None) is None


# -- telemetry and settings --------------------------------------------------------------------------

def test_aggregate_merges_mixed_and_empty_summaries():
    def item(version: int, device_id: str | None, summary: dict[str, Any]) -> dict[str, Any]:
        import json

        return {"model_version": version, "device_id": device_id, "sha256": "a" * 64,
                "window_start": "2025-01-01T00:00:00Z", "window_end": "2025-01-01T01:00:00Z",
                "summary": json.dumps(summary)}

    base = {"calls": 1, "rows": 2, "errors": 0, "latency_ms": {"sum": 1.0, "min": 1.0, "max": 1.0}}
    out = telemetry.aggregate("iris", [
        item(1, "a", {**base, "features": {"f": {
            "type": "numeric", "count": 0, "missing": 2, "infinite": 0, "sum": 0.0, "sum_squares": 0.0,
            "min": None, "max": None}}}),
        item(1, None, {**base, "features": {"f": {"type": "categorical", "count": 2, "missing": 0}},
                       "output": {"type": "numeric", "count": 2, "missing": 0, "infinite": 0, "sum": 4.0,
                                  "sum_squares": 10.0, "min": 1.0, "max": 3.0}}),
        item(2, "a", {**base, "calls": 0, "rows": 0, "latency_ms": {"sum": 0.0, "min": None, "max": None}}),
    ], limit=2)
    assert out["truncated"] and out["batches"] == 2 and out["devices"] == 2
    (v1,) = out["versions"]
    assert v1["features"]["f"] == {"type": "mixed", "count": 2, "missing": 2, "infinite": 0,
                                   "missing_rate": 0.5}
    assert v1["output"]["mean"] == 2.0 and v1["output"]["std"] == 1.0


def test_settings_for_signing_and_telemetry():
    env = {"MODELS_BUCKET": "b", "REGISTRY_TABLE": "t"}
    s = Settings.from_env({**env, "MANIFEST_SIGNING_KEY_ID": " alias/k ", "TELEMETRY_RETENTION_DAYS": "7",
                           "MAX_TELEMETRY_BYTES": "10"})
    assert s.manifest_signing_key_id == "alias/k"
    assert (s.telemetry_retention_days, s.max_telemetry_bytes) == (7, 1024)
    d = Settings.from_env(env)
    assert (d.manifest_signing_key_id, d.telemetry_retention_days, d.max_telemetry_bytes) == ("", 90, 1 << 20)
