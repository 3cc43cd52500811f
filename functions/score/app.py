"""Score: the REST API (Open Inference Protocol, plain predictions, registry views, rollout, telemetry).

Clients, settings, the bounded model cache and the manifest signer (its signature cache) live at module
level: warm invocations reuse loaded models by (name, version) and signatures by manifest content, while
aliases (and their canaries) are re-read from the registry at most every ``ALIAS_CACHE_TTL_SECONDS`` (the
process's alias cache; the manifest route reads them fresh). The tracer and the HTTP resolver are built on
first use, so the import pays for the clients and the services only (bench/cold_start.py).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from modelsync.service.admin import RegistryAdmin
from modelsync.service.alias_cache import ALIASES
from modelsync.service.config import Settings
from modelsync.service.drift import DriftRecorder, DriftService
from modelsync.service.errors import PayloadTooLarge
from modelsync.service.http import (
    LazyResolver,
    Services,
    check_request_size,
    error_proxy_response,
    observe_refused,
    request_size_limit,
)
from modelsync.service.metrics import Measure, MetricsService, emit, local_or_cloudwatch
from modelsync.service.registry import Registry
from modelsync.service.serving import ServingService
from modelsync.service.signing import ManifestSigner
from modelsync.service.store import ModelCache, cached_loader
from modelsync.service.telemetry import TelemetryService
from modelsync.service.tracing import LazyTracer

logger = Logger()
tracer = LazyTracer()  # the X-Ray SDK is loaded on the first traced invocation, not at import
# metrics: one EphemeralMetrics per scoring request (its own dimensions), see modelsync.service.metrics
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "modelsync")

SETTINGS = Settings.from_env()
MODEL_CACHE = ModelCache(SETTINGS.model_cache_size)
# SigV4 presigned URLs (required for SSE-KMS objects and in newer regions)
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
registry = Registry(boto3.client("dynamodb"), SETTINGS.registry_table)
# manifests are signed when the template gives a KMS key (MANIFEST_SIGNING_KEY_ID), unsigned otherwise
SIGNER = (ManifestSigner(boto3.client("kms"), SETTINGS.manifest_signing_key_id)
          if SETTINGS.manifest_signing_key_id else None)
METRIC_STORE, METRIC_SINK = local_or_cloudwatch(os.environ, lambda: boto3.client("cloudwatch"), NAMESPACE)


def observe(m: Measure) -> None:
    """Every scoring request: its metrics (EMF) and one structured log line with the same fields."""
    emit(m, NAMESPACE, METRIC_SINK)
    logger.info("scored", extra=m.fields())


# scored rows counted in each version's baseline bins, flushed as telemetry (+ the DriftPsi metric)
DRIFT = DriftRecorder(registry, SETTINGS.telemetry_retention_days)
# aliases read at most every ALIAS_CACHE_TTL_SECONDS per process (modelsync.service.alias_cache)
SERVICE = ServingService(s3, registry, SETTINGS, MODEL_CACHE, SIGNER, observe, drift=DRIFT, aliases=ALIASES)
SERVICES = Services(SERVICE, RegistryAdmin(registry),
                    TelemetryService(registry, SETTINGS.telemetry_retention_days),
                    metrics=MetricsService(METRIC_STORE, registry),
                    drift=DriftService(registry, cached_loader(s3, SETTINGS.models_bucket, MODEL_CACHE)))
# the resolver (Powertools validation, pydantic models) is built on the first request, not at import
app = LazyResolver(lambda: SERVICES)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False,
                              clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        check_request_size(event, request_size_limit(event, SETTINGS))
    except PayloadTooLarge as exc:
        logger.info("request refused: %s", exc.message)
        observe_refused(observe, event, exc.code)
        return error_proxy_response(exc, event)
    response: dict[str, Any] = app.resolve(event, context)
    return response
