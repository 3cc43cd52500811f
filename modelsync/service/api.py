"""The scoring API: domain service, the routes (Powertools ``APIGatewayRestResolver``) and the error table.

Routes (docs/openapi.yaml describes them; a test keeps it equal to the template's Api events and to
:func:`build_resolver`'s routes):

* Open Inference Protocol (KServe V2): health, server/model metadata, readiness and ``infer``.
* ``POST /models/{name}/predict``: plain JSON ``{"instances": [...]}``.
* ``GET /models``, ``GET /models/{name}``, ``GET /models/{name}/manifest`` (ETag / 304, signed when a KMS
  key is configured) and ``GET /signing-key`` for tools and devices.
* Operator writes (IAM-only in the template): ``PUT`` / ``DELETE /models/{name}/aliases/{alias}`` (a
  version, optionally with a canary), ``POST .../aliases/{alias}/promote`` and ``.../rollback``
  (``If-Match`` on the revision), ``POST /models/{name}/versions/{version}/approve``; and
  ``GET /models/{name}/telemetry`` (fleet telemetry per version).
* ``POST /models/{name}/telemetry``: device telemetry batches (deduplicated per batch).

Requests resolved through an alias that carries a canary are split by caller: ``X-Device-Id`` (or the
``device_id`` query parameter) hashed with the model and alias name (modelsync.service.rollout);
without a caller id the base version answers.

Errors are JSON ``{"error": {"code", "message"}}`` with the status from :data:`ERROR_STATUS`, the single
place where domain errors meet HTTP. Anything else is a 500 with a generic message (and a logged trace).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StrictInt

import scorer

from . import layout, rollout, telemetry
from .config import Settings
from .errors import (
    AliasNotFound,
    Conflict,
    InvalidModelInput,
    InvalidRequest,
    MethodUnavailable,
    ModelNotFound,
    ModelUnreadable,
    NoPublishedVersion,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceError,
    SigningNotConfigured,
    SigningUnavailable,
    VersionNotFound,
)
from .inference import decode_v2_inputs, plain_predict, v2_outputs
from .registry import STATUS_PENDING, Registry, version_status
from .signing import ManifestSigner
from .store import ModelCache, load_published

log = logging.getLogger(__name__)

PLATFORM = "modelsync_sklearn"
SERVER_NAME = "modelsync"

# The one table from domain errors to HTTP statuses (most specific class first is not needed: the MRO
# of the raised error is walked).
ERROR_STATUS: dict[type[ServiceError], HTTPStatus] = {
    InvalidRequest: HTTPStatus.BAD_REQUEST,
    InvalidModelInput: HTTPStatus.BAD_REQUEST,
    MethodUnavailable: HTTPStatus.BAD_REQUEST,
    ModelNotFound: HTTPStatus.NOT_FOUND,
    VersionNotFound: HTTPStatus.NOT_FOUND,
    AliasNotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    PreconditionFailed: HTTPStatus.PRECONDITION_FAILED,
    PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    NoPublishedVersion: HTTPStatus.SERVICE_UNAVAILABLE,
    ModelUnreadable: HTTPStatus.SERVICE_UNAVAILABLE,
    SigningNotConfigured: HTTPStatus.NOT_FOUND,
    SigningUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}
INTERNAL_ERROR = ("internal_error", "internal error; the request id identifies it in the logs")
NOT_FOUND_ROUTE = ("route_not_found", "no such route")


def status_for(exc: ServiceError) -> HTTPStatus:
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_proxy_response(exc: ServiceError) -> dict[str, Any]:
    """An API Gateway proxy response for an error raised before the resolver runs (e.g. body too large)."""
    return {"statusCode": int(status_for(exc)), "headers": {"Content-Type": "application/json"},
            "body": json.dumps(error_body(exc.code, exc.message)), "isBase64Encoded": False}


TELEMETRY_ROUTE = "/models/{name}/telemetry"
PEM_MEDIA_TYPE = "application/x-pem-file"
CALLER_HEADER = "X-Device-Id"


def request_size_limit(event: dict[str, Any], settings: Settings) -> int:
    """The body limit of this request: ``MaxRequestBytes``, and a smaller one for device telemetry."""
    resource = event.get("resource") or event.get("requestContext", {}).get("resourcePath")
    if event.get("httpMethod") == "POST" and (resource == TELEMETRY_ROUTE
                                             or str(event.get("path", "")).endswith("/telemetry")):
        return min(settings.max_request_bytes, settings.max_telemetry_bytes)
    return settings.max_request_bytes


def check_request_size(event: dict[str, Any], limit: int) -> None:
    """Refuse an oversized body before any parsing (raises :class:`PayloadTooLarge`)."""
    body = event.get("body") or ""
    size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
    if event.get("isBase64Encoded"):
        size = size * 3 // 4
    if size > limit:
        raise PayloadTooLarge(f"request body is {size} bytes, over the limit of {limit} bytes")


# -- the domain service ------------------------------------------------------------------------------

@dataclass
class Resolved:
    """A version record, and the alias item that led to it (None when addressed by version).

    ``cohort`` is ``"base"`` or ``"canary"`` when the alias carries a canary, else None."""

    record: dict[str, Any]
    alias: dict[str, Any] | None
    cohort: str | None = None

    @property
    def name(self) -> str:
        return str(self.record["model"])

    @property
    def version(self) -> int:
        return int(self.record["version"])

    @property
    def revision(self) -> int:
        return int(self.alias.get("revision", 0)) if self.alias else 0


def _parse_version(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.isdigit() and len(raw) <= 10:
        value = int(raw)
    else:
        raise InvalidRequest(f"version must be a positive integer, got {raw!r}")
    if value < 1:
        raise InvalidRequest(f"version must be a positive integer, got {raw!r}")
    return value


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


class ScoringService:
    """What the routes do, with the clients passed in (no event formats here)."""

    def __init__(self, s3: Any, registry: Registry, settings: Settings, cache: ModelCache,
                 signer: ManifestSigner | None = None) -> None:
        self.s3 = s3
        self.registry = registry
        self.settings = settings
        self.cache = cache
        self.signer = signer

    # resolution
    def _check_name(self, name: str) -> None:
        if not layout.valid_model_name(name):
            raise ModelNotFound(f"no model named {name!r}")

    def resolve(self, name: str, version: int | str | None = None, alias: str | None = None,
                caller: str | None = None) -> Resolved:
        """The version a request gets: by number, or through an alias (``latest`` by default), whose
        canary (if any) takes the callers whose hash falls under its weight."""
        self._check_name(name)
        v = _parse_version(version)
        if v is not None and alias:
            raise InvalidRequest("give either version or alias, not both")
        if v is not None:
            record = self.registry.get_version(name, v)
            if record is None:
                if not self.registry.model_known(name):
                    raise ModelNotFound(f"no model named {name!r}")
                raise VersionNotFound(f"model {name} has no version {v}")
            return Resolved(record, None)
        alias = alias or layout.LATEST
        if not layout.valid_alias(alias):
            raise InvalidRequest(f"alias {alias!r} is not a valid alias name "
                                 "(lowercase letters, digits, '_', '-')")
        item = self.registry.get_alias(name, alias, consistent=True)
        if item is None:
            if not self.registry.model_known(name):
                raise ModelNotFound(f"no model named {name!r}")
            if alias == layout.LATEST:
                raise NoPublishedVersion(f"model {name} has no published version yet")
            raise AliasNotFound(f"model {name} has no alias {alias!r}")
        canary = rollout.canary_of(item)
        cohort = None
        target = int(item["version"])
        if canary is not None:
            cohort = rollout.CANARY if rollout.in_canary(name, alias, caller, canary.weight) else rollout.BASE
            if cohort == rollout.CANARY:
                target = canary.version
        record = self.registry.get_version(name, target)
        if record is None:  # an alias always points at a written version; only a manual edit gets here
            raise ModelUnreadable(f"alias {alias!r} of {name} points at a missing version")
        return Resolved(record, item, cohort)

    def load(self, resolved: Resolved) -> scorer.Model:
        return self.cache.get((resolved.name, resolved.version),
                              lambda: load_published(self.s3, self.settings.models_bucket, resolved.record))

    # V2
    def server_metadata(self) -> dict[str, Any]:
        from modelsync import __version__

        return {"name": SERVER_NAME, "version": __version__, "extensions": []}

    def ready(self) -> bool:
        try:
            self.registry.list_models()
        except ClientError:
            log.exception("registry unreachable")
            return False
        return True

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        resolved = self.resolve(name, version)
        r = resolved.record
        versions = [str(v["version"]) for v in self.registry.list_versions(name)]
        inputs = [{"name": f["name"], "datatype": "BYTES" if f.get("kind") == "categorical" else "FP64",
                   "shape": [-1]} for f in r.get("features") or []]
        outputs = [{"name": "predict", "datatype": r.get("predict_datatype", "FP64"), "shape": [-1]}]
        if "predict_proba" in (r.get("methods") or []):
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(r.get("classes") or [])]})
        return {"name": name, "versions": versions if version is None else [str(resolved.version)],
                "platform": PLATFORM, "inputs": inputs, "outputs": outputs,
                "parameters": {"version": str(resolved.version), "sha256": r.get("sha256"),
                               "model_type": r.get("model_type"), "task": r.get("task")}}

    def model_ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        resolved = self.resolve(name, version)
        self.load(resolved)
        return {"name": name, "version": str(resolved.version), "ready": True}

    def infer_v2(self, name: str, version: str | None, body: dict[str, Any],
                 caller: str | None = None) -> dict[str, Any]:
        resolved = self.resolve(name, version, caller=caller)
        model = self.load(resolved)
        X, rows = decode_v2_inputs(body.get("inputs"), model.features, self.settings.max_rows_per_request)
        requested = None
        if body.get("outputs") is not None:
            requested = [o.get("name") for o in body["outputs"]]
        outputs = v2_outputs(model, X, rows, requested)
        out: dict[str, Any] = {"model_name": name, "model_version": str(resolved.version), "outputs": outputs}
        if body.get("id") is not None:
            out["id"] = body["id"]
        return out

    # plain
    def predict(self, name: str, version: int | None, alias: str | None, instances: Any,
                caller: str | None = None) -> dict[str, Any]:
        resolved = self.resolve(name, version, alias, caller)
        model = self.load(resolved)
        result = plain_predict(model, instances, self.settings.max_rows_per_request)
        return {"model_name": name, "model_version": resolved.version, **result}

    # registry views
    def list_models(self) -> dict[str, Any]:
        models = []
        for item in self.registry.list_models():
            name = str(item["model"])
            latest = self.registry.get_alias(name, layout.LATEST)
            models.append({"name": name, "latest_version": latest["version"] if latest else None,
                           "latest_revision": latest["revision"] if latest else None,
                           "updated_at": item.get("updated_at")})
        return {"models": models}

    def get_model(self, name: str) -> dict[str, Any]:
        self._check_name(name)
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        fields = ("version", "sha256", "size", "format_version", "model_type", "task", "created_at",
                  "document_key", "approved_at")
        versions = [{**{k: v.get(k) for k in fields}, "status": version_status(v)}
                    for v in self.registry.list_versions(name)]
        aliases = {a: rollout.describe(item) for a, item in self.registry.list_aliases(name).items()}
        return {"name": name, "versions": versions, "aliases": aliases}

    def manifest(self, name: str, version: int | None, alias: str | None, caller: str | None = None
                 ) -> tuple[dict[str, Any], str]:
        """The manifest a device syncs from (signed when a key is configured) and its ETag.

        With a canary on the alias, ``cohort`` says which side this caller is on; the ETag changes with
        the cohort because it is made of the served sha256 and the alias revision."""
        resolved = self.resolve(name, version, alias, caller)
        r = resolved.record
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.settings.models_bucket, "Key": r["document_key"]},
            ExpiresIn=self.settings.presign_seconds)
        expires = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=self.settings.presign_seconds)
        manifest = {
            "name": name, "version": resolved.version,
            "alias": resolved.alias["alias"] if resolved.alias else None, "revision": resolved.revision,
            "sha256": r["sha256"], "size": int(r["size"]), "format_version": r["format_version"],
            "document_key": r["document_key"], "model_type": r.get("model_type"),
            "created_at": r.get("created_at"), "url": url,
            "url_expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if resolved.cohort is not None:
            manifest["cohort"] = resolved.cohort
        if self.signer is not None:
            manifest = self.signer.sign(manifest)
        return manifest, manifest_etag(r["sha256"], resolved.revision)

    def signing_key(self) -> dict[str, Any]:
        if self.signer is None:
            raise SigningNotConfigured("manifests are not signed on this deployment "
                                       "(no manifest signing key is configured)")
        return self.signer.public_key()

    def _servable(self, name: str, version: int, what: str = "version") -> dict[str, Any]:
        """The record of a version an alias may point at: it exists and is approved."""
        record = self.registry.get_version(name, version)
        if record is None:
            if not self.registry.model_known(name):
                raise ModelNotFound(f"no model named {name!r}")
            raise VersionNotFound(f"model {name} has no version {version} ({what})")
        if version_status(record) == STATUS_PENDING:
            raise Conflict(f"version {version} of {name} is pending approval ({what}); approve it first "
                           f"with POST /models/{name}/versions/{version}/approve")
        return record

    def _alias_name(self, name: str, alias: str) -> None:
        self._check_name(name)
        if not layout.valid_alias(alias):
            raise InvalidRequest(f"alias {alias!r} is not a valid alias name "
                                 "(lowercase letters, digits, '_', '-')")

    @staticmethod
    def _alias_result(name: str, alias: str, item: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "alias": alias, **rollout.describe(item)}

    def put_alias(self, name: str, alias: str, version: int, if_match: str | None,
                  canary: rollout.Canary | None = None) -> dict[str, Any]:
        """Point ``alias`` at ``version``, with ``canary`` or none (a PUT replaces the alias state)."""
        self._alias_name(name, alias)
        expected = parse_revision(if_match)
        self._servable(name, version)
        if canary is not None:
            if canary.version == version:
                raise InvalidRequest("canary.version: must differ from version")
            self._servable(name, canary.version, "canary.version")
        item = self.registry.move_alias(name, alias, version, expected_revision=expected, canary=canary)
        return self._alias_result(name, alias, item)

    def promote_alias(self, name: str, alias: str, if_match: str | None) -> dict[str, Any]:
        self._alias_name(name, alias)
        expected = parse_revision(if_match)
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        item = self.registry.promote_alias(name, alias, expected_revision=expected)
        return self._alias_result(name, alias, item)

    def rollback_alias(self, name: str, alias: str, if_match: str | None) -> dict[str, Any]:
        self._alias_name(name, alias)
        expected = parse_revision(if_match)
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        item = self.registry.rollback_alias(name, alias, expected_revision=expected)
        return self._alias_result(name, alias, item)

    def approve_version(self, name: str, version: str) -> dict[str, Any]:
        """pending -> approved, then ``latest`` moves forward to it (never backwards). Idempotent."""
        self._check_name(name)
        v = _parse_version(version)
        assert v is not None
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        record, changed = self.registry.approve_version(name, v)
        moved = self.registry.advance_latest(name, v, actor="api", action=rollout.ACTION_APPROVE)
        latest = moved or self.registry.get_alias(name, layout.LATEST, consistent=True)
        return {"name": name, "version": v, "status": version_status(record), "approved": changed,
                "approved_at": record.get("approved_at"), "latest_moved": moved is not None,
                "latest": rollout.describe(latest) if latest else None}

    # telemetry
    def post_telemetry(self, name: str, request: telemetry.TelemetryRequest,
                       header_device: str | None) -> dict[str, Any]:
        self._check_name(name)
        device = telemetry.check_request(name, request, header_device)
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        return telemetry.store(self.registry, name, device, request, self.settings.telemetry_retention_days)

    def get_telemetry(self, name: str, version: int | None, since: str | None,
                      device: str | None) -> dict[str, Any]:
        self._check_name(name)
        since = telemetry.check_since(since)
        device = rollout.check_caller_id(device, "device_id")
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        items = self.registry.query_telemetry(name, device=device, version=version, since=since,
                                              limit=telemetry.MAX_AGGREGATED_ITEMS + 1)
        out = telemetry.aggregate(name, items)
        out["filters"] = {"version": version, "since": since, "device_id": device}
        return out

    def delete_alias(self, name: str, alias: str, if_match: str | None) -> dict[str, Any]:
        self._check_name(name)
        if alias == layout.LATEST:
            raise Conflict("the latest alias cannot be deleted; move it with PUT instead")
        if not self.registry.model_known(name):
            raise ModelNotFound(f"no model named {name!r}")
        item = self.registry.delete_alias(name, alias, expected_revision=parse_revision(if_match))
        return {"name": name, "alias": alias, "revision": item["revision"]}


def manifest_etag(sha256: str, revision: int) -> str:
    return f'"{sha256}-{int(revision)}"'


# -- request bodies (module level: Powertools resolves the route annotations against these globals) ----

class InferTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """Open Inference Protocol request; tensors are checked in detail by modelsync.service.inference."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class PredictRequest(BaseModel):
    instances: list[Any]


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: StrictInt = Field(ge=1)
    weight: float = Field(gt=0, lt=1, strict=True, allow_inf_nan=False)


class AliasRequest(BaseModel):
    """``{"version": 1}``, or with a canary: ``{"version": 1, "canary": {"version": 2, "weight": 0.1}}``."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt = Field(ge=1)
    canary: CanaryRequest | None = None


# -- the routes --------------------------------------------------------------------------------------

def build_resolver(service: Callable[[], ScoringService], enable_validation: bool = True
                   ) -> APIGatewayRestResolver:
    """The REST resolver with every route. ``service`` is called per request (built lazily by the handler)."""
    app = APIGatewayRestResolver(enable_validation=enable_validation)

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

    # V2: health and metadata
    @app.get("/v2/health/live")
    def health_live() -> Response[Any]:
        return json_response(200, {"live": True})

    @app.get("/v2/health/ready")
    def health_ready() -> Response[Any]:
        ok = service().ready()
        return json_response(200 if ok else 503, {"ready": ok})

    @app.get("/v2")
    def server_metadata() -> Response[Any]:
        return json_response(200, service().server_metadata())

    @app.get("/v2/models/<name>")
    def model_metadata(name: str) -> Response[Any]:
        return json_response(200, service().model_metadata(name))

    @app.get("/v2/models/<name>/ready")
    def model_ready(name: str) -> Response[Any]:
        return json_response(200, service().model_ready(name))

    @app.get("/v2/models/<name>/versions/<version>")
    def model_version_metadata(name: str, version: str) -> Response[Any]:
        return json_response(200, service().model_metadata(name, version))

    # V2: inference
    @app.post("/v2/models/<name>/infer")
    def infer(name: str, request: Annotated[InferRequest, Body()],
              device_id: Annotated[str | None, Query()] = None) -> Response[Any]:
        body = request.model_dump(exclude_none=True)
        return json_response(200, service().infer_v2(name, None, body, caller(device_id)))

    @app.post("/v2/models/<name>/versions/<version>/infer")
    def infer_version(name: str, version: str, request: Annotated[InferRequest, Body()]) -> Response[Any]:
        body = request.model_dump(exclude_none=True)
        return json_response(200, service().infer_v2(name, version, body))

    # plain JSON
    @app.post("/models/<name>/predict")
    def predict(name: str, request: Annotated[PredictRequest, Body()],
                version: Annotated[int | None, Query(ge=1)] = None,
                alias: Annotated[str | None, Query()] = None,
                device_id: Annotated[str | None, Query()] = None) -> Response[Any]:
        return json_response(200, service().predict(name, version, alias, request.instances,
                                                    caller(device_id)))

    # registry views for tools and devices
    @app.get("/models")
    def list_models() -> Response[Any]:
        return json_response(200, service().list_models())

    @app.get("/models/<name>")
    def get_model(name: str) -> Response[Any]:
        return json_response(200, service().get_model(name))

    @app.get("/models/<name>/manifest")
    def get_manifest(name: str, version: Annotated[int | None, Query(ge=1)] = None,
                     alias: Annotated[str | None, Query()] = None,
                     device_id: Annotated[str | None, Query()] = None) -> Response[Any]:
        manifest, etag = service().manifest(name, version, alias, caller(device_id))
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": CALLER_HEADER}
        if etag_matches(header("If-None-Match"), etag):
            return Response(status_code=304, headers=headers, body=None)
        return json_response(200, manifest, headers)

    @app.get("/signing-key")
    def signing_key() -> Response[Any]:
        key = service().signing_key()
        if PEM_MEDIA_TYPE in (header("Accept") or ""):
            return Response(status_code=200, content_type=PEM_MEDIA_TYPE, body=key["public_key_pem"],
                            headers={"Cache-Control": "max-age=3600"})
        return json_response(200, key, {"Cache-Control": "max-age=3600"})

    # device telemetry
    @app.post("/models/<name>/telemetry")
    def post_telemetry(name: str, request: Annotated[telemetry.TelemetryRequest, Body()]) -> Response[Any]:
        device = header(CALLER_HEADER)
        device = rollout.check_caller_id(device, CALLER_HEADER) if device else None
        return json_response(200, service().post_telemetry(name, request, device))

    # operator routes (IAM-only in the template)
    @app.get("/models/<name>/telemetry")
    def get_telemetry(name: str, version: Annotated[int | None, Query(ge=1)] = None,
                      since: Annotated[str | None, Query()] = None,
                      device_id: Annotated[str | None, Query()] = None) -> Response[Any]:
        return json_response(200, service().get_telemetry(name, version, since, device_id))

    @app.put("/models/<name>/aliases/<alias>")
    def put_alias(name: str, alias: str, request: Annotated[AliasRequest, Body()]) -> Response[Any]:
        canary = rollout.Canary(request.canary.version, request.canary.weight) if request.canary else None
        result = service().put_alias(name, alias, request.version, header("If-Match"), canary)
        return json_response(200, result, {"ETag": f'"{result["revision"]}"'})

    @app.post("/models/<name>/aliases/<alias>/promote")
    def promote_alias(name: str, alias: str) -> Response[Any]:
        result = service().promote_alias(name, alias, header("If-Match"))
        return json_response(200, result, {"ETag": f'"{result["revision"]}"'})

    @app.post("/models/<name>/aliases/<alias>/rollback")
    def rollback_alias(name: str, alias: str) -> Response[Any]:
        result = service().rollback_alias(name, alias, header("If-Match"))
        return json_response(200, result, {"ETag": f'"{result["revision"]}"'})

    @app.post("/models/<name>/versions/<version>/approve")
    def approve_version(name: str, version: str) -> Response[Any]:
        return json_response(200, service().approve_version(name, version))

    @app.delete("/models/<name>/aliases/<alias>")
    def delete_alias(name: str, alias: str) -> Response[Any]:
        result = service().delete_alias(name, alias, header("If-Match"))
        return json_response(200, result, {"ETag": f'"{result["revision"]}"'})

    # errors: one table for the domain, a field-naming 400 for validation, a generic 500 for the rest
    @app.exception_handler(ServiceError)
    def service_error(exc: ServiceError) -> Response[Any]:
        status = status_for(exc)
        headers = {"Retry-After": "30"} if status == HTTPStatus.SERVICE_UNAVAILABLE else None
        return json_response(int(status), error_body(exc.code, exc.message), headers)

    @app.exception_handler(RequestValidationError)
    def validation_error(exc: RequestValidationError) -> Response[Any]:
        return json_response(400, error_body("invalid_request", _describe_validation(exc.errors(), app)))

    @app.not_found
    def not_found(exc: NotFoundError) -> Response[Any]:
        return json_response(404, error_body(*NOT_FOUND_ROUTE))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[Any]:
        log.exception("unhandled error")
        return json_response(500, error_body(*INTERNAL_ERROR))

    return app


def _describe_validation(errors: Any, app: Any) -> str:
    """A short message naming the field (and the tensor, for V2 inputs) of the first validation errors."""
    parts = []
    body: Any = None
    for err in list(errors)[:3]:
        loc = list(err.get("loc", ()))
        msg = str(err.get("msg") or err.get("type") or "invalid")
        where = ""
        for item in loc:
            where += f"[{item}]" if isinstance(item, int) else (f".{item}" if where else str(item))
        prefix = ""
        if len(loc) >= 3 and loc[0] == "body" and loc[1] == "inputs" and isinstance(loc[2], int):
            if body is None:
                body = _json_body(app)
            try:
                tensor = body["inputs"][loc[2]]["name"]
                prefix = f"input tensor {tensor!r}: " if isinstance(tensor, str) else ""
            except (KeyError, IndexError, TypeError):
                prefix = ""
        if err.get("type") == "json_invalid":
            parts.append("request body is not valid JSON")
        else:
            parts.append(f"{prefix}{where}: {msg}")
    return "; ".join(parts)


def _json_body(app: Any) -> Any:
    try:
        raw = app.current_event.body or ""
        if app.current_event.is_base64_encoded:
            raw = base64.b64decode(raw).decode()
        return json.loads(raw)
    except (ValueError, TypeError):
        return {}
