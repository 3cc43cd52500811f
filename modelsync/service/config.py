"""Settings from the environment the template gives each function (names, limits, switches)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from scorer import DEFAULT_LIMITS, Limits

# Limits of a document's cost (scorer._limits.Limits field -> environment variable; template parameters
# and defaults in docs/deploy.md "Limits").
MODEL_LIMIT_VARIABLES = {
    "memory_budget": "MODEL_MEMORY_BUDGET",
    "max_width": "MODEL_MAX_WIDTH",
    "max_classes": "MODEL_MAX_CLASSES",
    "max_trees": "MODEL_MAX_TREES",
    "max_nodes": "MODEL_MAX_NODES",
    "max_row_cost": "MODEL_MAX_ROW_COST",
    "max_request_cost": "MODEL_MAX_REQUEST_COST",
}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"environment variable {name} must not be negative")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration in seconds (``0`` allowed; negative, non-finite or not a number: the default)."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if 0 <= value < float("inf") else default


@dataclass(frozen=True)
class Settings:
    models_bucket: str
    registry_table: str
    events_topic_arn: str = ""
    idempotency_table: str = ""
    batch_state_machine_arn: str = ""
    max_upload_bytes: int = 32 * 1024 * 1024
    max_rows_per_request: int = 10_000
    max_request_bytes: int = 5 * 1024 * 1024
    max_batch_file_bytes: int = 256 * 1024 * 1024
    batch_chunk_rows: int = 20_000  # larger blocks: fewer scorer calls (bench/batch_e2e.py)
    batch_outputs: str = ""  # the methods batch writes when neither key nor event names them ("": default)
    presign_seconds: int = 300
    model_cache_size: int = 8
    alias_cache_ttl_seconds: float = 5.0  # how long an alias read is reused (0: read on every request)
    require_approval: bool = False
    manifest_signing_key_id: str = ""  # KMS key (id, ARN or alias) signing manifests; empty: unsigned
    telemetry_retention_days: int = 90  # telemetry items expire (TTL) this long after they arrive; 0: never
    max_telemetry_bytes: int = 1024 * 1024  # largest POST /models/{name}/telemetry body (413 above)
    model_limits: Limits = DEFAULT_LIMITS  # what a document may cost: checked at publish, sizes scoring

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        missing = [n for n in ("MODELS_BUCKET", "REGISTRY_TABLE") if not e.get(n)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            models_bucket=e["MODELS_BUCKET"],
            registry_table=e["REGISTRY_TABLE"],
            events_topic_arn=e.get("EVENTS_TOPIC_ARN", ""),
            idempotency_table=e.get("IDEMPOTENCY_TABLE", ""),
            batch_state_machine_arn=e.get("BATCH_STATE_MACHINE_ARN", ""),
            max_upload_bytes=_int(e, "MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_rows_per_request=_int(e, "MAX_ROWS_PER_REQUEST", cls.max_rows_per_request),
            max_request_bytes=_int(e, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            max_batch_file_bytes=_int(e, "MAX_BATCH_FILE_BYTES", cls.max_batch_file_bytes),
            batch_chunk_rows=max(1, _int(e, "BATCH_CHUNK_ROWS", cls.batch_chunk_rows)),
            batch_outputs=e.get("BATCH_OUTPUTS", "").strip(),
            presign_seconds=max(1, _int(e, "PRESIGN_SECONDS", cls.presign_seconds)),
            model_cache_size=max(1, _int(e, "MODEL_CACHE_SIZE", cls.model_cache_size)),
            alias_cache_ttl_seconds=_seconds(e, "ALIAS_CACHE_TTL_SECONDS", cls.alias_cache_ttl_seconds),
            require_approval=_bool(e, "REQUIRE_APPROVAL", cls.require_approval),
            manifest_signing_key_id=e.get("MANIFEST_SIGNING_KEY_ID", "").strip(),
            telemetry_retention_days=_int(e, "TELEMETRY_RETENTION_DAYS", cls.telemetry_retention_days),
            max_telemetry_bytes=max(1024, _int(e, "MAX_TELEMETRY_BYTES", cls.max_telemetry_bytes)),
            model_limits=Limits(**{field: max(1, _int(e, var, getattr(DEFAULT_LIMITS, field)))
                                   for field, var in MODEL_LIMIT_VARIABLES.items()}),
        )
