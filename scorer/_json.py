"""Strict JSON for every reader of the project, and RFC 8785 canonical bytes for every hash and signature.

One implementation: documents (scorer._envelope), tables (scorer.tabular), the device client and the service
all parse and canonicalise through here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

import numpy as np

from ._base import MAX_NESTING_DEPTH, MAX_SAFE_INTEGER, InvalidModel, _short, pointer_join

# -- strict parsing ----------------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (strict JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is too large for a double")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k[:80]!r} in an object")
            seen.add(k)
    return out


# A number that might overflow a double (a 3-digit positive exponent): only then is every float parsed
# through the slower Python hook. Matches inside strings are harmless false alarms. (An overflowing
# literal of 310 plain digits slips through as inf: every consumer refuses non-finite numbers anyway.)
_HUGE_NUMBER = re.compile(r"[eE]\+?0*[1-9][0-9]{2}")


def loads_strict(text: str) -> Any:
    """json.loads with the format's rules: no NaN/Infinity, no overflowing numbers, no duplicate keys.

    Raises ValueError (json.JSONDecodeError) for anything else; the one strict parser of the project.
    """
    huge = _HUGE_NUMBER.search(text)
    if isinstance(text, str) and not text.startswith("\ufeff"):  # json.loads' own checks, else same
        return (_FINITE_DECODER if huge else _DECODER).decode(text)  # one decoder: not one per line
    if huge:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                          parse_float=_finite_float)
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
_FINITE_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                                   parse_float=_finite_float)


# Only quotes and brackets matter to the depth scan; once escaped backslashes and escaped quotes are
# gone, a JSON string is a quote, anything but a quote, a quote (or an unterminated one to the end).
_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING_TOKEN = re.compile(rb'"[^"]*(?:"|\Z)')
_DEPTH_CHUNK = 1 << 20


def check_text_depth(raw: bytes) -> None:
    """Reject nesting deeper than MAX_NESTING_DEPTH before json.loads can recurse into it.

    Vectorised: drop escaped backslashes and escaped quotes (``bytes.replace``, left to right as a
    JSON string reads them), keep only quotes and brackets (``bytes.translate``), drop the string
    tokens of what is left (regex over a short text: long base64 strings are a pair of quotes by
    then), then a running sum over the brackets. Up to the first point where json.loads would fail,
    this sees exactly the brackets json.loads would recurse into.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = raw.translate(None, _NOT_QUOTES_OR_BRACKETS)
    if len(brackets) <= MAX_NESTING_DEPTH:
        return
    brackets = _STRING_TOKEN.sub(b"", brackets)
    if len(brackets) <= MAX_NESTING_DEPTH:
        return
    codes = np.frombuffer(brackets, dtype=np.uint8)
    carry = 0
    for start in range(0, codes.size, _DEPTH_CHUNK):
        chunk = codes[start:start + _DEPTH_CHUNK]
        depth = carry + np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1), dtype=np.int64)
        if int(depth.max()) > MAX_NESTING_DEPTH:
            raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}")
        carry = int(depth[-1])


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def check_json_value(doc: dict[str, Any]) -> None:
    """A dict handed in by Python code must be what strict JSON could have produced."""
    stack: list[tuple[Any, int, str]] = [(doc, 1, "")]
    while stack:
        cur, depth, ptr = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}", ptr)
        if isinstance(cur, dict):
            for k, v in cur.items():
                if not isinstance(k, str):
                    raise InvalidModel(f"object keys must be strings, got {type(k).__name__}", ptr)
                if isinstance(v, (dict, list)):
                    stack.append((v, depth + 1, pointer_join(ptr, k)))
                else:
                    _check_json_scalar(v, ptr, k)
            continue
        types = set(map(type, cur))
        if types <= _SCALAR_TYPES:
            finite = (all(map(math.isfinite, cur)) if types <= {float, int, bool} and int not in types
                      else all(math.isfinite(v) for v in cur if type(v) is float))
            if float in types and not finite:
                i = next(i for i, v in enumerate(cur) if type(v) is float and not math.isfinite(v))
                raise InvalidModel("NaN and infinities are not valid JSON", pointer_join(ptr, i))
            continue
        for i, v in enumerate(cur):
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1, pointer_join(ptr, i)))
            else:
                _check_json_scalar(v, ptr, i)


def _check_json_scalar(v: Any, ptr: str, key: str | int) -> None:
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidModel("NaN and infinities are not valid JSON", pointer_join(ptr, key))
    elif not isinstance(v, (str, int, type(None))):
        raise InvalidModel(f"not a JSON value: {type(v).__name__}", pointer_join(ptr, key))


# -- canonical bytes (RFC 8785, JSON Canonicalization Scheme) ---------------------------------------

def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes the document's sha256 covers: the document without ``sha256``, in RFC 8785 form."""
    return canonical_json({k: v for k, v in doc.items() if k != "sha256"})


def canonical_json(value: Any) -> bytes:
    """Any JSON value in RFC 8785 form (documents' sha256, signed manifests).

    RFC 8785 (JCS) is implementable in every language: keys sorted by UTF-16 code units, no
    whitespace, strings escaped minimally, numbers written as ECMAScript writes doubles
    (``1.0`` -> ``1``, ``1e-7`` -> ``1e-7``, ``1e21`` -> ``1e+21``). Raises :class:`InvalidModel` for
    values JCS cannot represent (integers beyond ±2**53, NaN, lone surrogates, non-JSON types).
    """
    out: list[str] = []
    path: list[str | int] = []
    try:
        _jcs(value, out, path)
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidModel("document holds a string that is not valid Unicode (lone surrogate)") from None
    except _NotCanonical as exc:
        raise InvalidModel(str(exc), pointer_join("", *path)) from None


def content_sha256(doc: Mapping[str, Any]) -> str:
    """Hex sha256 of :func:`canonical_bytes`: what the document's ``sha256`` field must hold."""
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


class _NotCanonical(ValueError):
    pass


def _jcs(v: Any, out: list[str], path: list[str | int]) -> None:
    if isinstance(v, str):
        out.append(encode_basestring(v))
    elif isinstance(v, Mapping):
        keys = list(v.keys())
        if not all(isinstance(k, str) for k in keys):
            raise _NotCanonical("object keys must be strings")
        keys.sort(key=None if all(k.isascii() for k in keys) else _utf16_key)
        out.append("{")
        for i, k in enumerate(keys):
            if i:
                out.append(",")
            out.append(encode_basestring(k))
            out.append(":")
            path.append(k)
            _jcs(v[k], out, path)
            path.pop()
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        types = set(map(type, v))
        if types == {float}:
            # Python's repr and ECMAScript agree on the shortest digits; only "1.0" and exponent forms
            # (and inf/nan, refused by _es_number) are written differently. The joined text holds
            # numbers only, so a regex can find those safely.
            text = ",".join(map(float.__repr__, v))
            out.append(_PY_ONLY_NUMBER.sub(_es_token, text) if _PY_ONLY_NUMBER.search(text) else text)
        elif types == {int} and max(v) <= MAX_SAFE_INTEGER and min(v) >= -MAX_SAFE_INTEGER:
            out.append(",".join(map(int.__repr__, v)))
        else:
            for i, x in enumerate(v):
                if i:
                    out.append(",")
                path.append(i)
                _jcs(x, out, path)
                path.pop()
        out.append("]")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif v is None:
        out.append("null")
    elif isinstance(v, int):
        out.append(_es_number(int(v)))
    elif isinstance(v, float):
        out.append(_es_number(float(v)))  # np.float64 is a float whose repr is not the number alone
    else:
        raise _NotCanonical(f"not a JSON value: {type(v).__name__}")


_PY_ONLY_NUMBER = re.compile(r"(?<![^,])(?:-?[0-9.]+e[-+]?[0-9]+|-?[0-9]+\.0(?=,|$)|-?inf|nan)")


def _es_token(m: re.Match[str]) -> str:
    return _es_number(float(m.group()))


def _utf16_key(k: str) -> bytes:
    return k.encode("utf-16-be", "surrogatepass")


def _es_number(x: int | float) -> str:
    """ECMAScript Number::toString for a double (RFC 8785 section 3.2.2.3)."""
    if isinstance(x, int):
        if abs(x) > MAX_SAFE_INTEGER:
            raise _NotCanonical(f"integer {_short(x, 30)} is beyond ±2**53 (not exact as a JSON double)")
        return str(x)
    if not math.isfinite(x):
        raise _NotCanonical("NaN and infinities are not valid JSON")
    if x == 0:
        return "0"
    r = repr(x)
    neg = r.startswith("-")
    if neg:
        r = r[1:]
    mant, _, exp = r.partition("e")
    intpart, _, frac = mant.partition(".")
    all_digits = intpart + frac
    stripped = all_digits.lstrip("0")
    n = len(intpart) - (len(all_digits) - len(stripped)) + (int(exp) if exp else 0)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return "-" + s if neg else s
