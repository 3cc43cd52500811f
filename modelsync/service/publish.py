"""Publish an upload: ``incoming/{model}/...`` -> validated -> ``models/{model}/{version}.json`` + registry.

Every step is safe to repeat, so a duplicate S3 event (or a retry after a crash) ends with the same
single version:

1. claim the upload record ``UPLOAD#{id}`` (id = hash of bucket, key, ETag) with ``attribute_not_exists``;
   an upload already published or rejected returns its recorded outcome;
2. HEAD the object and refuse it over ``max_upload_bytes`` without reading it; read it (pinned to the
   event's VersionId, or its ETag) with the same cap;
3. validate it with the scorer (structure, sha256, test vectors re-scored) and check that
   ``metadata.name`` is the model folder of the key;
4. reserve the version number (conditional counter + upload record, one transaction; a retry reuses it);
5. write the exact validated bytes to ``models/{model}/{version}.json`` with ``If-None-Match: *``;
6. put the version record (``attribute_not_exists``), move ``latest`` forward (revision + 1) unless
   approval is required (``RequireApproval``: the record is ``pending`` and ``latest`` stays until
   ``POST /models/{name}/versions/{version}/approve``), write the report and close the upload record.

A rejected upload writes its report (every problem: JSON pointer + message) and closes the upload record
as rejected; no version number is consumed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

import scorer

from . import layout
from .config import Settings
from .errors import Conflict
from .registry import (
    STATUS_APPROVED,
    STATUS_PENDING,
    STATUS_PUBLISHED,
    STATUS_REJECTED,
    Registry,
    now_iso,
)

log = logging.getLogger(__name__)

MAX_RECORDED_PROBLEMS = 100  # keeps the upload record far below DynamoDB's 400 KB item limit


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Rejected(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p or '/'}: {m}" for p, m in problems))
        self.problems = problems


def _problems(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"pointer": p, "message": m} for p, m in pairs]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def publish_upload(s3: Any, registry: Registry, settings: Settings, upload: Upload) -> PublishOutcome:
    """Publish (or reject) one upload. Raises only for infrastructure errors (so Lambda retries)."""
    uid = upload.id
    if upload.bucket != settings.models_bucket:
        log.warning("ignoring an upload in bucket %s (models bucket is %s)", upload.bucket,
                    settings.models_bucket)
        return PublishOutcome("ignored", None, uid)
    model = layout.model_of_upload(upload.key)
    if model is None:
        problems = [("", f"key {upload.key!r} does not follow incoming/{{model}}/{{file}} with a valid model "
                         "name (letters, digits, '.', '_', '-')")]
        report = _write_report(s3, settings, "_invalid", uid, upload, STATUS_REJECTED, problems=problems)
        log.warning("rejected upload %s: %s", upload.key, problems[0][1])
        return PublishOutcome(STATUS_REJECTED, None, uid, report_key=report, problems=_problems(problems))

    created, record = registry.claim_upload(model, uid, upload.source())
    if not created and record.get("status") in (STATUS_PUBLISHED, STATUS_REJECTED):
        log.info("upload %s of %s already %s", upload.key, model, record["status"])
        return _outcome_from_record(model, uid, record, duplicate=True)

    try:
        raw = _read_capped(s3, upload, settings.max_upload_bytes)
        loaded = _validate(raw, model, settings.model_limits)
    except _Rejected as rej:
        problems = rej.problems
        report = _write_report(s3, settings, model, uid, upload, STATUS_REJECTED, problems=problems)
        recorded = problems[:MAX_RECORDED_PROBLEMS]
        registry.finish_upload(model, uid, STATUS_REJECTED, {
            "problems": _problems(recorded), "problem_count": len(problems), "report_key": report})
        log.info("rejected upload %s of %s: %d problem(s)", upload.key, model, len(problems))
        return PublishOutcome(STATUS_REJECTED, model, uid, report_key=report, problems=_problems(problems))

    version = registry.reserve_version(model, uid)
    key = layout.document_key(model, version)
    sha = str(loaded.sha256)
    _write_document(s3, settings.models_bucket, key, raw, sha, model, version)
    registry.put_version({
        "model": model, "version": version, "sha256": sha, "size": len(raw), "document_key": key,
        "format_version": loaded.format_version, "created_at": now_iso(), "upload_id": uid,
        "status": STATUS_PENDING if settings.require_approval else STATUS_APPROVED,
        **summarize(loaded), **upload.source(),
    })
    moved = None if settings.require_approval else registry.advance_latest(model, version)
    report = _write_report(s3, settings, model, uid, upload, STATUS_PUBLISHED, version=version,
                           document_key=key, sha256=sha)
    registry.finish_upload(model, uid, STATUS_PUBLISHED, {
        "version": version, "document_key": key, "sha256": sha, "report_key": report})
    log.info("published %s version %d (%s)%s", model, version, sha[:12],
             " - pending approval" if settings.require_approval else "" if moved else " - latest not moved")
    return PublishOutcome(STATUS_PUBLISHED, model, uid, version=version, document_key=key, sha256=sha,
                          latest_moved=moved is not None, pending_approval=settings.require_approval,
                          report_key=report)


def _outcome_from_record(model: str, uid: str, record: Mapping[str, Any], duplicate: bool) -> PublishOutcome:
    return PublishOutcome(
        status=str(record["status"]), model=model, upload_id=uid,
        version=(int(record["version"]) if record.get("version") and record["status"] == STATUS_PUBLISHED
                 else None),
        document_key=record.get("document_key"), sha256=record.get("sha256"), duplicate=duplicate,
        report_key=record.get("report_key"), problems=list(record.get("problems") or []))


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
    """What the registry keeps about a version's inputs and outputs (API metadata without loading it)."""
    doc = model.document
    classes = model.classes
    summary: dict[str, Any] = {
        "model_type": str((doc.get("estimator") or {}).get("type", "")),
        "task": model.task,
        "methods": model.methods,
        "features": [{"name": f.name, "kind": f.kind} for f in model.features],
        "predict_datatype": _predict_datatype(model),
    }
    if classes is not None and np.ndim(classes) == 1:
        summary["classes"] = [c.item() if isinstance(c, np.generic) else c for c in classes.tolist()]
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


def _write_document(s3: Any, bucket: str, key: str, raw: bytes, sha: str, model: str, version: int) -> None:
    """Write once: ``If-None-Match: *``. A retry finding its own earlier write (same sha256) is fine."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=raw, IfNoneMatch="*", ContentType="application/json",
                      Metadata={"sha256": sha, "model": model, "version": str(version)})
    except ClientError as exc:
        if _error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise
        existing = s3.head_object(Bucket=bucket, Key=key)
        if (existing.get("Metadata") or {}).get("sha256") != sha:
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
