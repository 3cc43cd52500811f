"""The process-wide alias cache: a warm request reads the registry at most once, not at all within the TTL.

Scoring through an alias needs the alias item (its version, its canary) and the version's record. Alias
items are kept ``ttl`` seconds (``ALIAS_CACHE_TTL_SECONDS``, default 5): a move, promotion or rollback made
elsewhere reaches this execution environment within the TTL (docs/deploy.md, "Alias cache"), and at once
when it was made in this process (every alias write of :class:`~modelsync.service.registry.Registry`
calls :func:`invalidate`). Version records are kept once approved: the fields serving reads (document key,
sha256, size, format) never change afterwards; a pending record is read again each time, so its approval
shows at once. The manifest route reads the alias fresh (``fresh=True``): devices compare revisions.

Process-wide (module level) rather than per handler: every environment of the local stack shares the
process, so its writes are seen by all of them, as tests and the demo expect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_TTL_SECONDS = 5.0
MAX_ALIASES = 4096  # entries (name, alias); an alias item is a few hundred bytes
MAX_VERSIONS = 4096

Key = tuple[str, str, str]  # (registry table, model, alias)
Clock = Callable[[], float]


class AliasCache:
    """(table, model, alias) -> (fetched at, alias item or None), and approved version records."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._aliases: dict[Key, tuple[float, dict[str, Any] | None]] = {}
        self._versions: dict[tuple[str, str, int], dict[str, Any]] = {}

    def alias(self, table: str, name: str, alias: str, ttl: float,
              read: Callable[[], dict[str, Any] | None], fresh: bool = False) -> dict[str, Any] | None:
        """The alias item, read through ``read()`` when absent, older than ``ttl`` or ``fresh`` is asked."""
        key = (table, name, alias)
        now = self.clock()
        if not fresh and ttl > 0:
            with self._lock:
                hit = self._aliases.get(key)
            if hit is not None and now - hit[0] < ttl:
                return hit[1]
        item = read()
        if ttl > 0:
            with self._lock:
                if len(self._aliases) >= MAX_ALIASES:
                    self._aliases.clear()  # crude bound: an environment serves a handful of aliases
                self._aliases[key] = (now, item)
        return item

    def version(self, table: str, name: str, version: int, approved: Callable[[dict[str, Any]], bool],
                read: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        """A version record: kept once ``approved(record)``, read through ``read()`` until then."""
        key = (table, name, int(version))
        with self._lock:
            record = self._versions.get(key)
        if record is not None:
            return record
        record = read()
        if record is not None and approved(record):
            with self._lock:
                if len(self._versions) >= MAX_VERSIONS:
                    self._versions.clear()
                self._versions[key] = record
        return record

    def invalidate(self, table: str, name: str, alias: str | None = None) -> None:
        """Forget an alias (every alias of the model when ``alias`` is None): its next read is fresh."""
        with self._lock:
            for key in [k for k in self._aliases if k[0] == table and k[1] == name
                        and (alias is None or k[2] == alias)]:
                del self._aliases[key]

    def clear(self) -> None:
        """Forget everything (tests; a fresh moto registry behind the same names)."""
        with self._lock:
            self._aliases.clear()
            self._versions.clear()


ALIASES = AliasCache()  # the one cache of this process


def invalidate(table: str, name: str, alias: str | None = None) -> None:
    ALIASES.invalidate(table, name, alias)
