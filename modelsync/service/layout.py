"""The models bucket's key layout and the naming rules, in one place.

``incoming/{model}/...``                    uploads (any file name; one upload = one candidate version)
``models/{model}/{version}.json``           published documents, written once (``If-None-Match: *``)
``reports/{model}/{upload id}.json``        the outcome of each upload (published or rejected + problems)
``batch/input/{model}/[v{N}/]{name}``       batch inputs (``.csv`` with a header, or ``.jsonl``)
``batch/output/{model}/{name}.v{N}.{ext}``  scored outputs, ``.errors.jsonl`` and ``.manifest.json`` beside
``batch/work/{model}/{name}.v{N}/...``      chunk plans and parts of the state machine (expire after 7 days)
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass

from modelsync_protocol import valid_model_name  # the one model-name rule (the scorer's)

INCOMING = "incoming/"
MODELS = "models/"
REPORTS = "reports/"
BATCH_INPUT = "batch/input/"
BATCH_OUTPUT = "batch/output/"
BATCH_WORK = "batch/work/"

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LATEST = "latest"
BATCH_EXTENSIONS = (".csv", ".jsonl")
_VERSION_DIR_RE = re.compile(r"^v([1-9][0-9]{0,9})$")


def valid_alias(alias: str) -> bool:
    return bool(ALIAS_RE.match(alias))


def decode_event_key(key: str) -> str:
    """S3 notifications URL-encode keys form-style (``+`` for a space)."""
    return urllib.parse.unquote_plus(key)


def model_of_upload(key: str) -> str | None:
    """``incoming/{model}/{file...}`` -> model, or None when the key does not follow the layout."""
    if not key.startswith(INCOMING):
        return None
    parts = key[len(INCOMING):].split("/", 1)
    if len(parts) != 2 or not parts[1] or parts[1].endswith("/"):
        return None
    return parts[0] if valid_model_name(parts[0]) else None


def document_key(model: str, version: int) -> str:
    return f"{MODELS}{model}/{int(version)}.json"


def upload_id(bucket: str, key: str, etag: str) -> str:
    """Stable id of one upload (the same object bytes at the same key): the dedup key of the domain."""
    raw = f"{bucket}\n{key}\n{etag.strip(chr(34))}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def report_key(model: str, upload: str) -> str:
    return f"{REPORTS}{model}/{upload}.json"


@dataclass(frozen=True)
class BatchInput:
    """A batch input key split into its parts: the model, the version it pins (if any) and its name."""

    key: str
    model: str
    version: int | None
    name: str  # path under the model folder (without the version folder)
    fmt: str  # "csv" | "jsonl"

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]

    def output_key(self, version: int) -> str:
        return f"{BATCH_OUTPUT}{self.model}/{self.stem}.v{version}.{self.fmt}"

    def errors_key(self, version: int) -> str:
        return f"{BATCH_OUTPUT}{self.model}/{self.stem}.v{version}.errors.jsonl"

    def manifest_key(self, version: int) -> str:
        return f"{BATCH_OUTPUT}{self.model}/{self.stem}.v{version}.manifest.json"

    def work_prefix(self, version: int) -> str:
        return f"{BATCH_WORK}{self.model}/{self.stem}.v{version}/"


def parse_batch_input(key: str) -> BatchInput | None:
    """``batch/input/{model}/[v{N}/]{name}.csv|.jsonl`` -> :class:`BatchInput`; None for anything else."""
    if not key.startswith(BATCH_INPUT) or key.endswith("/"):
        return None
    parts = key[len(BATCH_INPUT):].split("/")
    if len(parts) < 2 or not valid_model_name(parts[0]):
        return None
    model, rest = parts[0], parts[1:]
    version = None
    m = _VERSION_DIR_RE.match(rest[0])
    if m and len(rest) > 1:
        version, rest = int(m.group(1)), rest[1:]
    name = "/".join(rest)
    if any(p in ("", ".", "..") for p in rest):
        return None
    lower = name.lower()
    fmt = next((ext[1:] for ext in BATCH_EXTENSIONS if lower.endswith(ext)), None)
    if fmt is None:
        return None
    return BatchInput(key=key, model=model, version=version, name=name, fmt=fmt)
