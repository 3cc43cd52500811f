"""One small thread-safe LRU cache, used for loaded models (store.ModelCache) and manifest signatures.

Warm Lambda containers keep both between requests; both key immutable content (a model version, the
digest of signed bytes), so an entry never goes stale and eviction is the only bound needed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``max_entries`` values, least recently used evicted first; ``hits``/``misses`` counted.

    ``load`` runs outside the lock (a slow S3 read or KMS call does not block other keys); two threads
    missing the same key may both load it, and the last one stored wins - harmless for immutable values.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max(1, max_entries)
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``load()``'s (stored unless it raises)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        value = load()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0
