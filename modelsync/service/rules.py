"""Argument rules the services share: model and alias names, version numbers, "is the model known".

Each raises the domain error the API maps to a status (a bad name is "no such model", 404; a bad
version number or alias name is a 400 naming it).
"""

from __future__ import annotations

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
