"""Input-schema compatibility between versions: what a client following ``latest`` would see change.

Publish compares a new version's input features with those of the version ``latest`` points to; any
difference (a feature added, removed, renamed, reordered, its kind or its category set changed) keeps
``latest`` where it is, so clients sending the old columns keep working until an operator moves the alias
on purpose. The comparison needs the category lists, which the version record does not keep: the record
keeps a fingerprint (:func:`schema_fingerprint`), and the previous document is read only when the
fingerprints differ (or an old record has none).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import scorer

MAX_CHANGES = 50  # listed on the version record (and its event); the report keeps them all


def input_schema(model: scorer.Model) -> list[dict[str, Any]]:
    """The features as plain data: name, kind and (categorical) the category list."""
    out: list[dict[str, Any]] = []
    for f in model.features:
        entry: dict[str, Any] = {"name": f.name, "kind": f.kind}
        categories = getattr(f, "categories", None)
        if categories is not None:
            entry["categories"] = [c.item() if hasattr(c, "item") else c for c in categories]
        out.append(entry)
    return out


def schema_fingerprint(features: Sequence[dict[str, Any]]) -> str:
    """A short digest of the schema: equal fingerprints mean no change, without reading a document."""
    canon = json.dumps([[f["name"], f["kind"], f.get("categories")] for f in features],
                       sort_keys=True, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:32]


def schema_changes(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Every difference from ``old`` to ``new`` as ``{"pointer", "message"}`` (pointers into the new
    document's ``/input/features``; a removed feature points at the old position). Empty: compatible."""
    old_names = [f["name"] for f in old]
    new_names = [f["name"] for f in new]
    old_by, new_by = {f["name"]: f for f in old}, {f["name"]: f for f in new}
    changes: list[dict[str, str]] = []

    def add(pointer: str, message: str) -> None:
        changes.append({"pointer": pointer, "message": message})

    added = [n for n in new_names if n not in old_by]
    for i, name in enumerate(old_names):
        if name in new_by:
            continue
        hint = ""
        if i < len(new_names) and new_names[i] in added:
            hint = f" (position {i} is now {new_names[i]!r})"
        add(f"/input/features/{i}", f"feature {name!r} renamed/removed{hint}")
    for name in added:
        add(f"/input/features/{new_names.index(name)}", f"feature {name!r} added")
    common_old = [n for n in old_names if n in new_by]
    common_new = [n for n in new_names if n in old_by]
    if common_old != common_new:
        add("/input/features", f"features reordered: {common_old} -> {common_new}")
    for name in common_new:
        i, before, after = new_names.index(name), old_by[name], new_by[name]
        if before["kind"] != after["kind"]:
            add(f"/input/features/{i}/kind",
                f"feature {name!r} type changed: {before['kind']} -> {after['kind']}")
            continue
        cats_old, cats_new = before.get("categories"), after.get("categories")
        if cats_old != cats_new:
            gone = [c for c in cats_old or [] if c not in (cats_new or [])]
            came = [c for c in cats_new or [] if c not in (cats_old or [])]
            detail = "; ".join(part for part in (f"removed {gone}" if gone else "",
                                                 f"added {came}" if came else "") if part)
            add(f"/input/features/{i}/categories",
                f"feature {name!r} category set changed: {detail or 'order changed'}")
    return changes


def describe(changes: Sequence[dict[str, str]]) -> str:
    """One line naming every change (the report's and the log's summary)."""
    return "; ".join(c["message"] for c in changes)
