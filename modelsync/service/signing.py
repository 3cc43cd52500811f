"""Manifest signatures with an asymmetric KMS key (ECC_NIST_P256, ECDSA_SHA_256).

The registry signs exactly what the device verifies: ``modelsync_protocol.manifest_signing_bytes(m)``
(the manifest's RFC 8785 canonical form without ``signature``, ``url`` and ``url_expires_at``;
``key_id`` and ``signature_algorithm`` are inside, so they are covered too). KMS ``Sign`` with
``MessageType=RAW`` hashes those bytes with SHA-256 and returns a DER ECDSA signature, which goes
base64-encoded into ``signature``.

Signatures are cached in memory by the digest of the signed bytes. Those bytes contain the model,
version, alias, revision, sha256 and cohort, so one entry is one (model, version, revision, cohort): a
warm container calls KMS once per alias move, not once per device request, and an alias move (new
revision) can never reuse an old signature. The public key (``GetPublicKey``, DER
SubjectPublicKeyInfo) is fetched once and served as PEM by ``GET /signing-key``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelsync_protocol import manifest_signing_bytes

from .errors import SigningUnavailable
from .lru import LRUCache

log = logging.getLogger(__name__)

SIGNING_ALGORITHM = "ECDSA_SHA_256"
KEY_SPEC = "ECC_NIST_P256"
DEFAULT_CACHE_ENTRIES = 4096


def der_to_pem(der: bytes, label: str = "PUBLIC KEY") -> str:
    """DER bytes -> PEM text (base64 in 64-column lines between BEGIN/END markers)."""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i: i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


class ManifestSigner:
    """Signs manifests with one KMS key; thread-safe, bounded signature cache."""

    def __init__(self, kms: Any, key_id: str, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        if not key_id:
            raise ValueError("a manifest signing key id is required")
        self.kms = kms
        self.key_id = key_id
        self._signatures: LRUCache[bytes, str] = LRUCache(max_entries)
        self._public: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.kms_sign_calls = 0

    def clear(self) -> None:
        with self._lock:
            self._signatures.clear()
            self._public = None
            self.kms_sign_calls = 0

    def public_key(self) -> dict[str, Any]:
        """``key_id`` (the key ARN), ``key_spec``, ``signing_algorithm``, ``public_key_pem``, and
        ``public_key_der_b64`` (DER SubjectPublicKeyInfo, what ``aws kms get-public-key`` gives)."""
        with self._lock:
            if self._public is not None:
                return dict(self._public)
        try:
            resp = self.kms.get_public_key(KeyId=self.key_id)
        except (ClientError, BotoCoreError) as exc:
            log.error("kms:GetPublicKey of %s failed: %s", self.key_id, exc)
            raise SigningUnavailable("the manifest signing key is unavailable; retry later") from None
        der = bytes(resp["PublicKey"])
        spec = resp.get("KeySpec") or resp.get("CustomerMasterKeySpec")
        if spec != KEY_SPEC or SIGNING_ALGORITHM not in (resp.get("SigningAlgorithms") or []):
            log.error("manifest signing key %s is %s (%s); %s with %s is required", self.key_id, spec,
                      resp.get("SigningAlgorithms"), KEY_SPEC, SIGNING_ALGORITHM)
            raise SigningUnavailable("the manifest signing key is misconfigured")
        public = {"key_id": str(resp.get("KeyId") or self.key_id), "key_spec": KEY_SPEC,
                  "signing_algorithm": SIGNING_ALGORITHM, "public_key_pem": der_to_pem(der),
                  "public_key_der_b64": base64.b64encode(der).decode("ascii")}
        with self._lock:
            self._public = public
        return dict(public)

    def sign(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest with ``key_id``, ``signature_algorithm`` and ``signature`` (base64 DER)."""
        out = {k: v for k, v in manifest.items() if k != "signature"}
        out["key_id"] = self.public_key()["key_id"]  # the key ARN, whatever form key_id was configured in
        out["signature_algorithm"] = SIGNING_ALGORITHM
        message = manifest_signing_bytes(out)
        digest = hashlib.sha256(message).digest()
        signature = self._signatures.get(digest, lambda: self._kms_sign(message))
        out["signature"] = signature
        return out

    def _kms_sign(self, message: bytes) -> str:
        try:
            resp = self.kms.sign(KeyId=self.key_id, Message=message, MessageType="RAW",
                                 SigningAlgorithm=SIGNING_ALGORITHM)
        except (ClientError, BotoCoreError) as exc:
            log.error("kms:Sign with %s failed: %s", self.key_id, exc)
            raise SigningUnavailable("the manifest could not be signed; retry later") from None
        with self._lock:
            self.kms_sign_calls += 1
        return base64.b64encode(bytes(resp["Signature"])).decode("ascii")
