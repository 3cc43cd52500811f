"""What the registry (modelsync/service) and the device client (modelsync_device) must agree on, once.

numpy + standard library (+ ``scorer``) only: it ships in the Lambda layer and is copied onto devices.

* :mod:`.names` - the model-name rule (scorer's ``NAME_PATTERN``: names become folder and key names).
* :mod:`.manifest` - the bytes a manifest signature covers, and the sync event types.
* :mod:`.telemetry` - the telemetry schema, its limits and the one merge of telemetry windows/summaries.
"""

from __future__ import annotations

from .manifest import (
    ALIAS_MOVED,
    MANIFEST_UNSIGNED_FIELDS,
    SYNC_EVENT_TYPES,
    VERSION_PUBLISHED,
    manifest_signing_bytes,
)
from .names import MODEL_NAME_RE, check_model_name, valid_model_name
from .telemetry import TELEMETRY_SCHEMA, finish_summary, merge_summary, merge_window

__all__ = [
    "ALIAS_MOVED",
    "MANIFEST_UNSIGNED_FIELDS",
    "MODEL_NAME_RE",
    "SYNC_EVENT_TYPES",
    "TELEMETRY_SCHEMA",
    "VERSION_PUBLISHED",
    "check_model_name",
    "finish_summary",
    "manifest_signing_bytes",
    "merge_summary",
    "merge_window",
    "valid_model_name",
]
