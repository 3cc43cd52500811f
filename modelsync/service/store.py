"""Loading published documents, and the bounded cache of loaded models shared by warm invocations."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

import scorer

from .errors import ModelUnreadable
from .lru import LRUCache

log = logging.getLogger(__name__)


class ModelCache(LRUCache[tuple[str, int], scorer.Model]):
    """Loaded models by (name, version), bounded, least recently used evicted. Versions are immutable,
    so an entry never goes stale; ``latest`` is resolved per request, outside the cache."""

    def __init__(self, max_entries: int = 8) -> None:
        super().__init__(max_entries)


def load_published(s3: Any, bucket: str, record: Mapping[str, Any],
                   limits: scorer.Limits | None = None) -> scorer.Model:
    """Read and load a published version, checking the document still matches the registry's sha256.

    Test vectors were re-scored at publish time; loading only decodes (fast cold starts)."""
    name, version = record.get("model"), record.get("version")
    try:
        body = s3.get_object(Bucket=bucket, Key=record["document_key"])["Body"]
        try:
            raw = body.read()
        finally:
            body.close()
        model = scorer.load_model(raw, limits=limits)
    except (ClientError, scorer.InvalidModel) as exc:
        log.error("cannot load %s version %s: %s", name, version, exc)
        raise ModelUnreadable(f"version {version} of {name} cannot be loaded") from None
    if scorer.content_sha256(model.document) != record.get("sha256"):
        log.error("document of %s version %s does not match its sha256", name, version)
        raise ModelUnreadable(f"version {version} of {name} cannot be loaded")
    return model


def schema_of(model: scorer.Model) -> tuple[list[dict[str, str]], list[Any] | None]:
    """A loaded model's features (``{name, kind}``) and class labels (None without a 1-D class list)."""
    features = [{"name": f.name, "kind": f.kind} for f in model.features]
    classes = model.classes
    if classes is None or np.ndim(classes) != 1:
        return features, None
    return features, [c.item() if isinstance(c, np.generic) else c for c in classes.tolist()]


def version_schema(record: Mapping[str, Any], load: Callable[[], scorer.Model]
                   ) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """Features and classes of a version: from its record, or from its document (``load``) when the record
    keeps only their counts (``schema_in_document``: lists too large for a registry item)."""
    if record.get("schema_in_document"):
        return schema_of(load())
    return list(record.get("features") or []), record.get("classes")


def cached_loader(s3: Any, bucket: str, cache: ModelCache) -> Callable[[Mapping[str, Any]], scorer.Model]:
    def load(record: Mapping[str, Any]) -> scorer.Model:
        key = (str(record["model"]), int(record["version"]))
        return cache.get(key, lambda: load_published(s3, bucket, record))

    return load
