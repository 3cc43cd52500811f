"""Notify: the registry's DynamoDB stream -> one SNS model event per meaningful change.

Partial batch responses: a record that fails is reported in ``batchItemFailures`` (the event source then
bisects and retries, and finally sends it to the on-failure destination); the others are not repeated.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelsync.service.notify import event_for_change, publish_event
from modelsync.service.tracing import LazyTracer

logger = Logger()
tracer = LazyTracer()  # the X-Ray SDK is loaded on the first traced invocation, not at import
metrics = Metrics()
# metrics here depend on the event: an invocation without any is normal, not worth a warning (as
# Powertools' docs advise)
warnings.filterwarnings("ignore", "No application metrics to publish")

TOPIC_ARN = os.environ["EVENTS_TOPIC_ARN"]
sns = boto3.client("sns")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@tracer.capture_method
def record_handler(record: DynamoDBRecord) -> str | None:
    change = record.dynamodb
    name = record.event_name.name if record.event_name else ""
    event = event_for_change(name, change.old_image if change else None, change.new_image if change else None)
    if event is None:
        return None
    message_id = publish_event(sns, TOPIC_ARN, event)
    metrics.add_metric(name="ModelEventsSent", unit=MetricUnit.Count, value=1)
    logger.info("model event sent", extra={"event_type": event.event_type, "model": event.model,
                                           "message_id": message_id})
    return message_id


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
