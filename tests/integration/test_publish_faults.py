"""Publish under failure: every upload ends in one version, or one report + one ``upload.rejected`` event,
with no orphaned document, whichever AWS call of the publish path fails and how.

Faults are injected on the moto clients through botocore's event system: a ``before-call`` handler that
returns a response short-circuits the request (the error a call gets after botocore's own retries); an
``after-call`` handler that raises models a read timeout on a request the service did apply. Time is a
fake clock (Publish's retry sleeps advance it), so a "persistent" fault lasts exactly the retry budget.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from integration_support import renamed

from modelsync.service.config import Settings
from modelsync.service.publish import PublishOutcome, RetryPolicy, Upload, publish_upload
from modelsync.service.registry import Registry

POLICY = RetryPolicy(budget_seconds=10.0, first_delay=0.5, max_delay=2.0, cleanup_seconds=10.0)
WRITES = {"PutItem", "UpdateItem", "TransactWriteItems", "PutObject", "DeleteObject"}


@dataclass(frozen=True)
class Fault:
    name: str
    code: str
    status: int
    persistent: bool = False  # lasts the whole retry budget (else: this one call)
    lost_response: bool = False  # the call is applied, then its response times out
    writes_only: bool = False


DYNAMODB_FAULTS = [
    Fault("throughput-once", "ProvisionedThroughputExceededException", 400),
    Fault("throughput-persistent", "ProvisionedThroughputExceededException", 400, persistent=True),
    Fault("throttling-persistent", "ThrottlingException", 400, persistent=True),
    Fault("5xx-once", "InternalServerError", 500),
    Fault("5xx-persistent", "InternalServerError", 500, persistent=True),
    Fault("read-timeout-after-write", "", 0, lost_response=True),
    Fault("read-timeout-persistent", "", 0, persistent=True, lost_response=True),
    Fault("conditional-check", "ConditionalCheckFailedException", 400, writes_only=True),
    Fault("item-too-large", "ValidationException", 400, writes_only=True),
]
S3_FAULTS = [
    Fault("slowdown-persistent", "SlowDown", 503, persistent=True),
    Fault("5xx-once", "InternalError", 500),
    Fault("read-timeout-after-write", "", 0, lost_response=True),
    Fault("access-denied", "AccessDenied", 403),
]


@dataclass
class FakeTime:
    now: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Injector:
    """Counts the calls of the publish path and fails the ``at``-th one (and, persistent, the same operation
    after it until the retry budget is spent)."""

    time: FakeTime
    calls: list[str] = field(default_factory=list)
    fault: Fault | None = None
    at: int = -1
    target: str | None = None
    active: bool = False

    def before(self, event_name: str, **_: Any) -> Any:
        if not self.active:
            return None
        op = event_name.split(".", 1)[1]  # "dynamodb.PutItem"
        self.calls.append(op)
        if not self._hit(op) or self.fault is None or self.fault.lost_response:
            return None
        if self.fault.code == "TransactionCanceledException" or (
                op.endswith("TransactWriteItems") and self.fault.code == "ConditionalCheckFailedException"):
            error = {"Code": "TransactionCanceledException", "Message": "injected",
                     "CancellationReasons": [{"Code": "ConditionalCheckFailed"}]}
        else:
            message = ("Item size has exceeded the maximum allowed size" if self.fault.code ==
                       "ValidationException" else "injected")
            error = {"Code": self.fault.code, "Message": message}
        return (AWSResponse("https://injected", self.fault.status, {}, None),
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": self.fault.status}})

    def after(self, event_name: str, **_: Any) -> None:
        if not self.active or self.fault is None or not self.fault.lost_response:
            return
        if self._hit(event_name.split(".", 1)[1], counted=True):
            raise ReadTimeoutError(endpoint_url="https://injected")

    def _hit(self, op: str, counted: bool = False) -> bool:
        index = len(self.calls) - 1  # the call just counted in before()
        if self.fault is None:
            return False
        if index == self.at:
            self.target = op
            return True
        return self.fault.persistent and op == self.target and self.time.now < POLICY.budget_seconds


@pytest.fixture
def injector(aws: Any) -> Iterator[Injector]:
    inj = Injector(FakeTime())
    for client in (aws.s3, aws.ddb):
        client.meta.events.register("before-call", inj.before, unique_id="publish-faults-before")
        client.meta.events.register("after-call", inj.after, unique_id="publish-faults-after")
    yield inj
    for client in (aws.s3, aws.ddb):
        client.meta.events.unregister("before-call", unique_id="publish-faults-before")
        client.meta.events.unregister("after-call", unique_id="publish-faults-after")


def _upload(aws: Any, model: str, body: bytes, filename: str = "model.json") -> Upload:
    key = f"incoming/{model}/{filename}"
    resp = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body)
    return Upload(aws.bucket, key, resp["ETag"].strip('"'), resp.get("VersionId"))


def _run(aws: Any, injector: Injector, upload: Upload, settings: Settings) -> tuple[PublishOutcome, int]:
    """Publish as Lambda would: an invocation that raises is retried (up to twice), without the fault."""
    raised = 0
    for _ in range(3):
        registry = Registry(aws.ddb, settings.registry_table)
        try:
            return publish_upload(aws.s3, registry, settings, upload, retry=POLICY,
                                  clock=injector.time.clock, sleep=injector.time.sleep), raised
        except Exception:  # noqa: BLE001 - Lambda retries whatever the invocation raised
            raised += 1
            injector.fault = None
    raise AssertionError(f"{upload.key}: still failing after Lambda's retries")


def _rejected_events(aws: Any, handler: Callable[[str], Any], lambda_context: Any) -> Counter[str]:
    sink = aws.subscribe_queue()
    response = handler("NotifyFunction").lambda_handler(aws.stream_event(), lambda_context)
    assert response["batchItemFailures"] == []
    rejected = [m for m in aws.received(sink) if m["attributes"]["event_type"] == "upload.rejected"]
    for m in rejected:  # the event says which number the failed attempt used up, as the report does
        detail = m["message"]["detail"]
        report = aws.get_json(detail["report_key"])
        assert detail["burnt_version"] == report.get("burnt_version"), (detail, report)
    return Counter(m["attributes"]["model"] for m in rejected)


def _assert_one_ending(aws: Any, model: str, outcome: PublishOutcome, rejected_events: Counter[str],
                       registry_items: list[dict[str, Any]]) -> None:
    """One version (document + record + published report) or one rejection (report + one event), and
    nothing under models/{model}/ without a version record."""
    items = [i for i in registry_items if i.get("model") == model]
    versions = [i for i in items if i["kind"] == "version"]
    (upload,) = [i for i in items if i["kind"] == "upload"]
    report = aws.get_json(f"reports/{model}/{outcome.upload_id}.json")
    documents = aws.keys(f"models/{model}/")
    counter = next((int(i["version_counter"]) for i in items if i["kind"] == "model"), 0)
    assert upload["status"] == report["status"] == outcome.status, (model, outcome)
    if outcome.status == "published":
        assert [v["version"] for v in versions] == [outcome.version] == [counter] == [1]
        assert documents == [f"models/{model}/1.json"]
        assert rejected_events[model] == 0
    else:
        assert outcome.status == "rejected" and not versions and documents == [], (model, outcome)
        assert rejected_events[model] == 1, model
        assert report["problems"] and upload["problems"]
        # the number is given back, or the report says it is used up
        assert counter == (report.get("burnt_version") or 0) == (outcome.burnt_version or 0)


def _clean_calls(aws: Any, injector: Injector, settings: Settings, doc: dict[str, Any]) -> list[str]:
    upload = _upload(aws, "clean", json.dumps(renamed(doc, "clean")).encode())
    injector.active = True
    outcome, _ = _run(aws, injector, upload, settings)
    injector.active = False
    assert outcome.status == "published"
    calls, injector.calls = injector.calls, []
    return calls


CASES = [pytest.param("dynamodb", f, id=f"dynamodb-{f.name}") for f in DYNAMODB_FAULTS] + \
        [pytest.param("s3", f, id=f"s3-{f.name}") for f in S3_FAULTS]


@pytest.mark.parametrize(("service", "fault"), CASES)
def test_a_fault_on_any_call_ends_in_one_version_or_one_rejection(aws, handler, injector, models,
                                                                    lambda_context, service, fault):
    # GIVEN the calls a clean publish makes (S3 and DynamoDB, in order)
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    calls = _clean_calls(aws, injector, settings, models.iris)
    assert {"dynamodb.PutItem", "dynamodb.TransactWriteItems", "s3.HeadObject", "s3.GetObject",
            "s3.PutObject"} <= set(calls)
    outcomes: dict[str, PublishOutcome] = {}
    for at, op in enumerate(calls):
        if not op.startswith(service) or (fault.writes_only and op.split(".")[1] not in WRITES):
            continue
        # WHEN an upload of its own model meets the fault at this call
        model = f"m-{at}-{op.split('.')[1].lower()}"
        upload = _upload(aws, model, json.dumps(renamed(models.iris, model)).encode())
        injector.time.now = 0.0
        injector.calls, injector.fault, injector.at, injector.target = [], fault, at, None
        injector.active = True
        outcome, raised = _run(aws, injector, upload, settings)
        injector.active = False
        # a raise (Lambda retries) happens only after the version record was written
        assert raised == 0 or outcome.status == "published", (model, raised)
        outcomes[model] = outcome
    assert outcomes
    # THEN each upload ended exactly one way, with no orphaned document
    events = _rejected_events(aws, handler, lambda_context)
    items = aws.registry_items()
    for model, outcome in outcomes.items():
        _assert_one_ending(aws, model, outcome, events, items)
    statuses = Counter(o.status for o in outcomes.values())
    if fault.persistent or fault.writes_only or fault.code == "AccessDenied":
        assert statuses["rejected"]  # reading, reserving or writing the document never succeeds
    if not fault.persistent:
        assert statuses["published"]  # a fault once, or on a later step, is retried or completed


def test_a_version_number_given_back_is_reused(aws, models, monkeypatch):
    # GIVEN an upload that fails permanently after reserving v1 and writing models/iris/1.json
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    registry = Registry(aws.ddb, settings.registry_table)
    first = _upload(aws, "iris", json.dumps(models.iris).encode(), "a.json")
    written: list[str] = []

    def too_large(record: dict[str, Any]) -> dict[str, Any]:
        written.extend(aws.keys("models/"))
        raise _client_error("ValidationException", "Item size has exceeded the maximum allowed size")

    monkeypatch.setattr(registry, "put_version", too_large)
    outcome = publish_upload(aws.s3, registry, settings, first, retry=POLICY, sleep=lambda s: None)
    # THEN rejected, its document removed, the number given back (not burnt) ...
    assert written == ["models/iris/1.json"]
    assert outcome.status == "rejected" and outcome.burnt_version is None
    assert "ValidationException" in outcome.problems[0]["message"]
    assert aws.keys("models/") == [] and registry.read_counter("iris") == 0
    # ... and the next upload gets version 1
    second = publish_upload(aws.s3, Registry(aws.ddb, settings.registry_table), settings,
                            _upload(aws, "iris", json.dumps(models.iris_v2).encode(), "b.json"))
    assert second.status == "published" and second.version == 1
    assert aws.keys("models/") == ["models/iris/1.json"]


def test_a_number_taken_after_it_is_reported_burnt(aws, models, monkeypatch):
    # GIVEN upload A reserves v1, then upload B reserves v2, then A fails permanently
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    registry = Registry(aws.ddb, settings.registry_table)
    a = _upload(aws, "iris", json.dumps(models.iris).encode(), "a.json")
    b = _upload(aws, "iris", json.dumps(models.iris_v2).encode(), "b.json")
    real_put = registry.put_version
    state: dict[str, PublishOutcome] = {}

    def b_overtakes(record: dict[str, Any]) -> dict[str, Any]:
        monkeypatch.setattr(registry, "put_version", real_put)
        state["b"] = publish_upload(aws.s3, registry, settings, b)
        raise _client_error("ValidationException", "Item size has exceeded the maximum allowed size")

    monkeypatch.setattr(registry, "put_version", b_overtakes)
    outcome = publish_upload(aws.s3, registry, settings, a, retry=POLICY, sleep=lambda s: None)
    # THEN A is rejected with v1 reported burnt, its document removed; B is v2; nothing orphaned
    assert state["b"].status == "published" and state["b"].version == 2
    assert outcome.status == "rejected" and outcome.burnt_version == 1
    report = aws.get_json(outcome.report_key)
    assert report["burnt_version"] == 1 and any("version number 1 was reserved" in p["message"]
                                                for p in report["problems"])
    assert aws.keys("models/") == ["models/iris/2.json"]


def test_a_leftover_document_at_the_number_is_a_reported_conflict(aws, models):
    # GIVEN an object already at models/iris/1.json that no version record owns (another writer's)
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    aws.s3.put_object(Bucket=aws.bucket, Key="models/iris/1.json", Body=b"{}", Metadata={"sha256": "x"})
    registry = Registry(aws.ddb, settings.registry_table)
    # WHEN an upload reserves v1 and finds it taken
    upload = _upload(aws, "iris", json.dumps(models.iris).encode())
    outcome = publish_upload(aws.s3, registry, settings, upload, retry=POLICY, sleep=lambda s: None)
    # THEN it is rejected with the conflict in its report, the other object untouched, v1 reported burnt
    assert outcome.status == "rejected" and outcome.burnt_version == 1
    assert "already exists with other content" in outcome.problems[0]["message"]
    assert aws.s3.get_object(Bucket=aws.bucket, Key="models/iris/1.json")["Body"].read() == b"{}"


def test_an_upload_that_never_finishes_is_rejected_after_three_invocations(aws, models, monkeypatch):
    # GIVEN an upload whose invocations all crash (e.g. killed by the function's timeout)
    settings = Settings.from_env(aws.function_environment("PublishFunction"))
    upload = _upload(aws, "iris", json.dumps(models.iris).encode())
    import modelsync.service.publish as publish

    def killed(*_: Any) -> Any:
        raise SystemExit("timed out")  # not an AWS error: the invocation dies

    monkeypatch.setattr(publish, "_validate", killed)
    for _ in range(3):
        with pytest.raises(SystemExit):
            publish_upload(aws.s3, Registry(aws.ddb, settings.registry_table), settings, upload)
    monkeypatch.undo()
    # WHEN the event is delivered once more (a redrive)
    outcome = publish_upload(aws.s3, Registry(aws.ddb, settings.registry_table), settings, upload)
    # THEN it is rejected with a report saying why, instead of being tried forever
    assert outcome.status == "rejected"
    assert "did not finish in 3 invocations" in outcome.problems[0]["message"]
    assert aws.get_json(outcome.report_key)["status"] == "rejected"


def _client_error(code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutItem")
