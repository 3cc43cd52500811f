"""Publish: uploads under incoming/ become immutable versions, or rejected uploads with a report."""

from __future__ import annotations

import json
import pathlib
import threading
from typing import Any

import numpy as np
import pytest

from modelsync.service import layout
from modelsync.service.config import Settings
from modelsync.service.publish import Upload, publish_upload
from modelsync.service.registry import Registry


def _kinds(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [i for i in items if i.get("kind") == kind]


def test_good_upload_publishes_v1_and_moves_latest(aws, handler, events, models, lambda_context):
    # GIVEN an empty registry and a valid iris document uploaded under incoming/iris/
    app = handler("PublishFunction")
    raw = json.dumps(models.iris).encode()
    event = aws.put_upload("iris", raw, "iris-2024-06-01.json")

    # WHEN the S3 notification reaches Publish
    result = app.lambda_handler(event, lambda_context)["results"][0]

    # THEN version 1 exists, byte-identical, with its sha256 in metadata, and latest points at it
    assert result["status"] == "published" and result["version"] == 1 and result["latest_moved"]
    obj = aws.s3.get_object(Bucket=aws.bucket, Key="models/iris/1.json")
    assert obj["Body"].read() == raw
    assert obj["Metadata"]["sha256"] == models.iris["sha256"]
    items = aws.registry_items()
    (version,) = _kinds(items, "version")
    assert version["version"] == 1 and version["sha256"] == models.iris["sha256"]
    assert version["size"] == len(raw)
    assert version["document_key"] == "models/iris/1.json" and version["format_version"] == "1.0"
    assert version["model_type"] == "logistic_regression"
    assert [f["name"] for f in version["features"]] == ["sepal_length", "sepal_width", "petal_length",
                                                        "petal_width"]
    assert version["source_key"] == "incoming/iris/iris-2024-06-01.json" and version["source_etag"]
    (alias,) = _kinds(items, "alias")
    assert (alias["alias"], alias["version"], alias["revision"]) == ("latest", 1, 1)
    (upload,) = _kinds(items, "upload")
    assert upload["status"] == "published" and upload["version"] == 1
    report = aws.get_json(result["report_key"])
    assert report["status"] == "published" and report["version"] == 1


def test_second_upload_is_v2_and_latest_revision_grows(aws, handler, events, models, lambda_context):
    app = handler("PublishFunction")
    app.lambda_handler(aws.put_upload("iris", models.iris, "a.json"), lambda_context)
    result = app.lambda_handler(aws.put_upload("iris", models.iris_v2, "b.json"), lambda_context)
    assert result["results"][0]["version"] == 2
    alias = _kinds(aws.registry_items(), "alias")[0]
    assert (alias["version"], alias["revision"]) == (2, 2)


def test_duplicate_s3_event_creates_one_version(aws, handler, events, models, lambda_context):
    # GIVEN one upload whose notification is delivered twice
    app = handler("PublishFunction")
    event = aws.put_upload("iris", models.iris)
    first = app.lambda_handler(event, lambda_context)["results"][0]
    # WHEN the same event arrives again (Powertools idempotency answers from its table)
    second = app.lambda_handler(event, lambda_context)["results"][0]
    # THEN one version, the same outcome
    assert first == second and first["version"] == 1
    assert len(_kinds(aws.registry_items(), "version")) == 1
    assert aws.keys("models/") == ["models/iris/1.json"]


def test_duplicate_event_is_safe_without_the_idempotency_layer(aws, models):
    # The domain alone (no Powertools idempotency): the upload record keyed by bucket/key/ETag dedups.
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    registry = Registry(aws.ddb, settings.registry_table)
    aws.s3.put_object(Bucket=aws.bucket, Key="incoming/iris/x.json", Body=json.dumps(models.iris).encode())
    head = aws.s3.head_object(Bucket=aws.bucket, Key="incoming/iris/x.json")
    upload = Upload(aws.bucket, "incoming/iris/x.json", head["ETag"].strip('"'), head.get("VersionId"))
    first = publish_upload(aws.s3, registry, settings, upload)
    again = publish_upload(aws.s3, registry, settings, upload)
    assert first.version == again.version == 1 and again.duplicate
    assert len(_kinds(aws.registry_items(), "version")) == 1


def test_retry_after_crash_reuses_the_reserved_version(aws, models, monkeypatch):
    # GIVEN a publish that crashed after reserving v1 and writing the document, before the version record
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    registry = Registry(aws.ddb, settings.registry_table)
    aws.s3.put_object(Bucket=aws.bucket, Key="incoming/iris/x.json", Body=json.dumps(models.iris).encode())
    head = aws.s3.head_object(Bucket=aws.bucket, Key="incoming/iris/x.json")
    upload = Upload(aws.bucket, "incoming/iris/x.json", head["ETag"].strip('"'), head.get("VersionId"))

    def crash(record: Any) -> Any:
        raise RuntimeError("lambda timed out")

    monkeypatch.setattr(registry, "put_version", crash)
    with pytest.raises(RuntimeError):
        publish_upload(aws.s3, registry, settings, upload)
    monkeypatch.undo()
    # WHEN Lambda retries
    outcome = publish_upload(aws.s3, Registry(aws.ddb, settings.registry_table), settings, upload)
    # THEN the same version number is used, the written document is accepted, nothing is duplicated
    assert outcome.status == "published" and outcome.version == 1
    assert aws.keys("models/") == ["models/iris/1.json"]
    assert registry.read_counter("iris") == 1


def test_racing_uploads_get_distinct_consecutive_versions(aws, handler, events, models, lambda_context,
                                                           serialized_dynamodb):
    # GIVEN four uploads of the same model at once
    app = handler("PublishFunction")
    uploads = [aws.put_upload("iris", models.iris, f"race-{i}.json") for i in range(4)]
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(len(uploads))

    def run(event: dict[str, Any]) -> None:
        barrier.wait()
        results.extend(app.lambda_handler(event, lambda_context)["results"])

    threads = [threading.Thread(target=run, args=(e,)) for e in uploads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN versions 1..4, each once, and latest at the highest
    assert sorted(r["version"] for r in results) == [1, 2, 3, 4]
    assert aws.keys("models/iris/") == [f"models/iris/{v}.json" for v in (1, 2, 3, 4)]
    alias = _kinds(aws.registry_items(), "alias")[0]
    assert alias["version"] == 4


def test_interleaved_reservations_retry_on_a_stale_counter(aws, models, monkeypatch):
    # GIVEN two uploads that both read counter 0 before either reserves (a deterministic interleaving)
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    registry = Registry(aws.ddb, settings.registry_table)
    for name in ("a", "b"):
        registry.claim_upload("iris", name, {})
    real = registry.read_counter
    reads: list[int] = []
    stale = iter([0, 0])

    def read_counter(model: str) -> int:
        value = next(stale, None)
        reads.append(real(model) if value is None else value)
        return reads[-1]

    monkeypatch.setattr(registry, "read_counter", read_counter)
    # WHEN both reserve
    va = registry.reserve_version("iris", "a")
    vb = registry.reserve_version("iris", "b")  # its first conditional write fails, it re-reads and retries
    # THEN distinct consecutive numbers; a repeat of either returns its own number
    assert (va, vb) == (1, 2)
    assert reads == [0, 0, 1]  # b's stale read lost the conditional write, its re-read saw 1
    assert registry.reserve_version("iris", "b") == 2 and real("iris") == 2


def test_document_over_the_size_cap_is_rejected_unread(aws, handler, events, models, lambda_context,
                                                       monkeypatch):
    # GIVEN a size cap smaller than the document
    app = handler("PublishFunction")
    monkeypatch.setattr(app, "SETTINGS", app.SETTINGS.__class__(**{**app.SETTINGS.__dict__,
                                                                   "max_upload_bytes": 1024}))
    got: list[str] = []
    real_get = app.s3.get_object
    monkeypatch.setattr(app.s3, "get_object", lambda **kw: got.append(kw["Key"]) or real_get(**kw))
    event = aws.put_upload("iris", models.iris, "big.json")
    # WHEN it is processed
    result = app.lambda_handler(event, lambda_context)["results"][0]
    # THEN rejected with a report naming the size, the body never read, no version
    assert result["status"] == "rejected" and result["version"] is None
    assert got == []
    report = aws.get_json(result["report_key"])
    assert "over the upload limit of 1024 bytes" in report["problems"][0]["message"]
    assert not _kinds(aws.registry_items(), "version") and aws.keys("models/") == []


def test_failed_test_vectors_are_rejected_with_the_pointer(aws, handler, events, models, lambda_context):
    # GIVEN a document whose recorded predictions disagree with its model (sha256 recomputed to match)
    from scorer import content_sha256

    doc = json.loads(json.dumps(models.iris))
    proba = doc["test_vectors"]["outputs"]["predict_proba"]
    proba[3] = list(reversed(proba[3]))
    labels = doc["test_vectors"]["outputs"]["predict"]
    labels[5] = "virginica" if labels[5] != "virginica" else "setosa"
    doc["sha256"] = content_sha256(doc)
    app = handler("PublishFunction")
    result = app.lambda_handler(aws.put_upload("iris", doc, "bad.json"),
                                lambda_context)["results"][0]
    # THEN rejected; the report and the outcome record carry the JSON pointer of the failing row
    assert result["status"] == "rejected"
    report = aws.get_json(result["report_key"])
    pointers = [p["pointer"] for p in report["problems"]]
    assert {"/test_vectors/outputs/predict_proba/3", "/test_vectors/outputs/predict/5"} <= set(pointers)
    upload = _kinds(aws.registry_items(), "upload")[0]
    assert upload["status"] == "rejected" and upload["problems"][0]["pointer"] == pointers[0]
    assert not _kinds(aws.registry_items(), "version") and not _kinds(aws.registry_items(), "model")


def test_every_problem_is_reported(aws, handler, events, models, lambda_context):
    doc = json.loads(json.dumps(models.iris))
    doc["sha256"] = "0" * 64
    doc["test_vectors"]["outputs"]["predict_proba"][0][0] += 0.5
    app = handler("PublishFunction")
    result = app.lambda_handler(aws.put_upload("iris", doc), lambda_context)["results"][0]
    pointers = {p["pointer"] for p in result["problems"]}
    assert "/sha256" in pointers and "/test_vectors/outputs/predict_proba/0" in pointers


def test_name_must_match_the_upload_folder(aws, handler, events, models, lambda_context):
    app = handler("PublishFunction")
    result = app.lambda_handler(aws.put_upload("roses", models.iris), lambda_context)["results"][0]
    assert result["status"] == "rejected"
    assert result["problems"][0]["pointer"] == "/metadata/name"


def test_invalid_json_and_bad_keys_are_rejected(aws, handler, events, lambda_context):
    app = handler("PublishFunction")
    result = app.lambda_handler(aws.put_upload("iris", b"{not json"), lambda_context)["results"][0]
    assert result["status"] == "rejected" and "not valid JSON" in result["problems"][0]["message"]
    event = aws.put_upload("iris", b"{}")
    event["Records"][0]["s3"]["object"]["key"] = "incoming/loose-file.json"
    aws.s3.put_object(Bucket=aws.bucket, Key="incoming/loose-file.json", Body=b"{}")
    result = app.lambda_handler(event, lambda_context)["results"][0]
    assert result["status"] == "rejected" and result["report_key"].startswith("reports/_invalid/")


def test_sample_event_names_the_layout(events):
    # The sample event: `sam local invoke PublishFunction -e events/publish_good_upload.json`.
    obj = events("publish_good_upload")["Records"][0]["s3"]
    assert obj["bucket"]["name"] == "modelsync-models"
    assert layout.model_of_upload(obj["object"]["key"]) == "iris"
    bad = events("publish_bad_upload")["Records"][0]["s3"]["object"]["key"]
    assert layout.model_of_upload(layout.decode_event_key(bad)) == "iris"


def test_require_approval_leaves_latest_alone(aws, handler, events, models, lambda_context, monkeypatch):
    import dataclasses

    app = handler("PublishFunction")
    monkeypatch.setattr(app, "SETTINGS", dataclasses.replace(app.SETTINGS, require_approval=True))
    result = app.lambda_handler(aws.put_upload("iris", models.iris), lambda_context)["results"][0]
    assert result["status"] == "published" and result["version"] == 1 and not result["latest_moved"]
    assert not _kinds(aws.registry_items(), "alias")


def _wide_model(n_features: int, n_classes: int = 3) -> dict[str, Any]:
    """A real LogisticRegression on ``n_features`` named features (a document of megabytes)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(3 * n_classes, n_features)),
                     columns=[f"feature_{i:05d}" for i in range(n_features)])
    y = np.repeat([f"class_{c}" for c in range(n_classes)], 3)
    return export_model(LogisticRegression(max_iter=50).fit(X, y), X.iloc[:2], name="wide")


def test_a_model_of_30000_features_publishes_with_a_small_registry_item(aws, publish, api):
    # GIVEN a real LogisticRegression on 30,000 named features: its feature list alone is far over
    # DynamoDB's 400 KB item limit (which moto enforces)
    doc = _wide_model(30_000)
    raw = json.dumps(doc).encode()
    assert len(raw) > 2_000_000
    # WHEN it is uploaded
    result = publish("wide", raw)
    # THEN it is version 1; the version record keeps counts only, the lists stay in the document
    assert result["status"] == "published" and result["version"] == 1, result["problems"]
    (version,) = _kinds(aws.registry_items(), "version")
    assert version["schema_in_document"] and "features" not in version and "classes" not in version
    assert (version["feature_count"], version["class_count"]) == (30_000, 3)
    assert len(json.dumps(version)) < 10_000
    # AND the API's metadata still lists every input and the class count, read from the document
    status, _, meta = api("GET", "/v2/models/wide")
    assert status == 200
    assert len(meta["inputs"]) == 30_000 and meta["inputs"][-1]["name"] == "feature_29999"
    assert meta["outputs"][1] == {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}
    status, _, scored = api("POST", "/models/wide/predict",
                            body={"instances": [dict.fromkeys(doc_features(doc), 0.0)]})
    assert status == 200 and scored["predictions"][0].startswith("class_")


def doc_features(doc: dict[str, Any]) -> list[str]:
    return [f["name"] for f in doc["input"]["features"]]


def test_small_models_keep_their_lists_on_the_record(aws, publish, models):
    publish("iris", models.iris)
    (version,) = _kinds(aws.registry_items(), "version")
    assert "schema_in_document" not in version and version["feature_count"] == 4
    assert version["classes"] == ["setosa", "versicolor", "virginica"] and version["class_count"] == 3


@pytest.mark.parametrize("key", ["incoming/iris/sub/dir/model.json", "incoming/iris/model.txt",
                                 "incoming/iris/.json"])
def test_keys_outside_the_layout_are_refused_with_a_report_and_an_event(aws, handler, events, models,
                                                                        lambda_context, key):
    # GIVEN a valid iris document at a key that is not incoming/{model}/{file}.json
    app = handler("PublishFunction")
    sink = aws.subscribe_queue()
    event = aws.put_upload("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=json.dumps(models.iris).encode())
    event["Records"][0]["s3"]["object"]["key"] = key
    # WHEN its notification arrives anyway (the template's filter keeps .json only)
    result = app.lambda_handler(event, lambda_context)["results"][0]
    # THEN refused under the model folder, with a report and an upload.rejected event, nothing published
    assert result["status"] == "rejected" and result["model"] == "iris" and result["version"] is None
    assert "incoming/{model}/{file}.json" in result["problems"][0]["message"]
    assert aws.get_json(result["report_key"])["source"]["key"] == key
    assert not _kinds(aws.registry_items(), "version") and aws.keys("models/") == []
    handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)
    (msg,) = aws.received(sink)
    assert msg["attributes"] == {"event_type": "upload.rejected", "model": "iris"}
    assert msg["message"]["detail"]["source_key"] == key


def test_the_s3_notification_is_filtered_to_json_uploads():
    from modelsync import template as tpl

    template = tpl.load(pathlib.Path(__file__).resolve().parents[2] / "template.yaml")
    rules = template.resources["PublishFunction"]["Properties"]["Events"]["Upload"]["Properties"]["Filter"]
    assert {(r["Name"], r["Value"]) for r in rules["S3Key"]["Rules"]} == {("prefix", "incoming/"),
                                                                         ("suffix", ".json")}


def test_many_racing_uploads_end_in_consecutive_versions_and_reports(aws, handler, events, models,
                                                                     lambda_context, serialized_dynamodb):
    # GIVEN twelve uploads of one model at once: eight valid, four invalid (bad sha256), and throttling on
    # the registry's counter transaction now and then (as DynamoDB does under a burst)
    import itertools as it

    from botocore.awsrequest import AWSResponse

    app = handler("PublishFunction")
    bad = json.loads(json.dumps(models.iris))
    bad["sha256"] = "0" * 64
    uploads = [aws.put_upload("iris", bad if i % 3 == 2 else models.iris, f"race-{i:02d}.json")
               for i in range(12)]
    ticks = it.count()

    def throttle(**_: Any) -> Any:
        if next(ticks) % 4 == 1:
            return (AWSResponse("https://injected", 400, {}, None),
                    {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"},
                     "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None

    app.registry.client.meta.events.register("before-call.dynamodb.TransactWriteItems", throttle,
                                             unique_id="race-throttle")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(len(uploads))

    def run(event: dict[str, Any]) -> None:
        barrier.wait()
        results.extend(app.lambda_handler(event, lambda_context)["results"])

    try:
        threads = [threading.Thread(target=run, args=(e,)) for e in uploads]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        app.registry.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems",
                                                   unique_id="race-throttle")
    # THEN none lost: versions 1..8 once each, a report for every upload, the four invalid ones rejected
    assert len(results) == 12
    published = sorted(r["version"] for r in results if r["status"] == "published")
    assert published == list(range(1, 9))
    assert sum(r["status"] == "rejected" for r in results) == 4
    assert aws.keys("models/iris/") == sorted(f"models/iris/{v}.json" for v in range(1, 9))
    assert len(aws.keys("reports/iris/")) == 12
    assert _kinds(aws.registry_items(), "alias")[0]["version"] == 8
    assert next(ticks) > 8  # the counter transaction was throttled and retried


def _iris_renamed(models: Any, old: str, new: str) -> dict[str, Any]:
    """An iris classifier whose feature ``old`` is called ``new`` (trained and exported here)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    X = pd.DataFrame(models.iris_rows, columns=[new if c == old else c for c in names])
    y = np.where(X.iloc[:, 2] > 2.5, "big", "small")
    return export_model(LogisticRegression(max_iter=500).fit(X, y), X.iloc[::10], name="iris")


def test_renamed_feature_publishes_but_latest_stays(aws, handler, events, models, lambda_context):
    # GIVEN iris v1 behind latest
    app = handler("PublishFunction")
    app.lambda_handler(aws.put_upload("iris", models.iris, "a.json"), lambda_context)
    queue = aws.subscribe_queue()
    # WHEN v2 renames petal_width to petal_w
    result = app.lambda_handler(aws.put_upload("iris", _iris_renamed(models, "petal_width", "petal_w"),
                                               "b.json"), lambda_context)["results"][0]
    # THEN v2 is published, latest stays at v1, and the report names both features
    assert result["status"] == "published" and result["version"] == 2 and not result["latest_moved"]
    alias = _kinds(aws.registry_items(), "alias")[0]
    assert (alias["version"], alias["revision"]) == (1, 1)
    report = aws.get_json(result["report_key"])
    assert report["latest_moved"] is False and report["latest_version"] == 1
    messages = [c["message"] for c in report["schema_changes"]]
    assert messages == ["feature 'petal_width' renamed/removed (position 3 is now 'petal_w')",
                        "feature 'petal_w' added"]
    assert "petal_width" in report["message"] and "aliases/latest" in report["message"]
    # AND the version.published event says latest did not move, and why
    app_notify = handler("NotifyFunction")
    app_notify.lambda_handler(aws.stream_event(), lambda_context)
    messages_sent = [m["message"] for m in aws.received(queue)]
    (published,) = [m for m in messages_sent
                    if m["event_type"] == "version.published" and m["detail"]["version"] == 2]
    assert published["detail"]["latest_moved"] is False
    assert [c["message"] for c in published["detail"]["schema_changes"]] == messages
    # AND a v3 with v1's schema (compared with v1, which latest points to) flows as today
    result3 = app.lambda_handler(aws.put_upload("iris", models.iris_v2, "c.json"), lambda_context)
    assert result3["results"][0]["latest_moved"]
    assert _kinds(aws.registry_items(), "alias")[0]["version"] == 3


def test_schema_changes_are_each_named() -> None:
    from modelsync.service.compat import schema_changes

    old = [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"},
           {"name": "c", "kind": "categorical", "categories": ["x", "y"]}]
    assert schema_changes(old, old) == []
    new = [{"name": "b", "kind": "categorical", "categories": ["1"]}, {"name": "a", "kind": "numeric"},
           {"name": "c", "kind": "categorical", "categories": ["x", "z"]}, {"name": "d", "kind": "numeric"}]
    assert [c["message"] for c in schema_changes(old, new)] == [
        "feature 'd' added", "features reordered: ['a', 'b', 'c'] -> ['b', 'a', 'c']",
        "feature 'b' type changed: numeric -> categorical",
        "feature 'c' category set changed: removed ['y']; added ['z']"]
