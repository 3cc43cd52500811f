"""Score: the REST API (Open Inference Protocol, plain predictions, registry views, alias moves).

Clients, settings and the bounded model cache live at module level: warm invocations reuse loaded
models by (name, version), while ``latest`` is resolved from its alias item on every request.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from modelsync.service.api import ScoringService, build_resolver, check_request_size, error_proxy_response
from modelsync.service.config import Settings
from modelsync.service.errors import PayloadTooLarge
from modelsync.service.registry import Registry
from modelsync.service.store import ModelCache

logger = Logger()
tracer = Tracer()
metrics = Metrics()

SETTINGS = Settings.from_env()
MODEL_CACHE = ModelCache(SETTINGS.model_cache_size)
# SigV4 presigned URLs (required for SSE-KMS objects and in newer regions)
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
registry = Registry(boto3.client("dynamodb"), SETTINGS.registry_table)
SERVICE = ScoringService(s3, registry, SETTINGS, MODEL_CACHE)
app = build_resolver(lambda: SERVICE)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        check_request_size(event, SETTINGS.max_request_bytes)
    except PayloadTooLarge as exc:
        logger.info("request refused: %s", exc.message)
        return error_proxy_response(exc)
    response: dict[str, Any] = app.resolve(event, context)
    return response
