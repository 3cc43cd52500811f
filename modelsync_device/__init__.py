"""The device client of the modelsync registry: keep a model up to date and score fully offline.

Vendorable: copy ``scorer/``, ``modelsync_protocol/`` and ``modelsync_device/`` beside your app; numpy and
the standard library are all it needs (signatures are verified without ``cryptography``). Run
``python -m modelsync_device sync|predict|status`` or use the pieces (protocol and layout in
docs/devices.md):

* :class:`ModelStore` (store.py) - verified documents under ``DIR/{model}/versions/`` and the commit
  point ``DIR/{model}/state.json``, written atomically.
* :func:`sync` (client.py) - one round of the protocol; any failure keeps the current model active.
  :func:`install_bundled` - a verified document shipped with the app as the starting point.
* :class:`AuthOpener` + :class:`IamAuth` / :class:`ApiKeyAuth` / :class:`TokenAuth` (auth.py) - requests
  authenticated for the API's ``AuthMode`` (SigV4 written with hmac/hashlib).
* :func:`load_public_key` / :func:`verify_manifest_signature` (signature.py) - ECDSA P-256 verification.
* :class:`Telemetry` (telemetry.py) - bounded, persisted per-version summaries, flushed to the registry.
* :class:`SyncLoop` / :func:`run_forever` / :func:`serve_notifications` (loop.py) - polling with jitter,
  and an immediate sync on an SNS/SQS notification.
"""

from __future__ import annotations

from modelsync_protocol import manifest_signing_bytes

from .auth import ApiKeyAuth, Auth, AuthError, AuthOpener, CredentialChain, Credentials, IamAuth, TokenAuth
from .client import SyncResult, check_manifest, install_bundled, sync
from .loop import EVENT_TYPES, SyncLoop, parse_notification, run_forever, serve_notifications
from .signature import PublicKey, load_public_key, verify_manifest_signature
from .store import ModelStore, Scored, StoreError, atomic_write
from .telemetry import FlushResult, Telemetry

__all__ = [
    "EVENT_TYPES",
    "ApiKeyAuth",
    "Auth",
    "AuthError",
    "AuthOpener",
    "CredentialChain",
    "Credentials",
    "FlushResult",
    "IamAuth",
    "ModelStore",
    "PublicKey",
    "Scored",
    "StoreError",
    "SyncLoop",
    "SyncResult",
    "Telemetry",
    "TokenAuth",
    "atomic_write",
    "check_manifest",
    "install_bundled",
    "load_public_key",
    "manifest_signing_bytes",
    "parse_notification",
    "run_forever",
    "serve_notifications",
    "sync",
    "verify_manifest_signature",
]
