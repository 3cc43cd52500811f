"""What the serving benchmarks (cold_start, warm, local_api) share: the benchmark forest's document and one
row, the template's functions, a published model on a local stack, and API Gateway proxy events."""

from __future__ import annotations

import copy
import json
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import run  # bench/run.py: the model benchmark's data, fitted models and exported documents

REPO = run.REPO
MODEL = "bench-rf"  # the benchmark forest's name (its document says so: bench/run.py exports it so)
REGION = "us-east-1"


def forest() -> tuple[Path, list[float], Any]:
    """(the benchmark forest's document, one test row, the fitted estimator), cached in bench/.cache."""
    spec = {s.name: s for s in run._specs()}["rf"]
    Xtr, ytr, Xte, _ = run.make_data(spec.task)
    est, key, _ = run.fit_cached(spec, Xtr, ytr)
    src = run.source_hash(REPO / "modelsync" / "export", REPO / "scorer")
    doc = run.export_cached(spec, est, key, Xte[: run.TEST_VECTOR_ROWS], src)
    return doc, [float(v) for v in Xte[0]], est


def predict_event(row: list[float], name: str = MODEL) -> dict[str, Any]:
    """events/score_plain_predict.json for ``name`` with one row (the shape API Gateway delivers)."""
    event = json.loads((REPO / "events" / "score_plain_predict.json").read_text())
    event = copy.deepcopy(event)
    event["path"] = f"/models/{name}/predict"
    event["pathParameters"] = {"name": name}
    event["body"] = json.dumps({"instances": [row]})
    event["isBase64Encoded"] = False
    return event


def publish(s3: Any, bucket: str, api_url: str, doc: Path, name: str = MODEL, timeout: float = 300) -> int:
    """Upload the document under incoming/ (the stack publishes it) and wait for ``latest`` to serve it."""
    s3.put_object(Bucket=bucket, Key=f"incoming/{name}/model.json", Body=doc.read_bytes())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/models/{name}", timeout=30) as resp:
                body = json.loads(resp.read())
            latest = (body.get("aliases") or {}).get("latest")
            if latest:
                return int(latest["version"])
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        time.sleep(0.5)
    raise TimeoutError(f"{name} was not published within {timeout:.0f} s")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1)))]
