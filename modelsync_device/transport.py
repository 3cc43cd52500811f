"""HTTP plumbing shared by the sync protocol and the telemetry upload (urllib, capped reads)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Any

Opener = Any  # anything with ``open(request, timeout=...)`` like urllib.request.OpenerDirector

MAX_ANSWER_BYTES = 256 * 1024  # manifests and telemetry answers
_CHUNK = 64 * 1024

# URLError, timeouts, resets and TLS errors are all OSError; a broken HTTP exchange is HTTPException.
NETWORK_ERRORS = (OSError, http.client.HTTPException)


def default_opener() -> Opener:
    return urllib.request.build_opener()


def http_error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(300).decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - the body is only decoration for the message
        body = ""
    return f"HTTP {exc.code}" + (f": {body}" if body else "")


def read_capped(resp: Any, limit: int) -> bytes:
    """Read at most ``limit + 1`` bytes: one more than allowed is enough to know it is too big."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = resp.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
