"""Keep a device's model up to date from the modelsync registry, and score fully offline.

Vendorable with the rest of ``scorer/``: standard library + numpy only. ``cryptography`` is imported
lazily, and only when a public key is configured to verify signed manifests.

The pieces (protocol and layout in docs/devices.md):

* :class:`ModelStore` - the on-disk store: verified documents under ``DIR/{model}/versions/`` and the
  commit point ``DIR/{model}/state.json``. Every write is atomic (temp file, fsync, rename, fsync dir),
  so a power cut leaves either the old model or the new one active, never half of one.
* :func:`sync` - one round of the protocol: fetch the manifest (``If-None-Match``), refuse what must not
  be installed, download with a size cap, check size, sha256, signature and the test vectors, write,
  then switch. Any failure keeps the current model active.
* :class:`Telemetry` - bounded, persisted per-version summaries of what the device scored, flushed to
  ``POST {api}/models/{name}/telemetry``.
* :class:`SyncLoop` / :func:`run_forever` - poll with jitter; :meth:`SyncLoop.on_event` turns an SNS
  notification into an immediate sync.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import datetime as _dt
import errno
import http.client
import json
import logging
import math
import os
import random
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import MAX_DOCUMENT_BYTES, InvalidInput, InvalidModel
from ._json import content_sha256
from ._model import (
    CATEGORICAL,
    SUPPORTED_FORMAT_MAJOR,
    Model,
    load_model,
    parse_document,
    to_matrix,
)

try:  # POSIX advisory locks; on other platforms concurrent writers are not serialised
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

log = logging.getLogger("scorer.sync")

__all__ = [
    "EVENT_TYPES",
    "FlushResult",
    "ModelStore",
    "Scored",
    "StoreError",
    "SyncLoop",
    "SyncResult",
    "Telemetry",
    "atomic_write",
    "load_public_key",
    "manifest_signing_bytes",
    "parse_notification",
    "run_forever",
    "serve_notifications",
    "sign_manifest",
    "sync",
    "verify_manifest_signature",
]

STATE_SCHEMA = 1
TELEMETRY_SCHEMA = "modelsync.telemetry/1"
DEFAULT_KEEP = 2
MAX_MANIFEST_BYTES = 256 * 1024
# per-request presign data (changes on every response) and the signature itself are not signed
MANIFEST_UNSIGNED_FIELDS = ("signature", "url", "url_expires_at")
EVENT_TYPES = ("version.published", "alias.moved")
MAX_LABELS = 100  # distinct predicted labels counted per telemetry window; the rest go to OTHER_LABEL
OTHER_LABEL = "__other__"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 64 * 1024
STALE_TEMP_SECONDS = 3600

Opener = Any  # anything with ``open(request, timeout=...)`` like urllib.request.OpenerDirector


class StoreError(Exception):
    """The store has no usable model (never synced, or every kept file is unreadable)."""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_model_name(name: str) -> str:
    """Model names become directory names: letters, digits, ``.``, ``_``, ``-`` (no path tricks)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' (max 128)")
    return name


# -- atomic files -----------------------------------------------------------------------------------

def _fsync_dir(directory: str) -> None:
    """Make a rename durable. Directories cannot be opened for fsync on Windows; there it is a no-op."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers and crashes see the old bytes or the new, never a mix.

    A temp file in the same directory (same filesystem, so the rename is atomic) is written, fsynced,
    renamed over ``path``, and the directory fsynced so the rename itself survives a power cut. On any
    error (e.g. ENOSPC) the temp file is removed and ``path`` is untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:  # pragma: no cover - os.write raises rather than returning 0
                    raise OSError(errno.EIO, "short write")
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def _read_json_file(path: str) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """Exclusive advisory lock (flock) so that two processes never interleave a read-modify-write."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if _fcntl is not None:
            _fcntl.flock(fd, _fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# -- the store --------------------------------------------------------------------------------------

@dataclass
class Scored:
    """What :meth:`ModelStore.predict` returns: outputs plus which model produced them."""

    prediction: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    version: int
    sha256: str
    model: Model


class ModelStore:
    """Verified model documents on local disk; loading the active one never touches the network.

    Layout (one directory per model)::

        DIR/{model}/state.json                          the commit point: active + previous version
        DIR/{model}/versions/{version}-{sha256[:12]}.json   documents, bytes exactly as downloaded
        DIR/{model}/last_sync.json                      outcome of the last sync (informational)
        DIR/{model}/telemetry.json                      pending telemetry (see Telemetry)
        DIR/{model}/.lock                               serialises concurrent syncs

    ``keep`` is how many installed versions keep their file (active, previous, ...); at least 2 so that
    a rollback to the previous version needs no download.
    """

    def __init__(self, root: str | os.PathLike[str], keep: int = DEFAULT_KEEP) -> None:
        if keep < 2:
            raise ValueError("keep must be at least 2 (the active and the previous version)")
        self.root = os.fspath(root)
        self.keep = keep
        self._cache: dict[str, tuple[tuple[int, int, int], str, Model, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    # paths
    def model_dir(self, name: str) -> str:
        return os.path.join(self.root, check_model_name(name))

    def versions_dir(self, name: str) -> str:
        return os.path.join(self.model_dir(name), "versions")

    def state_path(self, name: str) -> str:
        return os.path.join(self.model_dir(name), "state.json")

    @staticmethod
    def version_filename(version: int, sha256: str) -> str:
        return f"{int(version)}-{sha256[:12]}.json"

    def models(self) -> list[str]:
        """Names of the models that have an active version in this store."""
        if not os.path.isdir(self.root):
            return []
        return sorted(n for n in os.listdir(self.root)
                      if _NAME_RE.match(n) and os.path.isfile(os.path.join(self.root, n, "state.json")))

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with _file_lock(os.path.join(self.model_dir(name), ".lock")):
            yield

    # state
    def read_state(self, name: str) -> dict[str, Any] | None:
        """The committed state, or None when the model was never installed (or state.json is unreadable)."""
        path = self.state_path(name)
        try:
            state = _read_json_file(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: ignoring unreadable %s: %s", name, path, exc)
            return None
        if not isinstance(state, dict) or not isinstance(state.get("active"), dict):
            log.warning("%s: ignoring malformed %s", name, path)
            return None
        return state

    def write_state(self, name: str, state: dict[str, Any]) -> None:
        atomic_write(self.state_path(name), _dump(state))

    def last_sync(self, name: str) -> dict[str, Any] | None:
        try:
            data = _read_json_file(os.path.join(self.model_dir(name), "last_sync.json"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def record_sync(self, name: str, result: SyncResult) -> None:
        """Best effort: a full disk must not turn a kept-current-model outcome into an exception."""
        try:
            os.makedirs(self.model_dir(name), exist_ok=True)
            atomic_write(os.path.join(self.model_dir(name), "last_sync.json"),
                         _dump({**result.as_dict(), "at": _now()}))
        except OSError as exc:
            log.warning("%s: could not record the sync outcome: %s", name, exc)

    def active_entry(self, name: str) -> dict[str, Any] | None:
        state = self.read_state(name)
        return None if state is None else dict(state["active"])

    def entry_path(self, name: str, entry: Mapping[str, Any]) -> str:
        return os.path.join(self.versions_dir(name), self.version_filename(entry["version"], entry["sha256"]))

    # loading
    def read_entry(self, name: str, entry: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """The kept bytes of an installed version, checked against its sha256. Raises InvalidModel/OSError."""
        with open(self.entry_path(name, entry), "rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
        doc = parse_document(raw)
        if doc.get("sha256") != entry["sha256"] or content_sha256(doc) != entry["sha256"]:
            raise InvalidModel(f"kept file of version {entry['version']} no longer matches its sha256")
        return raw, doc

    def load_active(self, name: str) -> Model:
        """The active model, from disk only (the previous version if the active file is damaged)."""
        return self._load(name)[0]

    def _load(self, name: str) -> tuple[Model, dict[str, Any]]:
        path = self.state_path(name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise StoreError(f"no model {name!r} installed in {self.root} yet: run a sync first") from None
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._cache_lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == sig:
                return cached[2], cached[3]
        state = self.read_state(name)
        if state is None:
            raise StoreError(f"{path} is unreadable; run a sync to reinstall {name!r}")
        errors: list[str] = []
        for which in ("active", "previous"):
            entry = state.get(which)
            if not isinstance(entry, dict):
                continue
            try:
                _, doc = self.read_entry(name, entry)
                model = load_model(doc)
            except (OSError, InvalidModel) as exc:
                errors.append(f"{which} version {entry.get('version')}: {exc}")
                log.error("%s: cannot load the %s version %s: %s", name, which, entry.get("version"), exc)
                continue
            if which == "previous":
                log.warning("%s: serving the previous version %s because the active one is damaged",
                            name, entry["version"])
            with self._cache_lock:
                self._cache[name] = (sig, entry["sha256"], model, dict(entry))
            return model, dict(entry)
        raise StoreError(f"no loadable version of {name!r}: {'; '.join(errors)}")

    def loaded_entry(self, name: str) -> dict[str, Any]:
        """The state entry (version, sha256, ...) of the model :meth:`load_active` returns."""
        return self._load(name)[1]

    def predict(self, name: str, X: Any, telemetry: Telemetry | None = None,
                proba: bool = True) -> Scored:
        """Score ``X`` with the active model (offline), recording telemetry around the call if given."""
        model, entry = self._load(name)
        start = time.perf_counter()
        matrix: np.ndarray | None = None
        try:
            matrix = to_matrix(X, model.features)
            prediction = model.estimator.predict(matrix)
            probabilities = (model.estimator.predict_proba(matrix)
                             if proba and model.has("predict_proba") else None)
        except (InvalidInput, ValueError):
            if telemetry is not None:
                telemetry.record(name, entry["version"], entry["sha256"], None, model.features, None,
                                 time.perf_counter() - start, error=True)
            raise
        if telemetry is not None:
            telemetry.record(name, entry["version"], entry["sha256"], matrix, model.features, prediction,
                             time.perf_counter() - start)
        classes = model.classes
        return Scored(prediction, probabilities, None if classes is None else np.asarray(classes).tolist(),
                      int(entry["version"]), str(entry["sha256"]), model)

    # installing
    def install(self, name: str, raw: bytes | None, doc: Mapping[str, Any], manifest: Mapping[str, Any],
                alias: str, etag: str | None, state: dict[str, Any] | None) -> dict[str, Any]:
        """Write the verified document (unless kept already), then switch state.json. Caller locks."""
        os.makedirs(self.versions_dir(name), exist_ok=True)
        entry = {
            "version": int(manifest["version"]),
            "sha256": str(manifest["sha256"]),
            "size": int(manifest["size"]),
            "format_version": str(doc.get("format_version")),
            "alias": alias,
            "revision": manifest.get("revision"),
            "installed_at": _now(),
        }
        if raw is not None:
            atomic_write(self.entry_path(name, entry), raw)
        history: list[dict[str, Any]] = []
        if state is not None:
            history = [state["active"], *([state["previous"]] if state.get("previous") else []),
                       *state.get("older", [])]
        same = (entry["version"], entry["sha256"])
        history = [h for h in history if (h.get("version"), h.get("sha256")) != same]
        kept = history[: self.keep - 1]
        revisions = dict((state or {}).get("revisions") or {})
        if isinstance(manifest.get("revision"), int):
            revisions[alias] = manifest["revision"]
        new_state = {
            "schema": STATE_SCHEMA,
            "model": name,
            "active": entry,
            "previous": kept[0] if kept else None,
            "older": kept[1:],
            "alias": alias,
            "revision": manifest.get("revision"),
            "revisions": revisions,
            "etag": etag,
            "updated_at": entry["installed_at"],
        }
        self.write_state(name, new_state)
        try:  # the switch is done: failing to tidy up must not turn it into a failure
            self.prune(name, new_state)
        except OSError as exc:
            log.warning("%s: pruning old versions failed: %s", name, exc)
        return new_state

    def prune(self, name: str, state: Mapping[str, Any] | None = None) -> list[str]:
        """Remove version files state.json no longer references (and stray temp files). Caller locks."""
        state = state if state is not None else self.read_state(name)
        if state is None:
            return []
        keep = {self.version_filename(e["version"], e["sha256"])
                for e in [state["active"], state.get("previous"), *state.get("older", [])] if e}
        removed: list[str] = []
        vdir = self.versions_dir(name)
        try:
            names = os.listdir(vdir)
        except FileNotFoundError:
            return []
        for fname in names:
            if fname in keep:
                continue
            try:
                os.unlink(os.path.join(vdir, fname))
                removed.append(fname)
            except OSError as exc:  # pragma: no cover - e.g. permissions
                log.warning("%s: cannot remove %s: %s", name, fname, exc)
        if removed:
            with contextlib.suppress(OSError):
                _fsync_dir(vdir)
        # temp files a crash left beside state.json (old enough not to be another process's live write)
        mdir = self.model_dir(name)
        for fname in os.listdir(mdir):
            path = os.path.join(mdir, fname)
            if fname.startswith(".tmp-") and fname.endswith(".part"):
                with contextlib.suppress(OSError):
                    if time.time() - os.path.getmtime(path) > STALE_TEMP_SECONDS:
                        os.unlink(path)
                        removed.append(fname)
        return removed


# -- manifest checks and signatures -----------------------------------------------------------------

def manifest_signing_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a manifest signature covers.

    UTF-8 JSON of the manifest without ``signature``, ``url`` and ``url_expires_at`` (the presigned
    URL and its expiry change on every request; the document it points to is pinned by ``sha256``
    and ``size``), keys sorted, separators ``,`` and ``:``, non-ASCII characters unescaped, no
    NaN/Infinity. The registry signs exactly these bytes (e.g. KMS ``Sign`` with ``ECDSA_SHA_256``,
    ``MessageType=RAW``), so it can sign once per (version, revision) and cache the signature.
    """
    body = {k: v for k, v in manifest.items() if k not in MANIFEST_UNSIGNED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _crypto() -> tuple[Any, Any, Any, Any, Any]:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    except ImportError as exc:  # pragma: no cover - depends on the device's environment
        raise RuntimeError("verifying signed manifests needs the 'cryptography' package "
                           "(pip install cryptography)") from exc
    return InvalidSignature, hashes, serialization, ec, encode_dss_signature


def load_public_key(key: Any) -> Any:
    """An ECDSA P-256 public key from PEM/DER bytes, PEM text, a file path, or an already loaded key."""
    _, _, serialization, ec, _ = _crypto()
    if isinstance(key, ec.EllipticCurvePublicKey):
        loaded = key
    else:
        if isinstance(key, os.PathLike) or (isinstance(key, str) and "-----BEGIN" not in key):
            with open(os.fspath(key), "rb") as f:
                key = f.read()
        data = key.encode() if isinstance(key, str) else bytes(key)
        try:
            loaded = (serialization.load_pem_public_key(data) if b"-----BEGIN" in data
                      else serialization.load_der_public_key(data))
        except ValueError as exc:
            raise ValueError(f"cannot read the public key: {exc}") from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or loaded.curve.name != "secp256r1":
        raise ValueError("the manifest public key must be an ECDSA P-256 (secp256r1) key")
    return loaded


def sign_manifest(manifest: Mapping[str, Any], private_key: Any) -> str:
    """Base64 DER ECDSA-P256-SHA256 signature over :func:`manifest_signing_bytes` (local stacks, tests)."""
    _, hashes, _, ec, _ = _crypto()
    sig = private_key.sign(manifest_signing_bytes(manifest), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(sig).decode("ascii")


def verify_manifest_signature(manifest: Mapping[str, Any], public_key: Any) -> str | None:
    """None when ``signature`` verifies with ``public_key``; otherwise why not.

    Accepts DER (what KMS returns) or the 64-byte raw ``r || s`` form.
    """
    invalid_signature, hashes, _, ec, encode_dss = _crypto()
    sig_b64 = manifest.get("signature")
    if sig_b64 is None or sig_b64 == "":
        return "manifest is unsigned, but this device only accepts signed manifests"
    if not isinstance(sig_b64, str):
        return "manifest signature must be a base64 string"
    try:
        sig = base64.b64decode(sig_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return "manifest signature is not valid base64"
    if len(sig) == 64:
        sig = encode_dss(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public_key.verify(sig, manifest_signing_bytes(manifest), ec.ECDSA(hashes.SHA256()))
    except invalid_signature:
        return "manifest signature does not verify with this device's public key"
    except ValueError as exc:  # malformed DER
        return f"manifest signature is malformed: {exc}"
    return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_manifest(manifest: Any, model: str, alias: str) -> list[str]:
    """Structural problems with a manifest (empty when it is usable)."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    problems: list[str] = []
    if manifest.get("name") != model:
        problems.append(f"manifest is for model {manifest.get('name')!r}, not {model!r}")
    if not _is_int(manifest.get("version")) or manifest["version"] < 1:
        problems.append("manifest 'version' must be a positive integer")
    if not isinstance(manifest.get("sha256"), str) or not _SHA_RE.match(manifest["sha256"]):
        problems.append("manifest 'sha256' must be 64 lowercase hex digits")
    size = manifest.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_DOCUMENT_BYTES:
        problems.append(f"manifest 'size' must be an integer between 1 and {MAX_DOCUMENT_BYTES}")
    if not isinstance(manifest.get("format_version"), str):
        problems.append("manifest 'format_version' must be a string")
    if not isinstance(manifest.get("url"), str) or not manifest["url"]:
        problems.append("manifest 'url' must be a non-empty string")
    if not _is_int(manifest.get("revision")) or manifest["revision"] < 0:
        problems.append("manifest 'revision' must be a non-negative integer")
    if "alias" in manifest and manifest["alias"] is not None and manifest["alias"] != alias:
        problems.append(f"manifest is for alias {manifest['alias']!r}, not {alias!r}")
    return problems


def format_major_problem(format_version: str) -> str | None:
    major = format_version.split(".", 1)[0]
    if major.isdigit() and int(major) == SUPPORTED_FORMAT_MAJOR:
        return None
    return (f"format_version {format_version!r} is not supported: this device's scorer understands "
            f"{SUPPORTED_FORMAT_MAJOR}.x; update the vendored scorer to install this model")


# -- one sync ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncResult:
    """Outcome of :func:`sync`. ``version`` is the version active after the call (None if none is)."""

    status: str  # "updated" | "unchanged" | "refused" | "offline"
    model: str
    version: int | None
    reason: str | None = None
    offered_version: int | None = None
    revision: int | None = None
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("updated", "unchanged")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "model": self.model, "version": self.version, "reason": self.reason,
                "offered_version": self.offered_version, "revision": self.revision, "sha256": self.sha256}


class _Refused(Exception):
    pass


class _Offline(Exception):
    pass


# URLError, timeouts, resets and TLS errors are all OSError; a broken HTTP exchange is HTTPException.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def _default_opener() -> Opener:
    return urllib.request.build_opener()


def _http_error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(300).decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - the body is only decoration for the message
        body = ""
    return f"HTTP {exc.code}" + (f": {body}" if body else "")


def _read_capped(resp: Any, limit: int) -> bytes:
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


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:  # two parsers could disagree on which value counts: never accept that in signed data
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(f"{what} is not valid JSON: {exc}") from None


def _download(opener: Opener, url: str, size: int, timeout: float) -> bytes:
    """GET the presigned URL; never read more than ``size`` (+1) bytes; the exact size is required."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > size:
                raise _Refused(f"document is {length} bytes, larger than the manifest's size {size}")
            try:
                raw = _read_capped(resp, size)
            except http.client.IncompleteRead as exc:
                raise _Refused(f"truncated download: got {len(exc.partial)} of {size} bytes") from None
            if length is not None and length.isdigit() and len(raw) < int(length):
                raise _Refused(f"truncated download: got {len(raw)} of {length} bytes")
    except urllib.error.HTTPError as exc:
        raise _Offline(f"document download failed: {_http_error_text(exc)}") from None
    except _NETWORK_ERRORS as exc:
        raise _Offline(f"document download failed: {getattr(exc, 'reason', exc)}") from None
    if len(raw) > size:
        raise _Refused(f"document is larger than the manifest's size {size}; download aborted")
    if len(raw) < size:
        raise _Refused(f"size mismatch (truncated download?): got {len(raw)} bytes, manifest says {size}")
    return raw


def _verify_document(raw: bytes, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Exact size, both sha256 checks, format version, then full validation including the test vectors."""
    if len(raw) != manifest["size"]:
        raise _Refused(f"size mismatch: got {len(raw)} bytes, manifest says {manifest['size']}")
    try:
        doc = parse_document(raw)
    except InvalidModel as exc:
        raise _Refused(f"downloaded document is unreadable: {exc}") from None
    want = manifest["sha256"]
    if doc.get("sha256") != want:
        raise _Refused(f"sha256 mismatch: the document says {str(doc.get('sha256'))[:16]}..., "
                       f"the manifest says {want[:16]}...")
    got = content_sha256(doc)
    if got != want:
        raise _Refused(f"sha256 mismatch: the document's content hashes to {got[:16]}..., "
                       f"the manifest says {want[:16]}...")
    fv = doc.get("format_version")
    if fv != manifest["format_version"]:
        raise _Refused(f"document format_version {fv!r} differs from the manifest's "
                       f"{manifest['format_version']!r}")
    from . import validate_model

    try:
        validate_model(doc)
    except InvalidModel as exc:
        raise _Refused(f"validation failed: {exc}") from None
    except Exception as exc:  # any crash while checking a model means: do not install it
        log.exception("validating version %s crashed", manifest["version"])
        raise _Refused(f"validation failed: {type(exc).__name__}: {exc}") from None
    return doc


def manifest_url(api_url: str, model: str, alias: str) -> str:
    return (f"{api_url.rstrip('/')}/models/{urllib.parse.quote(model, safe='')}/manifest?"
            + urllib.parse.urlencode({"alias": alias}))


def sync(api_url: str, model: str, store: ModelStore, alias: str = "latest", device_id: str | None = None,
         public_key: Any = None, http: Opener | None = None, *, timeout: float = 30.0,
         download_timeout: float = 120.0) -> SyncResult:
    """One round of the sync protocol (docs/devices.md). Never raises for network or content problems:
    the outcome is in the result, and the model active before the call stays active unless "updated".

    Raises ValueError only for configuration errors (bad model name, unreadable public key).
    """
    check_model_name(model)
    key = load_public_key(public_key) if public_key is not None else None
    opener = http if http is not None else _default_opener()
    os.makedirs(store.model_dir(model), exist_ok=True)
    with store.lock(model):
        state = store.read_state(model)
        active_version = int(state["active"]["version"]) if state else None
        offered: dict[str, Any] = {}
        try:
            result = _sync_locked(api_url, model, store, alias, device_id, key, opener, timeout,
                                  download_timeout, state, offered)
        except _Offline as exc:
            result = SyncResult("offline", model, active_version, str(exc))
        except _Refused as exc:
            result = SyncResult("refused", model, active_version, str(exc), offered.get("version"),
                                offered.get("revision"), offered.get("sha256"))
    level = logging.WARNING if result.status in ("refused", "offline") else logging.INFO
    log.log(level, "sync %s (%s): %s, active version %s%s", model, alias, result.status, result.version,
            f" - {result.reason}" if result.reason else "")
    store.record_sync(model, result)
    return result


def _sync_locked(api_url: str, model: str, store: ModelStore, alias: str, device_id: str | None, key: Any,
                 opener: Opener, timeout: float, download_timeout: float,
                 state: dict[str, Any] | None, offered: dict[str, Any]) -> SyncResult:
    active = state["active"] if state else None
    active_version = active["version"] if active else None
    headers = {"Accept": "application/json"}
    if device_id:
        headers["X-Device-Id"] = device_id
    # Only ask for a 304 if the installed file is really there: otherwise a damaged store could never heal.
    if (state and active and state.get("alias") == alias and state.get("etag")
            and _file_size(store.entry_path(model, active)) == active.get("size")):
        headers["If-None-Match"] = state["etag"]
    url = manifest_url(api_url, model, alias)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            etag = resp.headers.get("ETag")
            raw = _read_capped(resp, MAX_MANIFEST_BYTES)
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and "If-None-Match" not in headers:
            raise _Offline("registry answered 304 to a request without If-None-Match") from None
        if exc.code == 304:
            return SyncResult("unchanged", model, active_version, None, active_version,
                              state.get("revision") if state else None, active and active["sha256"])
        raise _Offline(f"registry answered {_http_error_text(exc)}") from None
    except _NETWORK_ERRORS as exc:
        raise _Offline(f"cannot reach the registry: {getattr(exc, 'reason', exc)}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _Refused(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
    manifest = _parse_json(raw, "manifest")

    # 1. authenticity first: nothing in an unverified manifest is trusted when a key is configured
    if key is not None:
        if not isinstance(manifest, dict):
            raise _Refused("manifest is not a JSON object")
        problem = verify_manifest_signature(manifest, key)
        if problem:
            raise _Refused(problem)
    # 2. shape
    problems = check_manifest(manifest, model, alias)
    if problems:
        raise _Refused("invalid manifest: " + "; ".join(problems))
    version, sha, revision = manifest["version"], manifest["sha256"], manifest["revision"]
    offered.update(version=version, sha256=sha, revision=revision)
    # 3. a format this scorer cannot read
    fv_problem = format_major_problem(manifest["format_version"])
    if fv_problem:
        raise _Refused(fv_problem)
    # 4. replay / out-of-order: revisions only grow per alias (a rollback is an alias move: it grows too)
    known = ((state or {}).get("revisions") or {}).get(alias)
    if _is_int(known) and revision < known:
        raise _Refused(f"replayed or out-of-order manifest: revision {revision} of alias {alias!r} is older "
                       f"than the installed revision {known}")
    # 5. already active (and its file intact): just remember the new revision / etag
    if (state and active and active["version"] == version and active["sha256"] == sha
            and _file_size(store.entry_path(model, active)) == active.get("size")):
        if state.get("revision") != revision or state.get("etag") != etag or state.get("alias") != alias:
            revisions = dict(state.get("revisions") or {})
            revisions[alias] = max(revision, revisions.get(alias, revision))
            new_state = {**state, "alias": alias, "revision": revision, "revisions": revisions, "etag": etag,
                         "updated_at": _now()}
            try:
                store.write_state(model, new_state)
            except OSError as exc:
                log.warning("%s: could not record revision %s: %s", model, revision, exc)
        return SyncResult("unchanged", model, version, None, version, revision, sha)
    # 6. get the bytes: a kept file (e.g. rollback to the previous version) or the presigned URL
    raw_doc: bytes | None = None
    doc: dict[str, Any] | None = None
    kept = os.path.join(store.versions_dir(model), store.version_filename(version, sha))
    if os.path.exists(kept):
        try:
            raw_local, _ = store.read_entry(model, {"version": version, "sha256": sha})
            doc = _verify_document(raw_local, manifest)
        except (OSError, InvalidModel, _Refused) as exc:
            log.warning("%s: kept file for version %s unusable (%s); downloading again", model, version, exc)
            doc = None
    if doc is None:
        doc_url = urllib.parse.urljoin(url, manifest["url"])
        if urllib.parse.urlsplit(doc_url).scheme not in ("http", "https"):
            raise _Refused("manifest 'url' must be an http(s) URL")
        raw_doc = _download(opener, doc_url, manifest["size"], download_timeout)
        doc = _verify_document(raw_doc, manifest)
    # 7. write, then switch: state.json is the commit point
    try:
        store.install(model, raw_doc, doc, manifest, alias, etag, state)
    except OSError as exc:
        raise _Refused(f"install failed, keeping version {active_version}: {exc}") from None
    return SyncResult("updated", model, version, None, version, revision, sha)


def _file_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


# -- telemetry --------------------------------------------------------------------------------------

@dataclass
class FlushResult:
    status: str  # "ok" (all acknowledged) | "empty" | "failed"
    sent: int = 0
    acknowledged: int = 0
    remaining: int = 0
    reason: str | None = None


def _new_window(version: int, sha256: str) -> dict[str, Any]:
    return {"model_version": int(version), "sha256": sha256, "window_start": _now(), "window_end": None,
            "calls": 0, "rows": 0, "errors": 0,
            "latency_ms": {"sum": 0.0, "min": None, "max": None},
            "features": {}, "features_truncated": False, "predictions": {}, "output": None}


def _numeric_summary(x: np.ndarray) -> dict[str, Any]:
    """count (finite values), missing (NaN), infinite, running sums, min and max: all mergeable."""
    x = np.asarray(x, dtype=np.float64).ravel()
    nan = np.isnan(x)
    inf = np.isinf(x)
    ok = x[~(nan | inf)]
    return {"type": "numeric", "count": int(ok.size), "missing": int(nan.sum()), "infinite": int(inf.sum()),
            "sum": float(ok.sum()), "sum_squares": float(np.dot(ok, ok)),
            "min": float(ok.min()) if ok.size else None, "max": float(ok.max()) if ok.size else None}


def _merge_summary(cur: dict[str, Any], s: Mapping[str, Any]) -> None:
    for k in ("count", "missing", "infinite"):
        if k in s:
            cur[k] = cur.get(k, 0) + s[k]
    if s.get("type") == "numeric":
        cur["sum"] += s["sum"]
        cur["sum_squares"] += s["sum_squares"]
        cur["min"] = _opt(cur["min"], s["min"], min)
        cur["max"] = _opt(cur["max"], s["max"], max)


def _opt(a: float | None, b: float | None, fn: Callable[[float, float], float]) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


def _merge_window(into: dict[str, Any], w: Mapping[str, Any], max_features: int) -> None:
    for k in ("calls", "rows", "errors"):
        into[k] += w[k]
    lat, wl = into["latency_ms"], w["latency_ms"]
    lat["sum"] += wl["sum"]
    lat["min"] = _opt(lat["min"], wl["min"], min)
    lat["max"] = _opt(lat["max"], wl["max"], max)
    into["window_start"] = min(into["window_start"], w["window_start"])
    into["features_truncated"] = bool(into["features_truncated"] or w.get("features_truncated"))
    for name, s in w["features"].items():
        cur = into["features"].get(name)
        if cur is None:
            if len(into["features"]) >= max_features:
                into["features_truncated"] = True
                continue
            into["features"][name] = dict(s)
        else:
            _merge_summary(cur, s)
    preds = into["predictions"]
    for label, n in w["predictions"].items():
        if label not in preds and len(preds) >= MAX_LABELS:
            label = OTHER_LABEL
        preds[label] = preds.get(label, 0) + n
    if w.get("output"):
        if into.get("output"):
            _merge_summary(into["output"], w["output"])
        else:
            into["output"] = dict(w["output"])


def _label_key(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 2**53 else repr(v)
    return str(v)


def _finalise(window: Mapping[str, Any]) -> dict[str, Any]:
    """A sealed batch as sent: the raw sums plus derived mean / missing_rate for convenience."""
    out = json.loads(json.dumps(window))
    lat = out["latency_ms"]
    lat["mean"] = lat["sum"] / out["calls"] if out["calls"] else None
    for s in [*out["features"].values(), *([out["output"]] if out.get("output") else [])]:
        seen = s["count"] + s["missing"] + s.get("infinite", 0)
        s["missing_rate"] = s["missing"] / seen if seen else None
        if s.get("type") == "numeric":
            s["mean"] = s["sum"] / s["count"] if s["count"] else None
    return out


class Telemetry:
    """Per model version: calls, rows, errors, latency and a per-feature summary of the inputs, on disk.

    ``record`` accumulates in memory and persists at most every ``persist_interval`` seconds (and on
    :meth:`save`/:meth:`flush`), so that scoring does not fsync on every call; a crash loses at most
    that much. A window is sealed into a pending batch at each flush or once ``window_seconds`` old
    (so a device offline for days still reports hourly). The file is bounded: at most ``max_pending``
    sealed batches and ``max_bytes`` bytes; the oldest batches are dropped first and counted in
    ``dropped_batches``.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_pending: int = 500,
                 max_bytes: int = 1_000_000, persist_interval: float = 5.0, window_seconds: float = 3600.0,
                 max_features: int = 256, batches_per_request: int = 20) -> None:
        self.root = os.fspath(root)
        self.window_seconds = window_seconds
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self.persist_interval = persist_interval
        self.max_features = max_features
        self.batches_per_request = batches_per_request
        self._lock = threading.Lock()
        self._delta: dict[str, dict[str, dict[str, Any]]] = {}  # model -> window key -> unsaved window
        self._last_save: dict[str, float] = {}

    def path(self, model: str) -> str:
        return os.path.join(self.root, check_model_name(model), "telemetry.json")

    # recording
    def record(self, model: str, version: int, sha256: str, X: np.ndarray | None, features: list[Any],
               predictions: np.ndarray | None, latency_s: float, error: bool = False,
               labels: bool = True) -> None:
        """Account for one scoring call. ``X`` is the converted input matrix (feature order).

        ``labels``: count ``predictions`` per class (classifiers); otherwise summarise them as numbers.
        """
        w = _new_window(version, sha256)
        w["calls"] = 1
        w["errors"] = int(error)
        ms = float(latency_s) * 1000.0
        w["latency_ms"] = {"sum": ms, "min": ms, "max": ms}
        if X is not None and X.ndim == 2:
            w["rows"] = int(X.shape[0])
            for j, feat in enumerate(features[: self.max_features]):
                w["features"][feat.name] = self._summarise(X[:, j], feat.kind == CATEGORICAL)
            w["features_truncated"] = len(features) > self.max_features
        if predictions is not None:
            arr = np.asarray(predictions)
            if labels and arr.ndim == 1:
                counts = collections.Counter(_label_key(v) for v in arr.tolist())
                if len(counts) > MAX_LABELS:
                    top = dict(counts.most_common(MAX_LABELS - 1))
                    top[OTHER_LABEL] = top.get(OTHER_LABEL, 0) + sum(counts.values()) - sum(top.values())
                    counts = collections.Counter(top)
                w["predictions"] = dict(counts)
            elif arr.dtype.kind in "iufb":
                w["output"] = _numeric_summary(arr)
        key = f"{int(version)}-{sha256[:12]}"
        with self._lock:
            windows = self._delta.setdefault(model, {})
            if key in windows:
                _merge_window(windows[key], w, self.max_features)
            else:
                windows[key] = w
            due = time.monotonic() - self._last_save.get(model, -math.inf) >= self.persist_interval
        if due:
            try:
                self.save(model)
            except OSError as exc:  # a full disk must not break scoring
                log.warning("telemetry for %s not persisted: %s", model, exc)

    @staticmethod
    def _summarise(col: np.ndarray, categorical: bool) -> dict[str, Any]:
        if categorical:
            missing = sum(1 for v in col.tolist() if v is None or (isinstance(v, float) and math.isnan(v)))
            return {"type": "categorical", "count": int(col.shape[0]) - missing, "missing": missing}
        return _numeric_summary(col)

    # persistence
    def _read(self, model: str) -> dict[str, Any]:
        try:
            data = _read_json_file(self.path(model))
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as exc:
            log.warning("telemetry file for %s unreadable, starting afresh: %s", model, exc)
            data = None
        if not isinstance(data, dict) or data.get("schema") != TELEMETRY_SCHEMA:
            data = {"schema": TELEMETRY_SCHEMA, "model": model, "open": {}, "pending": [],
                    "dropped_batches": 0}
        return data

    def _write(self, model: str, data: dict[str, Any]) -> None:
        """Enforce the bounds (oldest pending batches go first), then write atomically."""
        pending = data["pending"]
        if len(pending) > self.max_pending:
            drop = len(pending) - self.max_pending
            del pending[:drop]
            data["dropped_batches"] += drop
        blob = _dump(data)
        while len(blob) > self.max_bytes and pending:
            pending.pop(0)
            data["dropped_batches"] += 1
            blob = _dump(data)
        if len(blob) > self.max_bytes:  # only open windows left and still too big: drop them too
            data["dropped_batches"] += len(data["open"])
            data["open"] = {}
            blob = _dump(data)
        os.makedirs(os.path.dirname(self.path(model)), exist_ok=True)
        atomic_write(self.path(model), blob)

    @contextlib.contextmanager
    def _locked(self, model: str) -> Iterator[dict[str, Any]]:
        with _file_lock(os.path.join(self.root, check_model_name(model), ".telemetry.lock")):
            data = self._read(model)
            yield data
            self._write(model, data)

    def save(self, model: str | None = None) -> None:
        """Merge what was recorded in memory into the file (under the file lock: processes may share it)."""
        with self._lock:
            models = [model] if model is not None else list(self._delta)
            deltas = {m: self._delta.pop(m, {}) for m in models}
            for m in models:
                self._last_save[m] = time.monotonic()
        for m, windows in deltas.items():
            if not windows:
                continue
            try:
                with self._locked(m) as data:
                    for key, w in windows.items():
                        if key in data["open"]:
                            _merge_window(data["open"][key], w, self.max_features)
                        else:
                            data["open"][key] = w
                    self._seal_old(data)
            except OSError:
                with self._lock:  # put it back: it is retried on the next save
                    mine = self._delta.setdefault(m, {})
                    for key, w in windows.items():
                        if key in mine:
                            _merge_window(mine[key], w, self.max_features)
                        else:
                            mine[key] = w
                raise

    def _seal_old(self, data: dict[str, Any], everything: bool = False) -> None:
        """Move open windows into pending batches: all of them, or those older than ``window_seconds``."""
        now = _dt.datetime.now(_dt.UTC)
        for key, w in sorted(data["open"].items(), key=lambda kv: kv[1]["window_start"]):
            started = _dt.datetime.strptime(w["window_start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
            if everything or (now - started).total_seconds() >= self.window_seconds:
                data["pending"].append({"batch_id": str(uuid.uuid4()), **w, "window_end": _now()})
                del data["open"][key]

    def pending(self, model: str) -> list[dict[str, Any]]:
        """Sealed batches waiting for the server (does not include the open window)."""
        return list(self._read(model)["pending"])

    def snapshot(self, model: str) -> dict[str, Any]:
        """Everything on disk for ``model`` plus what is still in memory, for status displays."""
        data = self._read(model)
        with self._lock:
            for key, w in self._delta.get(model, {}).items():
                if key in data["open"]:
                    _merge_window(data["open"][key], w, self.max_features)
                else:
                    data["open"][key] = json.loads(json.dumps(w))
        return data

    def seal(self, model: str) -> int:
        """Close the open windows into pending batches (each gets a ``batch_id``); returns how many wait."""
        self.save(model)
        current = self._read(model)
        if not current["open"]:  # nothing to seal: do not rewrite the file
            return len(current["pending"])
        with self._locked(model) as data:
            self._seal_old(data, everything=True)
            n = len(data["pending"])
        return n

    # sending
    def flush(self, api_url: str, model: str, device_id: str | None = None, *, http: Opener | None = None,
              retries: int = 3, backoff: float = 0.5, max_backoff: float = 30.0,
              sleep: Callable[[float], None] = time.sleep, timeout: float = 15.0) -> FlushResult:
        """POST pending batches to ``{api}/models/{model}/telemetry``; clear only what a 2xx acknowledged.

        Transient failures (network, 408, 429, 5xx) are retried ``retries`` times with exponential
        backoff and jitter (``Retry-After`` honoured up to ``max_backoff``); then it stops, keeping the
        rest for the next flush. A 2xx acknowledges every batch in that request, unless its JSON body
        has ``"accepted": [batch_id, ...]``, in which case only those are cleared.
        """
        try:
            self.seal(model)
        except OSError as exc:
            return FlushResult("failed", reason=f"cannot seal telemetry: {exc}",
                               remaining=len(self.pending(model)))
        opener = http if http is not None else _default_opener()
        url = f"{api_url.rstrip('/')}/models/{urllib.parse.quote(model, safe='')}/telemetry"
        snapshot = self._read(model)
        todo = list(snapshot["pending"])  # batches sealed later wait for the next flush
        if not todo:
            return FlushResult("empty")
        dropped = int(snapshot["dropped_batches"])
        sent = acked = 0
        for i in range(0, len(todo), self.batches_per_request):
            batch = todo[i: i + self.batches_per_request]
            payload = {"schema": TELEMETRY_SCHEMA, "model": model, "device_id": device_id, "sent_at": _now(),
                       "dropped_batches": dropped, "batches": [_finalise(b) for b in batch]}
            ok, reason, accepted = self._post(opener, url, payload, device_id, retries, backoff, max_backoff,
                                              sleep, timeout)
            sent += len(batch)
            if not ok:
                return FlushResult("failed", sent, acked, len(self.pending(model)), reason)
            ids = {b["batch_id"] for b in batch}
            if accepted is not None:
                ids &= set(accepted)
            with self._locked(model) as cur:
                before = len(cur["pending"])
                cur["pending"] = [b for b in cur["pending"] if b["batch_id"] not in ids]
                acked += before - len(cur["pending"])
                cur["dropped_batches"] = max(0, int(cur["dropped_batches"]) - dropped)
            dropped = 0  # reported once, in the first acknowledged request
        remaining = len(self.pending(model))
        if acked < sent:
            return FlushResult("failed", sent, acked, remaining, f"server accepted {acked} of {sent} batches")
        return FlushResult("ok", sent, acked, remaining)

    @staticmethod
    def _post(opener: Opener, url: str, payload: dict[str, Any], device_id: str | None, retries: int,
              backoff: float, max_backoff: float, sleep: Callable[[float], None],
              timeout: float) -> tuple[bool, str | None, list[str] | None]:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if device_id:
            headers["X-Device-Id"] = device_id
        reason = "not sent"
        for attempt in range(retries + 1):
            retry_after: float | None = None
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with opener.open(req, timeout=timeout) as resp:
                    answer = _read_capped(resp, MAX_MANIFEST_BYTES)
                accepted = None
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    parsed = json.loads(answer.decode("utf-8")) if answer.strip() else None
                    if isinstance(parsed, dict) and isinstance(parsed.get("accepted"), list):
                        accepted = [str(a) for a in parsed["accepted"]]
                return True, None, accepted
            except urllib.error.HTTPError as exc:
                reason = f"telemetry upload answered {_http_error_text(exc)}"
                if exc.code not in (408, 429) and exc.code < 500:
                    return False, reason, None
                ra = exc.headers.get("Retry-After") if exc.headers else None
                if ra and ra.strip().isdigit():
                    retry_after = float(ra.strip())
            except _NETWORK_ERRORS as exc:
                reason = f"telemetry upload failed: {getattr(exc, 'reason', exc)}"
            if attempt < retries:
                delay = min(max_backoff, backoff * (2 ** attempt)) * random.uniform(0.5, 1.0)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, max_backoff))
                log.info("%s; retrying in %.2fs", reason, delay)
                sleep(delay)
        return False, reason, None


# -- notifications and the polling loop -------------------------------------------------------------

def parse_notification(message: Any) -> dict[str, Any] | None:
    """The registry event inside ``message``, or None if it is not one.

    Accepts the raw event ``{"event_type": ..., "model": ...}`` (SNS raw message delivery), the SNS
    envelope ``{"Type": "Notification", "Message": "<json>", ...}`` (HTTP endpoint, or SQS without raw
    delivery), an SQS message ``{"Body": ...}`` / ``{"body": ...}``, as a dict, JSON text or bytes.
    """
    for _ in range(4):  # unwrap at most a few layers
        if isinstance(message, (bytes, bytearray)):
            message = message.decode("utf-8", "replace")
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
                return None
        if not isinstance(message, dict):
            return None
        if "event_type" in message:
            return message
        if message.get("Type") == "Notification" and "Message" in message:
            message = message["Message"]
        elif "Body" in message or "body" in message:
            message = message.get("Body", message.get("body"))
        else:
            if message.get("Type") == "SubscriptionConfirmation":
                log.warning("SNS subscription confirmation received: confirm it by visiting SubscribeURL %s",
                            message.get("SubscribeURL"))
            return None
    return None


class SyncLoop:
    """Poll the registry every ``interval`` seconds (+/- ``jitter``), sooner when :meth:`on_event` says so.

    Jitter spreads a fleet's requests; an event-triggered sync waits a random ``0..event_spread``
    seconds for the same reason (every device gets the notification at once). Telemetry, when given,
    is flushed after each sync.
    """

    def __init__(self, api_url: str, model: str, store: ModelStore, *, alias: str = "latest",
                 device_id: str | None = None, public_key: Any = None, http: Opener | None = None,
                 interval: float = 300.0, jitter: float = 0.1, event_spread: float = 5.0,
                 telemetry: Telemetry | None = None,
                 on_result: Callable[[SyncResult], None] | None = None) -> None:
        check_model_name(model)
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.api_url, self.model, self.store, self.alias = api_url, model, store, alias
        self.device_id, self.http = device_id, http
        self.public_key = load_public_key(public_key) if public_key is not None else None
        self.interval, self.jitter, self.event_spread = interval, jitter, event_spread
        self.telemetry = telemetry
        self.on_result = on_result
        self.results: list[SyncResult] = []
        self._wake = threading.Event()

    def on_event(self, message: Any) -> bool:
        """Feed an SNS/SQS message; returns True if it concerns this model and alias (a sync is scheduled)."""
        event = parse_notification(message)
        if event is None or event.get("event_type") not in EVENT_TYPES or event.get("model") != self.model:
            return False
        detail = event.get("detail")
        alias = event.get("alias", detail.get("alias") if isinstance(detail, dict) else None)
        if event["event_type"] == "alias.moved" and alias not in (None, self.alias):
            return False
        log.info("%s: %s event, syncing now", self.model, event["event_type"])
        self._wake.set()
        return True

    def next_delay(self) -> float:
        return max(0.0, self.interval * (1.0 + random.uniform(-self.jitter, self.jitter)))

    def sync_once(self) -> SyncResult:
        try:
            result = sync(self.api_url, self.model, self.store, self.alias, self.device_id, self.public_key,
                          self.http)
        except Exception as exc:  # the loop must survive anything and keep the model serving
            log.exception("sync of %s crashed", self.model)
            active = self.store.active_entry(self.model)
            result = SyncResult("offline", self.model, None if active is None else int(active["version"]),
                                f"sync crashed: {exc}")
        self.results.append(result)
        del self.results[:-100]
        if self.on_result is not None:
            self.on_result(result)
        if self.telemetry is not None and result.status != "offline":
            try:
                self.telemetry.flush(self.api_url, self.model, self.device_id, http=self.http)
            except Exception:  # telemetry is best effort
                log.exception("telemetry flush for %s crashed", self.model)
        return result

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Sync now, then on every tick or event, until ``stop_event`` is set."""
        stop = stop_event if stop_event is not None else threading.Event()
        while not stop.is_set():
            self.sync_once()
            deadline = time.monotonic() + self.next_delay()
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self._wake.wait(min(remaining, 0.25)):
                    self._wake.clear()
                    spread = random.uniform(0, self.event_spread) if self.event_spread > 0 else 0.0
                    stop.wait(spread)
                    break


def serve_notifications(loop: SyncLoop, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Accept SNS HTTP(S) deliveries (or any POST of an event) and feed them to ``loop.on_event``.

    Runs in a daemon thread; returns the server (``server.server_address``, ``server.shutdown()``).
    The notification is only a hint to sync now - it carries no trust, so its SNS signature is not
    checked: whatever it says, the device installs only what the manifest checks allow.
    """
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_MANIFEST_BYTES))
            triggered = loop.on_event(body)
            answer = json.dumps({"sync": triggered}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("notification endpoint: " + format, *args)

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="modelsync-notifications", daemon=True).start()
    return server


def run_forever(api_url: str, model: str, store: ModelStore, *, interval: float = 300.0,
                stop_event: threading.Event | None = None, **kwargs: Any) -> SyncLoop:
    """Convenience: build a :class:`SyncLoop` and run it until ``stop_event`` is set; returns the loop.

    To feed notifications, build the :class:`SyncLoop` yourself and call ``loop.on_event`` from the
    thread that reads SQS / receives the SNS HTTP POST, while ``loop.run_forever`` runs in another.
    """
    loop = SyncLoop(api_url, model, store, interval=interval, **kwargs)
    loop.run_forever(stop_event)
    return loop
