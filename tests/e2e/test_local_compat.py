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


def test_alias_set_moves_latest_to_the_held_version_and_back(stack: Stack, iris: tuple[Any, Any],
                                                             capsys: Any) -> None:
    """After a held publish, ``modelsync alias set NAME latest V`` is the explicit move; setting it back
    serves the old version again (each move visible to the next request)."""
    from sklearn.linear_model import LogisticRegression

    from modelsync.cli import main
    from modelsync.export import export_model

    X, y = iris
    name = "flower-cli"
    Xr = X[[FEATURES[1], FEATURES[0], *FEATURES[2:]]].rename(columns={FEATURES[3]: "petal_w"})
    for key, data in (("v1.json", X), ("v2.json", Xr)):  # v2: renamed and reordered
        doc = export_model(LogisticRegression(max_iter=1000).fit(data, y), data.iloc[::10], name=name,
                           baseline=data)
        stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{name}/{key}",
                                      Body=json.dumps(doc).encode(), ContentType="application/json")
        n = int(key[1])

        def listed(n: int = n) -> Any:
            r = stack.http("GET", f"/models/{name}")
            return r.status == 200 and len(r.json().get("versions", [])) >= n

        wait_for(f"{name} v{n} published", listed, timeout=30)
    assert stack.http("GET", f"/models/{name}").json()["aliases"]["latest"]["version"] == 1
    row = dict(zip(FEATURES, X.iloc[0].tolist(), strict=True))
    new_row = {("petal_w" if k == FEATURES[3] else k): v for k, v in row.items()}
    for version, body in ((2, new_row), (1, row)):
        capsys.readouterr()
        assert main(["alias", "set", name, "latest", str(version), "--api", stack.api]) == 0
        assert f"latest -> version {version}" in capsys.readouterr().out
        r = stack.http("POST", f"/models/{name}/predict", {"instances": [body]})
        assert r.status == 200 and r.headers["X-Model-Version"] == str(version), r.body
