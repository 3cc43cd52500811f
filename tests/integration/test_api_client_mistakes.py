"""Every client mistake is a 4xx with the JSON error body (issue 9), driven with API Gateway proxy events.

Each case answered ``internal_error`` (500) before: Powertools decoded base64 bodies as UTF-8, refused
other media types with NotImplementedError, let json.loads raise RecursionError / ValueError, and the
scorer's forests fail on a matrix of zero rows.
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def forest() -> dict:
    """A small random forest classifier (string labels) on iris."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from modelsync.export import export_model

    data = load_iris(as_frame=True)
    X = data.data.set_axis(IRIS_FEATURES, axis=1)
    y = data.target_names[data.target]
    est = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    return export_model(est, X.iloc[::15], name="forest")


@pytest.fixture
def iris(api, publish, models):
    publish("iris", models.iris)
    return api


def _refused(resp, status: int, code: str, *words: str) -> str:
    got, headers, body = resp
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert all(w in message for w in words), message
    return message


def _call(api, event):
    return api.invoke(event)


def test_a_body_that_is_not_utf8_is_400(iris):
    event = iris.event("POST", "/models/iris/predict",
                       raw_body=base64.b64encode(b'{"instances": [["\xff\xfe"]]}').decode())
    event["isBase64Encoded"] = True
    _refused(_call(iris, event), 400, "invalid_request", "not UTF-8")


def test_a_body_that_is_not_base64_although_flagged_is_400(iris):
    event = iris.event("POST", "/models/iris/predict", raw_body="not base64 at all!")
    event["isBase64Encoded"] = True
    _refused(_call(iris, event), 400, "invalid_request", "base64")


def test_an_integer_of_more_than_4300_digits_is_400(iris):
    raw = '{"instances": [[' + "7" * 5000 + ", 1, 1, 1]]}"
    _refused(iris("POST", "/models/iris/predict", raw_body=raw), 400, "invalid_request", "number")


@pytest.mark.parametrize("depth", [65, 100_000])
def test_a_deeply_nested_body_is_400(iris, depth):
    raw = '{"instances": ' + "[" * depth + "]" * depth + "}"
    _refused(iris("POST", "/models/iris/predict", raw_body=raw), 400, "invalid_request", "nested deeper")


def test_nesting_within_the_bound_is_read(iris):
    # 63 levels under the top-level object: parsed, then refused by the model (a row is no list of lists)
    raw = '{"instances": ' + "[" * 62 + "]" * 62 + "}"
    status, _, body = iris("POST", "/models/iris/predict", raw_body=raw)
    assert status == 400 and "nested deeper" not in body["error"]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1"])
def test_a_body_that_is_not_json_media_is_415(iris, content_type):
    event = iris.event("POST", "/models/iris/predict", body={"instances": [IRIS_ROW]})
    event["headers"]["Content-Type"] = content_type
    _refused(_call(iris, event), 415, "unsupported_media_type", "application/json")


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/models/iris/predict"),
                                            ("POST", "/v2/models/iris/infer"),
                                            ("PUT", "/models/iris/aliases/latest")])
def test_a_request_without_a_body_is_told_so(iris, content_type, method, path):
    """``curl -X POST URL`` (no body, with or without a Content-Type): 400 saying the body is empty, not
    a bare "Field required" (nor a 500, which text/plain got)."""
    event = iris.event(method, path)
    event["body"] = None
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
    got, _, body = _call(iris, event)
    message = body["error"]["message"] if path.startswith("/models") else body["error"]
    assert got == 400 and "body is empty" in message and "Field required" not in message, body


def test_a_bodyless_route_takes_any_content_type(iris):
    event = iris.event("POST", "/models/iris/aliases/latest/rollback")
    event["body"] = None
    event["headers"]["Content-Type"] = "text/plain"
    got, _, body = _call(iris, event)
    assert got == 409 and body["error"]["code"] == "conflict", body  # nothing to roll back: not a 415


@pytest.mark.parametrize("content_type", [None, "application/json", "Application/JSON; charset=UTF-8"])
def test_json_bodies_are_read_with_or_without_a_content_type(iris, content_type):
    event = iris.event("POST", "/models/iris/predict", body={"instances": [IRIS_ROW]})
    if content_type is None:
        del event["headers"]["Content-Type"]
    else:
        event["headers"]["Content-Type"] = content_type
    status, _, body = _call(iris, event)
    assert status == 200 and len(body["predictions"]) == 1


def test_a_gzip_body_is_415(iris):
    raw = gzip.compress(json.dumps({"instances": [IRIS_ROW]}).encode())
    event = iris.event("POST", "/models/iris/predict", raw_body=base64.b64encode(raw).decode(),
                       headers={"Content-Encoding": "gzip"})
    event["isBase64Encoded"] = True
    _refused(_call(iris, event), 415, "unsupported_media_type", "Content-Encoding", "uncompressed")


def test_a_non_utf8_body_of_a_json_route_through_the_alias_route_is_also_400(api, publish, models):
    publish("iris", models.iris)
    raw = base64.b64encode(b'{"version": \xc3}').decode()
    event = api.event("PUT", "/models/iris/aliases/prod", raw_body=raw)
    event["isBase64Encoded"] = True
    _refused(_call(api, event), 400, "invalid_request", "not UTF-8")


def _zero_rows(per_feature: bool) -> dict:
    if per_feature:
        return {"inputs": [{"name": n, "shape": [0], "datatype": "FP64", "data": []} for n in IRIS_FEATURES]}
    return {"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP64", "data": []}]}


@pytest.mark.parametrize("per_feature", [False, True])
def test_zero_rows_to_a_forest_classifier_gets_empty_outputs(api, publish, forest, per_feature):
    publish("forest", forest)
    status, _, body = api("POST", "/v2/models/forest/infer", body=_zero_rows(per_feature))
    assert status == 200, body
    assert body["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [0], "data": []},
        {"name": "predict_proba", "datatype": "FP64", "shape": [0, 3], "data": []}]
    status, _, body = api("POST", "/v2/models/forest/infer",
                          body={**_zero_rows(per_feature), "outputs": [{"name": "predict_proba"}]})
    assert status == 200 and [o["name"] for o in body["outputs"]] == ["predict_proba"]


def test_zero_rows_match_the_shape_and_datatype_of_scored_rows(api, publish, models, forest):
    publish("lin", models.lin)
    publish("forest", forest)
    for name, request in (("lin", {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64",
                                               "data": [0.5]}]}),
                          ("forest", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                                  "data": IRIS_ROW}]})):
        _, _, one = api("POST", f"/v2/models/{name}/infer", body=request)
        empty = {"inputs": [{**request["inputs"][0], "shape": [0, request["inputs"][0]["shape"][1]],
                             "data": []}]}
        status, _, none = api("POST", f"/v2/models/{name}/infer", body=empty)
        assert status == 200
        assert [(o["name"], o["datatype"], o["shape"][1:]) for o in none["outputs"]] == \
            [(o["name"], o["datatype"], o["shape"][1:]) for o in one["outputs"]]
        assert all(o["shape"][0] == 0 and o["data"] == [] for o in none["outputs"])
    status, _, body = api("POST", "/models/forest/predict", body={"instances": []})
    assert status == 200 and body["predictions"] == []
