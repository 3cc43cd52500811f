"""``modelsync demo``: the end-to-end tour on the embedded local stack (no AWS account, no Docker).

Trains two small models on datasets scikit-learn ships, exports them, publishes them by uploading to
``incoming/``, shows validation, versions and notifications, a rejected upload, scoring through the HTTP
API (KServe V2 and the plain endpoint), a batch file, and a vendored scorer scoring offline. Every step
checks what it shows; any mismatch ends the tour with exit code 1.

The terminal shows the tour only: what the stack and its functions log (Powertools' JSON lines, one line
per invocation, library warnings) goes to a log file whose path the tour prints; ``--verbose`` shows it
on the terminal instead.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import io
import json
import logging
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np

WINE_CLASSES = ("barolo", "grignolino", "barbera")


class DemoFailed(RuntimeError):
    """A step did not show what it should."""


class Tour:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.n = 0

    def step(self, title: str) -> None:
        self.n += 1
        print(f"\n[{time.perf_counter() - self.t0:5.1f}s] {self.n}. {title}", flush=True)

    @staticmethod
    def say(text: str) -> None:
        print(f"     {text}", flush=True)

    @staticmethod
    def check(ok: bool, what: str) -> None:
        if not ok:
            raise DemoFailed(what)
        print(f"     ok: {what}", flush=True)


def _wait(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


# -- the two models ---------------------------------------------------------------------------------

def train_models() -> dict[str, Any]:
    """Iris: a random forest on numbers. Wine: a pipeline with string categories and string labels."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    iris = load_iris(as_frame=True)
    Xi = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    forest = RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0).fit(Xi, iris.target)

    wine = load_wine(as_frame=True)
    Xw = wine.data[["alcohol", "malic_acid", "flavanoids", "color_intensity", "proline"]].copy()
    bands = pd.cut(wine.data["hue"], [0, 0.8, 1.1, 10], labels=["dark", "medium", "light"])
    Xw["hue_band"] = bands.astype(str)
    Xw["ash_level"] = np.where(wine.data["ash"] > 2.4, "high", "low")
    yw = np.array(WINE_CLASSES, dtype=object)[wine.target]
    numeric = ["alcohol", "malic_acid", "flavanoids", "color_intensity", "proline"]
    pipe = Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["hue_band", "ash_level"]),
        ])),
        ("clf", LogisticRegression(max_iter=2000)),
    ]).fit(Xw, yw)
    return {"iris": (forest, Xi), "wine": (pipe, Xw)}


def run(args: argparse.Namespace) -> int:
    tour = Tour()
    with contextlib.ExitStack() as stack:
        log_path = None
        if not args.show_logs:
            log_file = stack.enter_context(tempfile.NamedTemporaryFile(
                "w", prefix="modelsync-demo-", suffix=".log", delete=False, encoding="utf-8"))
            log_path = log_file.name
            print(f"Logs of the local stack and its functions: {log_path} "
                  "(modelsync demo --verbose shows them here)", flush=True)
            stack.enter_context(_logs_to(log_file))
        try:
            _tour(tour, args)
        except DemoFailed as exc:
            print(f"\nDEMO FAILED: {exc}" + (f" (logs: {log_path})" if log_path else ""), flush=True)
            return 1
    print(f"\nDone in {time.perf_counter() - tour.t0:.1f}s: published, rejected, notified, scored online, "
          "in batch and offline on a device, rolled out behind a canary.", flush=True)
    return 0


@contextlib.contextmanager
def _logs_to(stream: IO[str]) -> Iterator[None]:
    """Send this process's stderr and log records to ``stream`` for the block, so stdout tells the story.

    stderr is where the local stack puts the handlers' output, its invocation lines and Python warnings;
    the root logger's handlers (the CLI's, bound to the real stderr) are swapped for one on ``stream``.
    """
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root.handlers = [handler]
    try:
        with contextlib.redirect_stderr(stream):
            yield
    finally:
        root.handlers = saved
        sys.stderr.flush()


def _tour(tour: Tour, args: argparse.Namespace) -> None:
    import scorer
    from modelsync.export import export_model
    from modelsync.local.stack import LocalStack
    from modelsync_device import ModelStore, sync

    tour.step("Train two scikit-learn models on datasets scikit-learn ships")
    models = train_models()
    for name, (est, X) in models.items():
        tour.say(f"{name}: {type(est).__name__} on {X.shape[0]} rows x {X.shape[1]} features "
                 f"({', '.join(X.columns)})")

    tour.step("Export them as JSON model documents (with test vectors scikit-learn computed)")
    docs: dict[str, dict[str, Any]] = {}
    for name, (est, X) in models.items():
        docs[name] = export_model(est, X.sample(40, random_state=1), name=name,
                                  description=f"modelsync demo: {name}", baseline=X)
        text = json.dumps(docs[name])
        tour.say(f"{name}: {len(text):,} bytes, sha256 {docs[name]['sha256'][:16]}..., "
                 f"{len(docs[name]['test_vectors']['inputs'])} test vectors")
        tour.check(scorer.validate_model(text) is not None, f"{name} passes scorer.validate_model locally")

    tour.step("Start the embedded local stack from template.yaml (moto as AWS, handlers in-process)")
    with LocalStack(aws_port=args.aws_port, api_port=args.api_port, schedule_every=2.0,
                    route_handler_stdout=True) as stack:
        tour.say(json.dumps({"api": stack.api_url, "aws_endpoint": stack.endpoint, "bucket": stack.bucket}))
        s3, sqs, sns = stack.boto3_client("s3"), stack.boto3_client("sqs"), stack.boto3_client("sns")
        queue_url = sqs.create_queue(QueueName="demo-device-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        sns.subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        tour.say("a device's SQS queue is subscribed to the model-events topic")

        tour.step("Publish: upload both documents to incoming/ (Publish validates, versions, moves latest)")
        for name, doc in docs.items():
            key = f"incoming/{name}/model.json"
            s3.put_object(Bucket=stack.bucket, Key=key, Body=json.dumps(doc).encode())
        for name, doc in docs.items():
            info = _wait(f"{name} version 1", functools.partial(_published, stack.api_url, name))
            latest = info["aliases"]["latest"]["version"]
            v = next(x for x in info["versions"] if x["version"] == latest)
            tour.say(f"{name}: version {v['version']}, sha256 {v['sha256'][:16]}..., {v['size']:,} bytes at "
                     f"s3://{stack.bucket}/{v['document_key']}")
            tour.check(v["sha256"] == doc["sha256"],
                       f"{name}: the registry holds the exact document uploaded")
        seen: list[Any] = []
        events = _wait("two version.published events on the device queue",
                       lambda: _events(sqs, queue_url, "version.published", 2, seen))
        for e in events:
            tour.say(f"notification: {e['event_type']} {e['model']} v{e['detail']['version']}")

        tour.step("Reject: upload a document whose test vectors scikit-learn never produced")
        bad = json.loads(json.dumps(docs["iris"]))
        bad["metadata"]["name"] = "iris-broken"
        predicted = bad["test_vectors"]["outputs"]["predict"]
        predicted[0] = (predicted[0] + 1) % 3
        bad["sha256"] = scorer.content_sha256(bad)
        s3.put_object(Bucket=stack.bucket, Key="incoming/iris-broken/model.json",
                      Body=json.dumps(bad).encode())
        report = _wait("a report under reports/iris-broken/",
                       functools.partial(_report, s3, stack.bucket, "iris-broken"))
        for pointer, message in ((p["pointer"], p["message"]) for p in report["problems"][:3]):
            tour.say(f"problem at {pointer}: {message}")
        tour.check(report["status"] == "rejected", "the upload was rejected with a report naming the problem")
        status, _ = _http("GET", f"{stack.api_url}/models/iris-broken/manifest")
        tour.check(status in (404, 503), f"no version was created (manifest answers {status})")

        tour.step("Score over HTTP: KServe V2 infer (iris) and the plain endpoint (wine, string categories)")
        forest, Xi = models["iris"]
        rows = Xi.iloc[[0, 60, 120]].to_numpy().tolist()
        status, out = _http("POST", f"{stack.api_url}/v2/models/iris/infer", {
            "id": "demo", "inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP64", "data": rows}]})
        tour.check(status == 200, "V2 infer answered 200")
        preds = next(o for o in out["outputs"] if o["name"] == "predict")["data"]
        tour.say(f"V2 {out['model_name']} v{out['model_version']}: predict={preds}")
        tour.check(preds == forest.predict(Xi.iloc[[0, 60, 120]]).tolist(),
                   "V2 predictions equal scikit-learn's")
        pipe, Xw = models["wine"]
        instances = Xw.iloc[[0, 70, 150]].to_dict(orient="records")
        status, out = _http("POST", f"{stack.api_url}/models/wine/predict", {"instances": instances})
        tour.check(status == 200, "plain predict answered 200")
        tour.say(f"plain wine v{out['model_version']}: predictions={out['predictions']}")
        tour.check(out["predictions"] == pipe.predict(Xw.iloc[[0, 70, 150]]).tolist(),
                   "plain predictions equal scikit-learn's")

        tour.step("Batch: drop a CSV into batch/input/wine/ (one bad row) and let the schedule score it")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(Xw.columns))
        writer.writerows(Xw.iloc[:20].to_numpy().tolist())
        writer.writerow(["not-a-number", *Xw.iloc[0].to_numpy().tolist()[1:]])
        s3.put_object(Bucket=stack.bucket, Key="batch/input/wine/demo.csv", Body=buf.getvalue().encode())
        out_key, err_key = "batch/output/wine/demo.v1.csv", "batch/output/wine/demo.v1.errors.jsonl"
        text = _wait(out_key, lambda: _object(s3, stack.bucket, out_key), timeout=40)
        scored = list(csv.DictReader(io.StringIO(text)))
        tour.say(f"{out_key}: columns {list(scored[0])[-5:]} ...")
        tour.check([r["prediction"] for r in scored] == pipe.predict(Xw.iloc[:20]).tolist(),
                   f"{len(scored)} good rows scored exactly as scikit-learn")
        errors = _object(s3, stack.bucket, err_key) or ""
        tour.say(f"{err_key}: {errors.strip()[:160]}")
        tour.check(len(errors.strip().splitlines()) == 1, "the bad row went to the errors file with its line")

        tour.step("Device: sync the latest wine model, then score offline with the vendored scorer")
        with tempfile.TemporaryDirectory(prefix="modelsync-device-") as tmp:
            store = ModelStore(tmp)
            result = sync(stack.api_url, "wine", store, alias="latest", device_id="demo-device-1")
            tour.say(f"sync: {result.status} to version {result.version} (sha256 and test vectors verified)")
            tour.check(result.status == "updated", "the device installed the published model")
            again = sync(stack.api_url, "wine", store, alias="latest", device_id="demo-device-1")
            tour.check(again.status == "unchanged", "a second sync is a 304: nothing downloaded")
            offline = store.load_active("wine")  # disk only, no network
            local = offline.predict(instances).tolist()
            tour.say(f"offline predictions: {local}")
            tour.check(local == out["predictions"], "offline predictions equal the API's")
            classes = list(offline.classes) if offline.classes is not None else []
            api_proba = np.array([[p[c] for c in classes] for p in out["probabilities"]])
            tour.check(bool(np.array_equal(offline.predict_proba(instances), api_proba)),
                       "offline probabilities equal the API's, bit for bit")

        _rollout(tour, stack, models["wine"])


def _rollout(tour: Tour, stack: Any, wine: tuple[Any, Any]) -> None:
    """wine v2 behind a 50 % canary, callers sending rows shifted on one feature, devices on both sides
    reporting telemetry; the API's answers saved for ``modelsync report wine`` (its offline fallback)."""
    from sklearn.base import clone
    from sklearn.datasets import load_wine

    from modelsync.export import export_model
    from modelsync.report import build
    from modelsync.report.command import saved_path
    from modelsync_device import ModelStore, Telemetry, sync

    api = stack.api_url
    tour.step("Roll out: wine v2 behind a 50 % canary, traffic shifted on alcohol, device telemetry")
    pipe, Xw = wine
    y = np.array(WINE_CLASSES, dtype=object)[load_wine().target]
    v2 = clone(pipe).set_params(clf__C=0.25).fit(Xw, y)
    doc = export_model(v2, Xw.sample(40, random_state=2), name="wine",
                       description="modelsync demo: wine v2", baseline=Xw)
    s3 = stack.boto3_client("s3")
    s3.put_object(Bucket=stack.bucket, Key="incoming/wine/model-v2.json", Body=json.dumps(doc).encode())
    info = _wait("wine version 2", lambda: (lambda b: b if b and b["aliases"]["latest"]["version"] == 2
                                            else None)(_published(api, "wine")))
    tour.say(f"wine: version 2 published (same input schema), latest -> "
             f"v{info['aliases']['latest']['version']}")
    status, alias = _http("PUT", f"{api}/models/wine/aliases/production",
                          {"version": 1, "canary": {"version": 2, "weight": 0.5}})
    tour.check(status == 200 and alias["canary"] == {"version": 2, "weight": 0.5},
               "production: v1 with v2 as a 50 % canary")
    shifted = Xw.copy()
    shifted["alcohol"] = shifted["alcohol"] + 2.0  # the drift: alcohol 2 points higher than in training
    rows = shifted.to_dict(orient="records")
    served: dict[int, int] = {}
    for i in range(40):
        status, out = _http("POST", f"{api}/models/wine/predict?alias=production",
                            {"instances": rows[3 * i:3 * i + 3]}, {"X-Device-Id": f"shop-{i:02d}"})
        if status != 200:
            raise DemoFailed(f"predict through production answered {status}: {out}")
        served[out["model_version"]] = served.get(out["model_version"], 0) + 1
    tour.say(f"40 callers through production: {served.get(1, 0)} on v1 (base), "
             f"{served.get(2, 0)} on v2 (canary)")
    tour.check(set(served) == {1, 2}, "callers are split between base and canary by their id")
    sides: dict[int, list[str]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="modelsync-fleet-") as tmp:
        for n in range(1, 21):
            device = f"cellar-{n:02d}"
            store = ModelStore(f"{tmp}/{device}")
            result = sync(api, "wine", store, alias="production", device_id=device)
            if result.version is None or len(sides[result.version]) >= 3:
                continue
            sides[result.version].append(device)
            telemetry = Telemetry(f"{tmp}/{device}")
            store.predict("wine", shifted, telemetry=telemetry)
            flushed = telemetry.flush(api, "wine", device)
            tour.check(flushed.status == "ok", f"{device} (v{result.version}) sent its telemetry")
            if all(len(d) >= 3 for d in sides.values()):
                break
    tour.say(f"devices: v1 {', '.join(sides[1])}; v2 {', '.join(sides[2])}")
    _, metrics = _http("GET", f"{api}/models/wine/metrics")
    by = {(v["version"], v["side"]): v for v in metrics["versions"]}
    for key in ((1, "base"), (2, "canary")):
        if key in by:
            lat = by[key]["total_latency_ms"]
            tour.say(f"v{key[0]} {key[1]}: {by[key]['requests']} requests, {by[key]['rows']} rows, latency "
                     f"p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 {lat['p99']:.1f} ms")
    tour.check((1, "base") in by and (2, "canary") in by, "GET /models/wine/metrics measures each side")
    _, drift = _http("GET", f"{api}/models/wine/drift")
    flagged = [e["feature"] for e in drift["features"] if e["status"] != "ok" and e["feature"] in Xw.columns]
    worst = max(drift["features"], key=lambda e: e["psi"] or 0)
    tour.say(f"drift of v{drift['version']}: {drift['status']}; worst {worst['feature']} "
             f"PSI {worst['psi']:.2f}")
    tour.check(flagged == ["alcohol"], "GET /models/wine/drift flags alcohol, and only alcohol")

    def get(path: str, query: dict[str, str] | None) -> Any:
        from modelsync.commands.operator import CommandFailed

        url = api + path + ("?" + urllib.parse.urlencode(query) if query else "")
        status, body = _http("GET", url)
        if status != 200:
            raise CommandFailed(f"GET {path}: HTTP {status}", 1)
        return body

    from modelsync.report.command import DEFAULT_SINCE, since_iso

    data = build.collect(get, "wine", since_iso(DEFAULT_SINCE),
                         source=f"modelsync demo (local stack at {api})")
    path = saved_path("wine")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tour.say(f"the API's answers saved to {path}: `modelsync report wine -o wine.html` draws them")


def _published(api: str, name: str) -> Any:
    status, body = _http("GET", f"{api}/models/{name}")
    return body if status == 200 and body.get("aliases", {}).get("latest") else None


def _events(sqs: Any, queue_url: str, event_type: str, count: int, seen: list[Any]) -> Any:
    """Drain the queue into ``seen``; the events of ``event_type`` once there are ``count`` of them."""
    for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []):
        seen.append(json.loads(json.loads(m["Body"])["Message"]))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    found = [e for e in seen if e.get("event_type") == event_type]
    return found if len(found) >= count else None


def _report(s3: Any, bucket: str, name: str) -> Any:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"reports/{name}/")
    keys = [o["Key"] for o in listing.get("Contents", [])]
    return json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()) if keys else None


def _object(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
    except s3.exceptions.NoSuchKey:
        return None


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the end-to-end tour on the embedded local stack")
    p.add_argument("--aws-port", type=int, default=0, help="embedded AWS port (0: a free port)")
    p.add_argument("--api-port", type=int, default=0, help="HTTP API port (0: a free port)")
    p.add_argument("--verbose", dest="show_logs", action="store_true",
                   help="show the stack's and the functions' logs here instead of in a log file")
    p.set_defaults(func=run)
