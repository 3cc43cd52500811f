"""One round of the sync protocol (docs/devices.md): manifest, checks, download, verification, switch.

:func:`sync` fetches the manifest (``If-None-Match``), refuses what must not be installed, downloads with
a size cap, checks size, sha256, signature and the test vectors, writes, then switches. Any failure keeps
the current model active.
"""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelsync_protocol import check_model_name
from scorer import (
    MAX_DOCUMENT_BYTES,
    InvalidModel,
    content_sha256,
    loads_strict,
    parse_document,
    validate_model,
)
from scorer._envelope import SHA256_PATTERN, SUPPORTED_FORMAT_MAJOR

from .auth import AuthError
from .signature import PublicKey, load_public_key, verify_manifest_signature
from .store import ModelStore, now_iso
from .transport import (
    DOWNLOAD_DEADLINE_SECONDS,
    MAX_ANSWER_BYTES,
    MIN_DOWNLOAD_RATE,
    NETWORK_ERRORS,
    Opener,
    TooSlow,
    default_opener,
    http_error_text,
    read_capped,
    read_within,
)

log = logging.getLogger("modelsync_device")

MAX_MANIFEST_BYTES = MAX_ANSWER_BYTES


@dataclass(frozen=True)
class SyncResult:
    """Outcome of :func:`sync`. ``version`` is the version active after the call (None if none is)."""

    status: str  # "updated" | "unchanged" | "refused" | "offline" | "unauthorized"
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


class Refused(Exception):
    """The registry offered something this device must not install (kept: the current model)."""


class Offline(Exception):
    """The registry or the document could not be reached."""


class Unauthorized(Exception):
    """The API refused this device's credentials (401/403): a configuration problem, not "offline"."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_json(raw: bytes, what: str) -> Any:
    """Strict JSON (scorer.loads_strict: no duplicate keys, no NaN) or :class:`Refused`."""
    try:
        return loads_strict(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(f"{what} is not valid JSON: {exc}") from None


def check_manifest(manifest: Any, model: str, alias: str) -> list[str]:
    """Structural problems with a manifest (empty when it is usable)."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    problems: list[str] = []
    if manifest.get("name") != model:
        problems.append(f"manifest is for model {manifest.get('name')!r}, not {model!r}")
    if not _is_int(manifest.get("version")) or manifest["version"] < 1:
        problems.append("manifest 'version' must be a positive integer")
    if not isinstance(manifest.get("sha256"), str) or not SHA256_PATTERN.fullmatch(manifest["sha256"]):
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


def manifest_url(api_url: str, model: str, alias: str, version: int | None = None) -> str:
    """The manifest route: following ``alias``, or pinned to ``version`` (``?version=N``)."""
    query = {"version": str(version)} if version is not None else {"alias": alias}
    return (f"{api_url.rstrip('/')}/models/{urllib.parse.quote(model, safe='')}/manifest?"
            + urllib.parse.urlencode(query))


def _download(opener: Opener, url: str, size: int, deadline: float, timeout: float,
              min_rate: float = MIN_DOWNLOAD_RATE) -> bytes:
    """GET the presigned URL; never read more than ``size`` (+1) bytes; the exact size is required.

    The whole transfer has ``deadline`` seconds and a minimum average rate (after a grace period); a
    download that misses either is abandoned as offline (the current model stays, the sync is retried).
    """
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(req, timeout=min(timeout, deadline)) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > size:
                raise Refused(f"document is {length} bytes, larger than the manifest's size {size}")
            try:
                raw = read_within(resp, size, deadline, min_rate)
            except TooSlow as exc:
                raise Offline(str(exc)) from None
            except http.client.IncompleteRead as exc:
                raise Refused(f"truncated download: got {len(exc.partial)} of {size} bytes") from None
            if length is not None and length.isdigit() and len(raw) < int(length):
                raise Refused(f"truncated download: got {len(raw)} of {length} bytes")
    except urllib.error.HTTPError as exc:
        raise Offline(f"document download failed: {http_error_text(exc)}") from None
    except NETWORK_ERRORS as exc:
        raise Offline(f"document download failed: {getattr(exc, 'reason', exc)}") from None
    if len(raw) > size:
        raise Refused(f"document is larger than the manifest's size {size}; download aborted")
    if len(raw) < size:
        raise Refused(f"size mismatch (truncated download?): got {len(raw)} bytes, manifest says {size}")
    return raw


def _verify_document(raw: bytes, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Exact size, both sha256 checks, format version, then full validation including the test vectors."""
    if len(raw) != manifest["size"]:
        raise Refused(f"size mismatch: got {len(raw)} bytes, manifest says {manifest['size']}")
    try:
        doc = parse_document(raw)
    except InvalidModel as exc:
        raise Refused(f"downloaded document is unreadable: {exc}") from None
    want = manifest["sha256"]
    if doc.get("sha256") != want:
        raise Refused(f"sha256 mismatch: the document says {str(doc.get('sha256'))[:16]}..., "
                      f"the manifest says {want[:16]}...")
    try:  # JCS has no form for some values (integers beyond 2**53): such a document cannot match any sha256
        got = content_sha256(doc)
    except InvalidModel as exc:
        raise Refused(f"the document's content cannot be hashed: {exc}") from None
    if got != want:
        raise Refused(f"sha256 mismatch: the document's content hashes to {got[:16]}..., "
                      f"the manifest says {want[:16]}...")
    fv = doc.get("format_version")
    if fv != manifest["format_version"]:
        raise Refused(f"document format_version {fv!r} differs from the manifest's "
                      f"{manifest['format_version']!r}")
    try:
        validate_model(doc)
    except InvalidModel as exc:
        raise Refused(f"validation failed: {exc}") from None
    except Exception as exc:  # any crash while checking a model means: do not install it
        log.exception("validating version %s crashed", manifest["version"])
        raise Refused(f"validation failed: {type(exc).__name__}: {exc}") from None
    return doc


def sync(api_url: str, model: str, store: ModelStore, alias: str = "latest", device_id: str | None = None,
         public_key: Any = None, http: Opener | None = None, *, timeout: float = 30.0,
         download_timeout: float = DOWNLOAD_DEADLINE_SECONDS, min_download_rate: float = MIN_DOWNLOAD_RATE,
         version: int | None = None) -> SyncResult:
    """One round of the sync protocol (docs/devices.md). Never raises for network or content problems:
    the outcome is in the result, and the model active before the call stays active unless "updated".
    ``version`` pins that version instead of following ``alias``. ``timeout`` bounds each network read;
    ``download_timeout`` the whole document download, which must also average ``min_download_rate``
    bytes/s (after a grace period): a download that misses either is abandoned as "offline". ``http`` is
    where authentication goes (:class:`modelsync_device.auth.AuthOpener`); a 401/403 is the status
    "unauthorized".

    Raises ValueError only for configuration errors (bad model name, unreadable public key).
    """
    check_model_name(model)
    if version is not None and (not _is_int(version) or version < 1):
        raise ValueError("version must be a positive integer")
    key = load_public_key(public_key) if public_key is not None else None
    opener = http if http is not None else default_opener()
    os.makedirs(store.model_dir(model), exist_ok=True)
    with store.lock(model):
        state = store.read_state(model)
        active_version = int(state["active"]["version"]) if state else None
        offered: dict[str, Any] = {}
        try:
            result = _sync_locked(api_url, model, store, alias, device_id, key, opener, timeout,
                                  (download_timeout, min_download_rate), state, offered, version)
        except Offline as exc:
            result = SyncResult("offline", model, active_version, str(exc))
        except Unauthorized as exc:
            result = SyncResult("unauthorized", model, active_version, str(exc))
        except Refused as exc:
            result = SyncResult("refused", model, active_version, str(exc), offered.get("version"),
                                offered.get("revision"), offered.get("sha256"))
    level = logging.INFO if result.ok else logging.WARNING
    log.log(level, "sync %s (%s): %s, active version %s%s", model, alias, result.status, result.version,
            f" - {result.reason}" if result.reason else "")
    store.record_sync(model, result.as_dict())
    return result


def _fetch_manifest(opener: Opener, url: str, headers: dict[str, str], timeout: float
                    ) -> tuple[bytes | None, str | None]:
    """(raw manifest, ETag), or (None, None) for a 304 answer to ``If-None-Match``."""
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            etag = resp.headers.get("ETag")
            raw = read_capped(resp, MAX_MANIFEST_BYTES)
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and "If-None-Match" not in headers:
            raise Offline("registry answered 304 to a request without If-None-Match") from None
        if exc.code == 304:
            return None, None
        if exc.code in (401, 403):
            raise Unauthorized(f"authentication failed: the registry answered {http_error_text(exc)}"
                               ) from None
        raise Offline(f"registry answered {http_error_text(exc)}") from None
    except NETWORK_ERRORS as exc:
        raise Offline(f"cannot reach the registry: {getattr(exc, 'reason', exc)}") from None
    except AuthError as exc:  # no credentials or token to send (e.g. the token command failed)
        raise Unauthorized(f"authentication failed: {exc}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise Refused(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
    return raw, etag


def _sync_locked(api_url: str, model: str, store: ModelStore, alias: str, device_id: str | None,
                 key: PublicKey | None, opener: Opener, timeout: float, download: tuple[float, float],
                 state: dict[str, Any] | None, offered: dict[str, Any], pinned: int | None = None
                 ) -> SyncResult:
    active = state["active"] if state else None
    active_version = active["version"] if active else None
    if pinned is not None:  # a pinned version is followed like an alias of its own (state, revisions)
        alias = f"@{pinned}"
    headers = {"Accept": "application/json"}
    if device_id:
        headers["X-Device-Id"] = device_id
    # Only ask for a 304 if the installed file is really there: otherwise a damaged store could never heal.
    if state and state.get("alias") == alias and state.get("etag") and store.entry_intact(model, active):
        headers["If-None-Match"] = state["etag"]
    url = manifest_url(api_url, model, alias, pinned)
    raw, etag = _fetch_manifest(opener, url, headers, timeout)
    if raw is None:
        return SyncResult("unchanged", model, active_version, None, active_version,
                          state.get("revision") if state else None, active and active["sha256"])
    manifest = parse_json(raw, "manifest")

    # 1. authenticity first: nothing in an unverified manifest is trusted when a key is configured
    if key is not None:
        if not isinstance(manifest, dict):
            raise Refused("manifest is not a JSON object")
        problem = verify_manifest_signature(manifest, key)
        if problem:
            raise Refused(problem)
    # 2. shape
    problems = check_manifest(manifest, model, alias)
    if pinned is not None and isinstance(manifest, dict) and manifest.get("version") != pinned:
        problems.append(f"manifest is for version {manifest.get('version')!r}, not the pinned {pinned}")
    if problems:
        raise Refused("invalid manifest: " + "; ".join(problems))
    version, sha, revision = manifest["version"], manifest["sha256"], manifest["revision"]
    offered.update(version=version, sha256=sha, revision=revision)
    # 3. a format this scorer cannot read
    fv_problem = format_major_problem(manifest["format_version"])
    if fv_problem:
        raise Refused(fv_problem)
    # 4. replay / out-of-order: revisions only grow per alias (a rollback is an alias move: it grows too)
    known = ((state or {}).get("revisions") or {}).get(alias)
    if _is_int(known) and revision < known:
        raise Refused(f"replayed or out-of-order manifest: revision {revision} of alias {alias!r} is older "
                      f"than the installed revision {known}")
    # 5. already active (and its file intact): just remember the new revision / etag
    if (state and active and active["version"] == version and active["sha256"] == sha
            and store.entry_intact(model, active)):
        if state.get("revision") != revision or state.get("etag") != etag or state.get("alias") != alias:
            revisions = dict(state.get("revisions") or {})
            revisions[alias] = max(revision, revisions.get(alias, revision))
            new_state = {**state, "alias": alias, "revision": revision, "revisions": revisions, "etag": etag,
                         "updated_at": now_iso()}
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
        except (OSError, InvalidModel, Refused) as exc:
            log.warning("%s: kept file for version %s unusable (%s); downloading again", model, version, exc)
            doc = None
    if doc is None:
        doc_url = urllib.parse.urljoin(url, manifest["url"])
        if urllib.parse.urlsplit(doc_url).scheme not in ("http", "https"):
            raise Refused("manifest 'url' must be an http(s) URL")
        deadline, min_rate = download
        raw_doc = _download(opener, doc_url, manifest["size"], deadline, timeout, min_rate)
        doc = _verify_document(raw_doc, manifest)
    # 7. write, then switch: state.json is the commit point
    try:
        store.install(model, raw_doc, doc, manifest, alias, etag, state)
    except OSError as exc:
        raise Refused(f"install failed, keeping version {active_version}: {exc}") from None
    return SyncResult("updated", model, version, None, version, revision, sha)


BUNDLED_VERSION = 0  # a document shipped with the app, not (yet) known by its registry version


def install_bundled(path_or_bytes: str | os.PathLike[str] | bytes, store: ModelStore,
                    model: str | None = None, version: int = BUNDLED_VERSION, *, force: bool = False
                    ) -> SyncResult:
    """Verify a model document shipped with the app (sha256 of its content, full validation with its test
    vectors) and make it the active model, so a device never online scores from its first second.

    ``model`` defaults to the document's ``metadata.name``; ``version`` is its registry version when known
    (default 0: bundled). A store that already has an active model keeps it unless ``force`` (an app
    update must not undo newer syncs). Any later sync replaces it as usual. Raises ValueError when the
    document is unusable, OSError when it cannot be read or written.
    """
    if isinstance(path_or_bytes, bytes):
        raw = path_or_bytes
    else:
        with open(path_or_bytes, "rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = parse_document(raw)
    except InvalidModel as exc:
        raise ValueError(f"the bundled document is unreadable: {exc}") from None
    meta = doc.get("metadata")
    name = model or (meta.get("name") if isinstance(meta, dict) else None)
    if not isinstance(name, str):
        raise ValueError("the document has no metadata.name: pass the model name")
    check_model_name(name)
    if not _is_int(version) or version < 0:
        raise ValueError("version must be a non-negative integer")
    try:
        sha = content_sha256(doc)
    except InvalidModel as exc:
        raise ValueError(f"the document's content cannot be hashed: {exc}") from None
    if doc.get("sha256") not in (None, sha):
        raise ValueError(f"sha256 mismatch: the document says {str(doc.get('sha256'))[:16]}..., its content "
                         f"hashes to {sha[:16]}...")
    fv = doc.get("format_version")
    problem = format_major_problem(fv) if isinstance(fv, str) else "the document has no format_version"
    if problem:
        raise ValueError(problem)
    try:
        validate_model(doc)
    except InvalidModel as exc:
        raise ValueError(f"validation failed: {exc}") from None
    os.makedirs(store.model_dir(name), exist_ok=True)
    with store.lock(name):
        state = store.read_state(name)
        if state and not force:
            active = state["active"]
            log.info("%s: version %s already active; the bundled document is not installed", name,
                     active["version"])
            return SyncResult("unchanged", name, int(active["version"]), "a model is already active",
                              version, state.get("revision"), active["sha256"])
        manifest = {"version": version, "sha256": sha, "size": len(raw), "revision": None}
        store.install(name, raw, doc, manifest, "bundled", None, state)
    log.info("%s: bundled document installed as version %s (sha256 %s)", name, version, sha[:12])
    result = SyncResult("updated", name, version, None, version, None, sha)
    store.record_sync(name, {**result.as_dict(), "source": "bundled"})
    return result
