"""What a request body must be before any route sees it: JSON text in UTF-8, not content-encoded, nested
at most :data:`MAX_JSON_DEPTH` deep, with no integer over Python's 4,300-digit conversion limit.

Powertools would turn each of these client mistakes into a 500 (it decodes base64 bodies as UTF-8, hands
anything but ``application/json`` to ``NotImplementedError`` and lets ``json.loads`` raise
``RecursionError`` or ``ValueError``). The resolver runs :func:`prepare_body` on every event first and
parses bodies with :func:`parse_json`, so each ends as a 400 or 415 with the JSON error body.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import MutableMapping
from typing import Any

from scorer import InvalidModel
from scorer._base import MAX_NESTING_DEPTH
from scorer._json import check_text_depth

from ..errors import InvalidRequest
from .errors import UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
MAX_JSON_DEPTH = MAX_NESTING_DEPTH  # the one nesting bound of the project's JSON (documents, requests)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
IDENTITY_ENCODINGS = frozenset({"", "identity"})


def header_value(event: MutableMapping[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if str(key).lower() == name.lower():
            return None if value is None else str(value)
    return None


def _normalise_content_type(event: MutableMapping[str, Any]) -> None:
    """Powertools reads a body only under a Content-Type starting with exactly ``application/json``."""
    for field in ("headers", "multiValueHeaders"):
        headers = event.get(field)
        if not headers:
            continue
        headers = dict(headers)
        for key in [k for k in headers if str(k).lower() == "content-type"]:
            headers[key] = [JSON_MEDIA_TYPE] if field == "multiValueHeaders" else JSON_MEDIA_TYPE
        event[field] = headers


def check_content_type(value: str | None) -> None:
    """``application/json`` (any case, optional ``charset=utf-8``); a missing header is read as JSON."""
    if value is None or not value.strip():
        return
    media, *params = (p.strip() for p in value.split(";"))
    if media.lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"Content-Type {value[:100]!r} is not supported: send the body as "
                                   f"{JSON_MEDIA_TYPE} (UTF-8)")
    for param in params:
        key, _, charset = param.partition("=")
        if key.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"charset {charset.strip()[:40]!r} is not supported: send "
                                       f"{JSON_MEDIA_TYPE} in UTF-8")


def check_content_encoding(value: str | None) -> None:
    """Bodies are not decompressed (a small gzip body can inflate past every size limit): 415."""
    if value is not None and value.strip().lower() not in IDENTITY_ENCODINGS:
        raise UnsupportedMediaType(f"Content-Encoding {value[:40]!r} is not supported: send the body "
                                   "uncompressed")


def prepare_body(event: MutableMapping[str, Any]) -> None:
    """Check the headers and the encoding of a request body; leave it as plain UTF-8 text in the event.

    Raises :class:`UnsupportedMediaType` (415) or :class:`InvalidRequest` (400). A base64 body (how API
    Gateway passes bytes that are not UTF-8 text) is decoded here, so the routes only ever see text.
    """
    body = event.get("body")
    method = str(event.get("httpMethod") or "").upper()
    if not body:
        if method in BODY_METHODS:  # no body to misread: any media type is fine (Powertools would 500)
            _normalise_content_type(event)
        return
    check_content_encoding(header_value(event, "content-encoding"))
    if method in BODY_METHODS:
        check_content_type(header_value(event, "content-type"))
        _normalise_content_type(event)
    if not event.get("isBase64Encoded"):
        return
    try:
        raw = base64.b64decode(str(body), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("request body is not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"request body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    event["body"] = text
    event["isBase64Encoded"] = False


def parse_json(text: str) -> Any:
    """The resolver's JSON parser: ``json.loads`` with the depth and number bounds as 400s."""
    try:
        check_text_depth(text.encode("utf-8", errors="surrogatepass"))
    except InvalidModel:
        raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc.msg} (line {exc.lineno} column "
                             f"{exc.colno})") from None
    except RecursionError:  # unreachable after the depth check; kept as the last line of defence
        raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidRequest(f"request body has a number that cannot be read: {str(exc)[:120]}") from None
