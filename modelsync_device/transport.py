"""HTTP plumbing shared by the sync protocol and the telemetry upload (urllib, capped reads)."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from typing import Any

Opener = Any  # anything with ``open(request, timeout=...)`` like urllib.request.OpenerDirector

MAX_ANSWER_BYTES = 256 * 1024  # manifests and telemetry answers
_CHUNK = 64 * 1024
DOWNLOAD_DEADLINE_SECONDS = 300.0  # a whole document download, however the bytes arrive
MIN_DOWNLOAD_RATE = 1024.0  # bytes per second on average, checked once the grace period is over
RATE_GRACE_SECONDS = 10.0

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


class TooSlow(Exception):
    """A download that missed its overall deadline or its minimum rate (the sync is retried later)."""


def read_within(resp: Any, limit: int, deadline_seconds: float, min_rate: float = MIN_DOWNLOAD_RATE,
                grace_seconds: float = RATE_GRACE_SECONDS) -> bytes:
    """:func:`read_capped` with an overall deadline and a minimum average rate.

    A socket timeout bounds each read, not the whole transfer: a server dripping one byte a second keeps
    a plain read going for days. Reads here return what one receive gives (``read1``), so the deadline
    and the rate are checked between receives; a read blocks at most the socket timeout the request
    was opened with (the caller keeps that within the deadline).
    """
    read = getattr(resp, "read1", None) or resp.read
    started = time.monotonic()
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        elapsed = time.monotonic() - started
        if elapsed > deadline_seconds:
            raise TooSlow(f"download abandoned after {elapsed:.0f} s (deadline {deadline_seconds:g} s): "
                          f"{total} of {limit} bytes")
        if elapsed > grace_seconds and total < min_rate * elapsed:
            raise TooSlow(f"download abandoned: {total / elapsed:.0f} bytes/s, under the minimum of "
                          f"{min_rate:g} bytes/s")
    return b"".join(chunks)
