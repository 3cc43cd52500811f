"""Batch scoring of ``batch/input/{model}/[v{N}/]{name}.csv|.jsonl`` into ``batch/output/{model}/``.

* The scheduled run lists the inputs, picks the version (the ``v{N}`` folder, else an event parameter,
  else ``latest``), skips inputs already scored with that version (their manifest exists), scores inputs
  up to ``max_batch_file_bytes`` itself and hands larger ones to the state machine.
* Scoring streams: the S3 body is read line by line, rows are scored in chunks of ``batch_chunk_rows``
  and written through a multipart upload with a bounded buffer, so memory does not grow with the file.
* Outputs: CSV = the input columns + ``prediction`` + ``proba_<class>`` per class; JSON Lines = each input
  object + ``prediction`` and ``probabilities``. Rows that cannot be scored go to ``...errors.jsonl``
  (``{"line", "reason"}``) while the others are scored. ``...manifest.json`` is written last: its
  presence marks the input done for that version.
* The state machine path: ``plan`` counts lines once and writes line-aligned chunk events (line and byte
  ranges) to ``batch/work/``; each ``chunk`` event scores its byte range into part files; ``finalize``
  joins the parts (multipart upload) and writes the manifest. A chunk event also works with only
  ``{model, key, start_line, end_line}`` (the byte offset is then found by scanning).

Row-level CSV/JSONL handling is here (numpy + stdlib); the CSV/JSONL reader is small and isolated in
:class:`RowReader`/:class:`OutputWriter` so it can give way to a shared ``scorer.tabular`` module.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

import scorer

from . import layout
from .config import Settings
from .errors import AliasNotFound, ModelNotFound, NoPublishedVersion, ServiceError, VersionNotFound
from .registry import Registry

log = logging.getLogger(__name__)

PART_BYTES = 8 * 1024 * 1024  # multipart part size (S3 minimum is 5 MiB)
LINES_PER_MAP_ITEM_FACTOR = 10  # a Distributed Map item scores this many chunks of batch_chunk_rows
READ_CHUNK = 1024 * 1024
MAX_ERROR_TEXT = 300


class InputUnusable(ServiceError):
    """The input as a whole cannot be scored (e.g. its CSV header lacks a feature)."""

    code = "input_unusable"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- S3 helpers --------------------------------------------------------------------------------------

def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """Existence by listing (works with a prefix-scoped s3:ListBucket; HEAD would say 403 without it)."""
    resp = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(o["Key"] == key for o in resp.get("Contents", []))


class MultipartWriter:
    """Write an S3 object in parts with a bounded buffer; small objects become one PutObject."""

    def __init__(self, s3: Any, bucket: str, key: str, content_type: str,
                 part_bytes: int = PART_BYTES) -> None:
        self.s3, self.bucket, self.key, self.content_type = s3, bucket, key, content_type
        self.part_bytes = part_bytes
        self._buf = io.BytesIO()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._buf.write(data)
        self.bytes_written += len(data)
        if self._buf.tell() >= self.part_bytes:
            self._flush_part()

    def _flush_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type)["UploadId"]
        number = len(self._parts) + 1
        resp = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                   PartNumber=number, Body=self._buf.getvalue())
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        self._buf = io.BytesIO()

    def close(self) -> None:
        if self._upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._buf.getvalue(),
                               ContentType=self.content_type)
            return
        if self._buf.tell():
            self._flush_part()
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                          MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        if self._upload_id is not None:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            except ClientError:
                log.warning("could not abort the multipart upload of %s", self.key)


def iter_lines(body: Any, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Lines of a streaming body, line endings kept (the last line may lack one)."""
    pending = b""
    while True:
        chunk = body.read(chunk_size)
        if not chunk:
            break
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


def _decode(lines: Iterable[bytes], first_line: int) -> Iterator[tuple[int, str]]:
    for i, raw in enumerate(lines):
        line_no = first_line + i
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = "\x00" + f"line is not UTF-8 ({exc.reason} at byte {exc.start})"
        if line_no == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield line_no, text


# -- rows in, rows out --------------------------------------------------------------------------------

@dataclass
class Row:
    line: int
    values: list[Any]  # in the model's feature order
    original: Any  # CSV fields (list of str) or the JSON object


class RowReader:
    """Parses CSV (header given) or JSON Lines into :class:`Row` objects and error entries."""

    def __init__(self, fmt: str, features: Sequence[Any], header: list[str] | None = None) -> None:
        self.fmt = fmt
        self.features = list(features)
        self.header = header
        self._index: list[int] = []
        self._parsers = [self._parser(f) for f in self.features]
        if fmt == "csv":
            if header is None:
                raise InputUnusable("a CSV input needs a header line")
            missing = [f.name for f in self.features if f.name not in header]
            if missing:
                raise InputUnusable("the CSV header lacks the model's feature(s) "
                                    + ", ".join(map(repr, missing)))
            self._index = [header.index(f.name) for f in self.features]

    @staticmethod
    def _parser(feature: Any) -> Callable[[Any], Any]:
        cats = getattr(feature, "categories", None) or []
        numeric_cats = bool(cats) and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                          for c in cats)
        if feature.kind == "categorical":
            def cat(v: Any) -> Any:
                if v is None or v == "":
                    return None
                if isinstance(v, str) and numeric_cats:
                    try:
                        f = float(v)
                    except ValueError:
                        return v
                    return int(f) if f.is_integer() and all(isinstance(c, int) for c in cats) else f
                return v
            return cat

        def num(v: Any) -> Any:
            if v is None or v == "":
                return math.nan
            if isinstance(v, bool):
                raise ValueError(f"feature {feature.name!r}: expected a number, got {v!r}")
            if isinstance(v, (int, float)):
                return float(v)
            if isinstance(v, str):
                try:
                    return float(v)
                except ValueError:
                    pass
            raise ValueError(f"feature {feature.name!r}: {v!r} is not a number")
        return num

    def rows(self, lines: Iterable[tuple[int, str]]) -> Iterator[Row | tuple[int, str]]:
        """Yield a Row per good record and (line, reason) per bad one."""
        if self.fmt == "csv":
            yield from self._csv_rows(lines)
        else:
            yield from self._jsonl_rows(lines)

    def _csv_rows(self, lines: Iterable[tuple[int, str]]) -> Iterator[Row | tuple[int, str]]:
        assert self.header is not None
        width = len(self.header)
        for line_no, text in lines:
            if text.startswith("\x00"):
                yield line_no, text[1:]
                continue
            if not text.strip():
                continue
            try:
                fields = next(csv.reader([text]))
            except csv.Error as exc:
                yield line_no, f"not valid CSV: {exc}"
                continue
            if len(fields) != width:
                yield line_no, f"expected {width} fields (as the header), got {len(fields)}"
                continue
            try:
                values = [p(fields[i]) for p, i in zip(self._parsers, self._index, strict=True)]
            except ValueError as exc:
                yield line_no, str(exc)
                continue
            yield Row(line_no, values, fields)

    def _jsonl_rows(self, lines: Iterable[tuple[int, str]]) -> Iterator[Row | tuple[int, str]]:
        for line_no, text in lines:
            if text.startswith("\x00"):
                yield line_no, text[1:]
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                yield line_no, f"not valid JSON: {exc}"
                continue
            if not isinstance(obj, dict):
                yield line_no, "expected a JSON object keyed by feature name"
                continue
            missing = [f.name for f in self.features if f.name not in obj]
            if missing:
                yield line_no, f"missing feature {missing[0]!r}"
                continue
            try:
                values = [p(obj[f.name]) for p, f in zip(self._parsers, self.features, strict=True)]
            except ValueError as exc:
                yield line_no, str(exc)
                continue
            yield Row(line_no, values, obj)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    if v is None:
        return ""
    return str(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class OutputWriter:
    """Formats scored rows: CSV (input columns + prediction + proba_<class>) or JSON Lines."""

    def __init__(self, fmt: str, header: list[str] | None, classes: list[Any] | None) -> None:
        self.fmt = fmt
        self.header = header
        self.classes = classes

    def header_bytes(self) -> bytes:
        if self.fmt != "csv":
            return b""
        assert self.header is not None
        cols = [*self.header, "prediction", *(f"proba_{c}" for c in (self.classes or []))]
        return _csv_line(cols)

    def rows_bytes(self, rows: Sequence[Row], prediction: np.ndarray, proba: np.ndarray | None) -> bytes:
        out = io.BytesIO()
        preds = [_json_value(v) for v in prediction.tolist()]
        probs = proba.tolist() if proba is not None else None
        for i, row in enumerate(rows):
            if self.fmt == "csv":
                cells = [*row.original, _cell(preds[i])]
                if probs is not None:
                    cells.extend(_cell(p) for p in probs[i])
                elif self.classes:
                    cells.extend("" for _ in self.classes)
                out.write(_csv_line(cells))
            else:
                obj = dict(row.original)
                obj["prediction"] = preds[i]
                if probs is not None and self.classes is not None:
                    obj["probabilities"] = {str(c): _json_value(p)
                                            for c, p in zip(self.classes, probs[i], strict=True)}
                out.write(json.dumps(obj, ensure_ascii=False, allow_nan=False).encode() + b"\n")
        return out.getvalue()


def _csv_line(cells: Sequence[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue().encode("utf-8")


def _error_line(line: int, reason: str) -> bytes:
    return json.dumps({"line": line, "reason": reason[:MAX_ERROR_TEXT]}).encode() + b"\n"


@dataclass
class Counts:
    rows: int = 0
    scored: int = 0
    errors: int = 0

    def add(self, other: Counts) -> None:
        self.rows += other.rows
        self.scored += other.scored
        self.errors += other.errors


def score_rows(model: scorer.Model, reader: RowReader, writer: OutputWriter, lines: Iterable[tuple[int, str]],
               out: MultipartWriter, errors: MultipartWriter, chunk_rows: int) -> Counts:
    """Stream: parse, score chunks of ``chunk_rows``, write outputs and errors. Returns the counts."""
    counts = Counts()
    want_proba = model.has("predict_proba") and model.classes is not None
    chunk: list[Row] = []

    def flush() -> None:
        pending = chunk[:]
        chunk.clear()
        while pending:
            X = [r.values for r in pending]
            try:
                prediction = np.asarray(model.predict(X))
                proba = np.asarray(model.predict_proba(X)) if want_proba else None
            except scorer.InvalidInput as exc:
                if exc.row is None or not 0 <= exc.row < len(pending):
                    for r in pending:
                        errors.write(_error_line(r.line, str(exc)))
                    counts.errors += len(pending)
                    return
                bad = pending.pop(exc.row)
                errors.write(_error_line(bad.line, _strip_row(str(exc))))
                counts.errors += 1
                continue
            out.write(writer.rows_bytes(pending, prediction, proba))
            counts.scored += len(pending)
            return

    for item in reader.rows(lines):
        counts.rows += 1
        if isinstance(item, Row):
            chunk.append(item)
            if len(chunk) >= chunk_rows:
                flush()
        else:
            errors.write(_error_line(*item))
            counts.errors += 1
    flush()
    return counts


def _strip_row(message: str) -> str:
    """The scorer names the row within the chunk ("row 3, feature 'x': ..."); the line number replaces it."""
    if message.startswith("row ") and ", " in message:
        return message.split(", ", 1)[1]
    if message.startswith("row ") and ": " in message:
        return message.split(": ", 1)[1]
    return message


# -- one input, scored in this invocation ------------------------------------------------------------

@dataclass
class BatchResult:
    key: str
    model: str
    status: str  # "scored" | "skipped" | "failed" | "handed_off" | "waiting"
    version: int | None = None
    rows: int = 0
    scored: int = 0
    errors: int = 0
    output_key: str | None = None
    errors_key: str | None = None
    manifest_key: str | None = None
    seconds: float = 0.0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchContext:
    s3: Any
    registry: Registry
    settings: Settings
    load_model: Callable[[Mapping[str, Any]], scorer.Model]
    sfn: Any = None
    remaining_ms: Callable[[], int] = field(default=lambda: 10**9)


def resolve_version(ctx: BatchContext, inp: layout.BatchInput, override: int | None = None) -> dict[str, Any]:
    """The version record to score ``inp`` with: key's v{N} folder, else ``override``, else latest."""
    version = inp.version or override
    if version is not None:
        record = ctx.registry.get_version(inp.model, version)
        if record is None:
            raise VersionNotFound(f"model {inp.model} has no version {version}")
        return record
    alias = ctx.registry.get_alias(inp.model, layout.LATEST, consistent=True)
    if alias is None:
        if not ctx.registry.model_known(inp.model):
            raise ModelNotFound(f"no model named {inp.model!r}")
        raise NoPublishedVersion(f"model {inp.model} has no published version yet")
    record = ctx.registry.get_version(inp.model, int(alias["version"]))
    if record is None:
        raise AliasNotFound(f"latest of {inp.model} points at a missing version")
    return record


def _read_header(s3: Any, bucket: str, key: str) -> tuple[list[str], int]:
    """The CSV header fields and the byte length of the header line (first line only)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        first = next(iter_lines(body, 64 * 1024), b"")
    finally:
        body.close()
    text = first.decode("utf-8", errors="strict").lstrip("\ufeff")
    fields = next(csv.reader([text]), [])
    if not fields:
        raise InputUnusable("the CSV input is empty (no header line)")
    return fields, len(first)


def score_input(ctx: BatchContext, inp: layout.BatchInput, record: dict[str, Any]) -> BatchResult:
    """Score one whole input object (the scheduled path) and write output, errors and manifest."""
    started = time.monotonic()
    started_at = _now()
    version = int(record["version"])
    bucket = ctx.settings.models_bucket
    result = BatchResult(inp.key, inp.model, "scored", version, output_key=inp.output_key(version),
                         errors_key=inp.errors_key(version), manifest_key=inp.manifest_key(version))
    model = ctx.load_model(record)
    head = ctx.s3.head_object(Bucket=bucket, Key=inp.key)
    obj = ctx.s3.get_object(Bucket=bucket, Key=inp.key, IfMatch=head["ETag"])
    lines = _decode(iter_lines(obj["Body"]), 1)
    header = None
    if inp.fmt == "csv":
        first = next(lines, None)
        if first is None:
            raise InputUnusable("the CSV input is empty (no header line)")
        header = next(csv.reader([first[1]]), [])
    try:
        counts = _score_to_s3(ctx, model, inp.fmt, header, lines, bucket, result.output_key or "",
                              result.errors_key or "", with_header=True)
    finally:
        obj["Body"].close()
    result.rows, result.scored, result.errors = counts.rows, counts.scored, counts.errors
    result.seconds = round(time.monotonic() - started, 3)
    _write_manifest(ctx, inp, record, result, started_at, {"etag": head["ETag"].strip('"'),
                                                           "size": head.get("ContentLength")})
    return result


def _score_to_s3(ctx: BatchContext, model: scorer.Model, fmt: str, header: list[str] | None,
                 lines: Iterable[tuple[int, str]], bucket: str, output_key: str, errors_key: str,
                 with_header: bool) -> Counts:
    """Score ``lines`` into two multipart uploads (outputs, errors); both are aborted on any failure."""
    reader = RowReader(fmt, model.features, header)
    writer = OutputWriter(fmt, header, _classes(model))
    out = MultipartWriter(ctx.s3, bucket, output_key, _content_type(fmt))
    errs = MultipartWriter(ctx.s3, bucket, errors_key, "application/x-ndjson")
    try:
        if with_header:
            out.write(writer.header_bytes())
        counts = score_rows(model, reader, writer, lines, out, errs, ctx.settings.batch_chunk_rows)
        out.close()
        errs.close()
    except BaseException:
        out.abort()
        errs.abort()
        raise
    return counts


def _classes(model: scorer.Model) -> list[Any] | None:
    if model.has("predict_proba") and model.classes is not None and np.ndim(model.classes) == 1:
        return [c.item() if isinstance(c, np.generic) else c for c in model.classes.tolist()]
    return None


def _content_type(fmt: str) -> str:
    return "text/csv" if fmt == "csv" else "application/x-ndjson"


def _write_manifest(ctx: BatchContext, inp: layout.BatchInput, record: dict[str, Any], result: BatchResult,
                    started_at: str, source: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    manifest = {
        "model": inp.model, "version": int(record["version"]), "sha256": record.get("sha256"),
        "input": {"key": inp.key, "format": inp.fmt, **source},
        "output_key": result.output_key, "errors_key": result.errors_key,
        "rows": result.rows, "scored": result.scored, "errors": result.errors,
        "started_at": started_at, "finished_at": _now(), "seconds": result.seconds, **(extra or {}),
    }
    ctx.s3.put_object(Bucket=ctx.settings.models_bucket, Key=inp.manifest_key(int(record["version"])),
                      Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
                      ContentType="application/json")


# -- the scheduled run --------------------------------------------------------------------------------

def list_inputs(s3: Any, bucket: str, model: str | None = None) -> Iterator[tuple[layout.BatchInput, int]]:
    prefix = layout.BATCH_INPUT + (f"{model}/" if model else "")
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            inp = layout.parse_batch_input(obj["Key"])
            if inp is None:
                if not obj["Key"].endswith("/"):
                    log.warning("ignoring batch input %s: not batch/input/{model}/[v{N}/]{name}.csv|.jsonl",
                                obj["Key"])
                continue
            yield inp, int(obj.get("Size", 0))


def run_scheduled(ctx: BatchContext, model: str | None = None, version: int | None = None,
                  min_remaining_ms: int = 60_000) -> list[BatchResult]:
    """Score every new input (or those of ``model``); one failing input does not stop the others."""
    results: list[BatchResult] = []
    bucket = ctx.settings.models_bucket
    for inp, size in list_inputs(ctx.s3, bucket, model):
        if ctx.remaining_ms() < min_remaining_ms:
            log.warning("stopping early to stay within the timeout; the next run continues")
            break
        try:
            record = resolve_version(ctx, inp, version)
        except ServiceError as exc:
            results.append(BatchResult(inp.key, inp.model, "waiting", reason=exc.message))
            continue
        v = int(record["version"])
        if object_exists(ctx.s3, bucket, inp.manifest_key(v)):
            results.append(BatchResult(inp.key, inp.model, "skipped", v, manifest_key=inp.manifest_key(v),
                                       reason="already scored with this version"))
            continue
        if size > ctx.settings.max_batch_file_bytes:
            results.append(hand_off(ctx, inp, v, size))
            continue
        try:
            results.append(score_input(ctx, inp, record))
        except (ServiceError, scorer.ModelsyncScorerError) as exc:
            log.warning("batch input %s failed: %s", inp.key, exc)
            results.append(BatchResult(inp.key, inp.model, "failed", v, reason=str(exc)))
    return results


def hand_off(ctx: BatchContext, inp: layout.BatchInput, version: int, size: int) -> BatchResult:
    """Start the state machine for a large input (execution name = input + version: started once)."""
    arn = ctx.settings.batch_state_machine_arn
    if not arn or ctx.sfn is None:
        return BatchResult(inp.key, inp.model, "failed", version,
                           reason=f"{size} bytes is over the limit of {ctx.settings.max_batch_file_bytes} "
                                  "and no state machine is configured")
    digest = hashlib.sha256(f"{inp.key}\n{version}".encode()).hexdigest()[:16]
    name = f"{inp.model[:40]}-v{version}-{digest}".replace(".", "_")
    try:
        ctx.sfn.start_execution(stateMachineArn=arn, name=name,
                                input=json.dumps({"model": inp.model, "key": inp.key, "version": version}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
    return BatchResult(inp.key, inp.model, "handed_off", version, reason=f"execution {name}")


# -- the state machine path: plan, chunk, finalize ---------------------------------------------------

def plan(ctx: BatchContext, request: dict[str, Any]) -> dict[str, Any]:
    """Count lines once and write the chunk events (line + byte ranges) as the Distributed Map's items."""
    inp = layout.parse_batch_input(str(request.get("key", "")))
    if inp is None or inp.model != request.get("model", inp.model if inp else None):
        raise InputUnusable(f"not a batch input key: {request.get('key')!r}")
    record = resolve_version(ctx, inp, optional_int(request.get("version")))
    version = int(record["version"])
    bucket = ctx.settings.models_bucket
    base = {"bucket": bucket, "model": inp.model, "key": inp.key, "version": version,
            "work_prefix": inp.work_prefix(version)}
    if object_exists(ctx.s3, bucket, inp.manifest_key(version)):
        return {**base, "skipped": True, "chunks": 0, "chunks_key": None}
    head = ctx.s3.head_object(Bucket=bucket, Key=inp.key)
    etag = head["ETag"].strip('"')
    lines_per_item = ctx.settings.batch_chunk_rows * LINES_PER_MAP_ITEM_FACTOR
    body = ctx.s3.get_object(Bucket=bucket, Key=inp.key, IfMatch=head["ETag"])["Body"]
    chunks: list[dict[str, Any]] = []
    first_data_line = 2 if inp.fmt == "csv" else 1
    line_no, offset = 0, 0
    start_line, start_byte = first_data_line, None
    for raw in iter_lines(body):
        line_no += 1
        if line_no == first_data_line:
            start_byte = offset
        offset += len(raw)
        if line_no >= first_data_line and line_no - start_line + 1 == lines_per_item:
            chunks.append(_chunk(inp, version, etag, len(chunks), start_line, line_no + 1, start_byte,
                                 offset))
            start_line, start_byte = line_no + 1, offset
    body.close()
    if start_byte is not None and line_no >= start_line:
        chunks.append(_chunk(inp, version, etag, len(chunks), start_line, line_no + 1, start_byte, offset))
    chunks_key = f"{inp.work_prefix(version)}chunks.json"
    ctx.s3.put_object(Bucket=bucket, Key=chunks_key, Body=json.dumps(chunks).encode(),
                      ContentType="application/json")
    return {**base, "skipped": False, "chunks": len(chunks), "chunks_key": chunks_key, "etag": etag,
            "lines": line_no, "planned_at": _now()}


def _chunk(inp: layout.BatchInput, version: int, etag: str, index: int, start_line: int, end_line: int,
           start_byte: int | None, end_byte: int) -> dict[str, Any]:
    return {"action": "chunk", "model": inp.model, "key": inp.key, "version": version, "etag": etag,
            "index": index, "start_line": start_line, "end_line": end_line, "start_byte": start_byte,
            "end_byte": end_byte}


def optional_int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise InputUnusable("version must be an integer")
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InputUnusable(f"version must be an integer, got {v!r}") from None


def _part_key(inp: layout.BatchInput, version: int, index: int, suffix: str) -> str:
    return f"{inp.work_prefix(version)}part-{index:05d}{suffix}"


def _byte_offset_of_line(s3: Any, bucket: str, key: str, line: int) -> int:
    """Scan from the start for the byte offset where ``line`` (1-based) begins."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    offset = 0
    try:
        for n, raw in enumerate(iter_lines(body), start=1):
            if n == line:
                return offset
            offset += len(raw)
    finally:
        body.close()
    return offset


def score_chunk(ctx: BatchContext, event: dict[str, Any]) -> dict[str, Any]:
    """Score lines [start_line, end_line) of an input into part files; returns the counts."""
    inp = layout.parse_batch_input(str(event.get("key", "")))
    if inp is None:
        raise InputUnusable(f"not a batch input key: {event.get('key')!r}")
    start_line, end_line = int(event["start_line"]), int(event["end_line"])
    first_data_line = 2 if inp.fmt == "csv" else 1
    if start_line < first_data_line or end_line < start_line:
        raise InputUnusable(f"bad line range [{start_line}, {end_line}) "
                            f"(data starts at line {first_data_line})")
    record = resolve_version(ctx, inp, optional_int(event.get("version")))
    version = int(record["version"])
    index = int(event.get("index", 0))
    bucket = ctx.settings.models_bucket
    model = ctx.load_model(record)
    header = _read_header(ctx.s3, bucket, inp.key)[0] if inp.fmt == "csv" else None
    start_byte = event.get("start_byte")
    if start_byte is None:
        start_byte = _byte_offset_of_line(ctx.s3, bucket, inp.key, start_line)
    pin = {"IfMatch": f'"{event["etag"]}"'} if event.get("etag") else {}
    end_byte = event.get("end_byte")
    rng = f"bytes={int(start_byte)}-" + (str(int(end_byte) - 1) if end_byte is not None else "")
    if end_byte is not None and int(end_byte) <= int(start_byte):
        lines_iter: Iterator[bytes] = iter(())
        body = None
    else:
        body = ctx.s3.get_object(Bucket=bucket, Key=inp.key, Range=rng, **pin)["Body"]
        lines_iter = iter_lines(body)
    limited = (pair for pair in _decode(lines_iter, start_line) if pair[0] < end_line)
    try:
        counts = _score_to_s3(ctx, model, inp.fmt, header, limited, bucket,
                              _part_key(inp, version, index, f".{inp.fmt}"),
                              _part_key(inp, version, index, ".errors.jsonl"), with_header=False)
    finally:
        if body is not None:
            body.close()
    summary = {"index": index, "start_line": start_line, "end_line": end_line, **asdict(counts)}
    ctx.s3.put_object(Bucket=bucket, Key=_part_key(inp, version, index, ".json"),
                      Body=json.dumps(summary).encode(), ContentType="application/json")
    return summary


def finalize(ctx: BatchContext, plan_result: dict[str, Any]) -> dict[str, Any]:
    """Join the parts into the final output and errors files, then write the manifest."""
    started = time.monotonic()
    inp = layout.parse_batch_input(str(plan_result["key"]))
    if inp is None:
        raise InputUnusable(f"not a batch input key: {plan_result.get('key')!r}")
    version = int(plan_result["version"])
    record = ctx.registry.get_version(inp.model, version)
    if record is None:
        raise VersionNotFound(f"model {inp.model} has no version {version}")
    bucket = ctx.settings.models_bucket
    n = int(plan_result.get("chunks") or 0)
    model = ctx.load_model(record)
    header = _read_header(ctx.s3, bucket, inp.key)[0] if inp.fmt == "csv" else None
    writer = OutputWriter(inp.fmt, header, _classes(model))
    totals = Counts()
    out = MultipartWriter(ctx.s3, bucket, inp.output_key(version), _content_type(inp.fmt))
    errs = MultipartWriter(ctx.s3, bucket, inp.errors_key(version), "application/x-ndjson")
    try:
        out.write(writer.header_bytes())
        for i in range(n):
            part = ctx.s3.get_object(Bucket=bucket, Key=_part_key(inp, version, i, ".json"))
            summary = json.loads(part["Body"].read())
            totals.add(Counts(summary["rows"], summary["scored"], summary["errors"]))
            for suffix, target in ((f".{inp.fmt}", out), (".errors.jsonl", errs)):
                body = ctx.s3.get_object(Bucket=bucket, Key=_part_key(inp, version, i, suffix))["Body"]
                try:
                    while block := body.read(READ_CHUNK):
                        target.write(block)
                finally:
                    body.close()
        out.close()
        errs.close()
    except BaseException:
        out.abort()
        errs.abort()
        raise
    result = BatchResult(inp.key, inp.model, "scored", version, totals.rows, totals.scored, totals.errors,
                         inp.output_key(version), inp.errors_key(version), inp.manifest_key(version),
                         seconds=round(time.monotonic() - started, 3))
    _write_manifest(ctx, inp, record, result, str(plan_result.get("planned_at") or _now()),
                    {"etag": plan_result.get("etag")}, {"chunks": n, "mode": "distributed"})
    return result.as_dict()
