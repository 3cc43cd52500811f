"""Publishing a version whose input schema differs from latest's, on the local stack: latest stays."""

from __future__ import annotations

import json
from typing import Any

from e2e_support import FEATURES, Stack, wait_for


def _upload(stack: Stack, doc: dict[str, Any], key: str) -> None:
    stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/flower/{key}",
                                  Body=json.dumps(doc).encode(), ContentType="application/json")


def _versions(stack: Stack, n: int) -> Any:
    r = stack.http("GET", "/models/flower")
    body = r.json() if r.status == 200 else {}
    return body if len(body.get("versions", [])) >= n and body.get("aliases", {}).get("latest") else None


def test_renamed_feature_keeps_latest_on_the_local_stack(stack: Stack, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    X, y = iris
    v1 = export_model(LogisticRegression(max_iter=1000).fit(X, y), X.iloc[::10], name="flower", baseline=X)
    Xr = X.rename(columns={FEATURES[3]: "petal_w"})
    v2 = export_model(LogisticRegression(max_iter=1000).fit(Xr, y), Xr.iloc[::10], name="flower", baseline=Xr)
    _upload(stack, v1, "v1.json")
    wait_for("flower v1 published", lambda: _versions(stack, 1), timeout=30)
    _upload(stack, v2, "v2.json")
    body = wait_for("flower v2 published", lambda: _versions(stack, 2), timeout=30)
    assert body["aliases"]["latest"]["version"] == 1
    s3 = stack.client("s3")
    reports = [json.loads(s3.get_object(Bucket=stack.bucket, Key=o["Key"])["Body"].read())
               for o in s3.list_objects_v2(Bucket=stack.bucket, Prefix="reports/flower/").get("Contents", [])]
    (held,) = [r for r in reports if r.get("version") == 2]
    assert held["latest_moved"] is False and held["latest_version"] == 1
    assert [c["message"] for c in held["schema_changes"]] == [
        f"feature '{FEATURES[3]}' renamed/removed (position 3 is now 'petal_w')", "feature 'petal_w' added"]
    # clients of latest still send v1's features; moving latest to v2 is an explicit alias move
    row = dict(zip(FEATURES, X.iloc[0].tolist(), strict=True))
    r = stack.http("POST", "/models/flower/predict", {"instances": [row]})
    assert r.status == 200 and r.headers["X-Model-Version"] == "1"
    r = stack.http("PUT", "/models/flower/aliases/latest", {"version": 2})
    assert r.status == 200, r.body
    assert stack.http("GET", "/models/flower").json()["aliases"]["latest"]["version"] == 2
    renamed_row = {("petal_w" if k == FEATURES[3] else k): v for k, v in row.items()}
    r = stack.http("POST", "/models/flower/predict", {"instances": [renamed_row]})
    assert r.status == 200 and r.headers["X-Model-Version"] == "2"
