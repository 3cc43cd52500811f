"""Batch: the scheduled run over ``batch/input/``, and the state machine's plan / chunk / finalize steps.

Event shapes:
* EventBridge Scheduled Event (``detail-type: Scheduled Event``), or ``{"action": "run", "model"?,
  "version"?, "outputs"?}`` to run by hand: score every new input (``outputs``: the methods written,
  a list or comma-separated, when the key has no ``outputs=`` folder);
* ``{"action": "plan", "request": {"model", "key", "version"?, "outputs"?}}``: count lines, write the
  chunk events;
* ``{"action": "chunk", "model", "key", "start_line", "end_line", ...}`` (``action`` optional when the
  line range is given; ``start_byte``/``end_byte`` make it a ranged read): score one chunk into parts;
* ``{"action": "finalize", "plan": {...}}``: join the parts, write the manifest.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelsync.service import batch
from modelsync.service.config import Settings
from modelsync.service.metrics import batch_measure, emit, local_sink
from modelsync.service.registry import Registry
from modelsync.service.store import ModelCache, cached_loader
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
sfn = boto3.client("stepfunctions") if SETTINGS.batch_state_machine_arn else None
MODEL_CACHE = ModelCache(4)
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "modelsync")
METRIC_SINK = local_sink(os.environ)


def measured(result: dict[str, Any]) -> dict[str, Any]:
    """Each input scored: its per-version metrics (EMF, as Score's) and a structured log line."""
    m = batch_measure(result)
    if m is not None:
        emit(m, NAMESPACE, METRIC_SINK)
        logger.info("batch input measured", extra=m.fields())
    return result


class UnknownEvent(ValueError):
    pass


def _context(context: LambdaContext | None) -> batch.BatchContext:
    remaining = context.get_remaining_time_in_millis if context is not None else (lambda: 10**9)
    return batch.BatchContext(s3=s3, registry=registry, settings=SETTINGS, sfn=sfn,
                              load_model=cached_loader(s3, SETTINGS.models_bucket, MODEL_CACHE),
                              remaining_ms=remaining)


def action_of(event: dict[str, Any]) -> str:
    if event.get("detail-type") == "Scheduled Event":
        return "run"
    action = event.get("action")
    if action is None and "start_line" in event and "end_line" in event:
        return "chunk"
    if action in ("run", "plan", "chunk", "finalize"):
        return str(action)
    raise UnknownEvent(f"unknown batch event (action {action!r})")


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ctx = _context(context)
    action = action_of(event)
    logger.append_keys(batch_action=action)
    if action == "plan":
        return batch.plan(ctx, dict(event.get("request") or {}))
    if action == "chunk":
        summary = batch.score_chunk(ctx, event)
        metrics.add_metric(name="BatchRowsScored", unit=MetricUnit.Count, value=summary["scored"])
        return summary
    if action == "finalize":
        return measured(batch.finalize(ctx, dict(event["plan"])))
    # a Scheduled Event's own "version" is the envelope's ("0"): parameters of a scheduled run go in detail
    params = dict(event.get("detail") or {}) if event.get("detail-type") == "Scheduled Event" else event
    version = batch.optional_int(params.get("version"))
    results = batch.run_scheduled(ctx, model=params.get("model"), version=version,
                                  outputs=params.get("outputs"))
    counts: dict[str, int] = {}
    for r in results:
        measured(r.as_dict())
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status == "scored":
            metrics.add_metric(name="BatchRowsScored", unit=MetricUnit.Count, value=r.scored)
            metrics.add_metric(name="BatchRowErrors", unit=MetricUnit.Count, value=r.errors)
    logger.info("batch run finished", extra={"counts": counts})
    return {"results": [r.as_dict() for r in results], "counts": counts}
