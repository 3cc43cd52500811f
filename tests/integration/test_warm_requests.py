"""Warm requests and the alias cache, through the Score handler on moto: at most one registry read per
request, none within the TTL; a rollback made elsewhere is served once the TTL is up, one made through
this environment at once; the manifest reads the alias fresh every time."""

from __future__ import annotations

from typing import Any

import pytest

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


class CountingClient:
    """The DynamoDB client with its GetItem / Query calls counted (the registry reads)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in ("get_item", "query", "batch_get_item"):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.reads += 1
                return attr(*args, **kwargs)
            return counted
        return attr


@pytest.fixture
def score(api, publish, models, handler, monkeypatch):
    """Two iris versions (latest -> 2, both served once), the Score module's registry reads counted and
    its alias cache on a clock the test moves."""
    assert publish("iris", models.iris)["version"] == 1
    assert publish("iris", models.iris_v2)["version"] == 2
    module = handler("ScoreFunction")
    counting = CountingClient(module.registry.client)
    monkeypatch.setattr(module.registry, "client", counting)
    now = [1000.0]
    monkeypatch.setattr(module.ALIASES, "clock", lambda: now[0])
    for version in ("1", "2"):
        assert api("POST", "/models/iris/predict", body={"instances": [IRIS_ROW]},
                   query={"version": version})[0] == 200
    return module, counting, now


def _served(api) -> int:
    status, _headers, body = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROW]})
    assert status == 200, body
    return int(body["model_version"])


def test_no_registry_read_within_the_ttl(api, score):
    module, counting, now = score
    assert module.SETTINGS.alias_cache_ttl_seconds == 5  # the template's default
    counting.reads = 0
    assert _served(api) == 2 and counting.reads == 1  # the alias, once (the record is known)
    for _ in range(5):
        assert _served(api) == 2
    assert counting.reads == 1
    now[0] += 5
    assert _served(api) == 2 and counting.reads == 2  # at most one read per request


def test_rollback_elsewhere_is_served_within_the_ttl(api, aws, score):
    _module, counting, now = score
    assert _served(api) == 2
    # another execution environment rolls latest back: this one learns of it when its TTL is up
    aws.ddb.update_item(TableName=aws.ref("RegistryTable"),
                             Key={"pk": {"S": "MODEL#iris"}, "sk": {"S": "ALIAS#latest"}},
                             UpdateExpression="SET version = :v, revision = revision + :one",
                             ExpressionAttributeValues={":v": {"N": "1"}, ":one": {"N": "1"}})
    now[0] += 4.9
    assert _served(api) == 2
    now[0] += 0.1
    counting.reads = 0
    assert _served(api) == 1 and counting.reads == 1


def test_rollback_through_this_environment_is_served_at_once(api, score):
    _module, _counting, _now = score
    api("PUT", "/models/iris/aliases/production", body={"version": 1})
    api("PUT", "/models/iris/aliases/production", body={"version": 2})
    pred = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROW]}, query={"alias": "production"})
    assert pred[2]["model_version"] == 2
    status, _, body = api("POST", "/models/iris/aliases/production/rollback")
    assert status == 200 and body["version"] == 1
    pred = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROW]}, query={"alias": "production"})
    assert pred[2]["model_version"] == 1  # the clock has not moved: the write invalidated the entry


def test_manifest_reads_the_alias_fresh(api, aws, score):
    _module, counting, _now = score
    assert api("GET", "/models/iris/manifest")[2]["version"] == 2
    aws.ddb.update_item(TableName=aws.ref("RegistryTable"),
                             Key={"pk": {"S": "MODEL#iris"}, "sk": {"S": "ALIAS#latest"}},
                             UpdateExpression="SET version = :v, revision = revision + :one",
                             ExpressionAttributeValues={":v": {"N": "1"}, ":one": {"N": "1"}})
    counting.reads = 0
    status, _, body = api("GET", "/models/iris/manifest")
    assert status == 200 and body["version"] == 1 and counting.reads == 1
    assert _served(api) == 1 and counting.reads == 1  # the fresh read refreshed the cache for scoring too
