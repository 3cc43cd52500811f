"""Publish's pure parts: the registry summary stays small whatever the model, errors are classified."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError

from modelsync.service.errors import Conflict
from modelsync.service.publish import MAX_INLINE_SCHEMA_BYTES, RetryPolicy, is_transient, summarize
from modelsync.service.store import version_schema


def _stand_in(n_features: int, n_classes: int) -> SimpleNamespace:
    """What summarize reads of a loaded model, for a size no real training run makes cheaply."""
    return SimpleNamespace(
        document={"estimator": {"type": "logistic_regression"}}, task="classification",
        methods=["predict", "predict_proba"], classes=np.arange(n_classes),
        features=[SimpleNamespace(name=f"f{i}", kind="numeric") for i in range(n_features)])


def test_a_million_classes_stay_out_of_the_registry_item():
    model = _stand_in(4, 1_000_000)
    summary = summarize(model)  # type: ignore[arg-type]
    assert summary["schema_in_document"] and "classes" not in summary and "features" not in summary
    assert (summary["feature_count"], summary["class_count"]) == (4, 1_000_000)
    assert summary["predict_datatype"] == "INT64"
    assert len(json.dumps(summary)) < 1_000
    # readers get the lists back from the document
    features, classes = version_schema(summary, lambda: model)  # type: ignore[arg-type,return-value]
    assert len(features) == 4 and classes is not None and len(classes) == 1_000_000


def test_small_lists_stay_inline_up_to_the_limit():
    summary = summarize(_stand_in(3, 2))  # type: ignore[arg-type]
    assert summary["features"][0] == {"name": "f0", "kind": "numeric"} and summary["classes"] == [0, 1]
    assert version_schema(summary, lambda: pytest.fail("the document is not read")) == (
        summary["features"], [0, 1])
    for n in (500, 2_000):  # about 18 KB and 74 KB of feature list
        lists = {"features": [{"name": f"f{i}", "kind": "numeric"} for i in range(n)], "classes": [0, 1]}
        inline = len(json.dumps(lists)) <= MAX_INLINE_SCHEMA_BYTES
        assert ("schema_in_document" in summarize(_stand_in(n, 2))) is not inline  # type: ignore[arg-type]
        assert inline is (n == 500)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutItem")


@pytest.mark.parametrize(("exc", "transient"), [
    (_client_error("ProvisionedThroughputExceededException", 400), True),
    (_client_error("ThrottlingException", 400), True),
    (_client_error("SlowDown", 503), True),
    (_client_error("InternalServerError", 500), True),
    (_client_error("SomethingNew", 502), True),
    (ReadTimeoutError(endpoint_url="https://x"), True),
    (EndpointConnectionError(endpoint_url="https://x"), True),
    (_client_error("ValidationException", 400), False),
    (_client_error("ConditionalCheckFailedException", 400), False),
    (_client_error("AccessDenied", 403), False),
    (ParamValidationError(report="bad"), False),
    (Conflict("models/iris/1.json already exists with other content"), False),
])
def test_transient_errors_are_told_apart(exc, transient):
    assert is_transient(exc) is transient


def test_the_retry_budget_leaves_time_to_record_a_rejection():
    policy = RetryPolicy.within(120.0)
    assert policy.budget_seconds + policy.cleanup_seconds == pytest.approx(110.0)
    assert policy.cleanup_seconds == RetryPolicy.cleanup_seconds
    short = RetryPolicy.within(5.0)
    assert short.budget_seconds == 0.0 and short.cleanup_seconds == 0.0
