"""A standard V2 client, unchanged: tritonclient's ``InferenceServerClient`` with its default settings
(binary tensor data both ways, ``Inference-Header-Content-Length``) through every V2 call it makes."""

from __future__ import annotations

import urllib.parse
from typing import Any

import numpy as np
import pytest
from e2e_support import FEATURES, Published, Stack

import scorer

httpclient = pytest.importorskip("tritonclient.http")
utils = pytest.importorskip("tritonclient.utils")

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


@pytest.fixture
def client(stack: Stack) -> Any:
    url = urllib.parse.urlsplit(stack.api)
    return httpclient.InferenceServerClient(url.netloc, ssl=url.scheme == "https")


def _infer_base(url: str) -> str:
    return urllib.parse.urlsplit(url).path.strip("/")


def test_tritonclient_defaults_through_every_v2_call(stack: Stack, published: Published, client: Any,
                                                     iris_doc: dict[str, Any]) -> None:
    if _infer_base(stack.api):
        pytest.skip("tritonclient addresses the server root; the API has a base path here")
    model = scorer.load_model(iris_doc)
    version = str(published.version)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "modelsync"
    assert client.is_model_ready("iris", version)
    meta = client.get_model_metadata("iris", version)
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    assert {o["name"] for o in meta["outputs"]} == set(model.methods)

    # binary input (the default), outputs not named: every output back in binary
    x = httpclient.InferInput("x", list(ROWS.shape), "FP64")
    x.set_data_from_numpy(ROWS)
    result = client.infer("iris", [x], model_version=version)
    assert result.get_response()["model_version"] == version
    np.testing.assert_array_equal(result.as_numpy("predict").astype(str), model.predict(ROWS).astype(str))
    np.testing.assert_allclose(result.as_numpy("predict_proba").reshape(3, -1), model.predict_proba(ROWS),
                               rtol=0, atol=1e-12)

    # JSON input tensor, requested outputs (one binary, one JSON)
    j = httpclient.InferInput("x", list(ROWS.shape), "FP32")
    j.set_data_from_numpy(ROWS.astype(np.float32), binary_data=False)
    outputs = [httpclient.InferRequestedOutput("decision_function"),
               httpclient.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer("iris", [j], model_version=version, outputs=outputs)
    rows32 = ROWS.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(result.as_numpy("decision_function").reshape(3, -1),
                               model.decision_function(rows32), rtol=0, atol=1e-12)
    assert result.as_numpy("predict").astype(str).tolist() == model.predict(rows32).astype(str).tolist()
    assert [o["name"] for o in result.get_response()["outputs"]] == ["decision_function", "predict"]

    # per-feature BYTES-free tensors through `latest` (no version)
    per = []
    for i, name in enumerate(FEATURES):
        t = httpclient.InferInput(name, [len(ROWS)], "FP64")
        t.set_data_from_numpy(np.ascontiguousarray(ROWS[:, i]))
        per.append(t)
    assert client.infer("iris", per, model_version=version).as_numpy("predict") is not None

    # errors print as the server's message (the protocol's {"error": message})
    with pytest.raises(utils.InferenceServerException) as caught:
        client.infer("iris", [x], model_version=version,
                     outputs=[httpclient.InferRequestedOutput("transform")])
    text = str(caught.value)
    assert "transform" in text and "predict_proba" in text and caught.value.status() == "400"
    with pytest.raises(utils.InferenceServerException) as missing:
        client.get_model_metadata("no-such-model")
    assert "no-such-model" in str(missing.value) and missing.value.status() == "404"
    assert not client.is_model_ready("iris", "999")

    # the local stack measured each of those requests from the records Score emitted
    r = stack.http("GET", "/models/iris/metrics")
    assert r.status == 200
    mine = [v for v in r.json()["versions"] if v["version"] == published.version and v["side"] == "base"]
    assert mine and mine[0]["requests"] >= 4 and mine[0]["errors_by_kind"].get("output_unavailable", 0) >= 1
    assert mine[0]["total_latency_ms"]["mean"] > 0
