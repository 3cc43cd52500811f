"""The whole system on the local stack: publish, reject, notify, score (V2 + plain), manifest, batch, parity.

Everything goes through public interfaces of ``modelsync local`` (see conftest): S3/SQS/SNS via boto3 at
the embedded AWS endpoint, HTTP via urllib at the API.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from typing import Any

import numpy as np
import pytest
from e2e_support import FEATURES, Stack, wait_for

pytestmark = pytest.mark.e2e

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


def test_ready_line_and_routes(stack: Stack) -> None:
    assert {"api", "aws_endpoint", "region", "bucket", "topic_arn"} <= set(stack.info)
    assert stack.bucket == "modelsync-models"
    assert stack.info["topic_arn"].startswith(f"arn:aws:sns:{stack.region}:")
    ready = stack.http("GET", "/v2/health/ready")
    assert ready.status == 200 and ready.json() == {"ready": True}
    # the template's resources exist in the embedded AWS, named by the shared rule
    s3 = stack.client("s3")
    assert s3.get_bucket_versioning(Bucket=stack.bucket)["Status"] == "Enabled"
    tables = stack.client("dynamodb").list_tables()["TableNames"]
    assert "modelsync-registry" in tables
    # like API Gateway: an undeclared route (or method) is a 403 "Missing Authentication Token"
    for method, path in (("GET", "/nope"), ("DELETE", "/models")):
        r = stack.http(method, path)
        assert r.status == 403 and r.json() == {"message": "Missing Authentication Token"}


def test_publish(stack: Stack, published: dict[str, Any], iris_doc: dict[str, Any]) -> None:
    assert published["name"] == "iris"
    v1 = next(v for v in published["versions"] if v["version"] == 1)
    assert v1["sha256"] == iris_doc["sha256"]
    assert published["aliases"]["latest"]["version"] == 1
    # the exact bytes are published under models/
    body = stack.client("s3").get_object(Bucket=stack.bucket, Key=v1["document_key"])["Body"].read()
    assert json.loads(body)["sha256"] == iris_doc["sha256"]
    listing = stack.http("GET", "/models").json()
    assert any(m["name"] == "iris" and m["latest_version"] == 1 for m in listing["models"])


def test_rejection_writes_report(stack: Stack, iris_doc: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(iris_doc))
    broken["metadata"]["name"] = "broken"
    broken["estimator"]["coef"] = "not an array"
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.bucket, Key="incoming/broken/model.json", Body=json.dumps(broken).encode())

    def report() -> Any:
        listing = s3.list_objects_v2(Bucket=stack.bucket, Prefix="reports/broken/")
        keys = [o["Key"] for o in listing.get("Contents", [])]
        return keys and json.loads(s3.get_object(Bucket=stack.bucket, Key=keys[0])["Body"].read())

    rep = wait_for("a report under reports/broken/", report, timeout=20)
    assert rep["status"] == "rejected"
    assert rep["problems"], rep
    # nothing was published
    assert stack.http("GET", "/models/broken/manifest").status in (404, 503)
    assert not s3.list_objects_v2(Bucket=stack.bucket, Prefix="models/broken/").get("Contents")


def _drain(stack: Stack, queue_url: str, want: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    seen: list[dict[str, Any]] = []

    def probe() -> Any:
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            envelope = json.loads(m["Body"])
            seen.append({"message": json.loads(envelope["Message"]),
                         "attributes": envelope.get("MessageAttributes", {}), "envelope": envelope})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return [s for s in seen if want(s["message"])]

    return list(wait_for("an SNS event in the subscribed queue", probe, timeout=timeout, interval=0.05))


def test_notification_reaches_subscribed_queue(stack: Stack, published: dict[str, Any], device_queue: str,
                                               iris_doc: dict[str, Any]) -> None:
    events = _drain(stack, device_queue,
                    lambda m: m.get("event_type") == "version.published" and m.get("model") == "iris")
    event = events[0]
    assert event["message"]["detail"]["version"] == 1
    assert event["message"]["detail"]["sha256"] == iris_doc["sha256"]
    assert event["attributes"]["event_type"]["Value"] == "version.published"
    assert event["envelope"]["TopicArn"] == stack.info["topic_arn"]


def test_v2_infer(stack: Stack, published: dict[str, Any], iris_model: Any) -> None:
    body = {"id": "e2e-1", "inputs": [{"name": "input-0", "shape": [len(ROWS), 4], "datatype": "FP64",
                                       "data": ROWS}]}
    r = stack.http("POST", "/v2/models/iris/infer", body)
    assert r.status == 200, r.body
    out = r.json()
    assert out["model_name"] == "iris" and out["model_version"] == "1" and out["id"] == "e2e-1"
    outputs = {o["name"]: o for o in out["outputs"]}
    import pandas as pd

    X = pd.DataFrame(ROWS, columns=FEATURES)
    assert outputs["predict"]["data"] == iris_model.predict(X).tolist()
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    np.testing.assert_allclose(proba, iris_model.predict_proba(X), rtol=0, atol=1e-9)
    meta = stack.http("GET", "/v2/models/iris")
    assert meta.status == 200 and [i["name"] for i in meta.json()["inputs"]] == FEATURES


def test_plain_predict(stack: Stack, published: dict[str, Any], iris_model: Any) -> None:
    r = stack.http("POST", "/models/iris/predict", {"instances": ROWS})
    assert r.status == 200, r.body
    import pandas as pd

    assert r.json()["predictions"] == iris_model.predict(pd.DataFrame(ROWS, columns=FEATURES)).tolist()
    keyed = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    assert stack.http("POST", "/models/iris/predict", {"instances": keyed}).json()["predictions"] == \
        r.json()["predictions"]
    missing = stack.http("POST", "/models/nosuchmodel/predict", {"instances": ROWS})
    assert missing.status == 404 and "error" in missing.json()


def test_manifest_etag_and_304(stack: Stack, published: dict[str, Any], iris_doc: dict[str, Any]) -> None:
    first = stack.http("GET", "/models/iris/manifest")
    assert first.status == 200, first.body
    etag = first.headers["ETag"]
    manifest = first.json()
    assert manifest["version"] == 1 and manifest["sha256"] == iris_doc["sha256"]
    again = stack.http("GET", "/models/iris/manifest", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["ETag"] == etag
    assert stack.http("GET", "/models/iris/manifest", headers={"If-None-Match": '"other"'}).status == 200


def test_vendored_scorer_parity(stack: Stack, published: dict[str, Any], iris_doc: dict[str, Any]) -> None:
    """A device downloads the document from the manifest's URL and scores exactly as the API does."""
    import scorer

    manifest = stack.http("GET", "/models/iris/manifest").json()
    with urllib.request.urlopen(manifest["url"], timeout=10) as resp:
        raw = resp.read()
    import hashlib

    model = scorer.load_model(json.loads(raw))
    assert model.sha256 == manifest["sha256"] == iris_doc["sha256"]
    assert len(raw) == manifest["size"] and hashlib.sha256(raw).hexdigest()  # whole document fetched
    keyed = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    api = stack.http("POST", "/models/iris/predict", {"instances": keyed}).json()
    local = model.predict(np.asarray(ROWS, dtype=float))
    assert np.asarray(local).tolist() == api["predictions"]
    local_proba = np.asarray(model.predict_proba(np.asarray(ROWS, dtype=float)))
    api_proba = np.asarray([[p[str(c)] for c in model.classes.tolist()] for p in api["probabilities"]])
    np.testing.assert_array_equal(local_proba, api_proba)


def test_batch_scoring(stack: Stack, published: dict[str, Any], iris_model: Any) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FEATURES)
    w.writerows(ROWS)
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.bucket, Key="batch/input/iris/e2e.csv", Body=buf.getvalue().encode())

    def output() -> Any:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket,
                                                      Prefix="batch/output/iris/e2e.v1").get("Contents", [])]
        return "batch/output/iris/e2e.v1.csv" in keys and \
            s3.get_object(Bucket=stack.bucket, Key="batch/output/iris/e2e.v1.csv")["Body"].read().decode()

    text = wait_for("batch/output/iris/e2e.v1.csv (the scheduled Batch run)", output, timeout=20)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(ROWS)
    import pandas as pd

    expected = iris_model.predict(pd.DataFrame(ROWS, columns=FEATURES)).tolist()
    pred_col = next(c for c in rows[0] if c.startswith("predict") and "proba" not in c)
    assert [int(float(r[pred_col])) for r in rows] == expected
