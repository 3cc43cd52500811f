"""Batch scoring of ``batch/input/{model}/[v{N}/]{name}.csv|.jsonl`` into ``batch/output/{model}/``.

* The scheduled run lists the inputs, picks the version (the ``v{N}`` folder, else an event parameter,
  else ``latest``), skips inputs already scored with that version (their manifest exists), scores inputs
  up to ``max_batch_file_bytes`` itself and hands larger ones to the state machine.
* Tables are read and written by ``scorer.tabular``, as in every other path (docs/model-format.md,
  "Tabular files"): the S3 body is streamed (RFC 4180, quoted line breaks included), rows are scored in
  chunks of ``batch_chunk_rows`` and written through a multipart upload with a bounded buffer, so
  memory does not grow with the file.
* Outputs, the one shape: the input columns (CSV cells, or the JSON object's keys) + ``prediction``
  (``prediction_<i>`` for several outputs) + ``proba_<class>`` per class for classifiers with
  probabilities; or the columns of the methods named (:func:`batch_outputs`: an ``outputs=`` folder in
  the key, else the event's ``outputs``, else ``BATCH_OUTPUTS``), a method the model lacks being the
  input's error report. Rows that cannot be scored go to ``...errors.jsonl`` (``{"line", "reason"}``, the line
  where the record starts, in line order) while the others are scored. ``...manifest.json`` is written
  last: its presence marks the input done for that version.
* The state machine path: ``plan`` reads the records once and writes chunk events cut where records
  start (line and byte ranges) to ``batch/work/``; each ``chunk`` event scores its byte range into part
  files; ``finalize`` joins the parts (multipart upload) and writes the manifest. A chunk event also
  works with only ``{model, key, start_line, end_line}`` (the byte offset is then found by scanning).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

import scorer
from scorer import tabular

from . import layout
from .config import Settings
from .errors import AliasNotFound, ModelNotFound, NoPublishedVersion, ServiceError, VersionNotFound
from .registry import Registry

log = logging.getLogger(__name__)

PART_BYTES = 8 * 1024 * 1024  # multipart part size (S3 minimum is 5 MiB)
ROWS_PER_MAP_ITEM_FACTOR = 10  # a Distributed Map item scores this many chunks of batch_chunk_rows
READ_CHUNK = 1024 * 1024
MAX_ERROR_TEXT = 300
READ_AHEAD_DEPTH = 1  # parsed chunks waiting for the scorer (besides the one parsed and the one scored)
READ_AHEAD_BYTES = 32 * 1024 * 1024  # input bytes of the chunks handed over before the next is parsed
_POLL_SECONDS = 0.05  # how often a worker waiting on a full queue looks whether it should stop

T = TypeVar("T")


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
    """Write an S3 object in parts with a bounded buffer; small objects become one PutObject.

    A full part is uploaded by one background thread while the next one fills (the upload is network
    time the scoring need not wait for); at most one part is in flight, so memory stays two parts. An
    upload's error is raised by the next :meth:`write` that fills a part, or by :meth:`close`.
    """

    def __init__(self, s3: Any, bucket: str, key: str, content_type: str,
                 part_bytes: int = PART_BYTES) -> None:
        self.s3, self.bucket, self.key, self.content_type = s3, bucket, key, content_type
        self.part_bytes = part_bytes
        self._buf = io.BytesIO()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._next_part = 1
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[dict[str, Any]] | None = None
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
        body, number = self._buf.getvalue(), self._next_part
        self._buf = io.BytesIO()
        self._next_part += 1
        self._wait()  # the previous part first: one in flight
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-upload")
        self._pending = self._pool.submit(self._upload, self._upload_id, number, body)

    def _upload(self, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        resp = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=upload_id,
                                   PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": resp["ETag"]}

    def _wait(self) -> None:
        """Wait for the part in flight, if any, and record it (its upload's error is raised here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._parts.append(pending.result())

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self) -> None:
        if self._upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._buf.getvalue(),
                               ContentType=self.content_type)
            return
        try:
            if self._buf.tell():
                self._flush_part()
            self._wait()
        finally:
            self._stop()
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                          MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.exception()  # let it end; its outcome no longer matters
        self._stop()
        if self._upload_id is not None:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            except ClientError:
                log.warning("could not abort the multipart upload of %s", self.key)


def read_ahead(items: Iterator[T], depth: int = READ_AHEAD_DEPTH, size: Callable[[T], int] | None = None,
               max_ahead: int = READ_AHEAD_BYTES) -> Iterator[T]:
    """``items``, computed by one worker thread up to ``depth`` items ahead of the consumer.

    Why: the batch's reading and parsing (S3 reads, numpy's text parser) and its scoring (numpy calls
    that release the GIL on large arrays, as a forest's traversal does) then overlap on the function's
    cores. Memory stays bounded whatever the input size: at most ``depth`` items wait, and with
    ``size`` (an item's weight, e.g. its input bytes) the worker starts the next item only while the
    items handed over and not yet done with (the one the consumer holds included) weigh at most
    ``max_ahead``, so chunks of wide rows are not held three at a time. The items come in order; an
    exception of ``items`` is raised here at its place in the order. Closing this generator
    (:func:`scorer.tabular.score_table` does on its way out, a failure included) stops the worker and
    waits for it, so the input stream is no longer read once the caller goes on.
    """
    box: queue.Queue[tuple[bool, Any, int]] = queue.Queue(maxsize=max(depth, 1))  # (done, item|error, size)
    stop = threading.Event()
    room = threading.Condition()
    ahead = [0]  # the weight handed over and not yet done with

    def put(message: tuple[bool, Any, int]) -> bool:
        while not stop.is_set():
            try:
                box.put(message, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def wait_for_room() -> bool:
        with room:
            while ahead[0] > max_ahead and not stop.is_set():
                room.wait(_POLL_SECONDS)
        return not stop.is_set()

    def work() -> None:
        try:
            while wait_for_room():
                try:
                    item = next(items)
                except StopIteration:
                    put((True, None, 0))
                    return
                weight = size(item) if size is not None else 0
                with room:
                    ahead[0] += weight
                if not put((False, item, weight)):
                    return
        except BaseException as exc:  # noqa: BLE001  # handed to the consumer, raised there
            put((True, exc, 0))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="batch-read-ahead", daemon=True)
    worker.start()
    held = 0
    try:
        while True:
            with room:  # the item yielded last is done with once the next one is asked for
                ahead[0] -= held
                room.notify()
            done, value, held = box.get()
            if done:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        worker.join()


def _chunk_bytes(item: tabular.Parsed) -> int:
    return item.size


def _read_ahead(items: Iterator[tabular.Parsed]) -> Iterator[tabular.Parsed]:
    """The batch's read-ahead of parsed chunks, weighed by their input bytes."""
    return read_ahead(items, size=_chunk_bytes)


def _error_line(bad: tabular.BadRow) -> bytes:
    row = bad.as_dict()
    row["reason"] = row["reason"][:MAX_ERROR_TEXT]
    return json.dumps(row).encode() + b"\n"


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
    logger: logging.Logger = log  # where "batch progress" lines go (one per chunk scored)


class ProgressLog:
    """The ``progress`` callback of a scored table: one ``batch progress`` log line per chunk, with rows
    done, rows/s and bytes read of the total (``modelsync invoke`` turns these lines into a bar)."""

    def __init__(self, logger: logging.Logger, key: str, bytes_total: int | None,
                 first_byte: int = 0) -> None:
        self.logger, self.key, self.bytes_total, self.first_byte = logger, key, bytes_total, first_byte
        self.started = time.monotonic()

    def __call__(self, counts: tabular.Counts, offset: int) -> None:
        seconds = max(time.monotonic() - self.started, 1e-9)
        self.logger.info("batch progress", extra={
            "key": self.key, "rows": counts.rows, "scored": counts.scored, "errors": counts.errors,
            "rows_per_s": round(counts.rows / seconds, 1), "bytes_read": offset - self.first_byte,
            "bytes_total": self.bytes_total, "seconds": round(seconds, 3)})


def batch_outputs(ctx: BatchContext, inp: layout.BatchInput, requested: Any = None) -> list[str] | None:
    """The methods whose columns an input gets (None: the default columns): the key's ``outputs=`` folder,
    else ``requested`` (the event's ``outputs``: a list or comma-separated text), else the function's
    ``BATCH_OUTPUTS`` (the template's ``BatchOutputs``)."""
    if requested is not None and not (isinstance(requested, str) or (
            isinstance(requested, list) and all(isinstance(m, str) for m in requested))):
        raise InputUnusable(f"outputs must be a list of method names or comma-separated text, "
                            f"got {requested!r}")
    for source in (inp.outputs, requested, ctx.settings.batch_outputs):
        methods = tabular.parse_outputs(source)
        if methods is not None:
            return methods
    return None


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


def _read_header(s3: Any, bucket: str, key: str) -> list[str]:
    """The CSV header (its first record), read by the one table reader."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        header = tabular.TableReader(body, "csv", read_bytes=64 * 1024).header
    except scorer.InvalidInput as exc:
        raise InputUnusable(str(exc)) from None
    finally:
        body.close()
    return header or []


def score_input(ctx: BatchContext, inp: layout.BatchInput, record: dict[str, Any],
                outputs: list[str] | None = None) -> BatchResult:
    """Score one whole input object (the scheduled path) and write output, errors and manifest;
    ``outputs``: the methods written (:func:`batch_outputs`; None: the default columns)."""
    started = time.monotonic()
    started_at = _now()
    version = int(record["version"])
    bucket = ctx.settings.models_bucket
    result = BatchResult(inp.key, inp.model, "scored", version, output_key=inp.output_key(version),
                         errors_key=inp.errors_key(version), manifest_key=inp.manifest_key(version))
    model = ctx.load_model(record)
    head = ctx.s3.head_object(Bucket=bucket, Key=inp.key)
    obj = ctx.s3.get_object(Bucket=bucket, Key=inp.key, IfMatch=head["ETag"])
    try:
        counts = _score_to_s3(ctx, model, lambda: tabular.TableReader(obj["Body"], inp.fmt), inp.fmt, bucket,
                              result.output_key or "", result.errors_key or "", with_header=True,
                              outputs=outputs,
                              progress=ProgressLog(ctx.logger, inp.key, head.get("ContentLength")))
    finally:
        obj["Body"].close()
    result.rows, result.scored, result.errors = counts.rows, counts.scored, counts.errors
    result.seconds = round(time.monotonic() - started, 3)
    _write_manifest(ctx, inp, record, result, started_at, {"etag": head["ETag"].strip('"'),
                                                           "size": head.get("ContentLength")},
                    _outputs_field(outputs))
    return result


def _outputs_field(outputs: list[str] | None) -> dict[str, Any]:
    """The manifest's record of the methods written (absent for the default columns)."""
    return {} if outputs is None else {"outputs": outputs}


def _score_to_s3(ctx: BatchContext, model: scorer.Model, open_reader: Callable[[], tabular.TableReader],
                 fmt: str, bucket: str, output_key: str, errors_key: str,
                 with_header: bool, outputs: list[str] | None = None,
                 progress: ProgressLog | None = None) -> tabular.Counts:
    """Score a table into two multipart uploads (outputs, errors); both are aborted on any failure.

    Bad rows go to the errors file in line order; the whole input fails only when it cannot be read as
    a table at all (no header, a missing feature column).
    """
    out = MultipartWriter(ctx.s3, bucket, output_key, _content_type(fmt))
    errs = MultipartWriter(ctx.s3, bucket, errors_key, "application/x-ndjson")
    try:
        try:
            reader = open_reader()
            counts = tabular.score_table(model, reader, out, proba=None, outputs=outputs,
                                         write_header=with_header,
                                         on_error=lambda bad: errs.write(_error_line(bad)),
                                         chunk_rows=min(ctx.settings.batch_chunk_rows, model.max_rows()),
                                         progress=progress, read_ahead=_read_ahead)
        except scorer.InvalidInput as exc:
            raise InputUnusable(str(exc)) from None
        out.close()
        errs.close()
    except BaseException:
        out.abort()
        errs.abort()
        raise
    return counts


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
                  min_remaining_ms: int = 60_000, outputs: Any = None) -> list[BatchResult]:
    """Score every new input (or those of ``model``); one failing input does not stop the others.
    ``outputs``: the event's (see :func:`batch_outputs`)."""
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
        try:
            methods = batch_outputs(ctx, inp, outputs)
            if methods is not None:  # a method the model lacks: this input's error report, before any work
                tabular.output_methods(ctx.load_model(record), methods)
            if size > ctx.settings.max_batch_file_bytes:
                results.append(hand_off(ctx, inp, v, size, methods))
            else:
                results.append(score_input(ctx, inp, record, methods))
        except (ServiceError, scorer.ModelsyncScorerError) as exc:
            log.warning("batch input %s failed: %s", inp.key, exc)
            results.append(input_failed(ctx, inp, v, str(exc)))
        except Exception as exc:  # any failure of one input (S3, recursion, a model bug) is that input's
            log.exception("batch input %s failed", inp.key)  # report; the run goes on with the next ones
            results.append(input_failed(ctx, inp, v, f"{type(exc).__name__}: {exc}"))
    return results


def input_failed(ctx: BatchContext, inp: layout.BatchInput, version: int, reason: str) -> BatchResult:
    """The result of an input that could not be scored, and its error report (``...errors.jsonl`` with
    one ``{"line": null, "reason"}`` line). No manifest: the next run tries the input again."""
    reason = reason[:MAX_ERROR_TEXT]
    errors_key: str | None = inp.errors_key(version)
    try:
        ctx.s3.put_object(Bucket=ctx.settings.models_bucket, Key=errors_key,
                          Body=json.dumps({"line": None, "reason": f"input not scored: {reason}"}).encode()
                          + b"\n", ContentType="application/x-ndjson")
    except ClientError:
        log.warning("could not write the error report %s", errors_key)
        errors_key = None
    return BatchResult(inp.key, inp.model, "failed", version, errors_key=errors_key, reason=reason)


def hand_off(ctx: BatchContext, inp: layout.BatchInput, version: int, size: int,
             outputs: list[str] | None = None) -> BatchResult:
    """Start the state machine for a large input (execution name = input + version: started once)."""
    arn = ctx.settings.batch_state_machine_arn
    if not arn or ctx.sfn is None:
        return BatchResult(inp.key, inp.model, "failed", version,
                           reason=f"{size} bytes is over the limit of {ctx.settings.max_batch_file_bytes} "
                                  "and no state machine is configured")
    digest = hashlib.sha256(f"{inp.key}\n{version}".encode()).hexdigest()[:16]
    name = f"{inp.model[:40]}-v{version}-{digest}".replace(".", "_")
    try:
        request = {"model": inp.model, "key": inp.key, "version": version, **_outputs_field(outputs)}
        ctx.sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(request))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
    return BatchResult(inp.key, inp.model, "handed_off", version, reason=f"execution {name}")


# -- the state machine path: plan, chunk, finalize ---------------------------------------------------

def plan(ctx: BatchContext, request: dict[str, Any]) -> dict[str, Any]:
    """Read the records once and write the chunk events (line + byte ranges, cut where records start)
    as the Distributed Map's items."""
    inp = layout.parse_batch_input(str(request.get("key", "")))
    if inp is None or inp.model != request.get("model", inp.model if inp else None):
        raise InputUnusable(f"not a batch input key: {request.get('key')!r}")
    record = resolve_version(ctx, inp, optional_int(request.get("version")))
    version = int(record["version"])
    outputs = batch_outputs(ctx, inp, request.get("outputs"))
    if outputs is not None:
        try:
            tabular.output_methods(ctx.load_model(record), outputs)
        except scorer.MethodNotSupported as exc:
            input_failed(ctx, inp, version, str(exc))  # the error report, as the scheduled run writes it
            raise InputUnusable(str(exc)) from None
    bucket = ctx.settings.models_bucket
    base = {"bucket": bucket, "model": inp.model, "key": inp.key, "version": version,
            "work_prefix": inp.work_prefix(version), **_outputs_field(outputs)}
    if object_exists(ctx.s3, bucket, inp.manifest_key(version)):
        return {**base, "skipped": True, "chunks": 0, "chunks_key": None}
    head = ctx.s3.head_object(Bucket=bucket, Key=inp.key)
    etag = head["ETag"].strip('"')
    rows_per_item = ctx.settings.batch_chunk_rows * ROWS_PER_MAP_ITEM_FACTOR
    body = ctx.s3.get_object(Bucket=bucket, Key=inp.key, IfMatch=head["ETag"])["Body"]
    chunks: list[dict[str, Any]] = []
    try:
        try:
            reader = tabular.TableReader(body, inp.fmt)
            starts = [(line, offset) for i, (line, offset) in enumerate(reader.boundaries())
                      if i % rows_per_item == 0]
        except scorer.InvalidInput as exc:
            raise InputUnusable(str(exc)) from None
        line_no, size = reader.lines, reader.offset
    finally:
        body.close()
    # items cut where records start (never inside a quoted line break): [start, next start)
    ends = [*starts[1:], (line_no + 1, size)]
    for (start_line, start_byte), (end_line, end_byte) in zip(starts, ends, strict=True):
        chunks.append({**_chunk(inp, version, etag, len(chunks), start_line, end_line, start_byte, end_byte),
                       **_outputs_field(outputs)})
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


def _byte_offset_of_line(s3: Any, bucket: str, key: str, fmt: str, line: int) -> int:
    """Scan from the start for the byte offset of the first record starting on or after ``line``."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        reader = tabular.TableReader(body, fmt)
        for start, offset in reader.boundaries():
            if start >= line:
                return offset
        return reader.offset
    finally:
        body.close()


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
    outputs = batch_outputs(ctx, inp, event.get("outputs"))
    index = int(event.get("index", 0))
    bucket = ctx.settings.models_bucket
    model = ctx.load_model(record)
    header = _read_header(ctx.s3, bucket, inp.key) if inp.fmt == "csv" else None
    start_byte = event.get("start_byte")
    if start_byte is None:
        start_byte = _byte_offset_of_line(ctx.s3, bucket, inp.key, inp.fmt, start_line)
    pin = {"IfMatch": f'"{event["etag"]}"'} if event.get("etag") else {}
    end_byte = event.get("end_byte")
    rng = f"bytes={int(start_byte)}-" + (str(int(end_byte) - 1) if end_byte is not None else "")
    body: Any = io.BytesIO()  # an empty range: nothing to read
    if end_byte is None or int(end_byte) > int(start_byte):
        body = ctx.s3.get_object(Bucket=bucket, Key=inp.key, Range=rng, **pin)["Body"]

    def reader() -> tabular.TableReader:
        return tabular.TableReader(body, inp.fmt, header=header, first_line=start_line,
                                   offset=int(start_byte), end_line=end_line)

    try:
        size = int(end_byte) - int(start_byte) if end_byte is not None else None
        counts = _score_to_s3(ctx, model, reader, inp.fmt, bucket,
                              _part_key(inp, version, index, f".{inp.fmt}"),
                              _part_key(inp, version, index, ".errors.jsonl"), with_header=False,
                              outputs=outputs,
                              progress=ProgressLog(ctx.logger, inp.key, size, int(start_byte)))
    finally:
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
    header = _read_header(ctx.s3, bucket, inp.key) if inp.fmt == "csv" else None
    outputs = batch_outputs(ctx, inp, plan_result.get("outputs"))
    writer = tabular.TableWriter(inp.fmt, header, tabular.output_columns(model, proba=None, outputs=outputs))
    totals = tabular.Counts()
    out = MultipartWriter(ctx.s3, bucket, inp.output_key(version), _content_type(inp.fmt))
    errs = MultipartWriter(ctx.s3, bucket, inp.errors_key(version), "application/x-ndjson")
    try:
        out.write(writer.header_bytes())
        for i in range(n):
            part = ctx.s3.get_object(Bucket=bucket, Key=_part_key(inp, version, i, ".json"))
            summary = json.loads(part["Body"].read())
            totals.add(tabular.Counts(summary["rows"], summary["scored"], summary["errors"]))
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
                    {"etag": plan_result.get("etag")},
                    {"chunks": n, "mode": "distributed", **_outputs_field(outputs)})
    return result.as_dict()
