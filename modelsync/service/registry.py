"""The model registry: one DynamoDB table (``pk``/``sk`` strings), written only with conditional writes.

Items (``kind`` tells them apart; the stream handler relies on it):

=====================  ===========================  =============================================
pk                     sk                           item
=====================  ===========================  =============================================
``MODELS``             ``MODEL#{name}``             model: ``version_counter`` (last version assigned)
``MODEL#{name}``       ``VERSION#{v:010d}``         version: immutable record of a published version
``MODEL#{name}``       ``ALIAS#{alias}``            alias: ``version`` + ``revision`` (only grows),
                                                    optional ``canary`` {version, weight}, ``history``
``MODEL#{name}``       ``UPLOAD#{upload id}``       upload: outcome of one upload (processing ->
                                                    published | rejected, with the problems)
``TELEMETRY#{name}``   ``TELEMETRY#{device}#{id}``  telemetry: one device batch (written once; expires
                                                    through the table's TTL attribute ``expires_at``)
=====================  ===========================  =============================================

Nothing is ever deleted (the functions have no DeleteItem permission): a deleted alias is a tombstone
(``deleted: true``, no version) whose revision keeps growing if it is set again. Only telemetry expires
(TTL). Telemetry lives in its own partition per model so that the Score function's ``PutItem`` can be
limited to it (IAM ``dynamodb:LeadingKeys``) and so that device traffic never touches a model's partition.

A version is ``pending`` (``RequireApproval``) or ``approved`` (items without ``status`` are approved);
aliases only ever point at approved versions.

Every alias change (put, promote, rollback, publish, approve) reads the item and writes the new state
with ``revision + 1`` conditionally on the revision it read, so concurrent moves serialise: with an
``If-Match`` the loser gets 412, without one it reads again and re-applies its change.

Version numbers come from the per-model counter, moved with a conditional UpdateItem (expected value ->
value + 1) in the same transaction that writes the number onto the upload record: two racing uploads get
two distinct consecutive numbers, and a retried upload reuses the number it reserved. An upload that fails
after reserving gives its number back (:meth:`Registry.release_version`) when no later upload reserved
one since; otherwise the number stays used up and the upload's report says so (``burnt_version``).

Items stay small whatever the model (DynamoDB refuses items over 400 KB): a version record keeps its
feature and class lists only when they are small, else only their counts (``schema_in_document``: the
lists are read from the version's document, see :func:`modelsync.service.publish.version_schema`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import random
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from . import alias_cache, rollout
from .errors import AliasNotFound, Conflict, PreconditionFailed, VersionNotFound
from .layout import LATEST

MODELS_PK = "MODELS"
KIND_MODEL = "model"
KIND_VERSION = "version"
KIND_ALIAS = "alias"
KIND_UPLOAD = "upload"
KIND_TELEMETRY = "telemetry"

STATUS_PROCESSING = "processing"
STATUS_PUBLISHED = "published"
STATUS_REJECTED = "rejected"
STATUS_PENDING = "pending"  # version status with RequireApproval, until approved
STATUS_APPROVED = "approved"

_SER = TypeSerializer()
_DESER = TypeDeserializer()
MAX_RESERVE_ATTEMPTS = 50
MAX_ALIAS_ATTEMPTS = 50
W = TypeVar("W", bound=Callable[..., Any])


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal, bytes)):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in the registry")


def plain(value: Any) -> Any:
    """DynamoDB values -> JSON-friendly Python (Decimal -> int when integral, else float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(_DESER.deserialize(v)) for k, v in item.items()}


def _values(**kw: Any) -> dict[str, Any]:
    return {f":{k}": _SER.serialize(_to_dynamo(v)) for k, v in kw.items()}


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def model_key(name: str) -> dict[str, str]:
    return {"pk": MODELS_PK, "sk": f"MODEL#{name}"}


def version_key(name: str, version: int) -> dict[str, str]:
    return {"pk": f"MODEL#{name}", "sk": f"VERSION#{int(version):010d}"}


def alias_key(name: str, alias: str) -> dict[str, str]:
    return {"pk": f"MODEL#{name}", "sk": f"ALIAS#{alias}"}


def upload_key(name: str, upload: str) -> dict[str, str]:
    return {"pk": f"MODEL#{name}", "sk": f"UPLOAD#{upload}"}


TELEMETRY_SK = "TELEMETRY#"


def telemetry_pk(name: str) -> str:
    return f"TELEMETRY#{name}"


def telemetry_key(name: str, device: str | None, batch_id: str) -> dict[str, str]:
    return {"pk": telemetry_pk(name), "sk": f"{TELEMETRY_SK}{device_segment(device)}#{batch_id}"}


def device_segment(device: str | None) -> str:
    """The device part of a telemetry sort key: ``#`` is not allowed in ids, so ids never collide with
    each other's prefixes; batches sent without a device id go under ``#`` itself."""
    return "#" if device is None else device


def version_status(record: Mapping[str, Any]) -> str:
    return str(record.get("status") or STATUS_APPROVED)


def _invalidates_alias(write: W) -> W:
    """An alias write: this process's alias cache forgets the alias (whatever the outcome), so this
    environment serves the change at once (others within the TTL: modelsync.service.alias_cache)."""

    @functools.wraps(write)
    def call(self: Registry, name: str, alias: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return write(self, name, alias, *args, **kwargs)
        finally:
            alias_cache.invalidate(self.table, name, alias)

    return call  # type: ignore[return-value]


class Registry:
    """Typed access to the registry table through a low-level DynamoDB client."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # -- plumbing -----------------------------------------------------------------------------------
    def _get(self, key: Mapping[str, str], consistent: bool = True) -> dict[str, Any] | None:
        resp = self.client.get_item(TableName=self.table, Key=serialize(key), ConsistentRead=consistent)
        item = resp.get("Item")
        return deserialize(item) if item else None

    def _pages(self, kwargs: dict[str, Any], limit: int | None) -> Iterator[dict[str, Any]]:
        """Items of a Query, following LastEvaluatedKey, stopping after ``limit`` items."""
        returned = 0
        while True:
            resp = self.client.query(**kwargs)
            for item in resp.get("Items", []):
                yield deserialize(item)
                returned += 1
                if limit and returned >= limit:
                    return
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _query(self, pk: str, sk_prefix: str, consistent: bool = False, limit: int | None = None,
               forward: bool = True) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)" if sk_prefix else "pk = :pk",
            "ExpressionAttributeValues": _values(pk=pk, prefix=sk_prefix) if sk_prefix else _values(pk=pk),
            "ConsistentRead": consistent,
            "ScanIndexForward": forward,
        }
        if limit:
            kwargs["Limit"] = limit
        yield from self._pages(kwargs, limit)

    # -- models -------------------------------------------------------------------------------------
    def get_model(self, name: str) -> dict[str, Any] | None:
        return self._get(model_key(name))

    def list_models(self) -> list[dict[str, Any]]:
        return list(self._query(MODELS_PK, "MODEL#"))

    def model_known(self, name: str) -> bool:
        """True when the model has a model item or any item under its partition (e.g. rejected uploads)."""
        if self.get_model(name) is not None:
            return True
        return next(self._query(f"MODEL#{name}", "", limit=1), None) is not None

    # -- uploads ------------------------------------------------------------------------------------
    def claim_upload(self, name: str, upload: str, source: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Create the upload record (status processing, ``invocations`` 1) unless it exists: (created,
        current record). A record still processing counts one more invocation (a Lambda retry after a
        crash or timeout), so Publish can give up on an upload that never finishes."""
        item = {**upload_key(name, upload), "kind": KIND_UPLOAD, "model": name, "upload_id": upload,
                "status": STATUS_PROCESSING, "received_at": now_iso(), "invocations": 1, **source}
        try:
            self.client.put_item(TableName=self.table, Item=serialize(item),
                                 ConditionExpression="attribute_not_exists(pk)")
            return True, item
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        try:
            resp = self.client.update_item(
                TableName=self.table, Key=serialize(upload_key(name, upload)),
                UpdateExpression="SET invocations = if_not_exists(invocations, :zero) + :one",
                ConditionExpression="attribute_exists(pk) AND #status = :processing",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(zero=0, one=1, processing=STATUS_PROCESSING),
                ReturnValues="ALL_NEW")
            return False, deserialize(resp["Attributes"])
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        existing = self._get(upload_key(name, upload))
        if existing is None:
            raise Conflict(f"upload {upload} of {name} could not be claimed (its record is missing)")
        return False, existing

    def get_upload(self, name: str, upload: str) -> dict[str, Any] | None:
        return self._get(upload_key(name, upload))

    def finish_upload(self, name: str, upload: str, status: str, fields: Mapping[str, Any]) -> None:
        """processing -> published | rejected, once (a repeat with the same status is a no-op).

        A rejection also creates the record when it is missing (an upload refused before its claim could
        be written), with what the ``upload.rejected`` event needs."""
        sets = ["#status = :status", "completed_at = :completed_at"]
        values: dict[str, Any] = {"status": status, "completed_at": now_iso(),
                                  "processing": STATUS_PROCESSING}
        names = {"#status": "status"}
        condition = "attribute_exists(pk) AND #status = :processing"
        if status == STATUS_REJECTED:
            sets += ["kind = :kind", "model = :model", "upload_id = :upload_id"]
            values.update(kind=KIND_UPLOAD, model=name, upload_id=upload)
            condition = "attribute_not_exists(pk) OR #status = :processing"
        for i, (k, v) in enumerate(fields.items()):
            if v is None:
                continue
            names[f"#f{i}"] = k
            sets.append(f"#f{i} = :f{i}")
            values[f"f{i}"] = v
        try:
            self.client.update_item(
                TableName=self.table, Key=serialize(upload_key(name, upload)),
                UpdateExpression="SET " + ", ".join(sets), ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=_values(**values))
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            current = self.get_upload(name, upload)
            if not current or current.get("status") != status:
                state = current.get("status") if current else None
                raise Conflict(f"upload {upload} of {name} is already {state}") from None

    # -- versions -----------------------------------------------------------------------------------
    def reserve_version(self, name: str, upload: str) -> int:
        """The version number of this upload: reserved once, atomically with the model's counter."""
        for attempt in range(MAX_RESERVE_ATTEMPTS):
            record = self.get_upload(name, upload)
            if record is None:
                raise Conflict(f"upload {upload} of {name} was not claimed")
            if record.get("version"):
                return int(record["version"])
            current = self.read_counter(name)
            nxt = current + 1
            counter_update: dict[str, Any] = {
                "TableName": self.table,
                "Key": serialize(model_key(name)),
                "UpdateExpression": "SET version_counter = :next, kind = :kind, model = :model, "
                                    "created_at = if_not_exists(created_at, :now), updated_at = :now",
                # 0: never reserved, or every number given back (release_version)
                "ConditionExpression": ("attribute_not_exists(version_counter) OR version_counter = :current"
                                        if current == 0 else "version_counter = :current"),
                "ExpressionAttributeValues": _values(next=nxt, kind=KIND_MODEL, model=name, now=now_iso(),
                                                     current=current),
            }
            upload_update = {
                "TableName": self.table,
                "Key": serialize(upload_key(name, upload)),
                "UpdateExpression": "SET version = :next",
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(version)",
                "ExpressionAttributeValues": _values(next=nxt),
            }
            try:
                self.client.transact_write_items(TransactItems=[{"Update": counter_update},
                                                                {"Update": upload_update}])
                return nxt
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
            # Lost a race for the counter (or another delivery reserved for this upload): read again.
            time.sleep(min(0.2, 0.005 * (2 ** min(attempt, 5))) * random.random())
        raise Conflict(f"could not reserve a version of {name} after {MAX_RESERVE_ATTEMPTS} attempts")

    def release_version(self, name: str, upload: str, version: int) -> bool:
        """Give back the number ``upload`` reserved, if no later upload reserved one since (counter still
        at ``version``): True when released (the number is not used up), False when it stays burnt.

        Call it only once nothing is left at the number (its document removed, no version record)."""
        try:
            self.client.transact_write_items(TransactItems=[
                {"Update": {"TableName": self.table, "Key": serialize(model_key(name)),
                            "UpdateExpression": "SET version_counter = :previous, updated_at = :now",
                            "ConditionExpression": "version_counter = :version",
                            "ExpressionAttributeValues": _values(previous=int(version) - 1,
                                                                 version=int(version), now=now_iso())}},
                {"Update": {"TableName": self.table, "Key": serialize(upload_key(name, upload)),
                            "UpdateExpression": "REMOVE version",
                            "ConditionExpression": "version = :version",
                            "ExpressionAttributeValues": _values(version=int(version))}},
            ])
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return False

    def read_counter(self, name: str) -> int:
        model = self.get_model(name)
        return int(model.get("version_counter") or 0) if model else 0

    def put_version(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write a version record once. A retry with the same content is fine; different content conflicts."""
        name, version = str(record["model"]), int(record["version"])
        item = {**version_key(name, version), "kind": KIND_VERSION, **record}
        try:
            self.client.put_item(TableName=self.table, Item=serialize(item),
                                 ConditionExpression="attribute_not_exists(pk)")
            return item
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        existing = self.get_version(name, version)
        if existing is None or existing.get("sha256") != record.get("sha256") or \
                existing.get("upload_id") != record.get("upload_id"):
            raise Conflict(f"version {version} of {name} already exists with other content")
        return existing

    def get_version(self, name: str, version: int, consistent: bool = False) -> dict[str, Any] | None:
        return self._get(version_key(name, version), consistent=consistent)

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        return list(self._query(f"MODEL#{name}", "VERSION#"))

    # -- aliases ------------------------------------------------------------------------------------
    def get_alias(self, name: str, alias: str, consistent: bool = False) -> dict[str, Any] | None:
        item = self._get(alias_key(name, alias), consistent=consistent)
        if item is None or item.get("deleted"):
            return None
        return item

    def list_aliases(self, name: str) -> dict[str, dict[str, Any]]:
        return {a["alias"]: a for a in self._query(f"MODEL#{name}", "ALIAS#") if not a.get("deleted")}

    def advance_latest(self, name: str, version: int, actor: str = "publish",
                       action: str = rollout.ACTION_PUBLISH) -> dict[str, Any] | None:
        """Point ``latest`` at ``version`` unless it already points at it or a newer one (uploads finishing
        out of order never move it backwards). Returns the new alias item, or None when nothing moved."""
        return self.transition_alias(name, LATEST, lambda cur: rollout.advance(cur, version, action),
                                     actor=actor, allow_create=True)

    def move_alias(self, name: str, alias: str, version: int, expected_revision: int | None = None,
                   actor: str = "api", canary: rollout.Canary | None = None) -> dict[str, Any]:
        """Set ``alias`` to ``version`` (with ``canary`` or none; revision + 1); with ``expected_revision``,
        only if it matches (0: only if the alias never existed)."""
        item = self.transition_alias(name, alias, lambda cur: rollout.put(cur, version, canary),
                                     expected_revision=expected_revision, actor=actor, allow_create=True)
        assert item is not None
        return item

    def promote_alias(self, name: str, alias: str, expected_revision: int | None = None,
                      actor: str = "api") -> dict[str, Any]:
        """The canary version becomes the alias version, the canary is removed (revision + 1)."""
        item = self.transition_alias(name, alias, lambda cur: rollout.promote(cur, alias),
                                     expected_revision=expected_revision, actor=actor)
        assert item is not None
        return item

    def rollback_alias(self, name: str, alias: str, expected_revision: int | None = None,
                       actor: str = "api") -> dict[str, Any]:
        """Remove the canary, or (without one) move back to the previous version (revision + 1)."""
        item = self.transition_alias(name, alias, lambda cur: rollout.rollback(cur, alias),
                                     expected_revision=expected_revision, actor=actor)
        assert item is not None
        return item

    @_invalidates_alias
    def transition_alias(self, name: str, alias: str,
                         change: Callable[[dict[str, Any] | None], rollout.AliasState | None],
                         expected_revision: int | None = None, actor: str = "api",
                         allow_create: bool = False) -> dict[str, Any] | None:
        """Read the alias, apply ``change`` (None: nothing to do), write it with revision + 1 conditionally
        on the revision read. ``change`` gets the live item, or None when the alias does not exist (then
        it is only called if ``allow_create``; otherwise the alias must exist: AliasNotFound)."""
        for attempt in range(MAX_ALIAS_ATTEMPTS):
            current = self._get(alias_key(name, alias))  # tombstones included: their revision continues
            seen = int(current.get("revision", 0)) if current else 0
            if expected_revision is not None and (
                    (expected_revision == 0 and current is not None)
                    or (expected_revision != 0 and (current is None or seen != expected_revision))):
                raise PreconditionFailed(self._revision_mismatch(name, alias, expected_revision))
            live = None if current is None or current.get("deleted") else current
            if live is None and not allow_create:
                raise AliasNotFound(f"model {name} has no alias {alias!r}")
            state = change(live)
            if state is None:
                return None
            values: dict[str, Any] = dict(v=int(state.version), rev=seen + 1, kind=KIND_ALIAS, model=name,
                                          alias=alias, now=now_iso(), actor=actor, action=state.action,
                                          history=list(state.history))
            sets = ("version = :v, revision = :rev, kind = :kind, model = :model, alias = :alias, "
                    "updated_at = :now, updated_by = :actor, #action = :action, history = :history")
            removes = ["deleted"]
            if state.canary is not None:
                sets += ", canary = :canary"
                values["canary"] = state.canary.as_item()
            else:
                removes.append("canary")
            if current is None:
                condition, names = "attribute_not_exists(pk)", {"#action": "action"}
            else:
                condition, names = "revision = :seen", {"#action": "action"}
                values["seen"] = seen
            try:
                resp = self.client.update_item(
                    TableName=self.table, Key=serialize(alias_key(name, alias)),
                    UpdateExpression=f"SET {sets} REMOVE {', '.join(removes)}",
                    ConditionExpression=condition, ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_values(**values), ReturnValues="ALL_NEW")
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
                if expected_revision is not None:
                    mismatch = self._revision_mismatch(name, alias, expected_revision)
                    raise PreconditionFailed(mismatch) from None
                # another writer moved the alias between our read and write: read again, re-apply
                time.sleep(min(0.2, 0.005 * (2 ** min(attempt, 5))) * random.random())
                continue
            return deserialize(resp["Attributes"])
        raise Conflict(f"could not move alias {alias!r} of {name} after {MAX_ALIAS_ATTEMPTS} attempts")

    @_invalidates_alias
    def delete_alias(self, name: str, alias: str, expected_revision: int | None = None,
                     actor: str = "api") -> dict[str, Any]:
        """Tombstone the alias (revision + 1). Only an alias that currently exists can be deleted."""
        current = self._get(alias_key(name, alias))
        if current is None or current.get("deleted"):
            raise AliasNotFound(f"model {name} has no alias {alias!r}")
        if expected_revision is not None and int(current.get("revision", 0)) != expected_revision:
            raise PreconditionFailed(self._revision_mismatch(name, alias, expected_revision))
        try:
            resp = self.client.update_item(
                TableName=self.table, Key=serialize(alias_key(name, alias)),
                UpdateExpression="SET deleted = :t, revision = revision + :one, updated_at = :now, "
                                 "updated_by = :actor, previous_version = :old REMOVE version, canary",
                ConditionExpression="attribute_exists(version) AND revision = :seen",
                ExpressionAttributeValues=_values(t=True, one=1, now=now_iso(), actor=actor,
                                                  old=int(current["version"]),
                                                  seen=int(current.get("revision", 0))),
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise PreconditionFailed(self._revision_mismatch(name, alias, expected_revision)) from None
            raise
        return deserialize(resp["Attributes"])

    # -- approval -----------------------------------------------------------------------------------
    def approve_version(self, name: str, version: int, actor: str = "api") -> tuple[dict[str, Any], bool]:
        """pending -> approved, once: (version record, True if this call approved it). An already approved
        version is returned as is (approving is idempotent)."""
        try:
            resp = self.client.update_item(
                TableName=self.table, Key=serialize(version_key(name, version)),
                UpdateExpression="SET #status = :approved, approved_at = :now, approved_by = :actor",
                ConditionExpression="attribute_exists(pk) AND #status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(approved=STATUS_APPROVED, pending=STATUS_PENDING,
                                                  now=now_iso(), actor=actor),
                ReturnValues="ALL_NEW")
            return deserialize(resp["Attributes"]), True
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        record = self._get(version_key(name, version))
        if record is None:
            raise VersionNotFound(f"model {name} has no version {version}")
        return record, False

    # -- telemetry ----------------------------------------------------------------------------------
    def put_telemetry(self, item: Mapping[str, Any]) -> bool:
        """Store one telemetry batch unless its key exists: True if stored, False for a duplicate."""
        full = {**telemetry_key(str(item["model"]), item.get("device_id"), str(item["batch_id"])),
                "kind": KIND_TELEMETRY, **item}
        try:
            self.client.put_item(TableName=self.table, Item=serialize(full),
                                 ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def query_telemetry(self, name: str, device: str | None = None, version: int | None = None,
                        since: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Telemetry batches of a model (one device's if ``device``), filtered by version and window end."""
        prefix = TELEMETRY_SK + (f"{device_segment(device)}#" if device is not None else "")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        }
        values: dict[str, Any] = {"pk": telemetry_pk(name), "prefix": prefix}
        filters = []
        if version is not None:
            filters.append("model_version = :version")
            values["version"] = int(version)
        if since is not None:
            filters.append("window_end >= :since")
            values["since"] = since
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeValues"] = _values(**values)
        yield from self._pages(kwargs, limit)

    def _revision_mismatch(self, name: str, alias: str, expected: int | None) -> str:
        current = self._get(alias_key(name, alias))
        revision = int(current.get("revision", 0)) if current else 0
        state = "does not exist" if not current or current.get("deleted") else f"is at revision {revision}"
        return f"alias {alias!r} of {name} {state}, not at revision {expected}"
