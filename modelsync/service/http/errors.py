"""THE one table from domain errors to HTTP statuses, and the error bodies: ``{"error": {"code", "message"}}``
on the plain and admin routes, ``{"error": "<message>"}`` on the V2 routes (as the Open Inference Protocol
says, so standard V2 clients such as tritonclient can print it).

Domain code raises :class:`~modelsync.service.errors.ServiceError` subclasses and knows nothing of HTTP;
this is the only place where they meet. Anything else becomes a 500 with a generic message.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any

from ..errors import (
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


class UnsupportedMediaType(InvalidRequest):
    """A body that is not JSON text, or is content-encoded (gzip): an HTTP matter, hence defined here."""

    code = "unsupported_media_type"


# The MRO of the raised error is walked, so a subclass without its own row gets its parent's status.
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
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    NoPublishedVersion: HTTPStatus.SERVICE_UNAVAILABLE,
    ModelUnreadable: HTTPStatus.SERVICE_UNAVAILABLE,
    SigningNotConfigured: HTTPStatus.NOT_FOUND,
    SigningUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}
INTERNAL_ERROR = ("internal_error", "internal error; the request id identifies it in the logs")
NOT_FOUND_ROUTE = ("route_not_found", "no such route")
EMPTY_BODY = "request body is empty: send a JSON object (Content-Type: application/json)"
RETRY_AFTER_SECONDS = "30"  # sent with every 503


def status_for(exc: ServiceError) -> HTTPStatus:
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


V2_PREFIX = "/v2"


def is_v2(event: Any) -> bool:
    """Whether the request is on an Open Inference Protocol route (by resource, else by path)."""
    get = getattr(event, "get", None)
    if get is None:
        return False
    for key in ("resource", "path"):
        value = str(get(key) or "")
        if value == V2_PREFIX or value.startswith(V2_PREFIX + "/"):
            return True
    return False


def error_body(code: str, message: str, v2: bool = False) -> dict[str, Any]:
    """The protocol's ``{"error": message}`` on V2 routes, ``{"error": {"code", "message"}}`` elsewhere."""
    if v2:
        return {"error": message}
    return {"error": {"code": code, "message": message}}


def error_headers(status: HTTPStatus) -> dict[str, str] | None:
    return {"Retry-After": RETRY_AFTER_SECONDS} if status == HTTPStatus.SERVICE_UNAVAILABLE else None


def error_proxy_response(exc: ServiceError, event: Any = None) -> dict[str, Any]:
    """An API Gateway proxy response for an error raised before the resolver runs (e.g. body too large)."""
    return {"statusCode": int(status_for(exc)), "headers": {"Content-Type": "application/json"},
            "body": json.dumps(error_body(exc.code, exc.message, is_v2(event))), "isBase64Encoded": False}


def describe_validation(errors: Any, raw_body: str | None, base64_encoded: bool) -> str:
    """A short message naming the field (and the tensor, for V2 inputs) of the first validation errors;
    a request without a body is told so (a bare "Field required" reads as a mistake in the JSON)."""
    errors = list(errors)
    if not raw_body and any(tuple(e.get("loc", ()))[:1] == ("body",) and e.get("type") == "missing"
                            for e in errors):
        return EMPTY_BODY
    parts = []
    body: Any = None
    for err in errors[:3]:
        loc = list(err.get("loc", ()))
        msg = str(err.get("msg") or err.get("type") or "invalid")
        where = ""
        for item in loc:
            where += f"[{item}]" if isinstance(item, int) else (f".{item}" if where else str(item))
        prefix = ""
        if len(loc) >= 3 and loc[0] == "body" and loc[1] == "inputs" and isinstance(loc[2], int):
            if body is None:
                body = _json_body(raw_body, base64_encoded)
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


def _json_body(raw: str | None, base64_encoded: bool) -> Any:
    try:
        text = raw or ""
        if base64_encoded:
            text = base64.b64decode(text).decode()
        return json.loads(text)
    except (ValueError, TypeError):
        return {}
