"""Registry changes -> model events on SNS (one message per meaningful change).

* ``version.published``: a version item was inserted. Detail: the manifest (name, version, sha256,
  size, format_version, document_key, created_at, model_type, task) and ``status`` (``pending`` when
  the deployment requires approval, else ``approved``), ``latest_moved`` (whether publish moves
  ``latest`` to it: false when pending approval, or when its input schema differs from the version
  ``latest`` points to; then ``schema_changes`` lists each change as ``{"pointer", "message"}`` and
  ``compared_with`` names that version).
* ``version.approved``: a pending version was approved. Detail: name, version, sha256, approved_at,
  approved_by (the ``alias.moved`` of ``latest`` follows).
* ``alias.moved``: an alias was created or changed (its revision grew): a move, a canary set, changed,
  promoted or rolled back. Detail: alias, old_version, new_version, revision, updated_by, action
  (put | promote | rollback | publish | approve); when the alias has or had a canary, also canary and
  old_canary (``{"version", "weight"}`` or null). ``new_version`` is the base version.
* ``alias.deleted``: an alias was tombstoned. Detail: alias, old_version, revision.
* ``upload.rejected``: an upload item became ``rejected``. Detail: upload_id, source key and ETag,
  problems (pointer + message), problem_count, report_key, burnt_version (the version number the failed
  attempt used up, or null).

Other changes (the model counter, uploads in progress or published, device telemetry) produce nothing:
the version item covers a publish. Telemetry items are also kept away from Notify by the event source's
FilterCriteria in template.yaml; the check here covers emulators that do not apply filters.
Every message carries the attributes ``event_type`` and ``model`` so subscriptions can filter on them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelsync_protocol import ALIAS_MOVED, VERSION_PUBLISHED

from .registry import (
    KIND_ALIAS,
    KIND_TELEMETRY,
    KIND_UPLOAD,
    KIND_VERSION,
    STATUS_APPROVED,
    STATUS_PENDING,
    STATUS_REJECTED,
    plain,
    version_status,
)

VERSION_APPROVED = "version.approved"
ALIAS_DELETED = "alias.deleted"
UPLOAD_REJECTED = "upload.rejected"
SCHEMA = "modelsync.event/1"


class MalformedChange(ValueError):
    """A registry item of a known kind lacks what its event needs (a bug or manual edit): not retried into
    success, so the stream's bisect + retry + on-failure destination isolate it."""


@dataclass(frozen=True)
class ModelEvent:
    event_type: str
    model: str
    detail: dict[str, Any]
    occurred_at: str | None = None

    def message(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "event_type": self.event_type, "model": self.model,
                "occurred_at": self.occurred_at, "detail": self.detail}

    def attributes(self) -> dict[str, dict[str, str]]:
        return {"event_type": {"DataType": "String", "StringValue": self.event_type},
                "model": {"DataType": "String", "StringValue": self.model}}


def _need(item: Mapping[str, Any], *fields: str) -> None:
    missing = [f for f in fields if item.get(f) is None]
    if missing:
        raise MalformedChange(f"{item.get('kind')} item {item.get('pk')}/{item.get('sk')} lacks "
                              + ", ".join(missing))


def event_for_change(event_name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
                     ) -> ModelEvent | None:
    """The model event of one stream record (INSERT / MODIFY / REMOVE with both images), or None."""
    old = plain(dict(old or {}))
    new = plain(dict(new or {}))
    item = new or old
    kind = item.get("kind")
    if kind == KIND_TELEMETRY:
        return None
    if kind == KIND_VERSION and event_name == "INSERT":
        _need(new, "model", "version", "sha256", "size", "document_key", "format_version")
        detail = {k: new.get(k) for k in ("version", "sha256", "size", "format_version", "document_key",
                                           "created_at", "model_type", "task")}
        detail["status"] = version_status(new)
        changes = new.get("schema_changes") or []
        detail["latest_moved"] = detail["status"] == STATUS_APPROVED and not changes
        if changes:
            detail.update(schema_changes=changes, compared_with=_int_or_none(new.get("compared_with")))
        return ModelEvent(VERSION_PUBLISHED, str(new["model"]), {"name": new["model"], **detail},
                          new.get("created_at"))
    if (kind == KIND_VERSION and event_name == "MODIFY" and old.get("status") == STATUS_PENDING
            and new.get("status") == STATUS_APPROVED):
        _need(new, "model", "version")
        return ModelEvent(VERSION_APPROVED, str(new["model"]), {
            "name": new["model"], "version": new["version"], "sha256": new.get("sha256"),
            "approved_at": new.get("approved_at"), "approved_by": new.get("approved_by")},
            new.get("approved_at"))
    if kind == KIND_ALIAS:
        _need(item, "model", "alias")
        old_version = None if old.get("deleted") else old.get("version")
        if new.get("deleted"):
            if old.get("deleted"):
                return None
            return ModelEvent(ALIAS_DELETED, str(item["model"]), {
                "alias": item["alias"], "old_version": old_version, "revision": new.get("revision")},
                new.get("updated_at"))
        old_canary = None if old.get("deleted") else old.get("canary")
        if event_name in ("INSERT", "MODIFY") and (new.get("version") != old_version
                                                   or new.get("revision") != old.get("revision")):
            _need(new, "version", "revision")
            detail = {"alias": new["alias"], "old_version": old_version, "new_version": new["version"],
                      "revision": new["revision"], "updated_by": new.get("updated_by")}
            if new.get("action"):
                detail["action"] = new["action"]
            if new.get("canary") or old_canary:
                detail.update(canary=new.get("canary"), old_canary=old_canary)
            return ModelEvent(ALIAS_MOVED, str(new["model"]), detail, new.get("updated_at"))
        return None
    if kind == KIND_UPLOAD and new.get("status") == STATUS_REJECTED and old.get("status") != STATUS_REJECTED:
        _need(new, "model", "upload_id")
        return ModelEvent(UPLOAD_REJECTED, str(new["model"]), {
            "upload_id": new["upload_id"], "source_key": new.get("source_key"),
            "source_etag": new.get("source_etag"), "problems": new.get("problems") or [],
            "problem_count": new.get("problem_count", len(new.get("problems") or [])),
            "report_key": new.get("report_key"),
            "burnt_version": _int_or_none(new.get("burnt_version"))}, new.get("completed_at"))
    return None


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)  # DynamoDB numbers arrive as Decimal


def publish_event(sns: Any, topic_arn: str, event: ModelEvent) -> str:
    """Send one event; returns the SNS message id."""
    resp = sns.publish(TopicArn=topic_arn, Message=json.dumps(event.message(), sort_keys=True),
                       Subject=f"modelsync {event.event_type} {event.model}"[:100],
                       MessageAttributes=event.attributes())
    return str(resp["MessageId"])
