"""Registry administration: the registry views for tools, aliases (move, canary, promote, rollback,
delete) and approval. The transitions are rollout.py's; the conditional writes are registry.py's.

``expected_revision`` is the alias revision the caller last saw (the API's ``If-Match``): None writes
whatever the current revision is, a stale one is refused (PreconditionFailed).
"""

from __future__ import annotations

from typing import Any

from . import layout, rollout
from .errors import Conflict, InvalidRequest, VersionNotFound
from .registry import STATUS_PENDING, Registry, version_status
from .rules import check_alias_name, check_model_name, parse_version, require_model

VERSION_FIELDS = ("version", "sha256", "size", "format_version", "model_type", "task", "created_at",
                  "document_key", "approved_at",
                  # what publish validated (the report's versions table): inputs, outputs, schema changes
                  "feature_count", "class_count", "methods", "schema_change_count", "compared_with")


class RegistryAdmin:
    """What operators and tools do to the registry, with the registry passed in."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- views ----------------------------------------------------------------------------------------
    def list_models(self) -> dict[str, Any]:
        models = []
        for item in self.registry.list_models():
            name = str(item["model"])
            latest = self.registry.get_alias(name, layout.LATEST)
            models.append({"name": name, "latest_version": latest["version"] if latest else None,
                           "latest_revision": latest["revision"] if latest else None,
                           "updated_at": item.get("updated_at")})
        return {"models": models}

    def get_model(self, name: str) -> dict[str, Any]:
        check_model_name(name)
        require_model(self.registry, name)
        versions = [{**{k: v.get(k) for k in VERSION_FIELDS}, "status": version_status(v)}
                    for v in self.registry.list_versions(name)]
        aliases = {a: rollout.describe(item) for a, item in self.registry.list_aliases(name).items()}
        return {"name": name, "versions": versions, "aliases": aliases}

    # -- aliases --------------------------------------------------------------------------------------
    def _servable(self, name: str, version: int, what: str = "version") -> dict[str, Any]:
        """The record of a version an alias may point at: it exists and is approved."""
        record = self.registry.get_version(name, version)
        if record is None:
            require_model(self.registry, name)
            raise VersionNotFound(f"model {name} has no version {version} ({what})")
        if version_status(record) == STATUS_PENDING:
            raise Conflict(f"version {version} of {name} is pending approval ({what}); approve it first "
                           f"with POST /models/{name}/versions/{version}/approve")
        return record

    @staticmethod
    def _names(name: str, alias: str) -> None:
        check_model_name(name)
        check_alias_name(alias)

    @staticmethod
    def _alias_result(name: str, alias: str, item: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "alias": alias, **rollout.describe(item)}

    def put_alias(self, name: str, alias: str, version: int, expected_revision: int | None = None,
                  canary: rollout.Canary | None = None) -> dict[str, Any]:
        """Point ``alias`` at ``version``, with ``canary`` or none (a PUT replaces the alias state)."""
        self._names(name, alias)
        self._servable(name, version)
        if canary is not None:
            if canary.version == version:
                raise InvalidRequest("canary.version: must differ from version")
            self._servable(name, canary.version, "canary.version")
        item = self.registry.move_alias(name, alias, version, expected_revision=expected_revision,
                                        canary=canary)
        return self._alias_result(name, alias, item)

    def promote_alias(self, name: str, alias: str, expected_revision: int | None = None) -> dict[str, Any]:
        """The canary becomes the alias version."""
        self._names(name, alias)
        require_model(self.registry, name)
        item = self.registry.promote_alias(name, alias, expected_revision=expected_revision)
        return self._alias_result(name, alias, item)

    def rollback_alias(self, name: str, alias: str, expected_revision: int | None = None) -> dict[str, Any]:
        """Drop the canary, or (without one) go back to the previous version."""
        self._names(name, alias)
        require_model(self.registry, name)
        item = self.registry.rollback_alias(name, alias, expected_revision=expected_revision)
        return self._alias_result(name, alias, item)

    def delete_alias(self, name: str, alias: str, expected_revision: int | None = None) -> dict[str, Any]:
        """Tombstone an alias other than ``latest`` (its revision keeps growing if it is set again)."""
        check_model_name(name)
        if alias == layout.LATEST:
            raise Conflict("the latest alias cannot be deleted; move it with PUT instead")
        require_model(self.registry, name)
        item = self.registry.delete_alias(name, alias, expected_revision=expected_revision)
        return {"name": name, "alias": alias, "revision": item["revision"]}

    # -- approval -------------------------------------------------------------------------------------
    def approve_version(self, name: str, version: str | int) -> dict[str, Any]:
        """pending -> approved, then ``latest`` moves forward to it (never backwards). Idempotent."""
        check_model_name(name)
        v = parse_version(version)
        if v is None:
            raise InvalidRequest("version must be a positive integer")
        require_model(self.registry, name)
        record, changed = self.registry.approve_version(name, v)
        # a version whose input schema differs from latest's (publish recorded schema_changes) is not
        # moved to by approval either: that takes an explicit alias move
        moved = None if record.get("schema_changes") else self.registry.advance_latest(
            name, v, actor="api", action=rollout.ACTION_APPROVE)
        latest = moved or self.registry.get_alias(name, layout.LATEST, consistent=True)
        return {"name": name, "version": v, "status": version_status(record), "approved": changed,
                "approved_at": record.get("approved_at"), "latest_moved": moved is not None,
                **({"schema_changes": record["schema_changes"]} if record.get("schema_changes") else {}),
                "latest": rollout.describe(latest) if latest else None}
