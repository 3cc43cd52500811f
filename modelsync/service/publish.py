"""Publish an upload: ``incoming/{model}/{file}.json`` -> validated -> ``models/{model}/{version}.json`` +
registry.

**Every upload ends in exactly one of: a published version, or a rejection** (a report under
``reports/{model}/`` plus the upload record turning ``rejected``, from which Notify sends
``upload.rejected``), whatever fails:

1. claim the upload record ``UPLOAD#{id}`` (id = hash of bucket, key, ETag) with ``attribute_not_exists``;
   an upload already published or rejected returns its recorded outcome. A record still ``processing``
   counts one more invocation: after :data:`MAX_INVOCATIONS` (earlier ones crashed or timed out, e.g. on
   a document too costly to validate) the upload is rejected instead of being tried forever;
2. refuse keys outside ``incoming/{model}/{file}.json`` (the record and report go under the model folder,
   or ``_invalid`` without one); HEAD the object and refuse it over ``max_upload_bytes`` without reading
   it; read it (pinned to the event's VersionId, or its ETag) with the same cap;
3. validate it with the scorer (structure, sha256, test vectors re-scored) and check that
   ``metadata.name`` is the model folder of the key; build the version record, small whatever the model
   (feature and class lists over :data:`MAX_INLINE_SCHEMA_BYTES` stay in the document only);
4. reserve the version number (conditional counter + upload record, one transaction; a retry reuses it);
5. write the exact validated bytes to ``models/{model}/{version}.json`` with ``If-None-Match: *`` (the
   object's metadata names the upload, so cleaning up only ever removes this upload's own write);
6. put the version record (``attribute_not_exists``): from here on the upload *is* published; move
   ``latest`` forward (revision + 1) unless approval is required (``RequireApproval``: the record is
   ``pending`` and ``latest`` stays until ``POST /models/{name}/versions/{version}/approve``), write the
   report and close the upload record. **A version whose input schema differs from the one ``latest``
   points to** (:mod:`.compat`: a feature added, removed, renamed, reordered, its kind or category set
   changed) is published, but ``latest`` stays: the record keeps ``schema_changes`` (its
   ``version.published`` event says ``latest_moved: false``), the report names every change, and
   moving ``latest`` takes an explicit alias move (``PUT /models/{name}/aliases/latest``,
   ``modelsync alias set``); approving such a version does not move ``latest`` either.

Transient AWS errors (throttling, 5xx, timeouts; after botocore's own retries) repeat the attempt from
step 1 with backoff within one invocation's budget (:class:`RetryPolicy`): every step is safe to repeat,
so a duplicate S3 event, a retry or a crash ends with the same single version. When the budget runs out,
or on a permanent error (``ValidationException``, a conflict), the upload is rejected: its document, if
written, is deleted, and its reserved number is given back unless a later upload reserved one since; then
the report says ``burnt_version`` (a gap in the version numbers, never a document without a version).
Only when even the rejection cannot be recorded (AWS unreachable throughout), or the version record was
already written (the upload is published; the rest completes on retry), does the invocation raise, so
Lambda retries it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

import scorer

from . import compat, layout
from .config import Settings
from .errors import Conflict, ModelUnreadable, ServiceError
from .registry import (
    STATUS_APPROVED,
    STATUS_PENDING,
    STATUS_PUBLISHED,
    STATUS_REJECTED,
    Registry,
    now_iso,
)
from .store import load_published, schema_of

log = logging.getLogger(__name__)

MAX_RECORDED_PROBLEMS = 100  # keeps the upload record (and its event) far below DynamoDB's 400 KB item limit
MAX_PROBLEM_CHARS = 1000  # per pointer and per message in the upload record (the report keeps them whole)
MAX_INLINE_SCHEMA_BYTES = 32 * 1024  # feature + class lists kept on the version record up to this size
MAX_INVOCATIONS = 3  # Lambda's first invocation + its 2 asynchronous retries
TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "ThrottledException",
    "RequestLimitExceeded", "TooManyRequestsException", "SlowDown", "InternalServerError", "InternalError",
    "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "TransactionInProgressException",
    "TransactionConflictException",
})

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long one invocation repeats an attempt after transient AWS errors, before rejecting."""

    budget_seconds: float = 60.0
    first_delay: float = 0.2
    max_delay: float = 5.0
    cleanup_seconds: float = 15.0  # extra time to record a rejection once the budget is spent

    @classmethod
    def within(cls, remaining_seconds: float, margin: float = 10.0) -> RetryPolicy:
        """A policy that leaves ``margin`` seconds of the invocation after cleaning up."""
        usable = max(0.0, remaining_seconds - margin)
        cleanup = min(cls.cleanup_seconds, usable / 4)
        return cls(budget_seconds=usable - cleanup, cleanup_seconds=cleanup)


@dataclass(frozen=True)
class Upload:
    """One S3 object the notification named (key already URL-decoded)."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int | None = None

    @property
    def id(self) -> str:
        return layout.upload_id(self.bucket, self.key, self.etag)

    def source(self) -> dict[str, Any]:
        return {"source_bucket": self.bucket, "source_key": self.key, "source_etag": self.etag.strip('"'),
                "source_version_id": self.version_id}


@dataclass
class PublishOutcome:
    status: str  # "published" | "rejected" | "ignored"
    model: str | None
    upload_id: str
    version: int | None = None
    document_key: str | None = None
    sha256: str | None = None
    latest_moved: bool = False
    pending_approval: bool = False
    duplicate: bool = False
    report_key: str | None = None
    problems: list[dict[str, str]] = field(default_factory=list)
    burnt_version: int | None = None
    schema_changes: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Rejected(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p or '/'}: {m}" for p, m in problems))
        self.problems = problems


@dataclass
class _Progress:
    """What this invocation knows of the upload (kept across its retries: validation runs once)."""

    model: str
    claimed: bool = False
    version: int | None = None
    raw: bytes | None = None
    loaded: scorer.Model | None = None


def _problems(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"pointer": p, "message": m} for p, m in pairs]


def _recorded(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The problems the upload record (and its event) carries: the first ones, each bounded."""
    return [{"pointer": p[:MAX_PROBLEM_CHARS], "message": m[:MAX_PROBLEM_CHARS]}
            for p, m in pairs[:MAX_RECORDED_PROBLEMS]]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """Worth repeating: throttling, a 5xx, a timeout or a dropped connection."""
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return _error_code(exc) in TRANSIENT_CODES or status >= 500
    return isinstance(exc, (HTTPClientError, BotoConnectionError))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{_error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


_FAILURES = (ClientError, BotoCoreError, ServiceError)


def _retrying(call: Callable[[], T], deadline: float, policy: RetryPolicy, clock: Callable[[], float],
              sleep: Callable[[float], None], what: str) -> T:
    """``call()``, repeated after transient errors while ``deadline`` allows (jittered backoff)."""
    delay = policy.first_delay
    while True:
        try:
            return call()
        except _FAILURES as exc:
            if not is_transient(exc) or clock() + delay > deadline:
                raise
            log.warning("%s: %s; retrying in %.2f s", what, _describe(exc), delay)
        sleep(delay * (0.5 + random.random() / 2))
        delay = min(2 * delay, policy.max_delay)


def publish_upload(s3: Any, registry: Registry, settings: Settings, upload: Upload,
                   retry: RetryPolicy | None = None, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> PublishOutcome:
    """Publish (or reject) one upload: a version, or a report + rejected record (see the module doc).

    Raises only when the rejection itself cannot be recorded, or after the version record was written
    (so Lambda retries the invocation, which then completes or rejects it)."""
    policy = retry or RetryPolicy()
    uid = upload.id
    if upload.bucket != settings.models_bucket:
        log.warning("ignoring an upload in bucket %s (models bucket is %s)", upload.bucket,
                    settings.models_bucket)
        return PublishOutcome("ignored", None, uid)
    progress = _Progress(layout.upload_folder(upload.key))
    deadline = clock() + policy.budget_seconds
    try:
        return _retrying(lambda: _attempt(s3, registry, settings, upload, progress), deadline, policy,
                         clock, sleep, f"publishing {upload.key}")
    except _Rejected as rej:
        problems, failure = rej.problems, None
    except _FAILURES as exc:
        log.error("publishing %s failed: %s", upload.key, _describe(exc))
        problems = [("", f"publishing failed: {_describe(exc)}"
                         + (" (still failing after retries)" if is_transient(exc) else ""))]
        failure = exc
    return _retrying(lambda: _reject(s3, registry, settings, upload, progress, problems, failure),
                     deadline + policy.cleanup_seconds, policy, clock, sleep, f"rejecting {upload.key}")


def _attempt(s3: Any, registry: Registry, settings: Settings, upload: Upload,
             progress: _Progress) -> PublishOutcome:
    """One pass over the steps; safe to repeat (a repeat reuses the claim, validation and number)."""
    model, uid = progress.model, upload.id
    if not progress.claimed:
        created, record = registry.claim_upload(model, uid, upload.source())
        progress.claimed = True
        if not created and record.get("status") in (STATUS_PUBLISHED, STATUS_REJECTED):
            log.info("upload %s of %s already %s", upload.key, model, record["status"])
            return _outcome_from_record(model, uid, record, duplicate=True)
        progress.version = int(record["version"]) if record.get("version") else None
        invocations = int(record.get("invocations") or 1)
        if invocations > MAX_INVOCATIONS and not _published_by(registry, model, uid, progress.version):
            raise _Rejected([("", f"the upload did not finish in {MAX_INVOCATIONS} invocations (the "
                                  "function crashed or timed out each time)")])
    problem = layout.upload_key_problem(upload.key)
    if problem is not None:
        raise _Rejected([("", problem)])
    if progress.loaded is None or progress.raw is None:
        raw = _read_capped(s3, upload, settings.max_upload_bytes)
        progress.loaded, progress.raw = _validate(raw, model, settings.model_limits), raw
    raw, loaded = progress.raw, progress.loaded
    sha = str(loaded.sha256)
    summary = summarize(loaded)
    progress.version = version = registry.reserve_version(model, uid)
    key = layout.document_key(model, version)
    _write_document(s3, settings.models_bucket, key, raw, sha, model, version, uid)
    compared_with, changes = _schema_check(s3, registry, settings, model, version, loaded,
                                           summary["input_schema_sha256"])
    held = {"schema_changes": changes[:compat.MAX_CHANGES], "schema_change_count": len(changes),
            "compared_with": compared_with} if changes else {}
    registry.put_version({
        "model": model, "version": version, "sha256": sha, "size": len(raw), "document_key": key,
        "format_version": loaded.format_version, "created_at": now_iso(), "upload_id": uid,
        "status": STATUS_PENDING if settings.require_approval else STATUS_APPROVED,
        **summary, **held, **upload.source(),
    })
    moved = None if settings.require_approval or changes else registry.advance_latest(model, version)
    extra: dict[str, Any] = {"latest_moved": moved is not None}
    if changes:
        extra.update(schema_changes=changes, latest_version=compared_with, message=(
            f"the input schema differs from version {compared_with} (which latest points to): "
            f"{compat.describe(changes)}. Version {version} is published but latest stays at "
            f"{compared_with}; move it explicitly with PUT /models/{model}/aliases/latest or "
            f"`modelsync alias set {model} latest {version}` once clients send the new features."))
    report = _write_report(s3, settings, model, uid, upload, STATUS_PUBLISHED, version=version,
                           document_key=key, sha256=sha, **extra)
    registry.finish_upload(model, uid, STATUS_PUBLISHED, {
        "version": version, "document_key": key, "sha256": sha, "report_key": report})
    log.info("published %s version %d (%s)%s", model, version, sha[:12],
             " - pending approval" if settings.require_approval else
             f" - latest held at {compared_with}: {compat.describe(changes)}" if changes else
             "" if moved else " - latest not moved")
    return PublishOutcome(STATUS_PUBLISHED, model, uid, version=version, document_key=key, sha256=sha,
                          latest_moved=moved is not None, pending_approval=settings.require_approval,
                          report_key=report, schema_changes=changes)


def _schema_check(s3: Any, registry: Registry, settings: Settings, model: str, version: int,
                  loaded: scorer.Model, fingerprint: str) -> tuple[int | None, list[dict[str, str]]]:
    """(version latest points to, schema changes from it to the new one); no changes when latest is
    absent or is this version. The previous document is read only when the fingerprints differ."""
    latest = registry.get_alias(model, layout.LATEST, consistent=True)
    if latest is None or int(latest["version"]) == version:
        return None, []
    current = int(latest["version"])
    record = registry.get_version(model, current, consistent=True)
    if record is None or record.get("input_schema_sha256") == fingerprint:
        return current, []
    try:
        before = compat.input_schema(load_published(s3, settings.models_bucket, record))
    except ModelUnreadable:
        # the previous document is unreadable: compare what its record keeps (names and kinds)
        if record.get("schema_in_document"):
            return current, []
        before = [dict(f) for f in record.get("features") or []]
        return current, compat.schema_changes(before, [{k: f[k] for k in ("name", "kind")}
                                                       for f in compat.input_schema(loaded)])
    return current, compat.schema_changes(before, compat.input_schema(loaded))


def _published_by(registry: Registry, model: str, uid: str, version: int | None) -> bool:
    """True when ``version`` has a version record written by this upload (it is published)."""
    if version is None:
        return False
    record = registry.get_version(model, version, consistent=True)
    return record is not None and record.get("upload_id") == uid


def _reject(s3: Any, registry: Registry, settings: Settings, upload: Upload, progress: _Progress,
            problems: list[tuple[str, str]], failure: BaseException | None) -> PublishOutcome:
    """Undo what the upload left (its document, its number), then write the report and the rejection."""
    model, uid = progress.model, upload.id
    burnt = None
    if progress.version is not None:
        if _published_by(registry, model, uid, progress.version):
            # published (the version record and its event exist): a retried invocation completes it
            raise failure or Conflict(f"upload {uid} of {model} is already published")
        if _give_back(s3, registry, settings, model, uid, progress.version):
            progress.version = None  # released: a repeat of this rejection must not try again
        else:
            burnt = progress.version
            problems = [*problems, ("", f"version number {burnt} was reserved for this upload and stays "
                                        "unused (a later upload reserved the next number, or another "
                                        f"object is at {layout.document_key(model, burnt)})")]
    extra: dict[str, Any] = {"burnt_version": burnt} if burnt is not None else {}
    if failure is not None:
        extra["failure"] = _describe(failure)
    report = _write_report(s3, settings, model, uid, upload, STATUS_REJECTED, problems=problems, **extra)
    registry.finish_upload(model, uid, STATUS_REJECTED, {
        "problems": _recorded(problems), "problem_count": len(problems), "report_key": report,
        "burnt_version": burnt})
    log.info("rejected upload %s of %s: %d problem(s)", upload.key, model, len(problems))
    return PublishOutcome(STATUS_REJECTED, model, uid, report_key=report, problems=_problems(problems),
                          burnt_version=burnt)


def _give_back(s3: Any, registry: Registry, settings: Settings, model: str, uid: str, version: int) -> bool:
    """Remove this upload's document at ``version`` (if it wrote one) and release the number: True when
    released. Someone else's object at that key is left alone (and the number stays used)."""
    key = layout.document_key(model, version)
    try:
        head = s3.head_object(Bucket=settings.models_bucket, Key=key)
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        if (head.get("Metadata") or {}).get("upload") != uid:
            return False
        s3.delete_object(Bucket=settings.models_bucket, Key=key)
        log.info("removed %s written by the failed upload %s", key, uid)
    return registry.release_version(model, uid, version)


def _outcome_from_record(model: str, uid: str, record: Mapping[str, Any], duplicate: bool) -> PublishOutcome:
    return PublishOutcome(
        status=str(record["status"]), model=model, upload_id=uid,
        version=(int(record["version"]) if record.get("version") and record["status"] == STATUS_PUBLISHED
                 else None),
        document_key=record.get("document_key"), sha256=record.get("sha256"), duplicate=duplicate,
        report_key=record.get("report_key"), problems=list(record.get("problems") or []),
        burnt_version=record.get("burnt_version"))


def _read_capped(s3: Any, upload: Upload, limit: int) -> bytes:
    pin: dict[str, str] = {"VersionId": upload.version_id} if upload.version_id else {"IfMatch": upload.etag}
    try:
        head = s3.head_object(Bucket=upload.bucket, Key=upload.key, **pin)
    except ClientError as exc:
        code = _error_code(exc)
        if code in ("404", "NoSuchKey", "NoSuchVersion"):
            raise _Rejected([("", "the uploaded object no longer exists")]) from None
        if code in ("412", "PreconditionFailed"):
            raise _Rejected([("", "the object was replaced after this upload; the newer upload is "
                                  "processed on its own")]) from None
        raise
    size = int(head.get("ContentLength", 0))
    if size > limit:
        raise _Rejected([("", f"document is {size} bytes, over the upload limit of {limit} bytes")])
    if size == 0:
        raise _Rejected([("", "document is empty")])
    body = s3.get_object(Bucket=upload.bucket, Key=upload.key, **pin)["Body"]
    try:
        raw = body.read(limit + 1)
    finally:
        body.close()
    if len(raw) > limit:
        raise _Rejected([("", f"document is over the upload limit of {limit} bytes")])
    return bytes(raw)


def _validate(raw: bytes, model: str, limits: scorer.Limits) -> scorer.Model:
    try:
        loaded = scorer.validate_model(raw, limits=limits)
    except scorer.InvalidModel as exc:
        raise _Rejected(list(exc.problems) or [("", str(exc))]) from None
    except Exception:
        log.exception("validating an upload of %s crashed", model)
        raise _Rejected([("", "the document could not be validated "
                              "(internal error while checking it)")]) from None
    name = (loaded.document.get("metadata") or {}).get("name")
    if name != model:
        raise _Rejected([("/metadata/name", f"is {name!r}, but the document was uploaded under "
                                            f"incoming/{model}/: the folder names the model")])
    return loaded


def summarize(model: scorer.Model) -> dict[str, Any]:
    """What the registry keeps about a version's inputs and outputs (API metadata without loading it).

    The feature and class lists are kept only up to :data:`MAX_INLINE_SCHEMA_BYTES` (a version record
    must stay under DynamoDB's 400 KB item limit whatever the model); larger ones are read from the
    document (``schema_in_document``, :func:`modelsync.service.store.version_schema`)."""
    doc = model.document
    features, classes = schema_of(model)
    summary: dict[str, Any] = {
        "model_type": str((doc.get("estimator") or {}).get("type", "")),
        "task": model.task,
        "methods": model.methods,
        "predict_datatype": _predict_datatype(model),
        "feature_count": len(features),
        "input_schema_sha256": compat.schema_fingerprint(compat.input_schema(model)),
    }
    if classes is not None:
        summary["class_count"] = len(classes)
    lists = {"features": features, **({"classes": classes} if classes is not None else {})}
    if len(json.dumps(lists)) <= MAX_INLINE_SCHEMA_BYTES:
        summary.update(lists)
    else:
        summary["schema_in_document"] = True
    return summary


def _predict_datatype(model: scorer.Model) -> str:
    """The V2 datatype of ``predict``: from the classes, else from predicting the first test vector."""
    sample = model.classes
    if sample is None:
        try:
            rows = (model.document.get("test_vectors") or {}).get("inputs") or []
            sample = model.predict(rows[:1]) if rows and model.has("predict") else None
        except (scorer.ModelsyncScorerError, ValueError):
            sample = None
    return datatype_of(np.asarray(sample)) if sample is not None else "FP64"


def datatype_of(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    if kind == "O" and arr.size and all(isinstance(v, (bool, np.bool_)) for v in arr.ravel().tolist()):
        return "BOOL"
    if kind == "O" and arr.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                        for v in arr.ravel().tolist()):
        return "INT64"
    return "BYTES"


def _write_document(s3: Any, bucket: str, key: str, raw: bytes, sha: str, model: str, version: int,
                    uid: str) -> None:
    """Write once: ``If-None-Match: *``. A retry finding its own earlier write (same sha256) is fine."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=raw, IfNoneMatch="*", ContentType="application/json",
                      Metadata={"sha256": sha, "model": model, "version": str(version), "upload": uid})
    except ClientError as exc:
        if _error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise
        meta = s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}
        if meta.get("sha256") != sha or meta.get("upload", uid) != uid:
            raise Conflict(f"{key} already exists with other content") from None


def _write_report(s3: Any, settings: Settings, model: str, uid: str, upload: Upload, status: str,
                  problems: list[tuple[str, str]] | None = None, **extra: Any) -> str:
    key = layout.report_key(model, uid)
    report = {"status": status, "model": model, "upload_id": uid,
              "source": {"bucket": upload.bucket, "key": upload.key, "etag": upload.etag.strip('"'),
                         "version_id": upload.version_id},
              "problems": _problems(problems or []), "completed_at": now_iso(), **extra}
    s3.put_object(Bucket=settings.models_bucket, Key=key, ContentType="application/json",
                  Body=json.dumps(report, indent=2, sort_keys=True).encode())
    return key
