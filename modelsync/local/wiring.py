"""Event sources: deliver what the template's function Events declare to the handlers, as Lambda would.

Only the event types template.yaml uses are emulated:

- ``S3``: the bucket's notification configuration sends ObjectCreated events to an internal SQS queue
  (moto generates the S3 event JSON); a poller completes each record to AWS's shape and invokes the
  function asynchronously (retried twice, like an async invocation).
- ``DynamoDB``: the table's stream is read with the DynamoDB Streams API and handed over in batches of
  BatchSize, honouring ``batchItemFailures``, MaximumRetryAttempts and the OnFailure (SQS) destination.
- ``Schedule``: fires at the template's rate/cron (or every ``--schedule-every`` seconds).
- ``Api``: the route table of the local API Gateway (see :mod:`modelsync.local.apigw`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import events as ev
from .apigw import Route
from .auth import route_auth
from .resources import API, StackNames
from .runtime import FunctionSpec, Invocation, Runtime
from .schedule import Schedule, parse_schedule

log = logging.getLogger("modelsync.local")

ClientFactory = Callable[[str], Any]
ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations (S3 events)
ASYNC_RETRY_DELAYS = (1.0, 2.0)  # AWS waits 1 then 2 minutes between async retries; locally seconds


@dataclass
class EventBinding:
    """One entry of a function's Events, properties resolved."""

    function: FunctionSpec
    name: str
    type: str
    properties: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.type}:{self.name}"


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]


def _batch_failures(result: Any) -> list[Any] | None:
    """``batchItemFailures`` from a partial-batch response; None when the response does not report any."""
    if isinstance(result, dict) and isinstance(result.get("batchItemFailures"), list):
        return result["batchItemFailures"]
    return None


def _failed_records_outcome(result: Any) -> str:
    failures = _batch_failures(result)
    return f"{len(failures)} failed records" if failures else "ok"


class Poller(threading.Thread):
    """A daemon thread looping ``step()`` until the stack stops."""

    interval = 0.25

    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = stop

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                busy = self.step()
            except Exception:
                if self.stop_event.is_set():
                    return
                log.warning("%s: poll failed", self.name, exc_info=True)
                busy = False
            if not busy:
                self.stop_event.wait(self.interval)

    def step(self) -> bool:
        """One poll; True if there was work (poll again at once)."""
        raise NotImplementedError


# -- S3 -------------------------------------------------------------------------------------------------
def s3_queue_configuration(binding: EventBinding, queue_arn: str) -> dict[str, Any]:
    """The bucket notification entry equivalent to the SAM S3 event (sent to our queue, not Lambda)."""
    cfg: dict[str, Any] = {
        "Id": f"{binding.function.logical_id}-{binding.name}",
        "QueueArn": queue_arn,
        "Events": [str(e) for e in _as_list(binding.properties.get("Events"))],
    }
    rules = ((binding.properties.get("Filter") or {}).get("S3Key") or {}).get("Rules")
    if rules:
        cfg["Filter"] = {
            "Key": {
                "FilterRules": [{"Name": str(r["Name"]).lower(), "Value": str(r["Value"])} for r in rules]
            }
        }
    return cfg


class S3Source(Poller):
    """Polls the internal queue that one S3 event's notifications go to; invokes with each record."""

    def __init__(
        self,
        binding: EventBinding,
        runtime: Runtime,
        clients: ClientFactory,
        queue_url: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(f"s3:{binding.function.logical_id}:{binding.name}", stop)
        self.binding = binding
        self.runtime = runtime
        self.queue_url = queue_url
        self.sqs = clients("sqs")
        self.s3 = clients("s3")
        self.max_retries = ASYNC_RETRIES

    def step(self) -> bool:
        resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = resp.get("Messages", [])
        for msg in messages:
            try:
                body = json.loads(msg["Body"])
            except ValueError:
                body = {}
            for record in body.get("Records", []) if isinstance(body, dict) else []:
                if self.stop_event.is_set():
                    return False
                self._deliver(record)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
        return bool(messages)

    def _version_id(self, record: dict[str, Any]) -> str | None:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        etag = str(record["s3"]["object"].get("eTag", "")).strip('"')
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
            if head.get("ETag", "").strip('"') == etag:
                return head.get("VersionId")
            versions = self.s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
            for v in versions:
                if v["Key"] == key and v.get("ETag", "").strip('"') == etag:
                    return v.get("VersionId")
        except Exception:  # noqa: BLE001 - the object may be gone already: no version id, as for deletes
            return None
        return None

    def _deliver(self, record: dict[str, Any]) -> None:
        record = ev.complete_s3_record(record, version_id=self._version_id(record))
        event = {"Records": [record]}
        fn = self.binding.function
        trigger = f"{self.binding.label} {record['s3']['object']['key']}"
        for attempt in range(self.max_retries + 1):
            if attempt and self.stop_event.wait(
                ASYNC_RETRY_DELAYS[min(attempt, len(ASYNC_RETRY_DELAYS)) - 1]
            ):
                return
            if self.runtime.invoke(
                fn, event, trigger=trigger if not attempt else f"{trigger} retry {attempt}"
            ).ok:
                return
        log.warning("%s: event dropped after %d retries", fn.logical_id, self.max_retries)


# -- DynamoDB Streams -----------------------------------------------------------------------------------
class StreamSource(Poller):
    """Reads a table's stream shard by shard and invokes with batches, like an event source mapping."""

    def __init__(
        self,
        binding: EventBinding,
        runtime: Runtime,
        clients: ClientFactory,
        stream_arn: str,
        stop: threading.Event,
        send_failure: Callable[[str, dict[str, Any]], None],
    ) -> None:
        super().__init__(f"ddb:{binding.function.logical_id}:{binding.name}", stop)
        p = binding.properties
        self.binding = binding
        self.runtime = runtime
        self.stream_arn = stream_arn
        self.streams = clients("dynamodbstreams")
        self.batch_size = max(1, min(int(p.get("BatchSize", 100)), 10000))
        self.max_retries = int(p.get("MaximumRetryAttempts", -1))
        self.bisect = str(p.get("BisectBatchOnFunctionError", "false")).lower() == "true"
        self.report_failures = "ReportBatchItemFailures" in _as_list(p.get("FunctionResponseTypes"))
        self.starting = str(p.get("StartingPosition", "LATEST")).upper()
        self.on_failure = ((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.send_failure = send_failure
        self.window = float(p.get("MaximumBatchingWindowInSeconds", 0) or 0)
        self.iterators: dict[str, str | None] = {}
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self._buffered_since: dict[str, float] = {}
        self._last_discovery = 0.0
        self._discover(initial=True)

    def _discover(self, initial: bool = False) -> None:
        self._last_discovery = time.monotonic()
        desc = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in desc.get("Shards", []):
            sid = shard["ShardId"]
            if sid in self.iterators:
                continue
            position = self.starting if initial else "TRIM_HORIZON"
            if position not in ("TRIM_HORIZON", "LATEST"):
                position = "TRIM_HORIZON"
            it = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=sid, ShardIteratorType=position
            )["ShardIterator"]
            self.iterators[sid] = it
            self.buffers[sid] = []

    def step(self) -> bool:
        if time.monotonic() - self._last_discovery > 5:
            self._discover()
        busy = False
        for sid in list(self.iterators):
            buf = self.buffers[sid]
            it = self.iterators[sid]
            if len(buf) < self.batch_size and it:
                resp = self.streams.get_records(ShardIterator=it, Limit=self.batch_size - len(buf))
                buf.extend(ev.stream_record(r, self.stream_arn) for r in resp.get("Records", []))
                self.iterators[sid] = resp.get("NextShardIterator")
            if not buf:
                continue
            since = self._buffered_since.setdefault(sid, time.monotonic())
            if len(buf) < self.batch_size and time.monotonic() - since < self.window:
                continue  # gather up to BatchSize records for at most MaximumBatchingWindowInSeconds
            self._process(sid, buf)
            if buf:
                self._buffered_since[sid] = time.monotonic()
            else:
                self._buffered_since.pop(sid, None)
            busy = True
        return busy

    def _process(self, shard_id: str, buf: list[dict[str, Any]]) -> None:
        fn = self.binding.function
        batch = buf[: self.batch_size]
        attempts = 0
        while batch and not self.stop_event.is_set():
            inv = self.runtime.invoke(
                fn,
                {"Records": batch},
                trigger=f"{self.binding.label} batch of {len(batch)}",
                outcome_of=_failed_records_outcome if self.report_failures else None,
            )
            attempts += 1
            first_failed = self._first_failed(inv, batch)
            if first_failed is None:
                del buf[: len(batch)]
                return
            # records before the first failure are checkpointed; retry from it
            del buf[:first_failed]
            batch = batch[first_failed:]
            if not inv.ok and self.bisect and len(batch) > 1:
                batch = batch[: len(batch) // 2]
            if 0 <= self.max_retries < attempts:
                self._give_up(shard_id, batch, attempts, inv)
                del buf[: len(batch)]
                return
            if self.stop_event.wait(min(0.2 * 2**attempts, 5.0)):
                return

    def _first_failed(self, inv: Invocation, batch: list[dict[str, Any]]) -> int | None:
        """Index to retry from, or None when the whole batch succeeded."""
        if not inv.ok:
            return 0
        if not self.report_failures:
            return None
        failures = _batch_failures(inv.result)
        if not failures:
            return None
        seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
        indices = []
        for f in failures:
            ident = f.get("itemIdentifier") if isinstance(f, dict) else None
            if not ident or ident not in seqs:
                return 0  # an unusable identifier fails the whole batch, as in Lambda
            indices.append(seqs.index(ident))
        return min(indices)

    def _give_up(self, shard_id: str, batch: list[dict[str, Any]], attempts: int, inv: Invocation) -> None:
        fn = self.binding.function
        if not self.on_failure:
            log.warning(
                "%s: %d records skipped after %d attempts (no OnFailure destination)",
                fn.logical_id,
                len(batch),
                attempts,
            )
            return
        record = ev.stream_failure_record(
            function_arn=fn.arn,
            stream_arn=self.stream_arn,
            shard_id=shard_id,
            records=batch,
            attempts=attempts,
            condition="RetryAttemptsExhausted",
            error=inv.error,
        )
        self.send_failure(str(self.on_failure), record)
        log.info(
            "%s: %d records sent to %s after %d attempts",
            fn.logical_id,
            len(batch),
            self.on_failure,
            attempts,
        )


# -- Schedules ------------------------------------------------------------------------------------------
class ScheduleSource(threading.Thread):
    """Fires the function on its schedule with EventBridge's Scheduled Event."""

    def __init__(
        self,
        binding: EventBinding,
        runtime: Runtime,
        schedule: Schedule,
        rule_name: str,
        region: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"schedule:{binding.function.logical_id}:{binding.name}", daemon=True)
        self.binding = binding
        self.runtime = runtime
        self.schedule = schedule
        self.rule_name = rule_name
        self.region = region
        self.stop_event = stop

    def run(self) -> None:
        while True:
            now = _dt.datetime.now(_dt.UTC)
            delay = (self.schedule.next_after(now) - now).total_seconds()
            if self.stop_event.wait(max(0.0, delay)):
                return
            event = ev.scheduled_event(region=self.region, rule_name=self.rule_name)
            self.runtime.invoke(
                self.binding.function, event, trigger=f"{self.binding.label} {self.schedule.expression}"
            )


def schedule_for(binding: EventBinding, every: float | None) -> Schedule | None:
    """The schedule of a Schedule event (None when disabled); ``every`` overrides it."""
    p = binding.properties
    if str(p.get("Enabled", "true")).lower() == "false":
        return None
    expression = str(p.get("Schedule") or "")
    if every is not None:
        return Schedule(f"every {every:g}s (was {expression})", every=every)
    return parse_schedule(expression)


def api_routes(functions: Mapping[str, FunctionSpec], names: StackNames) -> list[Route]:
    """The API Gateway route table: every function's ``Api`` events, with their RestApi's stage.

    ``modelsync local`` serves it over HTTP; the integration tests hand events built from it to the
    handlers in-process."""
    resolver = names.resolver()
    stage_of: dict[Any, tuple[str, str]] = {}
    api_auth: dict[Any, Any] = {}
    for lid in names.template.of_type(API):
        props = names.template.properties(lid)
        stage = resolver.resolve(props.get("StageName", "Prod"))
        stage_of[names.refs.get(lid)] = (str(stage), str(names.refs.get(lid)))
        api_auth[names.refs.get(lid)] = resolver.resolve(props.get("Auth") or {})
    routes = []
    for fn in functions.values():
        for name, event in fn.events.items():
            if event.get("Type") != "Api":
                continue
            p = event.get("Properties") or {}
            stage, api_id = stage_of.get(p.get("RestApiId"), ("Prod", "local"))
            routes.append(Route(method=str(p["Method"]), path=str(p["Path"]), function=fn, event_name=name,
                                stage=stage, api_id=api_id,
                                auth=route_auth(api_auth.get(p.get("RestApiId")), p.get("Auth"))))
    return routes
