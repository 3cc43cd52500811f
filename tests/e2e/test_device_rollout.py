"""Devices and rollout on the local stack: signed sync, offline scoring, notifications, canary, rollback,
telemetry - the device side is the vendored client (modelsync_device) talking HTTP to ``modelsync local``.

The test uses its own model name and its own SQS queue (subscribed with a filter policy on the ``model``
attribute), so it shares the session's stack with the other e2e tests without seeing their events.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_support import FEATURES, Stack, wait_for

from modelsync_device import ModelStore, SyncLoop, SyncResult, Telemetry, sync
from scorer import load_model

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]

MODEL = "rollout-iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
FLEET = [f"fleet-{i:03d}" for i in range(200)]


@pytest.fixture(scope="module")
def rollout_docs(iris: tuple[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two versions of a model of its own: different regularisation, so they disagree on some rows."""
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    X, y = iris
    v1 = export_model(LogisticRegression(max_iter=1000).fit(X, y), X.iloc[::10], name=MODEL)
    v2 = export_model(LogisticRegression(C=0.02, max_iter=1000).fit(X, y), X.iloc[::10], name=MODEL)
    return v1, v2


def _subscribe(stack: Stack) -> str:
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="e2e-rollout-device")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.info["topic_arn"], Protocol="sqs", Endpoint=arn,
                  Attributes={"FilterPolicy": json.dumps({"model": [MODEL]})})
    return str(url)


class Inbox:
    """What arrived on the device's queue (SQS messages, bodies as received: the SNS envelope)."""

    def __init__(self, stack: Stack, url: str) -> None:
        self.sqs, self.url = stack.client("sqs"), url
        self.seen: list[dict[str, Any]] = []

    def wait(self, what: str, want: Any, timeout: float = 30.0) -> dict[str, Any]:
        def probe() -> Any:
            for m in self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1).get("Messages", []):
                event = json.loads(json.loads(m["Body"])["Message"])
                self.seen.append({"body": m["Body"], "event": event})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            return next((s for s in self.seen if want(s["event"])), None)

        found: dict[str, Any] = wait_for(what, probe, timeout=timeout, interval=0.05)
        self.seen.remove(found)
        return found


def _publish(stack: Stack, doc: dict[str, Any], filename: str) -> int:
    stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{MODEL}/{filename}",
                                  Body=json.dumps(doc).encode(), ContentType="application/json")

    def version() -> int | None:
        r = stack.http("GET", f"/models/{MODEL}")
        if r.status != 200:
            return None
        mine = [v["version"] for v in r.json()["versions"] if v["sha256"] == doc["sha256"]]
        return mine[0] if mine else None

    return int(wait_for(f"{filename} published", version, timeout=30))


def _manifest_version(stack: Stack, device_id: str) -> int:
    r = stack.http("GET", f"/models/{MODEL}/manifest?alias=production", headers={"X-Device-Id": device_id})
    assert r.status == 200, r.body
    return int(r.json()["version"])


def test_device_rollout(stack: Stack, rollout_docs: tuple[dict[str, Any], dict[str, Any]],
                        tmp_path: Path) -> None:
    doc1, doc2 = rollout_docs
    inbox = Inbox(stack, _subscribe(stack))
    rows = np.asarray(ROWS, dtype=float)

    # -- v1 published; the device is provisioned with the registry's public key -----------------------
    v1 = _publish(stack, doc1, "v1.json")
    inbox.wait("version.published v1", lambda e: e["event_type"] == "version.published"
               and e["detail"]["version"] == v1)
    pem = stack.http("GET", "/signing-key", headers={"Accept": "application/x-pem-file"})
    assert pem.status == 200 and pem.body.startswith(b"-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "registry.pem"
    key_file.write_bytes(pem.body)

    # -- the device follows latest in the background: syncs v1 (signed manifest verified) -----------------
    device_dir = tmp_path / "kiosk-main"
    # min_rows=1: these windows hold 4 rows; the summaries are what this test follows through the registry
    store, telemetry = ModelStore(device_dir), Telemetry(device_dir, min_rows=1)
    results: list[SyncResult] = []
    loop = SyncLoop(stack.api, MODEL, store, alias="latest", device_id="kiosk-main", public_key=str(key_file),
                    interval=3600, jitter=0, event_spread=0, telemetry=telemetry, on_result=results.append)
    stop = threading.Event()
    worker = threading.Thread(target=loop.run_forever, args=(stop,), daemon=True)
    worker.start()
    try:
        first = wait_for("the first sync", lambda: results and results[0], timeout=30)
        assert (first.status, first.version) == ("updated", v1), first

        # -- offline: the registry is unreachable, the device keeps scoring v1 from disk --------------
        offline = sync("http://127.0.0.1:9", MODEL, store, device_id="kiosk-main", public_key=str(key_file))
        assert (offline.status, offline.version) == ("offline", v1)
        scored = store.predict(MODEL, rows, telemetry=telemetry)
        assert scored.version == v1
        assert scored.prediction.tolist() == load_model(doc1).predict(rows).tolist()

        # -- v2 published: the notification reaches the queue and wakes the device, which installs v2 -
        v2 = _publish(stack, doc2, "v2.json")
        note = inbox.wait("version.published v2", lambda e: e["event_type"] == "version.published"
                          and e["detail"]["version"] == v2)
        assert loop.on_event(note["body"])  # the SQS body as received: the SNS envelope
        updated = wait_for("the event-driven sync to v2", lambda: next(
            (r for r in results if r.status == "updated" and r.version == v2), None))
        assert updated.revision == 2
        assert store.predict(MODEL, rows, telemetry=telemetry).version == v2
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()

    # -- canary at 50 % on production: device ids split stably ------------------------------------------
    r = stack.http("PUT", f"/models/{MODEL}/aliases/production",
                   {"version": v1, "canary": {"version": v2, "weight": 0.5}}, headers={"If-Match": '"0"'})
    assert r.status == 200 and r.json()["canary"] == {"version": v2, "weight": 0.5}, r.body
    moved = inbox.wait("alias.moved with the canary", lambda e: e["event_type"] == "alias.moved"
                       and e["detail"]["alias"] == "production")
    assert moved["event"]["detail"]["canary"] == {"version": v2, "weight": 0.5}
    split = {d: _manifest_version(stack, d) for d in FLEET}
    counts = Counter(split.values())
    assert set(counts) == {v1, v2} and 60 <= counts[v2] <= 140, counts
    assert all(_manifest_version(stack, d) == split[d] for d in FLEET[:30])  # same id, same side
    canary_id = next(d for d in FLEET if split[d] == v2)
    base_id = next(d for d in FLEET if split[d] == v1)

    fleet = {d: ModelStore(tmp_path / d) for d in (canary_id, base_id)}

    def fleet_sync(device_id: str) -> SyncResult:
        return sync(stack.api, MODEL, fleet[device_id], alias="production", device_id=device_id,
                    public_key=str(key_file))

    got = {d: fleet_sync(d) for d in fleet}
    assert (got[canary_id].status, got[canary_id].version) == ("updated", v2), got
    assert (got[base_id].status, got[base_id].version) == ("updated", v1), got
    on_canary = fleet[canary_id].predict(MODEL, rows)
    assert on_canary.prediction.tolist() == load_model(doc2).predict(rows).tolist()

    # -- rollback: the canary is removed, canary devices return to v1 -----------------------------------
    r = stack.http("POST", f"/models/{MODEL}/aliases/production/rollback")
    assert r.status == 200, r.body
    assert (r.json()["version"], r.json()["canary"], r.json()["revision"]) == (v1, None, 2)
    rolled = inbox.wait("alias.moved for the rollback", lambda e: e["event_type"] == "alias.moved"
                        and e["detail"].get("action") == "rollback")
    assert rolled["event"]["detail"]["old_canary"] == {"version": v2, "weight": 0.5}
    back = fleet_sync(canary_id)
    assert (back.status, back.version, back.revision) == ("updated", v1, 2), back
    assert fleet_sync(base_id).status == "unchanged"
    assert {_manifest_version(stack, d) for d in FLEET[:50]} == {v1}

    # -- telemetry: what the main device scored shows up per version, counted once ----------------------
    flushed = telemetry.flush(stack.api, MODEL, "kiosk-main")
    assert flushed.status in ("ok", "empty"), flushed
    agg = stack.http("GET", f"/models/{MODEL}/telemetry")
    assert agg.status == 200, agg.body
    body = agg.json()
    per_version = {v["version"]: v for v in body["versions"]}
    assert set(per_version) == {v1, v2} and body["devices"] == 1
    for v in (v1, v2):
        mine = per_version[v]
        assert (mine["calls"], mine["rows"], mine["errors"]) == (1, len(ROWS), 0)
        sepal = per_version[v]["features"]["sepal_length"]
        assert sepal["count"] == len(ROWS) and sepal["mean"] == pytest.approx(rows[:, 0].mean())
        assert sum(per_version[v]["predictions"].values()) == len(ROWS)
    assert set(per_version[v1]["features"]) == set(FEATURES)
    assert telemetry.flush(stack.api, MODEL, "kiosk-main").status == "empty"
    assert stack.http("GET", f"/models/{MODEL}/telemetry").json()["batches"] == body["batches"]
