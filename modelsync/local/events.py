"""Event payloads in the exact shapes AWS services hand to Lambda."""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import json
import time
import urllib.parse
import uuid
from typing import Any

from .runtime import ACCOUNT_ID


def _iso_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- S3 -------------------------------------------------------------------------------------------------
def s3_key_for_event(key: str) -> str:
    """Object keys in S3 notifications are URL-encoded form style ('+' for space), '/' kept."""
    return urllib.parse.quote_plus(key, safe="/")


def complete_s3_record(record: dict[str, Any], *, version_id: str | None = None) -> dict[str, Any]:
    """Fill in the fields of an S3 notification record the emulator leaves out, in AWS's encoding.

    moto's records carry event name, bucket, key, size and ETag; AWS's also carry the requester, the
    request ids, the bucket owner, the version id (versioned buckets) and a sequencer.
    """
    rec = json.loads(json.dumps(record))
    s3 = rec.setdefault("s3", {})
    obj = s3.setdefault("object", {})
    bucket = s3.setdefault("bucket", {})
    obj["key"] = s3_key_for_event(urllib.parse.unquote_plus(obj.get("key", "")))
    if version_id and version_id != "null":
        obj.setdefault("versionId", version_id)
    obj.setdefault("sequencer", f"{time.time_ns():016X}")
    bucket.setdefault("ownerIdentity", {"principalId": "A3NL1KOZZKExample"})
    bucket.setdefault("arn", f"arn:aws:s3:::{bucket.get('name', '')}")
    rec.setdefault("userIdentity", {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"})
    rec.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
    rec.setdefault(
        "responseElements",
        {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
        },
    )
    return rec


def s3_event(
    bucket: str,
    key: str,
    *,
    region: str,
    size: int,
    etag: str,
    version_id: str | None = None,
    event_name: str = "ObjectCreated:Put",
    configuration_id: str = "local",
) -> dict[str, Any]:
    """An S3 notification built from scratch (the integration tests' uploads; the stack uses moto's own)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso_now(),
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": size, "eTag": etag.strip('"')},
        },
    }
    return {"Records": [complete_s3_record(record, version_id=version_id)]}


# -- DynamoDB Streams -----------------------------------------------------------------------------------
def _attribute_value_to_wire(value: Any) -> Any:
    """boto3 parses B/BS into bytes; Lambda's event carries them base64-encoded as on the wire."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "B" and isinstance(v, bytes | bytearray):
                out[k] = base64.b64encode(bytes(v)).decode()
            elif k == "BS" and isinstance(v, list):
                out[k] = [base64.b64encode(bytes(b)).decode() for b in v]
            else:
                out[k] = _attribute_value_to_wire(v)
        return out
    if isinstance(value, list):
        return [_attribute_value_to_wire(v) for v in value]
    return value


def stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as parsed by boto3) -> the record of a Lambda DynamoDB event."""
    rec = _attribute_value_to_wire(record)
    ddb = rec.setdefault("dynamodb", {})
    when = ddb.get("ApproximateCreationDateTime")
    if isinstance(when, _dt.datetime):
        ddb["ApproximateCreationDateTime"] = int(when.timestamp())
    elif isinstance(when, str):
        with contextlib.suppress(ValueError):
            ddb["ApproximateCreationDateTime"] = int(_dt.datetime.fromisoformat(when).timestamp())
    rec["eventSourceARN"] = stream_arn
    return rec


def stream_failure_record(
    *,
    function_arn: str,
    stream_arn: str,
    shard_id: str,
    records: list[dict[str, Any]],
    attempts: int,
    condition: str,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    """The invocation record Lambda sends to a stream event source's OnFailure destination."""

    def arrival(rec: dict[str, Any]) -> str:
        when = rec.get("dynamodb", {}).get("ApproximateCreationDateTime")
        if isinstance(when, int | float):
            return _dt.datetime.fromtimestamp(when, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return _iso_now()

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled" if error else "",
        },
        "version": "1.0",
        "timestamp": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


# -- EventBridge ----------------------------------------------------------------------------------------
def scheduled_event(*, region: str, rule_name: str) -> dict[str, Any]:
    """What an EventBridge schedule rule delivers to its Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": _iso_now(),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }
