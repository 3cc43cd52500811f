"""Every method a document has, served: V2 ``outputs`` and the plain route's ``outputs`` for an anomaly
score (IsolationForest ``decision_function``) and a transformer (PCA ``transform``); a method the model
lacks is a 400 listing the ones it has; every scoring response names the served version."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import scorer

ROWS = [[0.1, 0.2, 0.3], [3.0, -2.0, 0.5], [0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    import pandas as pd
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest

    from modelsync.export import export_model

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    iso = IsolationForest(n_estimators=10, random_state=0).fit(X)
    pca = PCA(n_components=2).fit(X)
    return {"anomaly": export_model(iso, X.iloc[:8], name="anomaly"),
            "pca": export_model(pca, X.iloc[:8], name="pca")}


def _tensor() -> dict[str, Any]:
    return {"name": "x", "shape": [len(ROWS), 3], "datatype": "FP64", "data": ROWS}


def test_anomaly_scores_through_v2_and_the_plain_route(api, publish, docs):
    publish("anomaly", docs["anomaly"])
    expected = scorer.load_model(docs["anomaly"]).decision_function(np.array(ROWS))
    status, headers, body = api("POST", "/v2/models/anomaly/infer", body={
        "inputs": [_tensor()], "outputs": [{"name": "decision_function"}, {"name": "predict"}]})
    assert status == 200, body
    assert headers["x-model-version"] == "1" and body["model_version"] == "1"
    assert [o["name"] for o in body["outputs"]] == ["decision_function", "predict"]
    dec = body["outputs"][0]
    assert dec["datatype"] == "FP64" and dec["shape"] == [3]
    np.testing.assert_allclose(dec["data"], expected, rtol=0, atol=1e-12)

    status, headers, plain = api("POST", "/models/anomaly/predict",
                                 body={"instances": ROWS, "outputs": ["decision_function"]})
    assert status == 200 and headers["x-model-version"] == "1", plain
    assert set(plain) == {"model_name", "model_version", "decision_function"}
    np.testing.assert_allclose(plain["decision_function"], expected, rtol=0, atol=1e-12)
    # without outputs: as before (predictions only, no probabilities for an outlier detector)
    status, _, default = api("POST", "/models/anomaly/predict", body={"instances": ROWS})
    assert status == 200 and "decision_function" not in default and len(default["predictions"]) == 3

    status, _, meta = api("GET", "/v2/models/anomaly")
    assert status == 200
    assert {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]}["decision_function"] == (
        "FP64", [-1])


def test_a_transformer_serves_transform_and_refuses_what_it_lacks(api, publish, docs):
    publish("pca", docs["pca"])
    expected = scorer.load_model(docs["pca"]).transform(np.array(ROWS))
    # default outputs of a model without predict: its method (was a 500)
    status, headers, body = api("POST", "/v2/models/pca/infer", body={"inputs": [_tensor()]})
    assert status == 200, body
    assert headers["x-model-version"] == "1"
    (out,) = body["outputs"]
    assert out["name"] == "transform" and out["shape"] == [3, 2] and out["datatype"] == "FP64"
    np.testing.assert_allclose(np.reshape(out["data"], (3, 2)), expected, rtol=0, atol=1e-12)

    status, _, plain = api("POST", "/models/pca/predict", body={"instances": ROWS, "outputs": ["transform"]})
    assert status == 200
    np.testing.assert_allclose(plain["transform"], expected, rtol=0, atol=1e-12)
    status, _, default = api("POST", "/models/pca/predict", body={"instances": ROWS})
    assert status == 200 and list(default["transform"][0]) == pytest.approx(expected[0].tolist())

    # a method the model lacks: 400 listing the ones it has; V2 says it as {"error": message}
    status, _, err = api("POST", "/v2/models/pca/infer",
                         body={"inputs": [_tensor()], "outputs": [{"name": "predict"}]})
    assert status == 400 and isinstance(err["error"], str)
    assert "'predict'" in err["error"] and "transform" in err["error"]
    status, _, err = api("POST", "/models/pca/predict",
                         body={"instances": ROWS, "outputs": ["predict_proba"]})
    assert status == 400 and err["error"]["code"] == "output_unavailable"
    assert "transform" in err["error"]["message"]
    status, _, err = api("POST", "/models/pca/predict", body={"instances": ROWS, "outputs": ["explain"]})
    assert status == 400 and "'explain'" in err["error"]["message"] and "transform" in err["error"]["message"]

    status, _, meta = api("GET", "/v2/models/pca/versions/1")
    assert status == 200 and meta["outputs"] == [{"name": "transform", "datatype": "FP64", "shape": [-1, 2]}]
    # zero rows: shaped as scored rows would be
    status, _, empty = api("POST", "/v2/models/pca/infer", body={"inputs": [
        {"name": "x", "shape": [0, 3], "datatype": "FP64", "data": []}]})
    assert status == 200 and empty["outputs"][0]["shape"] == [0, 2]


def test_ready_by_version_and_v2_errors_are_protocol_shaped(api, publish, docs):
    publish("pca", docs["pca"])
    assert api("GET", "/v2/models/pca/versions/1/ready")[2] == {"name": "pca", "version": "1", "ready": True}
    status, _, err = api("GET", "/v2/models/pca/versions/7/ready")
    assert status == 404 and isinstance(err["error"], str) and "7" in err["error"]
    status, _, err = api("GET", "/v2/models/nope/versions/1/ready")
    assert status == 404 and set(err) == {"error"} and isinstance(err["error"], str)
    # the plain and admin routes keep {"error": {"code", "message"}}
    status, _, err = api("GET", "/models/nope")
    assert status == 404 and err["error"]["code"] == "model_not_found"
    # a body that is not JSON media: 415 on V2 too, in the protocol's shape
    status, _, err = api("POST", "/v2/models/pca/infer", raw_body="inputs=1",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and isinstance(err["error"], str) and "Content-Type" in err["error"]


def _binary_call(api, path: str, header: dict[str, Any], blobs: bytes, length: int | None = None):
    head = json.dumps(header).encode()
    headers = [("Host", "x.execute-api.us-east-1.amazonaws.com"),
               ("Inference-Header-Content-Length", str(len(head) if length is None else length))]
    return api.gateway.handle("POST", path, headers, head + blobs, "203.0.113.10")


def test_binary_tensors_in_and_out_and_their_mistakes(api, publish, docs):
    publish("pca", docs["pca"])
    rows = np.array(ROWS)
    header = {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP64",
                          "parameters": {"binary_data_size": rows.nbytes}}],
              "outputs": [{"name": "transform", "parameters": {"binary_data": True}}]}
    resp = _binary_call(api, "/v2/models/pca/infer", header, rows.astype("<f8").tobytes())
    assert resp.status == 200
    headers = {k.lower(): v for k, v in resp.headers}
    n = int(headers["inference-header-content-length"])
    meta = json.loads(resp.body[:n])
    (out,) = meta["outputs"]
    assert "data" not in out and out["parameters"]["binary_data_size"] == 3 * 2 * 8
    got = np.frombuffer(resp.body[n:], dtype="<f8").reshape(3, 2)
    np.testing.assert_allclose(got, scorer.load_model(docs["pca"]).transform(rows), rtol=0, atol=1e-12)
    # mistakes are 400s in the protocol's error shape
    for blobs, length, fragment in ((rows.tobytes()[:-3], None, "binary_data_size"),
                                    (rows.tobytes() + b"xx", None, "bytes after"),
                                    (rows.tobytes(), 10**6, "more than the body")):
        resp = _binary_call(api, "/v2/models/pca/infer", header, blobs, length)
        body = json.loads(resp.body)
        assert resp.status == 400 and isinstance(body["error"], str) and fragment in body["error"], body
