"""Integration fixtures: the stack built from template.yaml inside moto, handlers loaded from their files.

Nothing here restates a resource name, key schema or environment variable:
:func:`modelsync.template.provision` creates what the template declares, and each handler gets the
environment the template gives it.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import pathlib
import re
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

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = tpl.load(ROOT / "template.yaml")
REGION = "us-east-1"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
_module_ids = itertools.count()


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


def renamed(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The same model under another name (sha256 recomputed)."""
    from scorer import content_sha256

    out = json.loads(json.dumps(doc))
    out["metadata"]["name"] = name
    out["sha256"] = content_sha256(out)
    return out


# -- the stack ---------------------------------------------------------------------------------------

@dataclass
class Aws:
    stack: tpl.Stack
    s3: Any
    ddb: Any
    sns: Any
    sqs: Any
    sfn: Any
    streams: Any
    kms: Any = None
    _iterators: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> Any:
        return self.stack.refs[logical_id]

    def attr(self, logical_id: str, attribute: str) -> Any:
        return self.stack.attrs[(logical_id, attribute)]

    @property
    def bucket(self) -> str:
        return str(self.ref("ModelsBucket"))

    def put_upload(self, events: Callable[[str], dict[str, Any]], model: str, body: dict[str, Any] | bytes,
                   filename: str = "model.json", event_name: str = "publish_good_upload") -> dict[str, Any]:
        """Upload a document under incoming/{model}/ and return the S3 notification for it."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        key = f"incoming/{model}/{filename}"
        resp = self.s3.put_object(Bucket=self.bucket, Key=key, Body=raw)
        event = events(event_name)
        record = event["Records"][0]["s3"]
        record["bucket"]["name"] = self.bucket
        record["bucket"]["arn"] = f"arn:aws:s3:::{self.bucket}"
        record["object"].update(key=key.replace(" ", "+"), size=len(raw), eTag=resp["ETag"].strip('"'),
                                versionId=resp.get("VersionId"))
        return event

    # DynamoDB stream -> Lambda event records (as the event source mapping delivers them)
    def stream_event(self, table_logical_id: str = "RegistryTable") -> dict[str, Any]:
        arn = self.attr(table_logical_id, "StreamArn")
        records: list[dict[str, Any]] = []
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        for shard in shards:
            sid = shard["ShardId"]
            it = self._iterators.get(sid) or self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            resp = self.streams.get_records(ShardIterator=it)
            self._iterators[sid] = resp["NextShardIterator"]
            for r in resp["Records"]:
                records.append({**r, "eventSource": "aws:dynamodb", "awsRegion": REGION,
                                "eventSourceARN": arn, "dynamodb": _ddb_json(r["dynamodb"])})
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


def _ddb_json(change: dict[str, Any]) -> dict[str, Any]:
    """boto3 returns the stream's wire JSON already; timestamps become epoch numbers as in Lambda."""
    out = dict(change)
    ts = out.get("ApproximateCreationDateTime")
    if ts is not None and not isinstance(ts, (int, float)):
        out["ApproximateCreationDateTime"] = int(ts.timestamp())
    return out


_SERVICES = ("s3", "dynamodb", "sns", "sqs", "stepfunctions", "dynamodbstreams", "kms")


@pytest.fixture(scope="package")
def _moto() -> Iterator[tuple[Any, dict[str, Any]]]:
    """One moto mock for this folder's tests (reset per test) and one client per service.

    Creating botocore clients costs ~0.1 s each, so they are made once; moto 5 intercepts clients created
    before the mock starts. Package scope ends the mock before other folders' tests run in this worker.
    """
    mock = mock_aws()
    mock.start()
    try:
        # moto routes DynamoDB Streams by the classic endpoint, not the account-based one botocore now picks
        no_account_endpoint = Config(account_id_endpoint_mode="disabled")
        yield mock, {s: boto3.client(s, region_name=REGION, config=no_account_endpoint) for s in _SERVICES}
    finally:
        mock.stop()


@pytest.fixture
def aws(_moto: tuple[Any, dict[str, Any]]) -> Iterator[Aws]:
    """A fresh stack per test: moto reset, then everything template.yaml declares created again."""
    mock, clients = _moto
    mock.reset()
    stack = tpl.provision(TEMPLATE, clients.__getitem__, region=REGION)
    yield Aws(stack, clients["s3"], clients["dynamodb"], clients["sns"], clients["sqs"],
              clients["stepfunctions"], clients["dynamodbstreams"], clients["kms"])


@pytest.fixture(scope="package")
def _handler_modules() -> dict[str, ModuleType]:
    return {}


@pytest.fixture
def handler(aws: Aws, monkeypatch: pytest.MonkeyPatch, _handler_modules: dict[str, ModuleType]
            ) -> Callable[[str], ModuleType]:
    """``handler("PublishFunction")`` -> that function's app module, imported from its file (CodeUri +
    Handler) with the environment the template gives it (resolved to the moto resources).

    Modules are imported once per folder (as a warm Lambda keeps them) with their model caches and
    manifest signer caches cleared per test; the stack's names (the signing key's alias included) are
    the same in every test, so their settings stay valid.
    """

    def load(logical_id: str) -> ModuleType:
        for k, v in aws.stack.function_environment(logical_id).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", aws.stack.refs[logical_id])
        module = _handler_modules.get(logical_id)
        if module is None:
            path, attr = aws.stack.function_code(logical_id)
            name = f"modelsync_test_{logical_id.lower()}_{next(_module_ids)}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            assert callable(getattr(module, attr))
            _handler_modules[logical_id] = module
        for warm_state in ("MODEL_CACHE", "SIGNER"):  # a new moto key sits behind the same alias
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


# -- API Gateway events ------------------------------------------------------------------------------

def _resource_for(path: str) -> str:
    for _method, route in TEMPLATE.api_routes("ScoreFunction"):
        pattern = "^" + re.sub(r"\{[^}/]+\}", "[^/]+", route) + "$"
        if re.match(pattern, path):
            return route
    return path


def api_event(events: Callable[[str], dict[str, Any]], method: str, path: str, body: Any = None,
              query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
              raw_body: str | None = None) -> dict[str, Any]:
    """A REST API proxy event shaped like events/score_plain_predict.json for any route."""
    event = events("score_plain_predict")
    resource = _resource_for(path)
    names = re.findall(r"\{([^}/]+)\}", resource)
    values = [p for r, p in zip(resource.split("/"), path.split("/"), strict=False) if r.startswith("{")]
    base_headers = {k: v for k, v in event["headers"].items() if k != "Content-Type"}
    all_headers = {**base_headers, **(headers or {})}
    if body is not None or raw_body is not None:
        all_headers["Content-Type"] = "application/json"
    event.update(
        httpMethod=method, path=path, resource=resource, headers=all_headers,
        multiValueHeaders={k: [v] for k, v in all_headers.items()},
        pathParameters=dict(zip(names, values, strict=True)) or None,
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        body=raw_body if raw_body is not None else (json.dumps(body) if body is not None else None))
    event["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/v1{path}")
    return event


def call(app: ModuleType, event: dict[str, Any], context: Any) -> tuple[int, dict[str, str], Any]:
    resp = app.lambda_handler(event, context)
    body = resp.get("body")
    parsed = json.loads(body) if body else None
    headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
    for k, v in (resp.get("multiValueHeaders") or {}).items():
        headers.setdefault(k.lower(), v[0] if isinstance(v, list) else v)
    return int(resp["statusCode"]), headers, parsed


@dataclass
class Api:
    """Calls the Score handler with REST proxy events; returns (status, lower-cased headers, JSON body)."""

    app: ModuleType
    events: Callable[[str], dict[str, Any]]
    context: Any

    def event(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return api_event(self.events, method, path, **kw)

    def __call__(self, method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], Any]:
        return call(self.app, api_event(self.events, method, path, **kw), self.context)


@pytest.fixture
def api(handler: Callable[[str], ModuleType], events: Callable[[str], dict[str, Any]],
        lambda_context: Any) -> Api:
    return Api(handler("ScoreFunction"), events, lambda_context)


@pytest.fixture
def publish(aws: Aws, handler: Callable[[str], ModuleType], events: Callable[[str], dict[str, Any]],
            lambda_context: Any) -> Callable[..., dict[str, Any]]:
    """``publish("iris", doc)`` uploads and runs Publish on the notification; returns its result."""
    app = handler("PublishFunction")
    counter = itertools.count()

    def run(model: str, doc: dict[str, Any] | bytes, filename: str | None = None) -> dict[str, Any]:
        event = aws.put_upload(events, model, doc, filename or f"upload-{next(counter)}.json")
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
    """An opener for modelsync_device (``open(request, timeout=...)``): ``API_BASE`` URLs go to the Score
    handler as REST proxy events, presigned S3 URLs are served from the (moto) bucket. HTTP errors are
    raised as ``urllib.error.HTTPError`` as urllib does. ``fail_next`` makes the next API call answer
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
        import urllib.parse

        url = request.full_url
        method = request.get_method()
        if url.startswith(API_BASE):
            parts = urllib.parse.urlsplit(url)
            path = urllib.parse.unquote(parts.path[len(urllib.parse.urlsplit(API_BASE).path):])
            query = dict(urllib.parse.parse_qsl(parts.query)) or None
            headers = {k.title(): v for k, v in request.header_items()}
            data = request.data.decode() if request.data else None
            event = self.api.event(method, path, query=query, headers=headers, raw_body=data)
            raw = self.api.app.lambda_handler(event, self.api.context)
            status, body = int(raw["statusCode"]), (raw.get("body") or "").encode()
            resp_headers = {k: v for k, v in (raw.get("headers") or {}).items()}
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
