"""The document envelope: parsing a source into a dict, the format version, the shape of metadata /
output / test_vectors / sha256, and whether sha256 matches the canonical bytes.

The strict JSON parser and the canonical form live in :mod:`scorer._json`; the input schema in
:mod:`scorer._inputs`. docs/model-format.md is the specification.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from ._base import MAX_DOCUMENT_BYTES, MAX_NESTING_DEPTH, InvalidModel, _json_type, _short, pointer_join
from ._json import check_json_value, check_text_depth, content_sha256, loads_strict

FORMAT_VERSION = "1.0"
SUPPORTED_FORMAT_MAJOR = 1
TASKS = ("classification", "regression", "clustering", "outlier_detection", "transform")
METHODS = ("predict", "predict_proba", "decision_function", "transform")
DEFAULT_TOLERANCE = 1e-9  # test_vectors.tolerance when absent
MAX_TOLERANCE = 1e-3

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
VERSION_PATTERN = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CREATED_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")

Problem = tuple[str, str]
_ARTICLE_NAMES = {str: "a string", dict: "an object", list: "an array", int: "an integer", float: "a number"}


# -- parsing ---------------------------------------------------------------------------------------

def parse_document(source: Any) -> dict[str, Any]:
    """Accept a dict, a path (str or PathLike), bytes or JSON text; strict JSON only.

    Sizes and nesting depth are checked before ``json.loads`` sees the text, so a hostile document
    fails with :class:`InvalidModel` instead of exhausting the stack or memory.
    """
    if isinstance(source, Mapping):
        doc = dict(source)
        check_json_value(doc)
        return doc
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        raw = _read_file(pathlib.Path(source))
    elif isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    elif isinstance(source, str):
        if len(source) > MAX_DOCUMENT_BYTES:
            raise InvalidModel(f"document is over the limit of {MAX_DOCUMENT_BYTES} bytes")
        try:
            raw = source.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidModel(f"document is not valid Unicode: {exc.reason}") from None
    else:
        raise InvalidModel(f"cannot load a model from {type(source).__name__}; "
                           "expected a dict, a path, bytes or JSON text")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidModel(f"document is {len(raw)} bytes, over the limit of {MAX_DOCUMENT_BYTES}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InvalidModel("document starts with a UTF-8 byte order mark; write plain UTF-8")
    check_text_depth(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModel(f"document is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        doc = loads_strict(text)
    except RecursionError:
        raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}") from None
    except MemoryError:
        raise InvalidModel("document is too large to parse") from None
    except ValueError as exc:
        raise InvalidModel(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidModel(f"document must be a JSON object, got {_json_type(doc)}")
    return doc


_JSON_SCALAR_START = re.compile(r'\s*(["\-0-9]|true\b|false\b|null\b)')


def _looks_like_path(text: str) -> bool:
    stripped = text.lstrip()
    if not stripped or stripped[:1] in ("{", "[") or len(text) > 4096 or "\n" in text:
        return False
    return not _JSON_SCALAR_START.match(text) or os.path.exists(text)


def _read_file(path: pathlib.Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidModel(f"document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}")
        with path.open("rb") as fh:
            raw = fh.read(MAX_DOCUMENT_BYTES + 1)  # files whose size stat cannot tell (pipes, /proc)
    except OSError as exc:
        raise InvalidModel(f"cannot read model file {str(path)!r}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidModel(f"document is over the limit of {MAX_DOCUMENT_BYTES} bytes")
    return raw


# -- envelope ---------------------------------------------------------------------------------------

def check_format_version(doc: Mapping[str, Any]) -> str:
    """The major version must be the one this scorer implements; any minor version is accepted."""
    fv = doc.get("format_version")
    if "format_version" not in doc:
        raise InvalidModel("required field is missing", "/format_version")
    if not isinstance(fv, str) or not VERSION_PATTERN.fullmatch(fv):
        raise InvalidModel(f"must be a string \"MAJOR.MINOR\" such as \"{FORMAT_VERSION}\", got {_short(fv)}",
                           "/format_version")
    major = int(fv.split(".", 1)[0])
    if major != SUPPORTED_FORMAT_MAJOR:
        raise InvalidModel(
            f"format_version {fv!r} is not supported: this scorer reads format {SUPPORTED_FORMAT_MAJOR}.x "
            f"(documents of another major version need "
            f"{'a newer' if major > SUPPORTED_FORMAT_MAJOR else 'an older'} scorer)", "/format_version")
    return fv


def envelope_problems(doc: Mapping[str, Any], full: bool = True) -> list[Problem]:
    """Problems with metadata, output, test_vectors and sha256 (shape of the fields, not their truth).

    ``full``: require every field a publishable document has; otherwise only check what is present
    (what :func:`load_model` needs to build a :class:`Model` safely).
    """
    problems: list[Problem] = []

    def need(parent: Mapping[str, Any], key: str, ptr: str, kind: type | tuple[type, ...],
             required: bool) -> Any:
        if key not in parent:
            if required:
                problems.append((pointer_join(ptr, key), "required field is missing"))
            return None
        value = parent[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join(_ARTICLE_NAMES.get(k, k.__name__) for k in kinds)
            problems.append((pointer_join(ptr, key), f"must be {want}, got {_json_type(value)}"))
            return None
        return value

    meta = need(doc, "metadata", "", dict, full)
    if meta is not None:
        name = need(meta, "name", "/metadata", str, full)
        if name is not None and not NAME_PATTERN.fullmatch(name):
            problems.append(("/metadata/name", f"{_short(name)} is not a valid name: 1-128 letters, digits, "
                             "'.', '_' or '-', starting with a letter or digit"))
        need(meta, "description", "/metadata", str, False)
        created = need(meta, "created", "/metadata", str, full)
        if created is not None and not CREATED_PATTERN.fullmatch(created):
            problems.append(("/metadata/created", f"must be an RFC 3339 timestamp such as "
                             f"2024-05-01T12:00:00Z, got {_short(created)}"))
        producer = need(meta, "producer", "/metadata", dict, full)
        if producer is not None:
            need(producer, "name", "/metadata/producer", str, True)
            need(producer, "version", "/metadata/producer", str, True)
        need(meta, "sklearn_version", "/metadata", str, False)

    output = need(doc, "output", "", dict, full)
    if output is not None:
        task = need(output, "task", "/output", str, True)
        if task is not None and task not in TASKS:
            problems.append(("/output/task", f"must be one of {list(TASKS)}, got {_short(task)}"))
        methods = need(output, "methods", "/output", list, True)
        if methods is not None:
            if not methods:
                problems.append(("/output/methods", "must list at least one method"))
            for i, m in enumerate(methods):
                if m not in METHODS or not isinstance(m, str):
                    problems.append((f"/output/methods/{i}",
                                     f"must be one of {list(METHODS)}, got {_short(m)}"))
                elif methods.index(m) != i:
                    problems.append((f"/output/methods/{i}", f"{m} is listed twice"))
            if task == "classification" and "predict" not in methods:
                problems.append(("/output/methods", "a classifier must offer predict"))
        classes = need(output, "classes", "/output", list, task == "classification")
        if classes is not None:
            if task is not None and task != "classification":
                problems.append(("/output/classes",
                                 f"only classification models have classes (task is {task})"))
            elif not classes:
                problems.append(("/output/classes", "must not be empty"))

    tv = need(doc, "test_vectors", "", dict, full)
    if tv is not None:
        need(tv, "inputs", "/test_vectors", list, True)
        need(tv, "outputs", "/test_vectors", dict, True)
        tol = need(tv, "tolerance", "/test_vectors", (int, float), False)
        if tol is not None and not 0 <= tol <= MAX_TOLERANCE:
            problems.append(("/test_vectors/tolerance",
                             f"must be between 0 and {MAX_TOLERANCE:g}, got {tol!r}"))

    sha = need(doc, "sha256", "", str, full)
    if sha is not None and not SHA256_PATTERN.fullmatch(sha):
        problems.append(("/sha256", "must be 64 lowercase hexadecimal characters"))
    return problems


def sha256_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """Whether ``sha256`` matches the canonical bytes (empty list when it does)."""
    sha = doc.get("sha256")
    if not isinstance(sha, str) or not SHA256_PATTERN.fullmatch(sha):
        return []  # reported by envelope_problems
    try:
        actual = content_sha256(doc)
    except InvalidModel as exc:
        return [(p, f"cannot compute the canonical form: {m}") for p, m in exc.problems]
    if actual != sha:
        return [("/sha256", "does not match the document's content: it was changed after export "
                 "or damaged in transit")]
    return []
