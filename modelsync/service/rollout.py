"""Rollout rules: the canary split by caller, and the alias transitions (put, promote, rollback, publish).

An alias item holds ``version`` (the *base*), optionally ``canary`` = ``{"version": N, "weight": w}`` with
``0 < w < 1``, and ``history``: the versions it pointed at before, most recent last (at most
:data:`HISTORY_LIMIT`). Every transition here returns the new state (or None when nothing changes); the
registry writes it with ``revision + 1`` conditionally on the revision it read.

The split is a pure function of (model, alias, caller id): a caller is in the canary cohort when the first
8 bytes of ``sha256(model + ":" + alias + ":" + caller)``, read as a big-endian integer, divided by 2**64,
are below the weight. The same caller always lands on the same side; raising the weight only moves
callers from base to canary (never back), and the cohorts of two aliases or models are independent.
Without a caller id the base version is served.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Conflict, InvalidRequest

HISTORY_LIMIT = 10
BASE = "base"
CANARY = "canary"
# Printable ASCII without space and '#' (the registry's key separator), 1..128 characters.
CALLER_ID_RE = re.compile(r"^[\x21\x22\x24-\x7e]{1,128}$")

# what the last transition was (kept on the alias item as ``action``, carried by alias.moved)
ACTION_PUT = "put"
ACTION_PROMOTE = "promote"
ACTION_ROLLBACK = "rollback"
ACTION_PUBLISH = "publish"
ACTION_APPROVE = "approve"


def check_caller_id(raw: str | None, field: str = "X-Device-Id") -> str | None:
    """The caller id (``X-Device-Id`` / ``device_id``); None when absent, 400 naming ``field`` if bad."""
    if raw is None or raw == "":
        return None
    if not CALLER_ID_RE.match(raw):
        raise InvalidRequest(f"{field} must be 1 to 128 printable ASCII characters without spaces or '#'")
    return raw


def cohort_fraction(model: str, alias: str, caller: str) -> float:
    """Where ``caller`` falls in [0, 1) for this model and alias (stable, uniform)."""
    digest = hashlib.sha256(f"{model}:{alias}:{caller}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_canary(model: str, alias: str, caller: str | None, weight: float) -> bool:
    return caller is not None and cohort_fraction(model, alias, caller) < weight


@dataclass(frozen=True)
class Canary:
    version: int
    weight: float

    def as_item(self) -> dict[str, Any]:
        return {"version": self.version, "weight": self.weight}


def canary_of(item: Mapping[str, Any] | None) -> Canary | None:
    """The canary of an alias item (None when there is none)."""
    raw = (item or {}).get("canary")
    if not isinstance(raw, Mapping) or raw.get("version") is None:
        return None
    return Canary(int(raw["version"]), float(raw["weight"]))


def _history(item: Mapping[str, Any] | None, push: int | None = None) -> list[int]:
    hist = [int(v) for v in ((item or {}).get("history") or [])]
    if push is not None and (not hist or hist[-1] != push):
        hist.append(int(push))
    return hist[-HISTORY_LIMIT:]


@dataclass(frozen=True)
class AliasState:
    """What a transition sets on the alias item (the registry adds revision, timestamps and actor)."""

    version: int
    canary: Canary | None
    history: list[int]
    action: str


def put(current: Mapping[str, Any] | None, version: int, canary: Canary | None) -> AliasState:
    """PUT: the alias now points at ``version`` (with ``canary`` or none); the old base goes to history."""
    if canary is not None and canary.version == version:
        raise InvalidRequest("canary.version must differ from version (that would be a plain move)")
    old = int(current["version"]) if current and current.get("version") is not None else None
    return AliasState(version, canary, _history(current, old if old != version else None), ACTION_PUT)


def promote(current: Mapping[str, Any] | None, alias: str) -> AliasState:
    """The canary version becomes the alias version; the canary is removed."""
    canary = canary_of(current)
    if current is None or canary is None:
        raise Conflict(f"alias {alias!r} has no canary to promote")
    return AliasState(canary.version, None, _history(current, int(current["version"])), ACTION_PROMOTE)


def rollback(current: Mapping[str, Any] | None, alias: str) -> AliasState:
    """Remove the canary if there is one; otherwise move back to the previous version (from history)."""
    if current is None:
        raise Conflict(f"alias {alias!r} does not exist")
    if canary_of(current) is not None:
        return AliasState(int(current["version"]), None, _history(current), ACTION_ROLLBACK)
    hist = _history(current)
    if not hist:
        raise Conflict(f"alias {alias!r} has no canary and no previous version to roll back to")
    return AliasState(hist[-1], None, hist[:-1], ACTION_ROLLBACK)


def advance(current: Mapping[str, Any] | None, version: int, action: str) -> AliasState | None:
    """Move forward to ``version`` (publish / approve of ``latest``); None if already there or newer.

    A canary survives only if it is still ahead of the new base (otherwise it is superseded)."""
    old = int(current["version"]) if current and current.get("version") is not None else None
    if old is not None and old >= version:
        return None
    canary = canary_of(current)
    if canary is not None and canary.version <= version:
        canary = None
    return AliasState(version, canary, _history(current, old), action)


def describe(item: Mapping[str, Any]) -> dict[str, Any]:
    """The public view of an alias item (API responses, GET /models/{name})."""
    canary = canary_of(item)
    return {"version": item.get("version"), "revision": item.get("revision"),
            "canary": canary.as_item() if canary else None, "history": _history(item),
            "updated_at": item.get("updated_at"), "updated_by": item.get("updated_by"),
            "action": item.get("action")}
