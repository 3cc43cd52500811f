"""Integration fixtures: the stack template.yaml declares, inside moto, run by modelsync.local in-process.

Nothing here restates a resource name, key schema, environment variable or route, and nothing
re-implements the emulator: :class:`modelsync.local.resources.Provisioner` creates what the template
declares (the state machine included), :class:`modelsync.local.runtime.Runtime` imports each handler with
the environment the template gives it, :mod:`modelsync.local.events` builds the S3 and stream events,
:mod:`modelsync.local.apigw` matches routes read from the template and builds the proxy events, and
:class:`modelsync.local.stepfunctions.LocalStepFunctions` runs state machine executions (moto's ASL
interpreter) with their Lambda tasks in the same Runtime - what ``modelsync local`` runs, minus servers.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from moto import mock_aws

from modelsync import template as tpl
from modelsync.local import events as ev
from modelsync.local.apigw import ApiGateway, find_route, proxy_event
from modelsync.local.resources import Provisioner, StackNames, function_specs
from modelsync.local.runtime import FunctionSpec, Runtime
from modelsync.local.stepfunctions import LocalStepFunctions
from modelsync.local.wiring import api_routes

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = tpl.load(ROOT / "template.yaml")
REGION = "us-east-1"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# -- models (trained once per session) ---------------------------------------------------------------

@dataclass(frozen=True)
class Models:
    iris: dict[str, Any]  # LogisticRegression, string labels, 4 numeric features
    iris_v2: dict[str, Any]  # another iris classifier (different coefficients)
    fruit: dict[str, Any]  # pipeline: scaler + one-hot encoder on "color" (categorical) + logistic regression
    lin: dict[str, Any]  # LinearRegression on one feature (regressor: no predict_proba)
    iris_rows: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


@pytest.fixture(scope="session")
def models() -> Models:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from modelsync.export import export_model

    data = load_iris()
    X = pd.DataFrame(data.data, columns=IRIS_FEATURES)
    y = data.target_names[data.target]
    iris = export_model(LogisticRegression(max_iter=500).fit(X, y), X.iloc[::10], name="iris")
    iris_v2 = export_model(LogisticRegression(C=0.1, max_iter=500).fit(X, y), X.iloc[::10], name="iris")
    rng = np.random.default_rng(0)
    F = pd.DataFrame({"size": rng.normal(size=80), "color": rng.choice(["red", "green", "blue"], 80)})
    fy = np.where((F["color"] == "red") | (F["size"] > 0.8), "sweet", "sour")
    pipe = Pipeline([("ct", ColumnTransformer([("num", StandardScaler(), ["size"]),
                                               ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"])])),
                     ("lr", LogisticRegression())]).fit(F, fy)
    fruit = export_model(pipe, F.iloc[:10], name="fruit")
    L = pd.DataFrame({"x": rng.normal(size=30)})
    lin = export_model(LinearRegression().fit(L, L["x"] * 2.0 + 1.0), L.iloc[:5], name="lin")
    return Models(iris, iris_v2, fruit, lin, X.to_numpy())


# -- the stack ---------------------------------------------------------------------------------------

@dataclass
class Aws:
    names: StackNames
    functions: dict[str, FunctionSpec]
    s3: Any
    ddb: Any
    sns: Any
    sqs: Any
    sfn: Any
    streams: Any
    kms: Any
    _iterators: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> Any:
        return self.names.refs[logical_id]

    def attr(self, logical_id: str, attribute: str) -> Any:
        return self.names.attr(logical_id, attribute)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return dict(self.functions[logical_id].environment)

    @property
    def bucket(self) -> str:
        return str(self.ref("ModelsBucket"))

    def put_upload(self, model: str, body: dict[str, Any] | bytes,
                   filename: str = "model.json") -> dict[str, Any]:
        """Upload a document under incoming/{model}/ and return the S3 notification for it."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        key = f"incoming/{model}/{filename}"
        resp = self.s3.put_object(Bucket=self.bucket, Key=key, Body=raw)
        return ev.s3_event(self.bucket, key, region=REGION, size=len(raw), etag=resp["ETag"],
                           version_id=resp.get("VersionId"))

    def stream_event(self, table_logical_id: str = "RegistryTable") -> dict[str, Any]:
        """The registry stream's new records as the event source mapping delivers them (one batch)."""
        arn = self.attr(table_logical_id, "StreamArn")
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            it = self._iterators.get(sid) or self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            resp = self.streams.get_records(ShardIterator=it)
            self._iterators[sid] = resp["NextShardIterator"]
            records.extend(ev.stream_record(r, arn) for r in resp["Records"])
        return {"Records": records}

    def subscribe_queue(self) -> str:
        """A test queue subscribed to the model events topic (to read what Notify sent)."""
        url = self.sqs.create_queue(QueueName="test-model-events-sink")["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        arn = attrs["QueueArn"]
        self.sns.subscribe(TopicArn=self.ref("ModelEventsTopic"), Protocol="sqs", Endpoint=arn)
        return str(url)

    def received(self, url: str) -> list[dict[str, Any]]:
        out = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                envelope = json.loads(m["Body"])
                out.append({"message": json.loads(envelope["Message"]),
                            "attributes": {k: v["Value"]
                                           for k, v in envelope.get("MessageAttributes", {}).items()}})
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def registry_items(self) -> list[dict[str, Any]]:
        from modelsync.service.registry import deserialize

        items = self.ddb.scan(TableName=self.ref("RegistryTable"))["Items"]
        return sorted((deserialize(i) for i in items), key=lambda i: (i["pk"], i["sk"]))

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        resp = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def finished_execution(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for a state machine execution (run by moto's interpreter in its own threads) to end."""
        deadline = time.monotonic() + timeout
        while True:
            desc: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING" or time.monotonic() > deadline:
                return desc
            time.sleep(0.05)

    def wait_for_executions(self) -> None:
        for machine in self.sfn.list_state_machines()["stateMachines"]:
            listing = self.sfn.list_executions(stateMachineArn=machine["stateMachineArn"])
            for execution in listing["executions"]:
                self.finished_execution(execution["executionArn"])


_SERVICES = ("s3", "dynamodb", "sns", "sqs", "stepfunctions", "dynamodbstreams", "kms")


@pytest.fixture(scope="package")
def runtime() -> Runtime:
    """The handlers' runtime for this folder: modules imported once, as a warm Lambda keeps them."""
    return Runtime(region=REGION, endpoint=None)


@pytest.fixture(scope="package")
def _moto(runtime: Runtime) -> Iterator[tuple[Any, dict[str, Any], dict[str, FunctionSpec]]]:
    """One moto mock for this folder's tests (reset per test), one client per service, and state
    machine executions with their Lambda tasks in ``runtime`` (the functions dict is refilled per test).

    Creating botocore clients costs ~0.1 s each, so they are made once; moto 5 intercepts clients created
    before the mock starts. Package scope ends the mock before other folders' tests run in this worker.
    """
    mock = mock_aws()
    mock.start()
    functions: dict[str, FunctionSpec] = {}
    step_functions = LocalStepFunctions(runtime, functions)
    step_functions.start()
    try:
        # moto routes DynamoDB Streams by the classic endpoint, not the account-based one botocore now picks
        no_account_endpoint = Config(account_id_endpoint_mode="disabled")
        clients = {s: boto3.client(s, region_name=REGION, config=no_account_endpoint) for s in _SERVICES}
        yield mock, clients, functions
    finally:
        step_functions.stop()
        mock.stop()


@pytest.fixture
def aws(_moto: tuple[Any, dict[str, Any], dict[str, FunctionSpec]]) -> Iterator[Aws]:
    """A fresh stack per test: moto reset, then everything template.yaml declares created again."""
    mock, clients, functions = _moto
    mock.reset()
    names = StackNames.local(TEMPLATE, region=REGION, endpoint=None, clients=clients.__getitem__)
    Provisioner(names, clients.__getitem__).provision()
    functions.clear()
    functions.update(function_specs(names, ROOT))
    stack = Aws(names, functions, clients["s3"], clients["dynamodb"], clients["sns"], clients["sqs"],
                clients["stepfunctions"], clients["dynamodbstreams"], clients["kms"])
    yield stack
    stack.wait_for_executions()  # none may run on into the next test's stack


@pytest.fixture
def handler(aws: Aws, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """``handler("PublishFunction")`` -> that function's app module, as the Runtime imported it (CodeUri +
    Handler, the environment the template gives it, resolved to the moto resources), for direct calls.

    Model caches and manifest signer caches are cleared per test; the stack's names (the signing key's
    alias included) are the same in every test, so the modules' settings stay valid.
    """

    def load(logical_id: str) -> ModuleType:
        spec = aws.functions[logical_id]
        for k, v in spec.environment.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", spec.physical_name)
        module = runtime.module(spec)
        # a new moto key (and registry) sits behind the same names
        for warm_state in ("MODEL_CACHE", "SIGNER", "DRIFT", "ALIASES"):
            cache = getattr(module, warm_state, None)
            if cache is not None:
                cache.clear()
        return module

    return load


@pytest.fixture
def serialized_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's DynamoDB writes atomic under threads, as DynamoDB's conditional writes are.

    moto checks a condition and then writes without a lock, so two threads can both pass the same
    condition; real DynamoDB serialises conditional writes on an item. Tests of racing writers need that.
    """
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "transact_write_items", "get_item", "query"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


# -- API Gateway -------------------------------------------------------------------------------------

API_HEADERS = {"Accept": "application/json", "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
               "User-Agent": "modelsync-tests"}


def _request(method: str, path: str, body: Any, query: dict[str, str] | None, headers: dict[str, str] | None,
             raw_body: str | None) -> tuple[str, list[tuple[str, str]], bytes]:
    """(request target, headers, body bytes) of one API call, as a client would send it."""
    all_headers = {**API_HEADERS, **(headers or {})}
    data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if data is not None:
        all_headers.setdefault("Content-Type", "application/json")
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    return target, list(all_headers.items()), (data or "").encode()


@dataclass
class Api:
    """The Score function behind modelsync.local's API Gateway (routes from template.yaml), in-process.

    ``api(method, path, body=, query=, headers=, raw_body=)`` -> (status, lower-cased headers, JSON body),
    through :meth:`ApiGateway.handle`; ``api.event(...)`` is the proxy event for calling ``api.app``
    directly.
    """

    gateway: ApiGateway
    app: ModuleType
    context: Any

    def event(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
              headers: dict[str, str] | None = None, raw_body: str | None = None) -> dict[str, Any]:
        route, params = find_route(self.gateway.routes, method, path)
        assert route is not None, f"template.yaml declares no route {method} {path}"
        _, header_list, data = _request(method, path, body, query, headers, raw_body)
        return proxy_event(route, method=method, path=path, path_params=params,
                           query=list((query or {}).items()), headers=header_list, body=data,
                           source_ip="203.0.113.10")

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        """The handler called directly with a proxy event (e.g. one a test altered after :meth:`event`)."""
        resp = self.app.lambda_handler(event, self.context)
        body = resp.get("body")
        headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
        for k, v in (resp.get("multiValueHeaders") or {}).items():
            headers.setdefault(k.lower(), v[0] if isinstance(v, list) else v)
        return int(resp["statusCode"]), headers, json.loads(body) if body else None

    def __call__(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, raw_body: str | None = None
                 ) -> tuple[int, dict[str, str], Any]:
        target, header_list, data = _request(method, path, body, query, headers, raw_body)
        resp = self.gateway.handle(method, target, header_list, data, "203.0.113.10")
        lowered: dict[str, str] = {}
        for k, v in resp.headers:
            lowered.setdefault(k.lower(), v)
        return resp.status, lowered, json.loads(resp.body) if resp.body else None


@pytest.fixture
def api(aws: Aws, runtime: Runtime, handler: Callable[[str], ModuleType], lambda_context: Any) -> Api:
    app = handler("ScoreFunction")
    return Api(ApiGateway(api_routes(aws.functions, aws.names), runtime), app, lambda_context)


@pytest.fixture
def publish(aws: Aws, handler: Callable[[str], ModuleType], lambda_context: Any
            ) -> Callable[..., dict[str, Any]]:
    """``publish("iris", doc)`` uploads and runs Publish on the notification; returns its result."""
    app = handler("PublishFunction")
    counter = itertools.count()

    def run(model: str, doc: dict[str, Any] | bytes, filename: str | None = None) -> dict[str, Any]:
        event = aws.put_upload(model, doc, filename or f"upload-{next(counter)}.json")
        result: dict[str, Any] = app.lambda_handler(event, lambda_context)["results"][0]
        return result

    return run


# -- the device client against the handler ------------------------------------------------------------

API_BASE = "https://api.modelsync.test/v1"


@dataclass
class _Response:
    """What urllib's opener returns, as far as modelsync_device uses it."""

    status: int
    headers: Any
    body: bytes
    _pos: int = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.body) if n is None or n < 0 else min(len(self.body), self._pos + n)
        chunk, self._pos = self.body[self._pos:end], end
        return chunk

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass
class DeviceHttp:
    """An opener for modelsync_device (``open(request, timeout=...)``): ``API_BASE`` URLs go through the
    local API Gateway to the Score handler, presigned S3 URLs are served from the (moto) bucket. HTTP errors
    are raised as ``urllib.error.HTTPError`` as urllib does. ``fail_next`` makes the next API call answer
    that status *after* the handler ran (a lost acknowledgement)."""

    api: Api
    s3: Any
    base: str = API_BASE
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)

    def open(self, request: Any, timeout: float | None = None) -> _Response:
        import email.message
        import io
        import urllib.error

        url = request.full_url
        method = request.get_method()
        if url.startswith(API_BASE):
            parts = urllib.parse.urlsplit(url)
            target = parts.path[len(urllib.parse.urlsplit(API_BASE).path):] + (
                f"?{parts.query}" if parts.query else "")
            headers = [(k.title(), v) for k, v in request.header_items()]
            resp = self.api.gateway.handle(method, target, headers, request.data or b"", "203.0.113.10")
            status, body, resp_headers = resp.status, resp.body, dict(resp.headers)
            if self.fail_next:
                status, body = self.fail_next.pop(0), b'{"error": {"code": "lost", "message": "lost"}}'
        else:  # a presigned GET of the models bucket
            parts = urllib.parse.urlsplit(url)
            host, key = parts.netloc, urllib.parse.unquote(parts.path.lstrip("/"))
            bucket = host.split(".s3", 1)[0] if ".s3" in host else key.split("/", 1)[0]
            if ".s3" not in host:
                key = key.split("/", 1)[1]
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                status, resp_headers = 200, {"Content-Length": str(len(body))}
            except Exception:  # noqa: BLE001 - any S3 error is a 404 to the device
                status, body, resp_headers = 404, b"", {}
        self.calls.append((method, url, status))
        msg = email.message.Message()
        for k, v in resp_headers.items():
            msg[k] = v
        if status >= 300:
            raise urllib.error.HTTPError(url, status, "error", msg, io.BytesIO(body))
        return _Response(status, msg, body)


@pytest.fixture
def device_http(api: Api, aws: Aws) -> DeviceHttp:
    return DeviceHttp(api, aws.s3)
