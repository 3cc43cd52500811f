"""The e2e suite drives ``modelsync local`` as a subprocess, only through public interfaces.

One stack per test session (per xdist worker): ``modelsync local --aws-port 0 --api-port 0
--schedule-every 2``; its ready line gives the endpoints. boto3 (dummy credentials) talks to the embedded
AWS, urllib to the API. The subprocess runs in its own process group and is always terminated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import FEATURES, Published, Stack, launch_stack, wait_for


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack most e2e tests share (one per test session, i.e. per xdist worker)."""
    with launch_stack(tmp_path_factory.mktemp("local-stack") / "modelsync-local.log") as s:
        yield s


# -- models -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    """The iris data as a DataFrame with plain feature names, and the targets."""
    import pandas as pd
    from sklearn.datasets import load_iris

    data = load_iris()
    return pd.DataFrame(data.data, columns=FEATURES), data.target


@pytest.fixture(scope="session")
def iris_model(iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=1000).fit(X, y)


@pytest.fixture(scope="session")
def iris_doc(iris: tuple[Any, Any], iris_model: Any) -> dict[str, Any]:
    from modelsync.export import export_model

    X, _ = iris
    return export_model(iris_model, X.iloc[::10], name="iris")


@pytest.fixture(scope="session")
def device_queue(stack: Stack) -> str:
    """An SQS queue subscribed to the events topic, as a device would, before anything is published."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="e2e-device")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.info["topic_arn"], Protocol="sqs", Endpoint=arn)
    return str(url)


@pytest.fixture(scope="session")
def published(stack: Stack, iris_doc: dict[str, Any], device_queue: str) -> Published:
    """iris uploaded under incoming/ and published by the Publish function (seen through GET /models/iris).

    Tests address this version explicitly: other tests on the same stack (the docs examples) may publish
    further iris versions.
    """
    stack.client("s3").put_object(Bucket=stack.bucket, Key="incoming/iris/model.json",
                                  Body=json.dumps(iris_doc).encode(), ContentType="application/json")

    def version() -> Any:
        r = stack.http("GET", "/models/iris")
        if r.status != 200:
            return None
        body = r.json()
        mine = [v["version"] for v in body.get("versions", []) if v.get("sha256") == iris_doc["sha256"]]
        return mine and body.get("aliases", {}).get("latest") and Published(int(mine[0]), body)

    return wait_for("iris published (GET /models/iris lists its sha256)", version, timeout=30)
