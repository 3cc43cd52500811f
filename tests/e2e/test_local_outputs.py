"""Every method a document has, on the local stack (issue 11, "Done when"): an IsolationForest serves
``decision_function`` through V2, the plain route and batch (the key's ``outputs=`` folder); a PCA serves
``transform``; a method the model lacks is a 400 listing the methods it has (and a batch error report)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np
import pytest
from e2e_support import Stack, wait_for

import scorer

FEATURES = ["a", "b", "c"]
ROWS = [[0.1, 0.2, 0.3], [3.0, -2.0, 0.5], [0.0, 0.0, 0.0], [-1.5, 0.7, 2.2]]


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    import warnings

    import pandas as pd
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest

    from modelsync.export import export_model

    X = pd.DataFrame(np.random.default_rng(5).normal(size=(200, 3)), columns=FEATURES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"e2e-anomaly": export_model(IsolationForest(n_estimators=10, random_state=0).fit(X), X,
                                            name="e2e-anomaly"),
                "e2e-pca": export_model(PCA(n_components=2).fit(X), X, name="e2e-pca")}


@pytest.fixture(scope="module")
def versions(stack: Stack, docs: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Both models uploaded under incoming/ and published (their version, as GET /models/{name} says)."""
    s3 = stack.client("s3")
    for name, doc in docs.items():
        s3.put_object(Bucket=stack.bucket, Key=f"incoming/{name}/model.json", Body=json.dumps(doc).encode())

    def published(name: str) -> Any:
        r = stack.http("GET", f"/models/{name}")
        mine = [v["version"] for v in r.json().get("versions", []) if v.get("sha256") == docs[name]["sha256"]]
        return r.status == 200 and mine and int(mine[0])

    return {name: wait_for(f"{name} published", lambda n=name: published(n), timeout=30) for name in docs}


def _tensor() -> dict[str, Any]:
    return {"name": "x", "shape": [len(ROWS), 3], "datatype": "FP64", "data": ROWS}


def _batch(stack: Stack, key: str, out_key: str) -> str:
    """Put a CSV of ROWS at ``key`` and wait for the scheduled Batch run to write ``out_key``."""
    s3 = stack.client("s3")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *FEATURES])
    writer.writerows([f"r{i}", *row] for i, row in enumerate(ROWS))
    s3.put_object(Bucket=stack.bucket, Key=key, Body=buf.getvalue().encode())

    def written() -> Any:
        listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix=out_key).get("Contents", [])
        return any(o["Key"] == out_key for o in listed) and s3.get_object(
            Bucket=stack.bucket, Key=out_key)["Body"].read().decode()

    return str(wait_for(f"{out_key} (the scheduled Batch run)", written, timeout=30))


def test_isolation_forest_serves_decision_function_everywhere(stack: Stack, docs, versions):
    name, v = "e2e-anomaly", versions["e2e-anomaly"]
    want = scorer.load_model(docs[name]).decision_function(np.array(ROWS))
    # V2
    r = stack.http("POST", f"/v2/models/{name}/versions/{v}/infer",
                   {"inputs": [_tensor()], "outputs": [{"name": "decision_function"}]})
    assert r.status == 200, r.body
    (out,) = r.json()["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("decision_function", "FP64", [len(ROWS)])
    np.testing.assert_allclose(out["data"], want, rtol=0, atol=1e-12)
    assert r.headers.get("X-Model-Version") == str(v)
    # the plain route
    r = stack.http("POST", f"/models/{name}/predict?version={v}",
                   {"instances": ROWS, "outputs": ["decision_function", "predict"]})
    assert r.status == 200, r.body
    np.testing.assert_allclose(r.json()["decision_function"], want, rtol=0, atol=1e-12)
    assert len(r.json()["predictions"]) == len(ROWS)
    # batch: the key's outputs= folder, the scheduled run
    text = _batch(stack, f"batch/input/{name}/v{v}/outputs=decision_function/e2e.csv",
                  f"batch/output/{name}/outputs=decision_function/e2e.v{v}.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", *FEATURES, "decision_function"]
    np.testing.assert_allclose([float(r["decision_function"]) for r in rows], want, rtol=0, atol=1e-12)


def test_pca_serves_transform_everywhere(stack: Stack, docs, versions):
    name, v = "e2e-pca", versions["e2e-pca"]
    want = scorer.load_model(docs[name]).transform(np.array(ROWS))
    r = stack.http("POST", f"/v2/models/{name}/versions/{v}/infer",
                   {"inputs": [_tensor()], "outputs": [{"name": "transform"}]})
    assert r.status == 200, r.body
    (out,) = r.json()["outputs"]
    assert out["shape"] == [len(ROWS), 2]
    np.testing.assert_allclose(np.reshape(out["data"], (-1, 2)), want, rtol=0, atol=1e-12)
    r = stack.http("POST", f"/models/{name}/predict?version={v}",
                   {"instances": ROWS, "outputs": ["transform"]})
    assert r.status == 200, r.body
    np.testing.assert_allclose(r.json()["transform"], want, rtol=0, atol=1e-12)
    text = _batch(stack, f"batch/input/{name}/v{v}/outputs=transform/e2e.csv",
                  f"batch/output/{name}/outputs=transform/e2e.v{v}.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", *FEATURES, "transform_0", "transform_1"]
    np.testing.assert_allclose([[float(r["transform_0"]), float(r["transform_1"])] for r in rows], want,
                               rtol=0, atol=1e-12)


def test_a_method_the_model_lacks_is_a_400_listing_the_methods(stack: Stack, versions):
    name, v = "e2e-pca", versions["e2e-pca"]
    r = stack.http("POST", f"/v2/models/{name}/versions/{v}/infer",
                   {"inputs": [_tensor()], "outputs": [{"name": "decision_function"}]})
    assert r.status == 400
    assert set(r.json()) == {"error"} and "decision_function" in r.json()["error"]
    assert "transform" in r.json()["error"]
    r = stack.http("POST", f"/models/{name}/predict?version={v}", {"instances": ROWS, "outputs": ["predict"]})
    assert r.status == 400 and "transform" in r.json()["error"]["message"]
    r = stack.http("POST", "/models/e2e-anomaly/predict", {"instances": ROWS, "outputs": ["predict_proba"]})
    assert r.status == 400
    assert "predict, decision_function" in r.json()["error"]["message"]
    # batch: the input's error report names the methods the model has
    report = _batch(stack, f"batch/input/{name}/v{v}/outputs=predict/e2e.csv",
                    f"batch/output/{name}/outputs=predict/e2e.v{v}.errors.jsonl")
    (line,) = [json.loads(x) for x in report.splitlines()]
    assert line["line"] is None
    assert line["reason"] == f"input not scored: model '{name}' has no predict; it offers transform"
