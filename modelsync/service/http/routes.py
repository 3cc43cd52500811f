"""The routes: a Powertools ``APIGatewayRestResolver`` adapting proxy events to the plain services.

Each route reads path, query, headers and body (validated against modelsync.service.http.models), calls
one service method and shapes the response (status, headers such as ETag). Errors go through the one
table in modelsync.service.http.errors. The ``summary``/``description``/``responses`` given to each route
are what docs/openapi.yaml says about it (``make openapi`` writes it from this resolver).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from modelsync_protocol import MODEL_NAME_RE

from .. import layout, rollout
from ..errors import InvalidRequest, ServiceError
from . import spec
from .binary import binary_response, prepare_binary, wanted_outputs
from .body import parse_json, prepare_body
from .errors import (
    INTERNAL_ERROR,
    NOT_FOUND_ROUTE,
    describe_validation,
    error_body,
    error_headers,
    error_proxy_response,
    is_v2,
    status_for,
)
from .models import AliasRequest, InferRequest, PredictRequest, TelemetryRequest
from .services import (  # noqa: F401  (re-exported: the routes' callers import them from here too)
    TELEMETRY_ROUTE,
    Services,
    check_request_size,
    observe_refused,
    request_size_limit,
)

log = logging.getLogger(__name__)

PEM_MEDIA_TYPE = "application/x-pem-file"
CALLER_HEADER = "X-Device-Id"
HEADERS_EXTENSION = "x-modelsync-headers"  # header parameters a route reads (openapi.py documents them)


# -- conditional requests ---------------------------------------------------------------------------

def parse_revision(header: str | None) -> int | None:
    """``If-Match``: the alias revision, bare or quoted (``3`` or ``"3"``); ``*`` means any."""
    if header is None or header.strip() in ("", "*"):
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise InvalidRequest(f"If-Match must be the alias revision (e.g. \"3\"), got {header!r}")
    return int(value)


def manifest_etag(sha256: str, revision: int) -> str:
    """Changes with the served document and the alias revision (so it differs between canary cohorts)."""
    return f'"{sha256}-{int(revision)}"'


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for candidate in header.split(","):
        c = candidate.strip()
        if c == "*":
            return True
        if c.startswith("W/"):
            c = c[2:]
        if c == etag or c.strip('"') == etag.strip('"'):
            return True
    return False


# -- parameters as the document describes them (patterns are documented, not enforced here: a bad name is
#    the service's 404 "no such model", not a validation 400) --------------------------------------------

Name = Annotated[str, Path(description="The model name.",
                           json_schema_extra={"pattern": f"^{MODEL_NAME_RE.pattern}$"})]
VersionPath = Annotated[str, Path(description="A version number.",
                                  json_schema_extra={"pattern": "^[1-9][0-9]*$"})]
AliasPath = Annotated[str, Path(description="The alias name.",
                                json_schema_extra={"pattern": layout.ALIAS_RE.pattern})]
VersionQuery = Annotated[int | None, Query(ge=1, description="Serve this version (not through an alias).")]
AliasQuery = Annotated[str | None, Query(description="Resolve through this alias (default `latest`).",
                                          json_schema_extra={"pattern": layout.ALIAS_RE.pattern})]
DeviceQuery = Annotated[str | None, Query(description="The caller id when X-Device-Id is not sent.",
                                          json_schema_extra={"pattern": rollout.CALLER_ID_RE.pattern})]


def op(operation_id: str, tag: str, summary: str, ok: dict[str, Any], *errors: int,
       description: str | None = None, headers: Sequence[str] = (), security: Any = None,
       more: dict[int, Any] | None = None, **described: str) -> dict[str, Any]:
    """The documentation arguments of one route decorator."""
    extensions: dict[str, Any] = {}
    if headers:
        extensions[HEADERS_EXTENSION] = list(headers)
    if security == spec.OPEN:
        extensions["security"] = []
        security = None
    return {"operation_id": operation_id, "tags": [tag], "summary": summary, "description": description,
            "responses": spec.responses({200: ok, **(more or {})}, *errors,
                                        error_schema="V2Error" if tag == "v2" else "Error", **described),
            "security": security, "openapi_extensions": extensions or None}


class Resolver(APIGatewayRestResolver):
    """Powertools' REST resolver, with the request body checked (media type, encoding, UTF-8) before
    Powertools reads it (modelsync.service.http.body): those mistakes are 4xx, never 500. V2 infer
    requests and responses may use the binary tensor data extension (modelsync.service.http.binary)."""

    services: Callable[[], Services] | None = None  # set by build_resolver: refused requests are measured

    def refused(self, event: Any, code: str) -> None:
        """Measure a scoring request refused before the serving service ran (see observe_refused)."""
        if self.services is not None:
            observe_refused(self.services().serving.observer, event, code)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        event = dict(event)
        try:
            prepare_binary(event)
            prepare_body(event)
        except ServiceError as exc:
            log.info("request refused: %s", exc.message)
            self.refused(event, exc.code)
            return error_proxy_response(exc, event)
        return binary_response(super().resolve(event, context), wanted_outputs(event))


def build_resolver(services: Callable[[], Services], enable_validation: bool = True) -> Resolver:
    """The REST resolver with every route. ``services`` is called per request (built once by the handler)."""
    app = Resolver(enable_validation=enable_validation, json_body_deserializer=parse_json)
    app.services = services
    ref, ok = spec.ref, spec.ok

    def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
        return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body,
                        headers=headers)

    def header(name: str) -> str | None:
        value = app.current_event.headers.get(name)
        return str(value) if value is not None else None

    def caller(device_id: str | None = None) -> str | None:
        """The caller id that picks the canary cohort: ``X-Device-Id``, else the ``device_id`` query."""
        from_header = header(CALLER_HEADER)
        if from_header:
            return rollout.check_caller_id(from_header, CALLER_HEADER)
        return rollout.check_caller_id(device_id, "device_id")

    def scored(result: dict[str, Any]) -> Response[Any]:
        """A scoring response, with the version that scored it in ``X-Model-Version``."""
        return json_response(200, result, {spec.MODEL_VERSION_HEADER: str(result["model_version"])})

    def v2() -> bool:
        return is_v2(app.current_event.raw_event)

    def alias_changed(result: dict[str, Any]) -> Response[Any]:
        return json_response(200, result, {"ETag": f'"{result["revision"]}"'})

    alias_ok = ok("The alias after the change.", ref("AliasChanged"),
                  {"ETag": {"schema": {"type": "string"}, "description": "The new revision, quoted."}})

    # V2: health and metadata
    @app.get("/v2/health/live", **op("healthLive", "v2", "Liveness", ok("The server is live.", {
        "type": "object", "properties": {"live": {"type": "boolean"}}}), security=spec.OPEN))
    def health_live() -> Response[Any]:
        return json_response(200, {"live": True})

    @app.get("/v2/health/ready", **op("healthReady", "v2", "Readiness", ok(
        "The server can reach the registry.", ref("Ready")), security=spec.OPEN,
        more={503: ok("The registry is unreachable.", ref("Ready"))}))
    def health_ready() -> Response[Any]:
        ok_ = services().serving.ready()
        return json_response(200 if ok_ else 503, {"ready": ok_})

    @app.get("/v2", **op("serverMetadata", "v2", "Server metadata", ok("Server metadata.", {
        "type": "object", "required": ["name", "version", "extensions"],
        "properties": {"name": {"type": "string", "example": "modelsync"}, "version": {"type": "string"},
                       "extensions": {"type": "array", "items": {"type": "string"}}}})))
    def server_metadata() -> Response[Any]:
        return json_response(200, services().serving.server_metadata())

    @app.get("/v2/models/<name>", **op(
        "modelMetadata", "v2", "Model metadata",
        ok("Metadata of the latest version (and the list of versions).", ref("ModelMetadata")), 404, 503))
    def model_metadata(name: Name) -> Response[Any]:
        return json_response(200, services().serving.model_metadata(name))

    @app.get("/v2/models/<name>/ready", **op(
        "modelReady", "v2", "Model readiness", ok("The latest version is loaded and can score.", {
            "type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                             "ready": {"type": "boolean"}}}), 404, 503))
    def model_ready(name: Name) -> Response[Any]:
        return json_response(200, services().serving.model_ready(name))

    @app.get("/v2/models/<name>/versions/<version>/ready", **op(
        "modelVersionReady", "v2", "Model version readiness", ok("That version is loaded and can score.", {
            "type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                             "ready": {"type": "boolean"}}}), 400, 404, 503))
    def model_version_ready(name: Name, version: VersionPath) -> Response[Any]:
        return json_response(200, services().serving.model_ready(name, version))

    @app.get("/v2/models/<name>/versions/<version>", **op(
        "modelVersionMetadata", "v2", "Model version metadata",
        ok("Metadata of that version.", ref("ModelMetadata")), 400, 404))
    def model_version_metadata(name: Name, version: VersionPath) -> Response[Any]:
        return json_response(200, services().serving.model_metadata(name, version))

    # V2: inference
    @app.post("/v2/models/<name>/infer", **op(
        "infer", "v2", "Infer with the latest version",
        ok("Outputs of the latest version.", ref("InferResponse"), spec.SERVED_VERSION),
        400, 404, 413, 415, 503,
        description="Scores with `latest` (its canary for callers in the canary cohort).",
        headers=[CALLER_HEADER]))
    def infer(name: Name, request: Annotated[InferRequest, Body()],
              device_id: DeviceQuery = None) -> Response[Any]:
        body = request.model_dump(exclude_none=True)
        return scored(services().serving.infer_v2(name, None, body, caller(device_id)))

    @app.post("/v2/models/<name>/versions/<version>/infer", **op(
        "inferVersion", "v2", "Infer with a version", ok("Outputs of that version.", ref("InferResponse"),
                                                                 spec.SERVED_VERSION),
        400, 404, 413, 415))
    def infer_version(name: Name, version: VersionPath, request: Annotated[InferRequest, Body()]
                      ) -> Response[Any]:
        body = request.model_dump(exclude_none=True)
        return scored(services().serving.infer_v2(name, version, body))

    # plain JSON
    @app.post("/models/<name>/predict", **op(
        "predict", "predict", "Predict rows",
        ok("Predictions (and class probabilities for classifiers that have them), or the requested outputs.",
           ref("PredictResponse"), spec.SERVED_VERSION),
        400, 404, 413, 415, 503,
        description="Scores rows with a version, an alias (default `latest`; its canary for callers in "
                    "the canary cohort).", headers=[CALLER_HEADER]))
    def predict(name: Name, request: Annotated[PredictRequest, Body()], version: VersionQuery = None,
                alias: AliasQuery = None, device_id: DeviceQuery = None) -> Response[Any]:
        return scored(services().serving.predict(name, version, alias, request.instances, caller(device_id),
                                                 request.outputs))

    # registry views for tools and devices
    @app.get("/models", **op("listModels", "registry", "List models",
                             ok("Every model with its latest version.", ref("ModelList"))))
    def list_models() -> Response[Any]:
        return json_response(200, services().admin.list_models())

    @app.get("/models/<name>", **op("getModel", "registry", "A model's versions and aliases",
                                    ok("Versions and aliases of the model.", ref("Model")), 404))
    def get_model(name: Name) -> Response[Any]:
        return json_response(200, services().admin.get_model(name))

    @app.get("/models/<name>/manifest", **op(
        "getManifest", "registry", "The manifest a device syncs from",
        ok("The manifest.", ref("Manifest"), {
            "ETag": {"schema": {"type": "string"}, "description": '"{sha256}-{revision}"'},
            "Vary": {"schema": {"type": "string"}, "description": "X-Device-Id"}}),
        400, 404, 503,
        description="What a device needs to fetch a version: the manifest with a short-lived presigned "
                    "URL, signed (ECDSA P-256 / SHA-256 with the registry's KMS key) when the deployment "
                    "has one. The ETag is derived from the served sha256 and the alias revision (so it "
                    "differs between canary cohorts); a matching If-None-Match gets 304 (no body). A "
                    "pending version's manifest can be fetched by version only.",
        headers=["If-None-Match", CALLER_HEADER],
        more={304: ok("Not modified (the ETag matched).", headers={"ETag": {"schema": {"type": "string"}}})}))
    def get_manifest(name: Name, version: VersionQuery = None, alias: AliasQuery = None,
                     device_id: DeviceQuery = None) -> Response[Any]:
        manifest = services().serving.manifest(name, version, alias, caller(device_id))
        etag = manifest_etag(manifest["sha256"], manifest["revision"])
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": CALLER_HEADER}
        if etag_matches(header("If-None-Match"), etag):
            return Response(status_code=304, headers=headers, body=None)
        return json_response(200, manifest, headers)

    @app.get("/signing-key", **op(
        "getSigningKey", "registry", "The manifest signing public key", {
            "description": "The public key.",
            "content": {"application/json": {"schema": ref("SigningKey")},
                        PEM_MEDIA_TYPE: {"schema": {"type": "string"}}}},
        404, 503, e404="Manifests are not signed on this deployment.",
        description="The public key manifests are signed with (KMS GetPublicKey, DER SubjectPublicKeyInfo "
                    "as PEM), to provision devices. `Accept: application/x-pem-file` returns the PEM text "
                    "alone.", headers=["Accept"]))
    def signing_key() -> Response[Any]:
        key = services().serving.signing_key()
        if PEM_MEDIA_TYPE in (header("Accept") or ""):
            return Response(status_code=200, content_type=PEM_MEDIA_TYPE, body=key["public_key_pem"],
                            headers={"Cache-Control": "max-age=3600"})
        return json_response(200, key, {"Cache-Control": "max-age=3600"})

    # device telemetry
    @app.post("/models/<name>/telemetry", **op(
        "postTelemetry", "telemetry", "Send device telemetry",
        ok("Every batch in `accepted` is stored (now, or by an earlier attempt).", ref("TelemetryAccepted")),
        400, 404, 413, 415,
        description="Device telemetry (the payload of docs/devices.md, schema `modelsync.telemetry/1`). "
                    "Each batch is stored once per (model, device id, batch_id): retries are acknowledged "
                    "without storing twice. Bodies over 1 MiB are refused (413); at most 100 batches per "
                    "request.", headers=[CALLER_HEADER]))
    def post_telemetry(name: Name, request: Annotated[TelemetryRequest, Body()]) -> Response[Any]:
        device = header(CALLER_HEADER)
        device = rollout.check_caller_id(device, CALLER_HEADER) if device else None
        return json_response(200, services().telemetry.receive(name, request.plain(), device))

    # operator routes (IAM-only in the template)
    @app.get("/models/<name>/telemetry", **op(
        "getTelemetry", "telemetry", "Fleet telemetry per version", ok("The aggregate.",
                                                                        ref("TelemetryAggregate")),
        400, 404, security=spec.IAM_ONLY,
        description="Device telemetry merged per model version: devices, batches, calls, rows, errors, "
                    "latency (sum, min, max, mean per call), predicted-label counts, and per feature count "
                    "/ missing / infinite / missing_rate and (numeric) mean / std / min / max, merged "
                    "exactly from the devices' running sums. Reads at most 20,000 batches (`truncated` "
                    "says when there were more: narrow with `since`)."))
    def get_telemetry(name: Name, version: VersionQuery = None,
                      since: Annotated[str | None, Query(
                          description="Only batches whose window ended at or after this UTC date or time "
                                      "(e.g. 2025-01-07T00:00:00Z).")] = None,
                      device_id: Annotated[str | None, Query(
                          description="Only this device's batches.")] = None
                      ) -> Response[Any]:
        return json_response(200, services().telemetry.fleet(name, version, since, device_id))

    @app.get("/models/<name>/metrics", **op(
        "getMetrics", "telemetry", "Scoring metrics per version",
        ok("Per version and rollout side: requests, rows, errors by kind, scoring and total latency.",
           ref("VersionMetrics")), 400, 404, security=spec.IAM_ONLY,
        description="What the Score function measured for each version it served (and the rollout side, "
                    "`base` or `canary`), side by side: from CloudWatch (`GetMetricData` over the "
                    "function's embedded-metric-format records) in AWS, from the emitted records on the "
                    "local stack. Latencies as mean, p50, p90, p99 and max; `series` splits the window "
                    "into `bucket_seconds`-wide buckets (at most 52) for charts. `since` defaults to "
                    "the last 24 hours."))
    def get_metrics(name: Name, since: Annotated[str | None, Query(
            description="Only requests at or after this UTC date or time (e.g. 2025-01-07T00:00:00Z)."
    )] = None) -> Response[Any]:
        store = services().metrics
        if store is None:
            raise NotFoundError("metrics are not served here")
        return json_response(200, store.per_version(name, since))
    @app.get("/models/<name>/drift", **op(
        "getDrift", "telemetry", "Drift of served rows against the version's baseline",
        ok("PSI per feature and for the predictions.", {"type": "object"}), 400, 404,
        security=spec.IAM_ONLY,
        description="The rows the Score function and devices scored (their bin counts), compared with "
                    "the training baseline in the document's `metadata.baseline`: per feature and for the "
                    "predictions (`__prediction__`) `{feature, psi, outside_range, rows, status}`; status "
                    "`warn` from PSI 0.1, `alert` from 0.25; `distributions`: per feature the "
                    "baseline's and the observed share of each bin (`bins`: `[lo, hi]` edges or "
                    "categories). Defaults: the version `latest` points to, the last 24 hours."))
    def get_drift(name: Name, version: Annotated[int | None, Query(
                      ge=1, description="This version (default: the one `latest` points to).")] = None,
                  since: Annotated[str | None, Query(
                      description="Only counts whose window ended at or after this UTC date or time "
                                  "(default: 24 hours ago).")] = None) -> Response[Any]:
        service = services().drift
        if service is None:
            raise NotFoundError("drift is not served by this deployment")
        return json_response(200, service.drift(name, version, since))

    @app.put("/models/<name>/aliases/<alias>", **op(
        "putAlias", "rollout", "Point an alias at a version (optionally with a canary)", alias_ok,
        400, 404, 409, 412, 413, 415, security=spec.IAM_ONLY, headers=["If-Match"],
        description="Point an alias at a version (revision + 1), optionally with a canary taking `weight` "
                    "of the callers to `canary.version`. A PUT replaces the alias state: without `canary` "
                    "any canary is removed. The old version goes to the alias history (for rollback). "
                    "Versions pending approval cannot be used (409)."))
    def put_alias(name: Name, alias: AliasPath, request: Annotated[AliasRequest, Body()]) -> Response[Any]:
        canary = rollout.Canary(request.canary.version, request.canary.weight) if request.canary else None
        return alias_changed(services().admin.put_alias(name, alias, request.version,
                                                        parse_revision(header("If-Match")), canary))

    @app.post("/models/<name>/aliases/<alias>/promote", **op(
        "promoteAlias", "rollout", "Promote the canary", alias_ok, 400, 404, 409, 412,
        security=spec.IAM_ONLY, headers=["If-Match"],
        description="The canary version becomes the alias version and the canary is removed (revision + 1)."))
    def promote_alias(name: Name, alias: AliasPath) -> Response[Any]:
        return alias_changed(services().admin.promote_alias(name, alias, parse_revision(header("If-Match"))))

    @app.post("/models/<name>/aliases/<alias>/rollback", **op(
        "rollbackAlias", "rollout", "Roll back the canary or the last move", alias_ok, 400, 404, 409, 412,
        security=spec.IAM_ONLY, headers=["If-Match"],
        description="With a canary: the canary is removed (every caller back on the base version). Without "
                    "one: the alias moves back to its previous version (the last entry of its history, "
                    "which is consumed, so repeated rollbacks walk further back). Revision + 1 either way."))
    def rollback_alias(name: Name, alias: AliasPath) -> Response[Any]:
        return alias_changed(services().admin.rollback_alias(name, alias, parse_revision(header("If-Match"))))

    @app.post("/models/<name>/versions/<version>/approve", **op(
        "approveVersion", "rollout", "Approve a pending version",
        ok("The version's status and what happened to `latest`.", ref("Approval")), 400, 404,
        security=spec.IAM_ONLY,
        description="Approve a version published as `pending` (`RequireApproval=true`) and move `latest` "
                    "forward to it (never backwards: approving an older version leaves `latest` alone). "
                    "Idempotent."))
    def approve_version(name: Name, version: VersionPath) -> Response[Any]:
        return json_response(200, services().admin.approve_version(name, version))

    @app.delete("/models/<name>/aliases/<alias>", **op(
        "deleteAlias", "rollout", "Delete an alias",
        ok("The alias's new revision.", ref("AliasDeleted"),
           {"ETag": {"schema": {"type": "string"}, "description": "The new revision, quoted."}}),
        400, 404, 409, 412, security=spec.IAM_ONLY, headers=["If-Match"], e409="`latest` cannot be deleted.",
        description="Remove an alias (not `latest`). The registry keeps a tombstone; the revision keeps "
                    "growing."))
    def delete_alias(name: Name, alias: AliasPath) -> Response[Any]:
        return alias_changed(services().admin.delete_alias(name, alias, parse_revision(header("If-Match"))))

    # errors: one table for the domain, a field-naming 400 for validation, a generic 500 for the rest
    @app.exception_handler(ServiceError)
    def service_error(exc: ServiceError) -> Response[Any]:
        status = status_for(exc)
        return json_response(int(status), error_body(exc.code, exc.message, v2()), error_headers(status))

    @app.exception_handler(RequestValidationError)
    def validation_error(exc: RequestValidationError) -> Response[Any]:
        event = app.current_event
        message = describe_validation(exc.errors(), event.body, bool(event.is_base64_encoded))
        app.refused(event.raw_event, "invalid_request")
        return json_response(int(HTTPStatus.BAD_REQUEST), error_body("invalid_request", message, v2()))

    @app.not_found
    def not_found(exc: NotFoundError) -> Response[Any]:
        return json_response(404, error_body(*NOT_FOUND_ROUTE, v2=v2()))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[Any]:
        log.exception("unhandled error")
        return json_response(500, error_body(*INTERNAL_ERROR, v2=v2()))

    return app
