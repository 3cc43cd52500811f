"""The models bucket's key layout and the naming rules, in one place.

``incoming/{model}/{file}.json``            uploads (one file directly in the model's folder; one upload =
                                            one candidate version; other keys are refused with a report)
``models/{model}/{version}.json``           published documents, written once (``If-None-Match: *``)
``reports/{model}/{upload id}.json``        the outcome of each upload (published or rejected + problems)
``batch/input/{model}/[v{N}/][outputs={methods}/]{name}``
                                            batch inputs (``.csv`` with a header, or ``.jsonl``); the
                                            ``outputs=`` folder names the methods written (comma-separated)
``batch/output/{model}/{name}.v{N}.{ext}``  scored outputs, ``.errors.jsonl`` and ``.manifest.json`` beside
                                            (``{name}`` keeps an ``outputs=`` folder: its own outputs)
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
OUTPUTS_DIR = "outputs="  # batch/input/{model}/[v{N}/]outputs=decision_function,predict/{name}


def valid_alias(alias: str) -> bool:
    return bool(ALIAS_RE.match(alias))


def decode_event_key(key: str) -> str:
    """S3 notifications URL-encode keys form-style (``+`` for a space)."""
    return urllib.parse.unquote_plus(key)


UPLOAD_SUFFIX = ".json"
UNATTRIBUTED = "_invalid"  # not a valid model name: refused keys without a model folder are recorded here


def model_of_upload(key: str) -> str | None:
    """``incoming/{model}/{file}.json`` -> model, or None when the key does not follow the layout."""
    return upload_folder(key) if upload_key_problem(key) is None else None


def upload_folder(key: str) -> str:
    """The model a key under ``incoming/`` is attributed to (its record, report and event), even when the
    key is refused: the first folder when it is a valid model name, else :data:`UNATTRIBUTED`."""
    rest = key[len(INCOMING):] if key.startswith(INCOMING) else ""
    folder, sep, _ = rest.partition("/")
    return folder if sep and valid_model_name(folder) else UNATTRIBUTED


def upload_key_problem(key: str) -> str | None:
    """Why ``key`` is not an upload key (``incoming/{model}/{file}.json``, no sub-folder), or None."""
    rule = f"incoming/{{model}}/{{file}}{UPLOAD_SUFFIX}"
    if not key.startswith(INCOMING):
        return f"key {key!r} is not under {INCOMING}"
    parts = key[len(INCOMING):].split("/")
    if len(parts) < 2 or not valid_model_name(parts[0]):
        return (f"key {key!r} does not follow {rule} with a valid model name (letters, digits, '.', '_', "
                "'-')")
    if len(parts) > 2:
        return f"key {key!r} has sub-folders: uploads go directly in the model folder ({rule})"
    if not parts[1].endswith(UPLOAD_SUFFIX) or parts[1] == UPLOAD_SUFFIX:
        return f"key {key!r} does not end in {UPLOAD_SUFFIX} ({rule})"
    return None


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
    name: str  # path under the model folder (without the version folder; an outputs= folder stays)
    fmt: str  # "csv" | "jsonl"
    outputs: str | None = None  # the text of an ``outputs=`` folder (methods, comma-separated), if any

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
    """``batch/input/{model}/[v{N}/][outputs={methods}/]{name}.csv|.jsonl`` -> :class:`BatchInput`; None
    for anything else. The methods are checked against the model when it is scored."""
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
    outputs = rest[0][len(OUTPUTS_DIR):] if len(rest) > 1 and rest[0].startswith(OUTPUTS_DIR) else None
    if any(p in ("", ".", "..") for p in rest):
        return None
    lower = name.lower()
    fmt = next((ext[1:] for ext in BATCH_EXTENSIONS if lower.endswith(ext)), None)
    if fmt is None:
        return None
    return BatchInput(key=key, model=model, version=version, name=name, fmt=fmt, outputs=outputs)
