"""Plain helpers shared by the integration tests (by module name: `conftest` is ambiguous)."""

from __future__ import annotations

import json
from typing import Any

from scorer import content_sha256


def renamed(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The same model under another name (sha256 recomputed)."""
    out = json.loads(json.dumps(doc))
    out["metadata"]["name"] = name
    out["sha256"] = content_sha256(out)
    return out
