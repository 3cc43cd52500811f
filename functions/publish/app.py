"""Publish: S3 ObjectCreated under ``incoming/`` -> validated version in the registry (or a rejection report).

Each record goes through Powertools' idempotency (DynamoDB, keyed on bucket + key + ETag + versionId), so
the same notification delivered twice returns the first outcome; the domain is itself safe to repeat
(see modelsync.service.publish).
"""

from __future__ import annotations

import warnings
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelsync.service import layout
from modelsync.service.config import Settings
from modelsync.service.publish import RetryPolicy, Upload, publish_upload
from modelsync.service.registry import Registry
from modelsync.service.tracing import LazyTracer

logger = Logger()
tracer = LazyTracer()  # the X-Ray SDK is loaded on the first traced invocation, not at import
metrics = Metrics()
# metrics here depend on the event: an invocation without any is normal, not worth a warning (as
# Powertools' docs advise)
warnings.filterwarnings("ignore", "No application metrics to publish")

SETTINGS = Settings.from_env()
s3 = boto3.client("s3")
registry = Registry(boto3.client("dynamodb"), SETTINGS.registry_table)
idempotency_config = IdempotencyConfig(
    event_key_jmespath="[bucket, key, etag, version_id]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,  # S3 redeliveries and Lambda's async retries fall well inside a day
)
persistence = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table)


@idempotent_function(data_keyword_argument="upload", persistence_store=persistence, config=idempotency_config)
def publish_once(upload: dict[str, Any], retry: RetryPolicy | None = None) -> dict[str, Any]:
    outcome = publish_upload(s3, registry, SETTINGS, Upload(**upload), retry=retry)
    if not outcome.duplicate:
        metrics.add_metric(name=f"Uploads{outcome.status.capitalize()}", unit=MetricUnit.Count, value=1)
    return outcome.as_dict()


def upload_of(record: Any) -> dict[str, Any]:
    obj = record.s3.get_object
    return {"bucket": record.s3.bucket.name, "key": layout.decode_event_key(obj.key),
            "etag": obj.etag.strip('"'), "version_id": obj.version_id, "size": obj.get("size")}


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    results = []
    for record in S3Event(event).records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        upload = upload_of(record)
        logger.append_keys(object_key=upload["key"])
        # transient AWS errors are retried within what is left of this invocation, then the upload is
        # rejected with a report (each record gets the time left when it starts)
        retry = RetryPolicy.within(context.get_remaining_time_in_millis() / 1000)
        result = publish_once(upload=upload, retry=retry)
        logger.info("upload processed", extra={"outcome": {k: result.get(k) for k in
                                                           ("status", "model", "version", "duplicate")}})
        results.append(result)
    return {"results": results}
