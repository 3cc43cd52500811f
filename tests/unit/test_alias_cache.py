"""The alias cache: aliases reused within the TTL, read again after it; approved version records kept."""

from __future__ import annotations

from typing import Any

from modelsync.service.alias_cache import AliasCache
from modelsync.service.config import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reader(store: dict[str, Any], counter: list[int]) -> Any:
    def read() -> dict[str, Any] | None:
        counter[0] += 1
        return dict(store["item"]) if store.get("item") else None

    return read


def test_alias_reused_within_the_ttl_and_read_again_after() -> None:
    clock = Clock()
    cache = AliasCache(clock)
    store, reads = {"item": {"version": 1, "revision": 1}}, [0]
    read = _reader(store, reads)
    assert cache.alias("t", "m", "latest", 5, read)["version"] == 1
    store["item"] = {"version": 2, "revision": 2}  # moved elsewhere (another execution environment)
    clock.now += 4.9
    assert cache.alias("t", "m", "latest", 5, read)["version"] == 1 and reads == [1]
    clock.now += 0.1  # the TTL is up: the change (a rollback as well as a move) is served now
    assert cache.alias("t", "m", "latest", 5, read)["version"] == 2 and reads == [2]


def test_fresh_and_ttl_zero_always_read() -> None:
    cache = AliasCache(Clock())
    store, reads = {"item": {"version": 1}}, [0]
    read = _reader(store, reads)
    cache.alias("t", "m", "latest", 5, read)
    cache.alias("t", "m", "latest", 5, read, fresh=True)
    assert reads == [2]
    for _ in range(3):
        cache.alias("t", "m", "other", 0, read)
    assert reads == [5]


def test_missing_alias_is_cached_too_and_invalidate_forgets() -> None:
    cache = AliasCache(Clock())
    store: dict[str, Any] = {}
    reads = [0]
    read = _reader(store, reads)
    assert cache.alias("t", "m", "prod", 5, read) is None
    store["item"] = {"version": 3}
    assert cache.alias("t", "m", "prod", 5, read) is None and reads == [1]
    cache.invalidate("t", "m", "prod")  # an alias write in this process
    assert cache.alias("t", "m", "prod", 5, read) == {"version": 3} and reads == [2]
    cache.invalidate("other-table", "m")  # another registry: no effect
    assert cache.alias("t", "m", "prod", 5, read) == {"version": 3} and reads == [2]


def test_version_records_kept_once_approved() -> None:
    cache = AliasCache(Clock())
    record = {"version": 4, "status": "pending"}
    reads = [0]

    def read() -> dict[str, Any]:
        reads[0] += 1
        return dict(record)

    def approved(r: dict[str, Any]) -> bool:
        return r["status"] == "approved"

    cache.version("t", "m", 4, approved, read)
    cache.version("t", "m", 4, approved, read)
    assert reads == [2]  # pending: read each time, so its approval shows at once
    record["status"] = "approved"
    for _ in range(3):
        assert cache.version("t", "m", 4, approved, read)["status"] == "approved"
    assert reads == [3]
    cache.clear()
    cache.version("t", "m", 4, approved, read)
    assert reads == [4]


def test_ttl_setting() -> None:
    base = {"MODELS_BUCKET": "b", "REGISTRY_TABLE": "r"}
    assert Settings.from_env(base).alias_cache_ttl_seconds == 5.0
    assert Settings.from_env({**base, "ALIAS_CACHE_TTL_SECONDS": "0"}).alias_cache_ttl_seconds == 0.0
    assert Settings.from_env({**base, "ALIAS_CACHE_TTL_SECONDS": "2.5"}).alias_cache_ttl_seconds == 2.5
    assert Settings.from_env({**base, "ALIAS_CACHE_TTL_SECONDS": "-1"}).alias_cache_ttl_seconds == 5.0
