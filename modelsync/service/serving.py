"""Serving: resolve a request to a model version (by number, or through an alias and its canary), load
it (bounded cache) and score it; plus the views a client needs to score or sync (metadata, readiness,
the signed manifest, the signing key). Clients are passed in; no HTTP here (modelsync.service.http).

``inference`` is the tensor / JSON codec the scoring methods use.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

import scorer

from . import layout, rollout
from .alias_cache import ALIASES, AliasCache
from .config import Settings
from .drift import DriftRecorder
from .errors import (
    AliasNotFound,
    InvalidRequest,
    ModelUnreadable,
    NoPublishedVersion,
    PayloadTooLarge,
    ServiceError,
    SigningNotConfigured,
    VersionNotFound,
)
from .inference import decode_v2_inputs, output_metadata, plain_predict, v2_outputs
from .metrics import Measure
from .registry import STATUS_APPROVED, Registry, version_status
from .rules import check_alias_name, check_model_name, parse_version, require_model
from .signing import ManifestSigner
from .store import ModelCache, load_published, version_schema

log = logging.getLogger(__name__)

PLATFORM = "modelsync_sklearn"
SERVER_NAME = "modelsync"
EXTENSIONS = ("binary_tensor_data",)  # the protocol extensions served (modelsync.service.http.binary)


@dataclass
class Resolved:
    """A version record, and the alias item that led to it (None when addressed by version).

    ``cohort`` is ``"base"`` or ``"canary"`` when the alias carries a canary, else None."""

    record: dict[str, Any]
    alias: dict[str, Any] | None
    cohort: str | None = None

    @property
    def name(self) -> str:
        return str(self.record["model"])

    @property
    def version(self) -> int:
        return int(self.record["version"])

    @property
    def revision(self) -> int:
        return int(self.alias.get("revision", 0)) if self.alias else 0


class ServingService:
    """resolve -> load -> score, with the S3 client, registry, settings, model cache and signer passed in."""

    def __init__(self, s3: Any, registry: Registry, settings: Settings, cache: ModelCache,
                 signer: ManifestSigner | None = None,
                 observer: Callable[[Measure], None] | None = None,
                 drift: DriftRecorder | None = None, aliases: AliasCache | None = None) -> None:
        self.s3 = s3
        self.registry = registry
        self.settings = settings
        self.cache = cache
        self.signer = signer
        self.observer = observer  # called with every scoring request's Measure (metrics, log line)
        self.drift = drift  # counts scored rows in the baseline's bins (modelsync.service.drift)
        self.aliases = aliases if aliases is not None else ALIASES  # the process's alias cache

    def _measured(self, route: str, name: str, work: Callable[[Measure], dict[str, Any]]) -> dict[str, Any]:
        """Run one scoring request, measured (version, side, rows, latencies, error kind) for the observer."""
        m = Measure(model=name, version="-", side=rollout.BASE, route=route)
        start = time.perf_counter()
        try:
            return work(m)
        except ServiceError as exc:
            m.error = exc.code
            raise
        except Exception:
            m.error = "internal_error"
            raise
        finally:
            m.total_ms = (time.perf_counter() - start) * 1000
            if self.observer is not None:
                self.observer(m)

    def _served(self, m: Measure, resolved: Resolved) -> None:
        m.version = str(resolved.version)
        m.side = resolved.cohort or rollout.BASE

    def resolve(self, name: str, version: int | str | None = None, alias: str | None = None,
                caller: str | None = None, fresh: bool = False) -> Resolved:
        """The version a request gets: by number, or through an alias (``latest`` by default), whose
        canary (if any) takes the callers whose hash falls under its weight.

        At most one registry read: alias items come from the process's alias cache (read again after
        ``ALIAS_CACHE_TTL_SECONDS``, or now with ``fresh``), approved version records are kept."""
        check_model_name(name)
        v = parse_version(version)
        if v is not None and alias:
            raise InvalidRequest("give either version or alias, not both")
        if v is not None:
            record = self._version(name, v)
            if record is None:
                require_model(self.registry, name)
                raise VersionNotFound(f"model {name} has no version {v}")
            return Resolved(record, None)
        alias = alias or layout.LATEST
        check_alias_name(alias)
        item = self.aliases.alias(self.registry.table, name, alias, self.settings.alias_cache_ttl_seconds,
                                  lambda: self.registry.get_alias(name, alias, consistent=True), fresh=fresh)
        if item is None:
            require_model(self.registry, name)
            if alias == layout.LATEST:
                raise NoPublishedVersion(f"model {name} has no published version yet")
            raise AliasNotFound(f"model {name} has no alias {alias!r}")
        canary = rollout.canary_of(item)
        cohort = None
        target = int(item["version"])
        if canary is not None:
            cohort = rollout.CANARY if rollout.in_canary(name, alias, caller, canary.weight) else rollout.BASE
            if cohort == rollout.CANARY:
                target = canary.version
        record = self._version(name, target)
        if record is None:  # an alias always points at a written version; only a manual edit gets here
            raise ModelUnreadable(f"alias {alias!r} of {name} points at a missing version")
        return Resolved(record, item, cohort)

    def _version(self, name: str, version: int) -> dict[str, Any] | None:
        return self.aliases.version(self.registry.table, name, version,
                                    lambda r: version_status(r) == STATUS_APPROVED,
                                    lambda: self.registry.get_version(name, version))

    def load(self, resolved: Resolved) -> scorer.Model:
        return self.cache.get((resolved.name, resolved.version),
                              lambda: load_published(self.s3, self.settings.models_bucket, resolved.record,
                                                     self.settings.model_limits))

    def _row_cap(self, model: scorer.Model, rows: int) -> None:
        """413 when the rows cost more than one request may (work or memory), whatever their count."""
        cap = model.max_rows(self.settings.model_limits)
        if rows > cap:
            raise PayloadTooLarge(f"{rows} rows in one request, over the limit of {cap} rows for this model "
                                  f"(each row costs {model.row_cost.work} operations and holds "
                                  f"{model.row_cost.out} result values; limits MODEL_MAX_REQUEST_COST and "
                                  "MODEL_MEMORY_BUDGET)")

    # -- Open Inference Protocol (V2) -----------------------------------------------------------------
    def server_metadata(self) -> dict[str, Any]:
        from modelsync import __version__

        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def ready(self) -> bool:
        try:
            self.registry.list_models()
        except ClientError:
            log.exception("registry unreachable")
            return False
        return True

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        resolved = self.resolve(name, version)
        r = resolved.record
        versions = [str(v["version"]) for v in self.registry.list_versions(name)]
        features, _ = version_schema(r, lambda: self.load(resolved))
        inputs = [{"name": f["name"], "datatype": "BYTES" if f.get("kind") == "categorical" else "FP64",
                   "shape": [-1]} for f in features]
        outputs = output_metadata(self.load(resolved), r.get("predict_datatype"))
        return {"name": name, "versions": versions if version is None else [str(resolved.version)],
                "platform": PLATFORM, "inputs": inputs, "outputs": outputs,
                "parameters": {"version": str(resolved.version), "sha256": r.get("sha256"),
                               "model_type": r.get("model_type"), "task": r.get("task")}}

    def model_ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        resolved = self.resolve(name, version)
        self.load(resolved)
        return {"name": name, "version": str(resolved.version), "ready": True}

    def infer_v2(self, name: str, version: str | None, body: dict[str, Any],
                 caller: str | None = None) -> dict[str, Any]:
        def work(m: Measure) -> dict[str, Any]:
            resolved = self.resolve(name, version, caller=caller)
            self._served(m, resolved)
            model = self.load(resolved)
            X, rows = decode_v2_inputs(body.get("inputs"), model.features,
                                       self.settings.max_rows_per_request)
            m.rows = rows
            self._row_cap(model, rows)
            requested = None
            if body.get("outputs") is not None:
                requested = [o.get("name") for o in body["outputs"]]
            start = time.perf_counter()
            outputs = v2_outputs(model, X, rows, requested, resolved.record.get("predict_datatype"))
            m.scoring_ms = (time.perf_counter() - start) * 1000
            if self.drift is not None:  # the predictions too, when they were asked for (or by default)
                predicted = next((o["data"] for o in outputs if o["name"] == "predict"), None)
                self.drift.observe(name, resolved.version, model, X, predicted)
            out: dict[str, Any] = {"model_name": name, "model_version": str(resolved.version),
                                   "outputs": outputs}
            if body.get("id") is not None:
                out["id"] = body["id"]
            return out

        return self._measured("v2", name, work)

    # -- plain JSON -----------------------------------------------------------------------------------
    def predict(self, name: str, version: int | None, alias: str | None, instances: Any,
                caller: str | None = None, outputs: list[str] | None = None) -> dict[str, Any]:
        def work(m: Measure) -> dict[str, Any]:
            resolved = self.resolve(name, version, alias, caller)
            self._served(m, resolved)
            model = self.load(resolved)
            m.rows = len(instances) if isinstance(instances, list) else 0
            if isinstance(instances, list):
                self._row_cap(model, len(instances))
            start = time.perf_counter()
            result = plain_predict(model, instances, self.settings.max_rows_per_request, outputs)
            m.scoring_ms = (time.perf_counter() - start) * 1000
            if self.drift is not None:
                self.drift.observe(name, resolved.version, model, instances, result.get("predictions"))
            return {"model_name": name, "model_version": resolved.version, **result}

        return self._measured("predict", name, work)

    # -- devices --------------------------------------------------------------------------------------
    def manifest(self, name: str, version: int | None, alias: str | None, caller: str | None = None
                 ) -> dict[str, Any]:
        """The manifest a device syncs from (signed when a key is configured).

        With a canary on the alias, ``cohort`` says which side this caller is on."""
        resolved = self.resolve(name, version, alias, caller, fresh=True)  # devices compare revisions
        r = resolved.record
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.settings.models_bucket, "Key": r["document_key"]},
            ExpiresIn=self.settings.presign_seconds)
        expires = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=self.settings.presign_seconds)
        manifest = {
            "name": name, "version": resolved.version,
            "alias": resolved.alias["alias"] if resolved.alias else None, "revision": resolved.revision,
            "sha256": r["sha256"], "size": int(r["size"]), "format_version": r["format_version"],
            "document_key": r["document_key"], "model_type": r.get("model_type"),
            "created_at": r.get("created_at"), "url": url,
            "url_expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if resolved.cohort is not None:
            manifest["cohort"] = resolved.cohort
        if self.signer is not None:
            manifest = self.signer.sign(manifest)
        return manifest

    def signing_key(self) -> dict[str, Any]:
        if self.signer is None:
            raise SigningNotConfigured("manifests are not signed on this deployment "
                                       "(no manifest signing key is configured)")
        return self.signer.public_key()
