"""Score: the REST API driven with API Gateway proxy events (V2 protocol, plain JSON, registry)."""

from __future__ import annotations

import copy
import dataclasses
import json
from unittest.mock import ANY

import numpy as np
import pytest

import scorer

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
FLAT = [v for row in IRIS_ROWS for v in row]


def _error(body: dict) -> tuple[str, str]:
    """(code, message); V2 routes answer ``{"error": message}`` (Open Inference Protocol): code ""."""
    err = body["error"]
    if isinstance(err, str):
        return "", err
    return err["code"], err["message"]


# -- empty registry, unknown models, health ---------------------------------------------------------

def test_empty_registry(api):
    # the handler's one header, and the request id API Gateway adds
    assert api("GET", "/models") == (200, {"content-type": "application/json", "x-amzn-requestid": ANY},
                                     {"models": []})
    status, _, body = api("GET", "/models/iris")
    assert status == 404 and _error(body)[0] == "model_not_found"
    status, _, body = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROWS[0]]})
    assert status == 404 and _error(body)[0] == "model_not_found"
    status, _, body = api("POST", "/v2/models/iris/infer", body={"inputs": [
        {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROWS[0]}]})
    assert status == 404 and "iris" in _error(body)[1]
    assert api("GET", "/v2/health/live")[0] == 200
    assert api("GET", "/v2/health/ready")[2] == {"ready": True}
    status, _, meta = api("GET", "/v2")
    assert status == 200 and meta["name"] == "modelsync" and "version" in meta
    assert meta["extensions"] == ["binary_tensor_data"]  # served by modelsync.service.http.binary


def test_known_model_without_a_published_version_is_503(api, publish, models):
    # GIVEN a model whose only upload was rejected
    bad = copy.deepcopy(models.iris)
    bad["sha256"] = "0" * 64
    assert publish("iris", bad)["status"] == "rejected"
    # THEN scoring and the manifest say "unavailable" (retry later), not "unknown"
    status, headers, body = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROWS[0]]})
    assert status == 503 and _error(body)[0] == "model_unavailable" and headers["retry-after"]
    assert api("GET", "/models/iris/manifest")[0] == 503
    assert api("GET", "/v2/models/iris/ready")[0] == 503


def test_unknown_route_and_invalid_json(api, publish, models):
    # API Gateway answers a route the template does not declare; the handler has its own 404 behind it
    status, _, body = api("GET", "/nothing/here")
    assert status == 403 and body == {"message": "Missing Authentication Token"}
    event = api.event("GET", "/models") | {"path": "/nothing/here", "resource": "/nothing/here"}
    resp = api.app.lambda_handler(event, api.context)
    assert resp["statusCode"] == 404 and _error(json.loads(resp["body"]))[0] == "route_not_found"
    publish("iris", models.iris)
    status, _, body = api("POST", "/models/iris/predict", raw_body="{not json")
    assert status == 400 and "not valid JSON" in _error(body)[1]


def test_unexpected_errors_are_500_without_internals(api, publish, models, monkeypatch):
    publish("iris", models.iris)

    def boom(*args, **kwargs):
        raise RuntimeError("secret table layout pk=MODEL#iris")

    monkeypatch.setattr(api.app.SERVICE.registry, "get_alias", boom)
    status, _, body = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROWS[0]]})
    assert status == 500 and _error(body)[0] == "internal_error"
    assert "secret" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)


# -- Open Inference Protocol ------------------------------------------------------------------------

def test_v2_infer_with_one_matrix_tensor(api, publish, models, events):
    # GIVEN iris v1 published
    publish("iris", models.iris)
    expected = scorer.load_model(models.iris)
    # WHEN the sample V2 request (one [2, 4] FP64 tensor, nested data) is sent
    resp = api.app.lambda_handler(events("score_v2_infer"), api.context)
    body = json.loads(resp["body"])
    # THEN predict (BYTES labels) and predict_proba ([rows, classes]) come back, with name, version and id
    assert resp["statusCode"] == 200
    assert (body["model_name"], body["model_version"], body["id"]) == ("iris", "1", "req-42")
    out = {o["name"]: o for o in body["outputs"]}
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    assert out["predict"] == {"name": "predict", "datatype": "BYTES", "shape": [2],
                              "data": expected.predict(rows).tolist()}
    assert out["predict_proba"]["shape"] == [2, 3] and out["predict_proba"]["datatype"] == "FP64"
    np.testing.assert_array_equal(np.array(out["predict_proba"]["data"]).reshape(2, 3),
                                  expected.predict_proba(rows))


def test_v2_flat_data_requested_outputs_and_versioned_routes(api, publish, models):
    publish("iris", models.iris)
    publish("iris", models.iris_v2)
    tensor = {"name": "x", "shape": [3, 4], "datatype": "FP32", "data": FLAT}
    status, _, body = api("POST", "/v2/models/iris/versions/1/infer",
                          body={"inputs": [tensor], "outputs": [{"name": "predict"}]})
    assert status == 200 and body["model_version"] == "1"
    assert [o["name"] for o in body["outputs"]] == ["predict"]
    expected = scorer.load_model(models.iris).predict(np.array(IRIS_ROWS, dtype=np.float32).astype(float))
    assert body["outputs"][0]["data"] == expected.tolist()
    status, _, meta = api("GET", "/v2/models/iris")
    assert status == 200 and meta["versions"] == ["1", "2"] and meta["platform"] == "modelsync_sklearn"
    assert [i["name"] for i in meta["inputs"]] == ["sepal_length", "sepal_width", "petal_length",
                                                   "petal_width"]
    # every method of the document is listed, with its datatype and shape
    shapes = {o["name"]: o["shape"] for o in meta["outputs"]}
    assert list(shapes) == scorer.load_model(models.iris_v2).methods
    assert shapes["predict"] == [-1] and shapes["predict_proba"] == [-1, 3]
    assert all(o["datatype"] == "FP64" for o in meta["outputs"] if o["name"] != "predict")
    status, _, meta1 = api("GET", "/v2/models/iris/versions/1")
    assert status == 200 and meta1["versions"] == ["1"]
    assert api("GET", "/v2/models/iris/versions/9")[0] == 404
    assert api("GET", "/v2/models/iris/ready")[2] == {"name": "iris", "version": "2", "ready": True}


def test_v2_per_feature_tensors_with_bytes_categorical(api, publish, models):
    # GIVEN a pipeline with a numeric feature and a categorical one
    publish("fruit", models.fruit)
    expected = scorer.load_model(models.fruit)
    # WHEN one tensor per feature is sent (BYTES for the category, null = missing)
    body = {"inputs": [{"name": "color", "shape": [3], "datatype": "BYTES", "data": ["red", "blue", None]},
                       {"name": "size", "shape": [3, 1], "datatype": "FP64", "data": [[0.1], [2.0], [-1.0]]}]}
    status, _, resp = api("POST", "/v2/models/fruit/infer", body=body)
    # THEN the model sees the rows as scikit-learn would
    assert status == 200, resp
    want = expected.predict({"size": [0.1, 2.0, -1.0], "color": ["red", "blue", None]})
    assert resp["outputs"][0]["data"] == want.tolist()
    status, _, meta = api("GET", "/v2/models/fruit")
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {"size": "FP64", "color": "BYTES"}


@pytest.mark.parametrize(("inputs", "fragment"), [
    ([{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1.0] * 7}],
     "input tensor 'x' (inputs[0]): data has 7 elements"),
    ([{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0] * 3}], "input tensor 'x'"),
    ([{"name": "x", "shape": [1, 4], "datatype": "FP16", "data": [1.0] * 4}], "datatype 'FP16'"),
    ([{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1.0, "a", 2.0, 3.0]}],
     "input tensor 'x' (inputs[0]): element 1"),
    ([{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [[1, 2, 3, 4], [1, 2, 3]]}],
     "input tensor 'x' (inputs[0]): data[1] has 3 elements"),
    ([{"name": "sepal_length", "shape": [1], "datatype": "FP64", "data": [1.0]}],
     "missing input tensor for feature 'sepal_width'"),
    ([{"name": "petals", "shape": [1], "datatype": "FP64", "data": [1.0]}], "input tensor 'petals'"),
    ([{"name": "x", "datatype": "FP64", "data": [1.0]}], "input tensor 'x': body.inputs[0].shape"),
])
def test_malformed_tensors_are_400_naming_the_tensor(api, publish, models, inputs, fragment):
    publish("iris", models.iris)
    status, _, body = api("POST", "/v2/models/iris/infer", body={"inputs": inputs})
    assert status == 400, body
    assert fragment in _error(body)[1]


def test_bytes_tensor_for_a_numeric_feature_is_400(api, publish, models):
    publish("fruit", models.fruit)
    body = {"inputs": [{"name": "size", "shape": [1], "datatype": "BYTES", "data": ["big"]},
                       {"name": "color", "shape": [1], "datatype": "BYTES", "data": ["red"]}]}
    status, _, resp = api("POST", "/v2/models/fruit/infer", body=body)
    assert status == 400 and "input tensor 'size'" in _error(resp)[1]


def test_limits_are_413(api, publish, models, monkeypatch):
    publish("iris", models.iris)
    small = dataclasses.replace(api.app.SETTINGS, max_rows_per_request=2, max_request_bytes=2000)
    monkeypatch.setattr(api.app, "SETTINGS", small)
    monkeypatch.setattr(api.app.SERVICE, "settings", small)
    status, _, body = api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})
    assert status == 413 and "3 rows" in _error(body)[1]
    status, _, body = api("POST", "/v2/models/iris/infer", body={"inputs": [
        {"name": "x", "shape": [3, 4], "datatype": "FP64", "data": FLAT}]})
    assert status == 413
    status, _, body = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROWS[0]] * 200})
    assert status == 413 and _error(body)[0] == "payload_too_large" and "bytes" in _error(body)[1]


# -- plain predictions, aliases, latest per request --------------------------------------------------

def test_plain_predict_by_version_alias_and_latest(api, publish, models, events):
    # GIVEN v1 and v2, and an alias "stable" on v1
    publish("iris", models.iris)
    publish("iris", models.iris_v2)
    assert api("PUT", "/models/iris/aliases/stable", body={"version": 1})[0] == 200
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = [dict(zip(names, r, strict=True)) for r in IRIS_ROWS]  # objects keyed by feature name
    v1, v2 = scorer.load_model(models.iris), scorer.load_model(models.iris_v2)
    # WHEN predicting by alias, by version and by default (latest)
    by_alias = api("POST", "/models/iris/predict", body={"instances": rows}, query={"alias": "stable"})[2]
    by_version = api("POST", "/models/iris/predict", body={"instances": rows}, query={"version": "2"})[2]
    default = api("POST", "/models/iris/predict", body={"instances": rows})[2]
    # THEN each answers with its version's predictions and class probabilities
    assert by_alias["model_version"] == 1 and by_alias["predictions"] == v1.predict(rows).tolist()
    assert by_version["model_version"] == 2 and default["model_version"] == 2
    assert default["predictions"] == v2.predict(rows).tolist()
    proba = v2.predict_proba(rows)
    assert default["probabilities"][0] == dict(zip(["setosa", "versicolor", "virginica"], proba[0].tolist(),
                                                   strict=True))
    # rows as lists work too
    as_lists = api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS},
                   query={"alias": "stable"})[2]
    assert as_lists["predictions"] == by_alias["predictions"]
    # the sample event (alias=latest) works as is
    resp = api.app.lambda_handler(events("score_plain_predict"), api.context)
    assert resp["statusCode"] == 200 and json.loads(resp["body"])["model_version"] == 2
    assert api("POST", "/models/iris/predict", body={"instances": rows}, query={"version": "7"})[0] == 404
    assert api("POST", "/models/iris/predict", body={"instances": rows}, query={"alias": "nope"})[0] == 404
    status, _, body = api("POST", "/models/iris/predict", body={"instances": rows},
                          query={"version": "1", "alias": "stable"})
    assert status == 400 and "either version or alias" in _error(body)[1]


def test_regressor_has_no_probabilities(api, publish, models):
    publish("lin", models.lin)
    status, _, body = api("POST", "/models/lin/predict", body={"instances": [[1.0], [2.0]]})
    assert status == 200 and "probabilities" not in body
    assert body["predictions"] == pytest.approx([3.0, 5.0])
    status, _, body = api("POST", "/v2/models/lin/infer", body={"inputs": [
        {"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]}]})
    assert status == 200 and [o["name"] for o in body["outputs"]] == ["predict"]
    assert body["outputs"][0]["datatype"] == "FP64"
    status, _, body = api("POST", "/v2/models/lin/infer", body={"inputs": [
        {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}],
        "outputs": [{"name": "predict_proba"}]})
    assert status == 400 and "predict_proba" in _error(body)[1]


def test_bad_rows_are_400_naming_row_and_feature(api, publish, models):
    publish("iris", models.iris)
    status, _, body = api("POST", "/models/iris/predict", body={"instances": [IRIS_ROWS[0], [1, 2, "x", 4]]})
    assert status == 400 and "row 1" in _error(body)[1] and "petal_length" in _error(body)[1]
    status, _, body = api("POST", "/models/iris/predict", body={"instances": [{"sepal_length": 1}]})
    assert status == 400 and "sepal_width" in _error(body)[1]
    status, _, body = api("POST", "/models/iris/predict", body={"rows": []})
    assert status == 400 and "instances" in _error(body)[1]


def test_new_latest_is_served_without_a_cold_start(api, publish, models):
    publish("iris", models.iris)
    assert api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})[2]["model_version"] == 1
    publish("iris", models.iris_v2)
    assert api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})[2]["model_version"] == 2
    assert api.app.MODEL_CACHE.misses == 2
    api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})
    assert api.app.MODEL_CACHE.hits >= 1


# -- registry views, manifest, alias writes ----------------------------------------------------------

def test_models_listing_and_detail(api, publish, models):
    publish("iris", models.iris)
    publish("iris", models.iris_v2)
    publish("lin", models.lin)
    listing = api("GET", "/models")[2]["models"]
    assert {m["name"]: m["latest_version"] for m in listing} == {"iris": 2, "lin": 1}
    detail = api("GET", "/models/iris")[2]
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    assert detail["aliases"]["latest"]["version"] == 2 and detail["aliases"]["latest"]["revision"] == 2


def test_manifest_etag_and_304(aws, api, publish, models, events):
    # GIVEN iris v1 published
    publish("iris", models.iris)
    # WHEN a device fetches the manifest
    status, headers, manifest = api("GET", "/models/iris/manifest")
    # THEN it names the version, sha256, size, revision and a presigned URL, with an ETag
    assert status == 200
    assert manifest["name"] == "iris" and manifest["version"] == 1 and manifest["alias"] == "latest"
    assert manifest["sha256"] == models.iris["sha256"] and manifest["revision"] == 1
    assert manifest["document_key"] == "models/iris/1.json" and manifest["format_version"] == "1.0"
    raw = aws.s3.get_object(Bucket=aws.bucket, Key="models/iris/1.json")["Body"].read()
    assert manifest["size"] == len(raw) and "models/iris/1.json" in manifest["url"]
    assert headers["etag"] == f'"{models.iris["sha256"]}-1"'
    # AND the same request with If-None-Match is a 304 without a body
    status, headers2, body = api("GET", "/models/iris/manifest", headers={"If-None-Match": headers["etag"]})
    assert (status, body, headers2["etag"]) == (304, None, headers["etag"])
    # the sample event carries an If-None-Match for revision 1 of another document: 200
    resp = api.app.lambda_handler(events("score_manifest_if_none_match"), api.context)
    assert resp["statusCode"] == 200
    # AND once latest moves, the old ETag no longer matches
    publish("iris", models.iris_v2)
    status, headers3, manifest2 = api("GET", "/models/iris/manifest",
                                      headers={"If-None-Match": headers["etag"]})
    assert status == 200 and manifest2["version"] == 2 and headers3["etag"] != headers["etag"]
    by_version = api("GET", "/models/iris/manifest", query={"version": "1"})
    assert by_version[0] == 200 and by_version[2]["alias"] is None and by_version[2]["revision"] == 0


def test_manifest_fits_the_device_side_checks(api, publish, models):
    from modelsync_device import check_manifest

    publish("iris", models.iris)
    manifest = api("GET", "/models/iris/manifest", query={"alias": "latest"})[2]
    assert check_manifest(manifest, "iris", "latest") == []


def test_alias_put_with_if_match(api, publish, models):
    publish("iris", models.iris)
    publish("iris", models.iris_v2)
    # creating "prod" at v1: revision 1
    status, headers, body = api("PUT", "/models/iris/aliases/prod", body={"version": 1})
    assert (status, body["revision"], headers["etag"]) == (200, 1, '"1"')
    # a stale If-Match is refused
    status, _, body = api("PUT", "/models/iris/aliases/prod", body={"version": 2},
                          headers={"If-Match": '"0"'})
    assert status == 412 and _error(body)[0] == "precondition_failed"
    # the current revision moves it
    status, _, body = api("PUT", "/models/iris/aliases/prod", body={"version": 2},
                          headers={"If-Match": '"1"'})
    assert status == 200 and (body["version"], body["revision"]) == (2, 2)
    # rolling latest back is an alias move too
    status, _, body = api("PUT", "/models/iris/aliases/latest", body={"version": 1})
    assert status == 200 and body["revision"] == 3
    assert api("POST", "/models/iris/predict", body={"instances": IRIS_ROWS})[2]["model_version"] == 1
    # unknown version, bad body, bad alias name
    assert api("PUT", "/models/iris/aliases/prod", body={"version": 9})[0] == 404
    status, _, body = api("PUT", "/models/iris/aliases/prod", body={"version": "2"})
    assert status == 400 and "version" in _error(body)[1]
    assert api("PUT", "/models/iris/aliases/Bad%20Name", body={"version": 1})[0] == 400
    assert api("PUT", "/models/nope/aliases/prod", body={"version": 1})[0] == 404


def test_alias_delete(api, publish, models):
    publish("iris", models.iris)
    api("PUT", "/models/iris/aliases/prod", body={"version": 1})
    assert api("DELETE", "/models/iris/aliases/latest")[0] == 409
    assert api("DELETE", "/models/iris/aliases/prod", headers={"If-Match": '"7"'})[0] == 412
    status, _, body = api("DELETE", "/models/iris/aliases/prod", headers={"If-Match": '"1"'})
    assert status == 200 and body["revision"] == 2
    assert api("DELETE", "/models/iris/aliases/prod")[0] == 404
    assert "prod" not in api("GET", "/models/iris")[2]["aliases"]
    # setting it again continues the revision sequence
    assert api("PUT", "/models/iris/aliases/prod", body={"version": 1})[2]["revision"] == 3
