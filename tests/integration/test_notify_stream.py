"""Notify: registry stream records -> SNS model events, with partial batch failures."""

from __future__ import annotations

import copy


def test_publish_then_stream_sends_version_published_and_alias_moved(aws, handler, publish, models,
                                                                       lambda_context):
    # GIVEN a queue subscribed to the topic and a model published (v1, latest moved)
    sink = aws.subscribe_queue()
    publish("iris", models.iris)
    app = handler("NotifyFunction")
    # WHEN the registry stream's records reach Notify
    event = aws.stream_event()
    response = app.lambda_handler(event, lambda_context)
    # THEN no failures, and exactly one message per meaningful change, with filterable attributes
    assert response["batchItemFailures"] == []
    received = aws.received(sink)
    by_type = {m["attributes"]["event_type"]: m for m in received}
    assert sorted(by_type) == ["alias.moved", "version.published"]
    assert all(m["attributes"]["model"] == "iris" for m in received)
    manifest = by_type["version.published"]["message"]["detail"]
    assert manifest["name"] == "iris" and manifest["version"] == 1
    assert manifest["sha256"] == models.iris["sha256"] and manifest["document_key"] == "models/iris/1.json"
    assert manifest["format_version"] == "1.0" and manifest["size"] > 0
    moved = by_type["alias.moved"]["message"]["detail"]
    assert moved == {**moved, "alias": "latest", "old_version": None, "new_version": 1, "revision": 1}


def test_rejected_upload_sends_upload_rejected_with_problems(aws, handler, publish, models, lambda_context):
    sink = aws.subscribe_queue()
    doc = copy.deepcopy(models.iris)
    doc["sha256"] = "0" * 64
    publish("iris", doc)
    handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)
    (msg,) = aws.received(sink)
    assert msg["attributes"] == {"event_type": "upload.rejected", "model": "iris"}
    assert msg["message"]["detail"]["problems"][0]["pointer"] == "/sha256"
    assert msg["message"]["detail"]["burnt_version"] is None  # validation fails before a number is taken


def test_sample_events(aws, handler, events, lambda_context):
    sink = aws.subscribe_queue()
    app = handler("NotifyFunction")
    assert app.lambda_handler(events("notify_stream_insert"), lambda_context)["batchItemFailures"] == []
    assert app.lambda_handler(events("notify_stream_modify"), lambda_context)["batchItemFailures"] == []
    first, second = aws.received(sink)
    assert first["message"]["event_type"] == "version.published"
    assert second["message"]["detail"] | {"updated_by": None} == {
        "alias": "latest", "old_version": 1, "new_version": 2, "revision": 2, "updated_by": None}


def test_one_failing_record_is_the_only_batch_item_failure(aws, handler, events, lambda_context):
    # GIVEN a batch of three changes whose middle one is a version item missing its sha256
    sink = aws.subscribe_queue()
    good = events("notify_stream_insert")["Records"][0]
    broken = copy.deepcopy(good)
    del broken["dynamodb"]["NewImage"]["sha256"]
    broken["dynamodb"]["SequenceNumber"] = "222200000000000000000002"
    moved = events("notify_stream_modify")["Records"][0]
    # WHEN Notify processes it
    response = handler("NotifyFunction").lambda_handler({"Records": [good, broken, moved]}, lambda_context)
    # THEN only the broken record is reported (to be retried, bisected, then sent to the DLQ); the others sent
    assert response["batchItemFailures"] == [{"itemIdentifier": "222200000000000000000002"}]
    assert [m["attributes"]["event_type"] for m in aws.received(sink)] == ["version.published", "alias.moved"]


def test_alias_delete_sends_alias_deleted(aws, handler, publish, api, models, lambda_context):
    publish("iris", models.iris)
    assert api("PUT", "/models/iris/aliases/prod", body={"version": 1})[0] == 200
    assert api("DELETE", "/models/iris/aliases/prod")[0] == 200
    sink = aws.subscribe_queue()
    handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)
    types = [(m["message"]["event_type"], m["message"]["detail"].get("alias")) for m in aws.received(sink)]
    assert ("alias.moved", "prod") in types and ("alias.deleted", "prod") in types
