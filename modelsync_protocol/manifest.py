"""Manifests: the bytes the registry signs and the device verifies, and the events that announce them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scorer import canonical_json

# per-request presign data (changes on every response) and the signature itself are not signed
MANIFEST_UNSIGNED_FIELDS = ("signature", "url", "url_expires_at")

VERSION_PUBLISHED = "version.published"
ALIAS_MOVED = "alias.moved"
SYNC_EVENT_TYPES = (VERSION_PUBLISHED, ALIAS_MOVED)  # the registry events that make a device sync now


def manifest_signing_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a manifest signature covers: its RFC 8785 (JCS) form without the unsigned fields.

    JCS, the same canonical form as a document's sha256, so any language can reproduce the bytes. The
    presigned ``url`` and its expiry change on every request (the document is pinned by ``sha256`` and
    ``size``), so the registry signs once per (version, revision, cohort) and caches the signature
    (KMS ``Sign``, ``ECDSA_SHA_256``, ``MessageType=RAW``). Raises :class:`scorer.InvalidModel` for a
    value JCS cannot represent (an integer beyond 2**53, a lone surrogate).
    """
    return canonical_json({k: v for k, v in manifest.items() if k not in MANIFEST_UNSIGNED_FIELDS})
