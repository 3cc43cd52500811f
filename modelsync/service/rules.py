"""Argument rules the services share: model and alias names, version numbers, "is the model known",
``since`` times.

Each raises the domain error the API maps to a status (a bad name is "no such model", 404; a bad
version number or alias name is a 400 naming it).
"""

from __future__ import annotations

import datetime as _dt
import re

from . import layout
from .errors import InvalidRequest, ModelNotFound
from .registry import Registry


def check_model_name(name: str) -> None:
    if not layout.valid_model_name(name):
        raise ModelNotFound(f"no model named {name!r}")


def check_alias_name(alias: str) -> None:
    if not layout.valid_alias(alias):
        raise InvalidRequest(f"alias {alias!r} is not a valid alias name "
                             "(lowercase letters, digits, '_', '-')")


def require_model(registry: Registry, name: str) -> None:
    """404 unless the registry has seen the model (a published version or any upload)."""
    if not registry.model_known(name):
        raise ModelNotFound(f"no model named {name!r}")


def parse_version(raw: str | int | None) -> int | None:
    """A version number from a path segment or query value; None when absent; 400 unless >= 1."""
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


EPOCH_RE = re.compile(r"^[0-9]{1,14}(\.[0-9]{1,9})?$")
EPOCH_MS_FROM = 10**11  # an epoch above this (the year 5138 in seconds) is in milliseconds (Date.now())


def parse_since(raw: str | None) -> _dt.datetime | None:
    """A ``since`` query value as an aware UTC datetime (None when absent), the one rule of every route
    that takes one (metrics, drift, telemetry): an ISO-8601 date or date-time (``Z``, an offset, or none:
    UTC) or Unix epoch seconds (milliseconds above :data:`EPOCH_MS_FROM`). Anything else is a 400."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if EPOCH_RE.match(text):
            seconds = float(text)
            return _dt.datetime.fromtimestamp(seconds / 1000 if seconds >= EPOCH_MS_FROM else seconds,
                                              _dt.UTC)
        value = _dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(f"since must be a date or time (ISO 8601, e.g. 2025-01-07T00:00:00Z) or Unix "
                             f"epoch seconds, got {raw[:40]!r}") from None
    return value.astimezone(_dt.UTC) if value.tzinfo else value.replace(tzinfo=_dt.UTC)
