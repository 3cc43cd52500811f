"""The whole system on the local stack: publish, reject, notify, score (V2 + plain), manifest, batch, parity.

Everything goes through public interfaces of ``modelsync local`` (see conftest): S3/SQS/SNS/DynamoDB via
boto3 at the embedded AWS endpoint, HTTP via urllib at the API, ``modelsync invoke`` as a subprocess.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import urllib.request
from typing import Any

import numpy as np
import pandas as pd
import pytest
from e2e_support import FEATURES, REPO, Published, Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


def _frame(rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=FEATURES)


def test_ready_line_and_routes(stack: Stack) -> None:
    assert {"api", "aws_endpoint", "region", "bucket", "topic_arn"} <= set(stack.info)
    assert stack.bucket == "modelsync-models"
    assert stack.info["topic_arn"].startswith(f"arn:aws:sns:{stack.region}:")
    ready = stack.http("GET", "/v2/health/ready")
    assert ready.status == 200 and ready.json() == {"ready": True}
    # the template's resources exist in the embedded AWS, named by the shared rule
    assert stack.client("s3").get_bucket_versioning(Bucket=stack.bucket)["Status"] == "Enabled"
    table = stack.client("dynamodb").describe_table(TableName="modelsync-registry")["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    # like API Gateway: an undeclared route (or method) is a 403 "Missing Authentication Token"
    for method, path in (("GET", "/nope"), ("DELETE", "/models")):
        r = stack.http(method, path)
        assert r.status == 403 and r.json() == {"message": "Missing Authentication Token"}


def test_publish(stack: Stack, published: Published, iris_doc: dict[str, Any]) -> None:
    model = published.model
    assert model["name"] == "iris"
    mine = next(v for v in model["versions"] if v["version"] == published.version)
    assert mine["sha256"] == iris_doc["sha256"]
    assert model["aliases"]["latest"]["version"] >= published.version
    # the exact bytes are published under models/
    body = stack.client("s3").get_object(Bucket=stack.bucket, Key=mine["document_key"])["Body"].read()
    assert json.loads(body)["sha256"] == iris_doc["sha256"]
    listing = stack.http("GET", "/models").json()
    assert any(m["name"] == "iris" and m["latest_version"] >= published.version for m in listing["models"])


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
    assert not s3.list_objects_v2(Bucket=stack.bucket, Prefix="models/broken/").get("Contents")
    assert stack.http("GET", "/models/broken/manifest").status in (404, 503)


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


def test_notification_reaches_subscribed_queue(stack: Stack, published: Published, device_queue: str,
                                               iris_doc: dict[str, Any]) -> None:
    def mine(m: dict[str, Any]) -> bool:
        return m.get("event_type") == "version.published" and m.get("detail", {}).get("sha256") == \
            iris_doc["sha256"]

    event = _drain(stack, device_queue, mine)[0]
    assert event["message"]["model"] == "iris"
    assert event["message"]["detail"]["version"] == published.version
    assert event["attributes"]["event_type"]["Value"] == "version.published"
    assert event["envelope"]["TopicArn"] == stack.info["topic_arn"]


def test_v2_infer(stack: Stack, published: Published, iris_model: Any) -> None:
    body = {"id": "e2e-1", "inputs": [{"name": "input-0", "shape": [len(ROWS), 4], "datatype": "FP64",
                                       "data": ROWS}]}
    r = stack.http("POST", f"/v2/models/iris/versions/{published.version}/infer", body)
    assert r.status == 200, r.body
    out = r.json()
    assert out["model_name"] == "iris" and out["model_version"] == str(published.version)
    assert out["id"] == "e2e-1"
    outputs = {o["name"]: o for o in out["outputs"]}
    assert outputs["predict"]["data"] == iris_model.predict(_frame(ROWS)).tolist()
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    np.testing.assert_allclose(proba, iris_model.predict_proba(_frame(ROWS)), rtol=0, atol=1e-9)
    latest = stack.http("POST", "/v2/models/iris/infer", body)  # the latest alias, same training data
    assert latest.status == 200 and latest.json()["outputs"][0]["data"] == outputs["predict"]["data"]
    meta = stack.http("GET", f"/v2/models/iris/versions/{published.version}")
    assert meta.status == 200 and [i["name"] for i in meta.json()["inputs"]] == FEATURES


def test_plain_predict(stack: Stack, published: Published, iris_model: Any) -> None:
    path = f"/models/iris/predict?version={published.version}"
    r = stack.http("POST", path, {"instances": ROWS})
    assert r.status == 200, r.body
    assert r.json()["predictions"] == iris_model.predict(_frame(ROWS)).tolist()
    keyed = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    assert stack.http("POST", path, {"instances": keyed}).json()["predictions"] == r.json()["predictions"]
    missing = stack.http("POST", "/models/nosuchmodel/predict", {"instances": ROWS})
    assert missing.status == 404 and "error" in missing.json()


def test_manifest_etag_and_304(stack: Stack, published: Published, iris_doc: dict[str, Any]) -> None:
    path = f"/models/iris/manifest?version={published.version}"
    first = stack.http("GET", path)
    assert first.status == 200, first.body
    etag = first.headers["ETag"]
    manifest = first.json()
    assert manifest["version"] == published.version and manifest["sha256"] == iris_doc["sha256"]
    again = stack.http("GET", path, headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["ETag"] == etag
    assert stack.http("GET", path, headers={"If-None-Match": '"other"'}).status == 200


def test_vendored_scorer_parity(stack: Stack, published: Published, iris_doc: dict[str, Any]) -> None:
    """A device downloads the document from the manifest's URL and scores exactly as the API does."""
    import scorer

    manifest = stack.http("GET", f"/models/iris/manifest?version={published.version}").json()
    with urllib.request.urlopen(manifest["url"], timeout=10) as resp:
        raw = resp.read()
    assert len(raw) == manifest["size"]
    model = scorer.load_model(json.loads(raw))
    assert scorer.content_sha256(json.loads(raw)) == manifest["sha256"] == iris_doc["sha256"]
    keyed = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    api = stack.http("POST", f"/models/iris/predict?version={published.version}", {"instances": keyed}).json()
    X = np.asarray(ROWS, dtype=float)
    assert np.asarray(model.predict(X)).tolist() == api["predictions"]
    labels = [str(c) for c in np.asarray(model.classes).tolist()]
    api_proba = np.asarray([[p[c] for c in labels] for p in api["probabilities"]])
    np.testing.assert_array_equal(np.asarray(model.predict_proba(X)), api_proba)
    assert hashlib.sha256(raw).hexdigest()  # the bytes a device would keep


def test_batch_scoring(stack: Stack, published: Published, iris_model: Any) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FEATURES)
    w.writerows(ROWS)
    s3 = stack.client("s3")
    v = published.version
    s3.put_object(Bucket=stack.bucket, Key=f"batch/input/iris/v{v}/e2e.csv", Body=buf.getvalue().encode())
    out_key = f"batch/output/iris/e2e.v{v}.csv"

    def output() -> Any:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket,
                                                      Prefix="batch/output/iris/").get("Contents", [])]
        return out_key in keys and s3.get_object(Bucket=stack.bucket, Key=out_key)["Body"].read().decode()

    text = wait_for(f"{out_key} (the scheduled Batch run)", output, timeout=20)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(ROWS)
    assert [float(r[f]) for f in FEATURES for r in rows[:1]] == ROWS[0]
    assert [int(float(r["prediction"])) for r in rows] == iris_model.predict(_frame(ROWS)).tolist()
    assert {"proba_0", "proba_1", "proba_2"} <= set(rows[0])


def _invoke(stack: Stack, function: str, event_file: str) -> Any:
    proc = subprocess.run([sys.executable, "-m", "modelsync.cli", "invoke", function, "-e", event_file,
                           "--endpoint-url", stack.endpoint], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_invoke_against_the_local_stack(stack: Stack, published: Published, iris_model: Any) -> None:
    """``modelsync invoke`` runs a handler in-process against the stack given by its endpoint."""
    result = _invoke(stack, "ScoreFunction", "events/score_plain_predict.json")
    assert result["statusCode"] == 200, result
    event = json.loads((REPO / "events/score_plain_predict.json").read_text())
    instances = json.loads(event["body"])["instances"]
    rows = [r if isinstance(r, list) else [r[f] for f in FEATURES] for r in instances]
    assert json.loads(result["body"])["predictions"] == iris_model.predict(_frame(rows)).tolist()
