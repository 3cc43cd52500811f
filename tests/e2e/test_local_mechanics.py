"""The local stack's event plumbing, on a small template of its own (in-process ``LocalStack``).

Proves that what a template declares is what runs locally, whatever the function, for the event types
template.yaml uses: S3 notifications with prefix/suffix filters in AWS's event shape, DynamoDB stream
batches with ``batchItemFailures``, retries and the OnFailure destination, schedules, and the API Gateway
proxy event (path templates, multi-value query/headers, base64 bodies).
The handler records every event it gets under ``seen/`` in the bucket.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import wait_for

from modelsync.local import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-mechanics")]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  BucketName: {Type: String, Default: mech-bucket}
Globals:
  Function:
    Handler: app.handler
    Runtime: python3.11
    Timeout: 10
    Environment:
      Variables:
        BUCKET: !Ref BucketName
        TOPIC: !Ref Topic
        TABLE: !Ref Table
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref BucketName
      VersioningConfiguration: {Status: Enabled}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Topic: {Type: AWS::SNS::Topic}
  Dlq: {Type: AWS::SQS::Queue}
  RecordFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Environment:
        Variables: {ROLE: recorder}
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Bucket
            Events: s3:ObjectCreated:*
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}, {Name: suffix, Value: .txt}]}}
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 2
            MaximumRetryAttempts: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt Dlq.Arn}}
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 hour)}
        GetItem: {Type: Api, Properties: {Path: "/items/{id}", Method: get}}
        GetItemList: {Type: Api, Properties: {Path: /items/list, Method: get}}
        PostItems: {Type: Api, Properties: {Path: /items, Method: post}}
"""

HANDLER = '''\
import base64, json, os, uuid
import boto3

s3 = boto3.client("s3")


def source(event):
    if "Records" in event:
        return event["Records"][0].get("eventSource", "?").replace("aws:", "")
    if "httpMethod" in event:
        return "api"
    return "schedule"


def handler(event, context):
    kind = source(event)
    s3.put_object(Bucket=os.environ["BUCKET"], Key=f"seen/{kind}/{uuid.uuid4().hex}.json",
                  Body=json.dumps({"event": event, "role": os.environ["ROLE"],
                                   "function": context.function_name}))
    if kind == "dynamodb":
        bad = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]
               if r["dynamodb"]["NewImage"]["id"]["S"].startswith("bad")]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in bad]}
    if kind == "sqs":
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                      if r["body"] == "bad"]}
    if kind == "api":
        if event["path"] == "/items/binary":
            return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                    "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
        return {"statusCode": int((event["queryStringParameters"] or {}).get("status", 200)),
                "headers": {"Content-Type": "application/json"},
                "multiValueHeaders": {"X-Multi": ["a", "b"]}, "body": json.dumps(event)}
    return {"ok": True}
'''


@pytest.fixture(scope="module")
def mech(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("mech")
    (root / "fn").mkdir()
    (root / "fn" / "app.py").write_text(HANDLER)
    (root / "template.yaml").write_text(TEMPLATE)
    with LocalStack(root / "template.yaml", aws_port=0, api_port=0, schedule_every=1, concurrency=4,
                    bucket="mech-local", route_handler_stdout=False) as stack:
        yield stack


def _seen(stack: LocalStack, kind: str) -> list[dict[str, Any]]:
    s3 = stack.boto3_client("s3")
    out = []
    for obj in s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"seen/{kind}/").get("Contents", []):
        out.append(json.loads(s3.get_object(Bucket=stack.bucket, Key=obj["Key"])["Body"].read()))
    return out


def test_bucket_name_and_environment(mech: LocalStack) -> None:
    # --bucket renames the bucket through the parameter its BucketName refers to, so !Ref agrees
    assert mech.bucket == "mech-local"
    tick = wait_for("a scheduled invocation", lambda: _seen(mech, "schedule"), timeout=10)[0]
    assert tick["event"]["detail-type"] == "Scheduled Event" and tick["event"]["source"] == "aws.events"
    assert tick["role"] == "recorder" and tick["function"] == "modelsync-record"


def test_s3_notification_shape_and_filters(mech: LocalStack) -> None:
    s3 = mech.boto3_client("s3")
    s3.put_object(Bucket=mech.bucket, Key="in/skip.json", Body=b"suffix filter")
    s3.put_object(Bucket=mech.bucket, Key="other/skip.txt", Body=b"prefix filter")
    put = s3.put_object(Bucket=mech.bucket, Key="in/a b+c.txt", Body=b"hello")
    seen = wait_for("the S3 event", lambda: _seen(mech, "s3"), timeout=10)
    assert len(seen) == 1
    (record,) = seen[0]["event"]["Records"]
    assert record["eventName"] == "ObjectCreated:Put" and record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == mech.region
    obj = record["s3"]["object"]
    assert obj["key"] == "in/a+b%2Bc.txt"  # URL-encoded form style, as AWS sends it
    assert obj["size"] == 5 and obj["eTag"] == put["ETag"].strip('"')
    assert obj["versionId"] == put["VersionId"] and obj["sequencer"]
    assert record["s3"]["bucket"] == {"name": mech.bucket, "arn": f"arn:aws:s3:::{mech.bucket}",
                                      "ownerIdentity": record["s3"]["bucket"]["ownerIdentity"]}
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(record)


def test_stream_partial_failures_retries_and_dlq(mech: LocalStack) -> None:
    ddb = mech.boto3_client("dynamodb")
    table = mech.ref("Table")
    for item in ("ok-1", "bad-1", "ok-2"):
        ddb.put_item(TableName=table, Item={"id": {"S": item}})
    sqs = mech.boto3_client("sqs")

    def dlq() -> Any:
        msgs = sqs.receive_message(QueueUrl=mech.ref("Dlq"), WaitTimeSeconds=1).get("Messages", [])
        return msgs and json.loads(msgs[0]["Body"])

    failure = wait_for("the OnFailure record in the DLQ", dlq, timeout=15)
    info = failure["DDBStreamBatchInfo"]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2  # first try + MaximumRetryAttempts 1
    batches = [[r["dynamodb"]["NewImage"]["id"]["S"] for r in s["event"]["Records"]]
               for s in _seen(mech, "dynamodb")]
    # the first batch had all three; the retry starts at the failed record (ok-1 is checkpointed)
    assert sorted(batches, key=len, reverse=True)[0] == ["ok-1", "bad-1", "ok-2"]
    assert ["bad-1", "ok-2"] in batches
    assert info["batchSize"] == 2 and info["streamArn"].startswith("arn:aws:dynamodb:")
    records = _seen(mech, "dynamodb")[0]["event"]["Records"]
    assert all(r["eventSourceARN"] == info["streamArn"] for r in records)
    assert all(isinstance(r["dynamodb"]["ApproximateCreationDateTime"], int) for r in records)


def _get(url: str, method: str = "GET", data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_api_proxy_event(mech: LocalStack) -> None:
    status, headers, body = _get(f"{mech.api_url}/items/42?a=1&a=2&status=201", headers={"X-Test": "yes"})
    assert status == 201 and headers.get_all("X-Multi") == ["a", "b"]
    ev = json.loads(body)
    assert ev["resource"] == "/items/{id}" and ev["path"] == "/items/42" and ev["httpMethod"] == "GET"
    assert ev["pathParameters"] == {"id": "42"}
    assert ev["queryStringParameters"]["a"] == "2"
    assert ev["multiValueQueryStringParameters"]["a"] == ["1", "2"]
    assert ev["headers"]["X-Test"] == "yes" and ev["multiValueHeaders"]["X-Test"] == ["yes"]
    ctx = ev["requestContext"]
    assert ctx["resourcePath"] == "/items/{id}" and ctx["httpMethod"] == "GET" and ctx["stage"] == "Prod"
    assert ctx["requestId"] and ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ev["body"] is None and ev["isBase64Encoded"] is False

    status, _, body = _get(f"{mech.api_url}/items", "POST", b'{"x": 1}', {"Content-Type": "application/json"})
    ev = json.loads(body)
    assert status == 200 and ev["body"] == '{"x": 1}' and ev["pathParameters"] is None

    # a literal route wins over a {param} one, as in API Gateway
    status, _, body = _get(f"{mech.api_url}/items/list")
    assert json.loads(body)["resource"] == "/items/list"

    status, headers, body = _get(f"{mech.api_url}/items/binary")
    assert status == 200 and body == bytes(range(256))

    # the deployed URL form with the stage in front works too
    assert _get(f"{mech.api_url}/Prod/items/7")[0] == 200
    for method, path in (("GET", "/items"), ("PUT", "/items/1"), ("GET", "/nothing")):
        status, headers, body = _get(f"{mech.api_url}{path}", method)
        assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}


def test_invoke_in_process(mech: LocalStack) -> None:
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": "bad"}]}
    assert mech.invoke("RecordFunction", event) == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    assert mech.invoke("fn", event) == mech.invoke("modelsync-record", event)  # folder / physical name


CFN_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  BucketName: {Type: String}
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties: {BucketName: !Ref BucketName}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Topic: {Type: AWS::SNS::Topic}
  Dlq: {Type: AWS::SQS::Queue}
"""


def test_invoke_with_stack_name_resolves_physical_names(mech: LocalStack, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``modelsync invoke --stack-name``: names from CloudFormation (here moto's, as CI has no account)."""
    from modelsync.cli import main

    cfn = mech.boto3_client("cloudformation")
    cfn.create_stack(StackName="deployed", TemplateBody=CFN_TEMPLATE,
                     Parameters=[{"ParameterKey": "BucketName", "ParameterValue": "deployed-bucket"}])
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.describe_stack_resources(StackName="deployed")["StackResources"]}
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "x"}]}))
    capsys.readouterr()
    rc = main(["invoke", "RecordFunction", "--template", str(mech.template_path), "-e", str(event),
               "--endpoint-url", mech.endpoint, "--stack-name", "deployed"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}
    s3 = mech.boto3_client("s3")
    (obj,) = s3.list_objects_v2(Bucket="deployed-bucket", Prefix="seen/sqs/")["Contents"]
    seen = json.loads(s3.get_object(Bucket="deployed-bucket", Key=obj["Key"])["Body"].read())
    assert seen["role"] == "recorder"
    # the environment the handler got names the stack's resources, not the local ones
    from modelsync import template as tpl
    from modelsync.local.resources import StackNames, function_specs

    names = StackNames.from_cloudformation(tpl.load(mech.template_path), "deployed", region=mech.region,
                                           clients=mech.boto3_client)
    spec = function_specs(names, mech.template_path.parent)["RecordFunction"]
    assert spec.environment["BUCKET"] == "deployed-bucket"
    assert spec.environment["TABLE"] == physical["Table"] != mech.ref("Table")
    assert spec.environment["TOPIC"] == physical["Topic"]
    stream = spec.events["Stream"]["Properties"]["Stream"]
    assert stream == mech.boto3_client("dynamodb").describe_table(TableName=physical["Table"])["Table"][
        "LatestStreamArn"]


def test_schedule_expressions() -> None:
    import datetime as dt

    from modelsync.local.schedule import parse_schedule

    now = dt.datetime(2024, 6, 1, 12, 7, 30, tzinfo=dt.UTC)  # a Saturday
    assert parse_schedule("rate(15 minutes)").next_after(now) == now + dt.timedelta(minutes=15)
    assert parse_schedule("rate(1 hour)").every == 3600
    assert parse_schedule("cron(0/10 * * * ? *)").next_after(now) == now.replace(minute=10, second=0)
    assert parse_schedule("cron(30 2 ? * MON-FRI *)").next_after(now) == dt.datetime(2024, 6, 3, 2, 30,
                                                                                    tzinfo=dt.UTC)
    assert parse_schedule("cron(0 0 1 JAN ? *)").next_after(now) == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for bad in ("rate(0 minutes)", "every 5 minutes", "cron(0 0 L * ? *)"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_route_precedence() -> None:
    from modelsync.local.apigw import Route, find_route
    from modelsync.local.runtime import FunctionSpec

    fn = FunctionSpec("F", Path("."), "app.handler", {}, "f", "us-east-1")
    routes = [Route("GET", "/models/{name}", fn, "b"), Route("GET", "/models/list", fn, "c"),
              Route("POST", "/models/{name}/predict", fn, "d")]
    assert find_route(routes, "GET", "/models/list")[0].event_name == "c"  # literal beats {param}
    assert find_route(routes, "GET", "/models/iris") == (routes[0], {"name": "iris"})
    assert find_route(routes, "POST", "/models/iris/predict")[0].event_name == "d"
    assert find_route(routes, "GET", "/models/iris/predict") == (None, {})
    assert find_route(routes, "GET", "/models/a%20b")[1] == {"name": "a b"}
    assert find_route(routes, "DELETE", "/models/iris") == (None, {})
