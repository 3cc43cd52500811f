"""What the OpenAPI document says beyond the routes' signatures: the API description, tags, security
schemes, the response schemas each route declares (``responses=``) and the shared component schemas.

Plain data: the routes import it (cheap), and modelsync.service.openapi assembles the document from the
resolver with it. Response schemas are documentation only; Powertools does not validate responses.
"""

from __future__ import annotations

from typing import Any

from ..rollout import CALLER_ID_RE

TITLE = "modelsync scoring API"
DESCRIPTION = """\
The ScoreFunction behind API Gateway (stage `v1`). Five groups of routes:

* **Open Inference Protocol (KServe V2)** under `/v2`: health, metadata, readiness and `infer`.
* **Plain JSON** `POST /models/{name}/predict` with `{"instances": [...]}`.
* **Registry views** for tools and devices: `/models`, `/models/{name}`, `/models/{name}/manifest`
  (ETag / `If-None-Match` -> 304; signed with the registry's KMS key) and `/signing-key` (the public
  key devices verify manifests with).
* **Rollout** (operators, IAM): `/models/{name}/aliases/{alias}` (a version, optionally with a
  canary; `If-Match` on the alias revision -> 412 when stale), `.../promote`, `.../rollback`,
  `/models/{name}/versions/{version}/approve` (deployments with `RequireApproval=true`).
* **Telemetry**: devices `POST /models/{name}/telemetry`; operators read the per-version aggregate
  with `GET` (IAM).

**Canary routing.** An alias may carry a canary (`{"version": 2, "weight": 0.1}`). Requests resolved
through that alias (plain predict and V2 infer without a version - `latest` -, predict with
`alias=`, the manifest without `version=`) are split by caller: the caller id (`X-Device-Id` header,
else the `device_id` query parameter) is hashed with the model and alias name,
`sha256(model + ":" + alias + ":" + caller_id)`; its first 8 bytes as a big-endian integer / 2^64 below
the weight -> the canary version, else the base version. The same caller always gets the same side.
Without a caller id, the base version answers. Requests naming a version are never split.

Authorisation is API Gateway's (template parameter `AuthMode`): IAM (SigV4, default), a Cognito user
pool, or API keys with a usage plan. The two health routes are open; operator routes (alias writes,
promote, rollback, approve, `GET .../telemetry`, `GET .../metrics`) always need IAM.

Every scoring response names the version that scored it (`X-Model-Version`; V2's `model_version`);
`GET /models/{name}/metrics` shows requests, rows, errors and latencies per version and rollout side.

Every error is `{"error": {"code", "message"}}`, except on the `/v2` routes, where it is
`{"error": "<message>"}` as the Open Inference Protocol says: 400 names the bad field, row or tensor
(or lists the outputs the model has); 404 unknown model/version/alias (or no signing key); 409
deleting `latest`, promoting without a canary, rolling
back with nothing to go back to, pointing an alias at a version pending approval; 412 stale
`If-Match`; 413 over the rows or bytes limit (`MaxRowsPerRequest`, `MaxRequestBytes`, 1 MiB for
telemetry); 415 a body that is not `application/json` in UTF-8 or that is content-encoded (a body
without Content-Type is read as JSON; bodies nest at most 64 levels deep); 503 when the model has no
published version yet or the manifest cannot be signed right now (with `Retry-After`); 500 carries no
internals (the request id finds the log line).
"""
SERVERS = [{"url": "https://{apiId}.execute-api.{region}.amazonaws.com/v1",
            "variables": {"apiId": {"default": "example"}, "region": {"default": "us-east-1"}}}]
TAGS = [{"name": "v2", "description": "Open Inference Protocol"},
        {"name": "predict", "description": "Plain JSON predictions"},
        {"name": "registry", "description": "Registry views for tools and devices"},
        {"name": "rollout", "description": "Aliases, canaries and approval (operators, IAM)"},
        {"name": "telemetry", "description": "Device telemetry in, fleet aggregate out"}]

# Security as template.yaml declares it: the API's default authorizer is IAM (SigV4) unless AuthMode
# says otherwise; health routes are open (Authorizer NONE); operator routes always need IAM.
SIGV4 = "sigv4"
SECURITY_SCHEMES: dict[str, Any] = {
    SIGV4: {"type": "apiKey", "name": "Authorization", "in": "header",
            "x-amazon-apigateway-authtype": "awsSigv4"},
}
DEFAULT_SECURITY: list[dict[str, list[str]]] = [{SIGV4: []}]
IAM_ONLY: list[dict[str, list[str]]] = [{SIGV4: []}]
OPEN = "open"  # marker: the route needs no authorisation (``security: []`` in the document)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ok(description: str, schema: dict[str, Any] | None = None,
       headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if headers:
        out["headers"] = headers
    if schema is not None:
        out["content"] = json_content(schema)
    return out


ERRORS: dict[int, str] = {
    400: "Malformed request (the message names the field, row or tensor).",
    404: "Unknown model, version or alias.",
    409: "The change conflicts with the registry (no canary to promote, nothing to roll back to, a "
         "version pending approval).",
    412: "If-Match does not match the alias revision.",
    413: "Over the rows or bytes limit.",
    415: "The body is not `application/json` in UTF-8, or is content-encoded (e.g. gzip).",
    503: "The model has no published version yet (or it cannot be loaded).",
}
MODEL_VERSION_HEADER = "X-Model-Version"
SERVED_VERSION = {MODEL_VERSION_HEADER: {"schema": {"type": "string"},
                                         "description": "The version that scored."}}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


def error(status: int, description: str | None = None, schema: str = "Error") -> dict[str, Any]:
    out = ok(description or ERRORS[status], ref(schema))
    if status == 503:
        out["headers"] = RETRY_AFTER
    return out


def responses(success: dict[int, dict[str, Any]], *errors: int, error_schema: str = "Error",
              **described: str) -> dict[int, Any]:
    """``{200: ok(...)}`` plus error responses by status (``e409="why"`` overrides a description)."""
    out: dict[int, Any] = dict(success)
    for status in errors:
        out[status] = error(status, described.get(f"e{status}"), error_schema)
    return out


HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    "X-Device-Id": {"name": "X-Device-Id", "in": "header", "required": False,
                    "schema": {"type": "string", "pattern": CALLER_ID_RE.pattern},
                    "description": "The caller id that picks the canary cohort (printable ASCII, no spaces "
                                   "or '#')."},
    "If-Match": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": 'The alias revision, e.g. "3".'},
    "If-None-Match": {"name": "If-None-Match", "in": "header", "required": False,
                      "schema": {"type": "string"}, "description": "The ETag of the manifest held."},
    "Accept": {"name": "Accept", "in": "header", "required": False, "schema": {"type": "string"},
               "description": "`application/x-pem-file` for the PEM text alone."},
}

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}

COMPONENTS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "example": "invalid_input"}, "message": {"type": "string"}}}},
    },
    "V2Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "description": "The message (Open Inference Protocol)."}},
    },
    "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    "Canary": {
        "type": "object", "additionalProperties": False, "required": ["version", "weight"],
        "properties": {
            "version": {"type": "integer", "minimum": 1},
            "weight": {"type": "number", "description": "Share of callers sent to the canary (0 < w < 1)."}},
    },
    "Alias": {
        "type": "object",
        "properties": {
            "version": {"type": "integer", "description": "The base version."},
            "revision": {"type": "integer", "description": "Grows by one with every change (moves, "
                                                           "canaries, promote, rollback, delete)."},
            "canary": nullable(ref("Canary")),
            "history": {"type": "array", "items": {"type": "integer"},
                        "description": "Previous versions, most recent last (at most 10); rollback pops it."},
            "updated_at": {"type": "string"}, "updated_by": {"type": "string"},
            "action": {"type": "string", "enum": ["put", "promote", "rollback", "publish", "approve"]}},
    },
    "AliasChanged": {"allOf": [{"type": "object", "properties": {
        "name": {"type": "string"}, "alias": {"type": "string"}}}, ref("Alias")]},
    "TensorMetadata": {
        "type": "object",
        "properties": {"name": {"type": "string"},
                       "datatype": {"type": "string", "enum": ["BOOL", "INT32", "INT64", "FP32", "FP64",
                                                               "BYTES"]},
                       "shape": {"type": "array", "items": {"type": "integer"}}},
    },
    "ModelMetadata": {
        "type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                       "platform": {"type": "string", "example": "modelsync_sklearn"},
                       "inputs": {"type": "array", "items": ref("TensorMetadata")},
                       "outputs": {"type": "array", "items": ref("TensorMetadata")},
                       "parameters": {"type": "object"}},
    },
    "InferResponse": {
        "type": "object", "required": ["model_name", "model_version", "outputs"],
        "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "outputs": {"type": "array", "items": {
                "type": "object",
                "description": "One tensor per requested output (default `predict` and, for classifiers, "
                               "`predict_proba`): `predict` (shape [rows]; BYTES for string labels, "
                               "INT64/FP64/BOOL otherwise), `predict_proba` (FP64, [rows, n_classes]), "
                               "`decision_function` (FP64, [rows] or [rows, k]), `transform` (FP64, "
                               "[rows, k]).",
                "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                               "shape": {"type": "array", "items": {"type": "integer"}},
                               "data": {"type": "array", "items": {}}}}}},
    },
    "PredictResponse": {
        "type": "object", "required": ["model_name", "model_version"],
        "properties": {"model_name": {"type": "string"}, "model_version": {"type": "integer"},
                       "predictions": {"type": "array", "items": {}},
                       "probabilities": {"type": "array", "items": {
                           "type": "object", "additionalProperties": {"type": "number"}},
                           "description": "Per row, probability by class label (classifiers)."},
                       "decision_function": {"type": "array", "items": {},
                                             "description": "When requested: per row a number (or a list)."},
                       "transform": {"type": "array", "items": {"type": "array", "items": {}},
                                     "description": "When requested: per row the transformed values."}},
    },
    "ModelList": {
        "type": "object",
        "properties": {"models": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "latest_version": _NULLABLE_INT, "latest_revision": _NULLABLE_INT,
            "updated_at": _NULLABLE_STR}}}},
    },
    "Model": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "object", "properties": {
                "version": {"type": "integer"}, "status": {"type": "string", "enum": ["pending", "approved"]},
                "sha256": {"type": "string"}, "size": {"type": "integer"},
                "format_version": {"type": "string"}, "model_type": {"type": "string"},
                "task": {"type": "string"}, "created_at": {"type": "string"},
                "document_key": {"type": "string"}, "approved_at": _NULLABLE_STR,
                "feature_count": _NULLABLE_INT, "class_count": _NULLABLE_INT,
                "methods": {"type": ["array", "null"], "items": {"type": "string"}},
                "schema_change_count": {"type": ["integer", "null"], "description": (
                    "Input-schema changes from `compared_with` (the version latest pointed to): latest "
                    "was held. null when the schema matched.")},
                "compared_with": _NULLABLE_INT}}},
            "aliases": {"type": "object", "additionalProperties": ref("Alias")}},
    },
    "Manifest": {
        "type": "object",
        "required": ["name", "version", "revision", "sha256", "size", "format_version", "document_key",
                     "url"],
        "properties": {
            "name": {"type": "string"}, "version": {"type": "integer"},
            "alias": {"type": ["string", "null"], "description": "null when addressed by version"},
            "revision": {"type": "integer",
                         "description": "The alias revision (0 when addressed by version)."},
            "sha256": {"type": "string",
                       "description": "The document's content sha256 (scorer.content_sha256)."},
            "size": {"type": "integer", "description": "Bytes of the published document."},
            "format_version": {"type": "string"},
            "document_key": {"type": "string", "example": "models/iris/1.json"},
            "model_type": {"type": "string"}, "created_at": {"type": "string"},
            "url": {"type": "string", "description": "Presigned GET URL of the document (short-lived)."},
            "url_expires_at": {"type": "string"},
            "cohort": {"type": "string", "enum": ["base", "canary"], "description": (
                "Present when the alias carries a canary - the side this caller is on.")},
            "key_id": {"type": "string", "description": "The signing KMS key (signed manifests only)."},
            "signature_algorithm": {"type": "string", "enum": ["ECDSA_SHA_256"]},
            "signature": {"type": "string", "description": (
                "Base64 DER ECDSA signature over the manifest's signing bytes: the manifest without "
                "signature, url and url_expires_at, as sorted compact UTF-8 JSON (docs/devices.md). "
                "Absent when the deployment has no signing key.")}},
    },
    "SigningKey": {
        "type": "object",
        "properties": {
            "key_id": {"type": "string",
                       "description": "The KMS key (its ARN); manifests carry it as key_id."},
            "key_spec": {"type": "string", "example": "ECC_NIST_P256"},
            "signing_algorithm": {"type": "string", "example": "ECDSA_SHA_256"},
            "public_key_pem": {"type": "string"}, "public_key_der_b64": {"type": "string"}},
    },
    "Approval": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "version": {"type": "integer"},
            "status": {"type": "string", "enum": ["approved"]},
            "approved": {"type": "boolean", "description": "false when it was approved already"},
            "approved_at": _NULLABLE_STR, "latest_moved": {"type": "boolean"},
            "latest": nullable(ref("Alias"))},
    },
    "AliasDeleted": {"type": "object", "properties": {
        "name": {"type": "string"}, "alias": {"type": "string"}, "revision": {"type": "integer"}}},
    "VersionMetrics": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "since": {"type": "string"}, "until": {"type": "string"},
            "bucket_seconds": {"type": "integer", "description": "Width of the `series` buckets (at most 52 "
                                                                  "over the window)."},
            "versions": {"type": "array", "items": {"type": "object", "properties": {
                "version": {"type": ["integer", "string"], "description": "`-`: failed before resolving."},
                "side": {"type": "string", "enum": ["base", "canary"]},
                "requests": {"type": "integer"}, "rows": {"type": "integer"}, "errors": {"type": "integer"},
                "error_rate": {**_NULLABLE_NUM, "description": "Errors out of what they count: failed API "
                               "requests out of requests, a batch input's refused rows out of the rows it "
                               "read (a failed input: 1 of 1); from 0 to 1."},
                "errors_by_kind": {"type": "object", "additionalProperties": {"type": "integer"}},
                "scoring_latency_ms": ref("LatencySummary"), "total_latency_ms": ref("LatencySummary"),
                "series": {"type": "array", "description": "Buckets with requests, oldest first.",
                           "items": {"type": "object", "properties": {
                               "start": {"type": "string"}, "requests": {"type": "integer"},
                               "rows": {"type": "integer"}, "errors": {"type": "integer"},
                               "error_rate": _NULLABLE_NUM,
                               "total_latency_ms": ref("LatencySummary")}}}}}}},
    },
    "LatencySummary": {"type": "object", "properties": {
        "mean": _NULLABLE_NUM, "p50": _NULLABLE_NUM, "p90": _NULLABLE_NUM, "p99": _NULLABLE_NUM,
        "max": _NULLABLE_NUM}, "description": "Milliseconds: mean, percentiles (nearest rank locally; "
                                             "CloudWatch's p50/p90/p99 in AWS) and max."},
    "TelemetryAccepted": {
        "type": "object",
        "properties": {"accepted": {"type": "array", "items": {"type": "string"}},
                       "duplicates": {"type": "integer"}, "stored": {"type": "integer"}},
    },
    "TelemetryAggregate": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "batches": {"type": "integer"}, "devices": {"type": "integer"},
            "dropped_batches": {"type": "integer",
                                "description": "Batches devices reported dropping (their local bounds)."},
            "truncated": {"type": "boolean"}, "filters": {"type": "object"},
            "last_seen": {"type": "array", "description": "Each device's newest batch: when the server "
                          "received it and the version it reported (newest first, at most 100 devices).",
                          "items": {"type": "object", "properties": {
                              "device_id": {"type": "string"}, "version": {"type": "integer"},
                              "last_seen": {"type": "string"}}}},
            "versions": {"type": "array", "items": {"type": "object", "properties": {
                "version": {"type": "integer"}, "sha256": {"type": "array", "items": {"type": "string"}},
                "devices": {"type": "integer"}, "batches": {"type": "integer"}, "calls": {"type": "integer"},
                "rows": {"type": "integer"}, "errors": {"type": "integer"},
                "error_rate": _NULLABLE_NUM,
                "window_start": {"type": "string"}, "window_end": {"type": "string"},
                "latency_ms": {"type": "object", "properties": {
                    "sum": {"type": "number"}, "min": {"type": "number"}, "max": {"type": "number"},
                    "mean": {"type": "number"}}},
                "predictions": {"type": "object", "additionalProperties": {"type": "integer"}},
                "output": {"type": ["object", "null"]},
                "features_truncated": {"type": "boolean"},
                "features": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "type": {"type": "string", "enum": ["numeric", "categorical", "mixed"]},
                    "count": {"type": "integer"}, "missing": {"type": "integer"},
                    "infinite": {"type": "integer"}, "missing_rate": _NULLABLE_NUM,
                    "mean": _NULLABLE_NUM, "min": _NULLABLE_NUM,
                    "max": _NULLABLE_NUM,
                    "std": {"type": ["number", "null"],
                            "description": "Population standard deviation from the merged sums."}}}}}}}},
    },
}
