"""The Open Inference Protocol's binary tensor data extension, both ways, around the V2 infer routes.

A request with ``Inference-Header-Content-Length: N`` is N bytes of JSON followed by the raw data of the
inputs whose ``parameters.binary_data_size`` says so, in input order (little-endian numbers; BYTES as
4-byte length + bytes per element). :func:`decode_request` turns it into the plain JSON request the routes
read (``data`` filled in), so every check downstream is the JSON one. :func:`binary_outputs` says which
outputs the client wants back as binary (``outputs[i].parameters.binary_data``, else the request's
``parameters.binary_data_output``, which tritonclient sends when it names no output), and
:func:`encode_response` writes them so. This is how tritonclient's ``infer()`` talks by default.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

import numpy as np

from ..errors import InvalidRequest
from .body import JSON_MEDIA_TYPE, check_content_encoding, check_content_type, header_value, parse_json

HEADER_LENGTH = "Inference-Header-Content-Length"
OCTET_STREAM = "application/octet-stream"
DTYPES: dict[str, str] = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "BOOL": "?"}


def _int_header(value: str) -> int:
    if not value.strip().isdigit():
        raise InvalidRequest(f"{HEADER_LENGTH} must be a byte count, got {value[:40]!r}")
    return int(value)


def _decode_bytes(blob: bytes, what: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(blob):
        if i + 4 > len(blob):
            raise InvalidRequest(f"{what}: truncated BYTES element length")
        (n,) = struct.unpack_from("<I", blob, i)
        i += 4
        if i + n > len(blob):
            raise InvalidRequest(f"{what}: BYTES element runs past binary_data_size")
        try:
            out.append(blob[i:i + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest(f"{what}: BYTES element is not UTF-8 text") from None
        i += n
    return out


def _decode_tensor(t: dict[str, Any], blob: bytes, what: str) -> list[Any]:
    datatype = t.get("datatype")
    if datatype == "BYTES":
        return _decode_bytes(blob, what)
    dtype = DTYPES.get(str(datatype))
    if dtype is None:
        raise InvalidRequest(f"{what}: datatype {datatype!r} cannot be sent as binary data")
    width = np.dtype(dtype).itemsize
    if len(blob) % width:
        raise InvalidRequest(f"{what}: binary_data_size {len(blob)} is not a multiple of {width} "
                             f"({datatype})")
    values: list[Any] = np.frombuffer(blob, dtype=dtype).tolist()
    if str(datatype).startswith("FP"):  # NaN as a missing value, as JSON null is
        values = [None if isinstance(v, float) and v != v else v for v in values]
    return values


def decode_request(raw: bytes, header_length: str) -> dict[str, Any]:
    """The JSON request of a binary-extension body, with each binary input's ``data`` filled in."""
    n = _int_header(header_length)
    if n > len(raw):
        raise InvalidRequest(f"{HEADER_LENGTH} {n} is more than the body's {len(raw)} bytes")
    try:
        text = raw[:n].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the JSON part of the request is not UTF-8") from None
    request = parse_json(text)
    if not isinstance(request, dict):
        raise InvalidRequest("the JSON part of the request must be an object")
    offset = n
    for i, t in enumerate(request.get("inputs") or []):
        params = t.get("parameters") if isinstance(t, dict) else None
        if not isinstance(params, dict) or "binary_data_size" not in params:
            continue
        size = params.pop("binary_data_size")
        what = f"input tensor {t.get('name')!r} (inputs[{i}])"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(raw):
            raise InvalidRequest(f"{what}: binary_data_size {size!r} does not fit the body")
        t["data"] = _decode_tensor(t, raw[offset:offset + size], what)
        offset += size
    if offset != len(raw):
        raise InvalidRequest(f"{len(raw) - offset} bytes after the last binary input")
    return request


def binary_outputs(request: Any) -> set[str] | bool:
    """The outputs to return as binary: a set of names, or True for every output."""
    if not isinstance(request, dict):
        return set()
    params = request.get("parameters")
    every = isinstance(params, dict) and params.get("binary_data_output") is True
    named: set[str] = set()
    outputs = request.get("outputs")
    if isinstance(outputs, list):
        for o in outputs:
            if not isinstance(o, dict):
                continue
            p: dict[str, Any] = o["parameters"] if isinstance(o.get("parameters"), dict) else {}
            if p.get("binary_data", every) is True:  # an output's own choice, else the request's
                named.add(str(o.get("name")))
        return named
    return True if every else set()


def _encode_tensor(output: dict[str, Any]) -> bytes:
    data = output.get("data") or []
    if output.get("datatype") == "BYTES":
        parts = []
        for v in data:
            b = str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    dtype = DTYPES[str(output.get("datatype"))]
    values = [float("nan") if v is None else v for v in data]
    return np.asarray(values, dtype=dtype).tobytes()


def encode_response(body: dict[str, Any], wanted: set[str] | bool) -> tuple[bytes, int] | None:
    """(body bytes, JSON header length) with the wanted outputs as binary; None when none is wanted."""
    blobs: list[bytes] = []
    for output in body.get("outputs") or []:
        if wanted is True or (isinstance(wanted, set) and output.get("name") in wanted):
            blob = _encode_tensor(output)
            output.pop("data", None)
            output["parameters"] = {**(output.get("parameters") or {}), "binary_data_size": len(blob)}
            blobs.append(blob)
    if not blobs:
        return None
    header = json.dumps(body).encode("utf-8")
    return header + b"".join(blobs), len(header)


def is_infer(event: Any) -> bool:
    """A V2 infer route (latest or by version)."""
    path = str(event.get("resource") or event.get("path") or "")
    return path.startswith("/v2/models/") and path.endswith("/infer")


def _replace_header(event: dict[str, Any], name: str, value: str | None) -> None:
    for field in ("headers", "multiValueHeaders"):
        headers = dict(event.get(field) or {})
        for key in [k for k in headers if str(k).lower() == name.lower()]:
            del headers[key]
        if value is not None:
            headers[name] = [value] if field == "multiValueHeaders" else value
        event[field] = headers


def prepare_binary(event: dict[str, Any]) -> None:
    """A binary-extension infer request -> the same request as JSON text (Content-Type application/json);
    any other event is left alone. Raises InvalidRequest / UnsupportedMediaType (from the body checks)."""
    length = header_value(event, HEADER_LENGTH)
    if length is None or not is_infer(event):
        return
    check_content_encoding(header_value(event, "content-encoding"))
    content_type = header_value(event, "content-type")
    if content_type and content_type.split(";")[0].strip().lower() != OCTET_STREAM:
        check_content_type(content_type)
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("request body is not valid base64") from None
    else:
        raw = str(body).encode("utf-8", errors="surrogatepass")
    event["body"] = json.dumps(decode_request(raw, length))
    event["isBase64Encoded"] = False
    _replace_header(event, "Content-Type", JSON_MEDIA_TYPE)
    _replace_header(event, HEADER_LENGTH, None)


def wanted_outputs(event: dict[str, Any]) -> set[str] | bool:
    """Which outputs of this (JSON, prepared) infer request go back as binary."""
    if not is_infer(event) or not event.get("body"):
        return set()
    try:
        return binary_outputs(json.loads(str(event["body"])))
    except ValueError:
        return set()  # the resolver answers the parse error


def binary_response(response: dict[str, Any], wanted: set[str] | bool) -> dict[str, Any]:
    """A 200 infer response with the wanted outputs in binary (the extension's body and header)."""
    if not wanted or response.get("statusCode") != 200 or response.get("isBase64Encoded"):
        return response
    encoded = encode_response(json.loads(response["body"]), wanted)
    if encoded is None:
        return response
    data, header_length = encoded
    out = {**response, "body": base64.b64encode(data).decode("ascii"), "isBase64Encoded": True}
    _replace_header(out, "Content-Type", OCTET_STREAM)
    _replace_header(out, HEADER_LENGTH, str(header_length))
    return out
