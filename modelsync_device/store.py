"""The device's on-disk model store: atomic files, advisory locks and :class:`ModelStore`.

Every write is atomic (temp file, fsync, rename, fsync dir), so a power cut leaves either the old model or
the new one active, never half of one. Loading the active model never touches the network.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelsync_protocol import check_model_name, valid_model_name
from scorer import (
    MAX_DOCUMENT_BYTES,
    InvalidInput,
    InvalidModel,
    Model,
    content_sha256,
    load_model,
    loads_strict,
    parse_document,
    to_matrix,
)

if TYPE_CHECKING:
    from .telemetry import Telemetry

try:  # POSIX advisory locks; on other platforms concurrent writers are not serialised
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

log = logging.getLogger("modelsync_device")

STATE_SCHEMA = 1
DEFAULT_KEEP = 2
STALE_TEMP_SECONDS = 3600


class StoreError(Exception):
    """The store has no usable model (never synced, or every kept file is unreadable)."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- atomic files -----------------------------------------------------------------------------------

def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename durable. Directories cannot be opened for fsync on Windows; there it is a no-op."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` with ``data`` so that readers and crashes see the old bytes or the new, never a mix.

    A temp file in the same directory (same filesystem, so the rename is atomic) is written, fsynced,
    renamed over ``path``, and the directory fsynced so the rename itself survives a power cut. On any
    error (e.g. ENOSPC) the temp file is removed and ``path`` is untouched. Text is written as UTF-8.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
    try:
        try:
            view = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
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
    fsync_dir(directory)


def dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def read_json_file(path: str) -> Any:
    with open(path, "rb") as f:
        return loads_strict(f.read().decode("utf-8"))


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Exclusive advisory lock (flock) so that two processes never interleave a read-modify-write."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if _fcntl is not None:
            _fcntl.flock(fd, _fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def file_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


class RecordingModel(Model):
    """A store's model whose main output (``predict``, else ``transform``) is accounted in telemetry.

    Each call is one telemetry call: its rows, the converted inputs per feature, the outputs, the
    latency, or an error when the input is refused.
    """

    def __init__(self, model: Model, name: str, entry: Mapping[str, Any], telemetry: Telemetry) -> None:
        super().__init__(model.document, model.estimator, model.features)
        self._store_name, self._entry, self._telemetry = name, entry, telemetry
        self._recorded = "predict" if model.supports("predict") else "transform"

    def _call(self, method: str, X: Any) -> np.ndarray:
        if method != self._recorded:
            return super()._call(method, X)
        start = time.perf_counter()
        version, sha = self._entry["version"], self._entry["sha256"]
        try:
            matrix = to_matrix(X, self.features)
            out = super()._call(method, matrix)
        except (InvalidInput, ValueError):
            self._telemetry.record(self._store_name, version, sha, None, self.features, None,
                                   time.perf_counter() - start, error=True)
            raise
        baseline = (self.document.get("metadata") or {}).get("baseline")
        self._telemetry.record(self._store_name, version, sha, matrix, self.features, out,
                               time.perf_counter() - start,
                               baseline=baseline if isinstance(baseline, dict) else None)
        return out


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
                      if valid_model_name(n) and os.path.isfile(os.path.join(self.root, n, "state.json")))

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with file_lock(os.path.join(self.model_dir(name), ".lock")):
            yield

    # state
    def read_state(self, name: str) -> dict[str, Any] | None:
        """The committed state, or None when the model was never installed (or state.json is unreadable)."""
        path = self.state_path(name)
        try:
            state = read_json_file(path)
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
        atomic_write(self.state_path(name), dump_json(state))

    def last_sync(self, name: str) -> dict[str, Any] | None:
        try:
            data = read_json_file(os.path.join(self.model_dir(name), "last_sync.json"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def record_sync(self, name: str, outcome: Mapping[str, Any]) -> None:
        """Best effort: a full disk must not turn a kept-current-model outcome into an exception."""
        try:
            os.makedirs(self.model_dir(name), exist_ok=True)
            atomic_write(os.path.join(self.model_dir(name), "last_sync.json"),
                         dump_json({**outcome, "at": now_iso()}))
        except OSError as exc:
            log.warning("%s: could not record the sync outcome: %s", name, exc)

    def active_entry(self, name: str) -> dict[str, Any] | None:
        state = self.read_state(name)
        return None if state is None else dict(state["active"])

    def entry_path(self, name: str, entry: Mapping[str, Any]) -> str:
        return os.path.join(self.versions_dir(name), self.version_filename(entry["version"], entry["sha256"]))

    def entry_intact(self, name: str, entry: Mapping[str, Any] | None) -> bool:
        """Whether the kept file of ``entry`` is there with its recorded size (cheap, no hashing)."""
        return entry is not None and file_size(self.entry_path(name, entry)) == entry.get("size")

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

    def scoring_model(self, name: str, telemetry: Telemetry | None = None) -> Model:
        """The active model (offline); with ``telemetry``, one that accounts for every call it scores.

        Hand it to anything that scores a :class:`scorer.Model` (``scorer.tabular.score_csv``, ...).
        """
        model, entry = self._load(name)
        return model if telemetry is None else RecordingModel(model, name, entry, telemetry)

    def predict(self, name: str, X: Any, telemetry: Telemetry | None = None,
                proba: bool = True) -> Scored:
        """Score ``X`` with the active model (offline), recording telemetry around the call if given."""
        model, entry = self._load(name)
        scoring = model if telemetry is None else RecordingModel(model, name, entry, telemetry)
        prediction = scoring.predict(X)
        probabilities = model.predict_proba(X) if proba and model.supports("predict_proba") else None
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
            "installed_at": now_iso(),
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
                fsync_dir(vdir)
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
