"""Batch: scheduled scoring of batch/input/, errors files, manifests, re-run skips, the chunked path."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest

import scorer

HEADER = "id,sepal_length,sepal_width,petal_length,petal_width\n"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 3.0, 1.4, 0.2]]


def _csv_body(rows: list[list[float]], bad: dict[int, str] | None = None) -> bytes:
    lines = [HEADER]
    for i, r in enumerate(rows):
        lines.append((bad or {}).get(i, f"r{i}," + ",".join(map(str, r))) + "\n")
    return "".join(lines).encode()


def _read_csv(aws, key: str) -> list[dict[str, str]]:
    text = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(text)))


def _read_jsonl(aws, key: str) -> list[dict]:
    text = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def batch_app(handler, monkeypatch):
    app = handler("BatchFunction")
    return app


def test_csv_with_bad_rows_scores_the_good_ones(aws, publish, batch_app, models, events, lambda_context):
    # GIVEN iris v1 and a CSV whose rows 2 (a word) and 4 (a missing field) are bad
    publish("iris", models.iris)
    body = _csv_body(ROWS, bad={1: "r1,6.7,3.0,five,2.3", 3: "r3,4.9,3.0,1.4"})
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/day1.csv", Body=body)
    # WHEN the scheduled run fires
    out = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    # THEN the good rows are scored with prediction + proba_<class>, the bad ones listed with line and reason
    (result,) = out["results"]
    assert result["status"] == "scored" and (result["rows"], result["scored"], result["errors"]) == (4, 2, 2)
    scored = _read_csv(aws, "batch/output/iris/day1.v1.csv")
    assert list(scored[0]) == ["id", "sepal_length", "sepal_width", "petal_length", "petal_width",
                               "prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    model = scorer.load_model(models.iris)
    good = [ROWS[0], ROWS[2]]
    assert [r["id"] for r in scored] == ["r0", "r2"]
    assert [r["prediction"] for r in scored] == model.predict(good).tolist()
    proba = model.predict_proba(good)
    assert [float(r["proba_virginica"]) for r in scored] == proba[:, 2].tolist()
    errors = _read_jsonl(aws, "batch/output/iris/day1.v1.errors.jsonl")
    assert [e["line"] for e in errors] == [3, 5]
    assert "petal_length" in errors[0]["reason"] and "expected 5 fields" in errors[1]["reason"]
    manifest = aws.get_json("batch/output/iris/day1.v1.manifest.json")
    assert manifest["version"] == 1
    assert (manifest["rows"], manifest["scored"], manifest["errors"]) == (4, 2, 2)
    assert manifest["sha256"] == models.iris["sha256"] and manifest["seconds"] >= 0


def test_jsonl_with_bad_rows(aws, publish, batch_app, models, lambda_context):
    publish("fruit", models.fruit)
    lines = [{"id": 1, "size": 0.3, "color": "red"}, "{broken", {"id": 3, "size": 1.5},
             {"id": 4, "size": 0.9, "color": None}, {"id": 5, "size": "big", "color": "blue"}]
    body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/fruit/basket.jsonl", Body=body.encode())
    out = batch_app.lambda_handler({"action": "run", "model": "fruit"}, lambda_context)
    assert out["counts"] == {"scored": 1}
    rows = _read_jsonl(aws, "batch/output/fruit/basket.v1.jsonl")
    assert [r["id"] for r in rows] == [1, 4]
    model = scorer.load_model(models.fruit)
    want = model.predict({"size": [0.3, 0.9], "color": ["red", None]})
    assert [r["prediction"] for r in rows] == want.tolist()
    # the one output shape: flat proba_<class> keys, as in CSV (no nested "probabilities" object)
    assert [k for k in rows[0] if k.startswith("proba")] == ["proba_sour", "proba_sweet"]
    proba = model.predict_proba({"size": [0.3, 0.9], "color": ["red", None]})
    assert [[r["proba_sour"], r["proba_sweet"]] for r in rows] == proba.tolist()
    errors = _read_jsonl(aws, "batch/output/fruit/basket.v1.errors.jsonl")
    assert [e["line"] for e in errors] == [2, 3, 5]
    assert "not valid JSON" in errors[0]["reason"] and "color" in errors[1]["reason"]


def test_rerun_skips_inputs_already_scored_with_that_version(aws, publish, batch_app, models, events,
                                                             lambda_context):
    publish("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/day1.csv", Body=_csv_body(ROWS))
    first = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    again = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    assert first["counts"] == {"scored": 1} and again["counts"] == {"skipped": 1}
    # a new latest version scores it again, into a new output
    publish("iris", models.iris_v2)
    third = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    assert third["counts"] == {"scored": 1}
    assert "batch/output/iris/day1.v2.csv" in aws.keys("batch/output/iris/")


def test_version_folder_pins_the_version(aws, publish, batch_app, models, lambda_context):
    publish("iris", models.iris)
    publish("iris", models.iris_v2)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/v1/pinned.csv", Body=_csv_body(ROWS))
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    assert out["results"][0]["version"] == 1
    assert aws.keys("batch/output/iris/") == ["batch/output/iris/pinned.v1.csv",
                                              "batch/output/iris/pinned.v1.errors.jsonl",
                                              "batch/output/iris/pinned.v1.manifest.json"]


def test_inputs_wait_for_a_published_version(aws, batch_app, lambda_context):
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/early.csv", Body=_csv_body(ROWS))
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/notes.txt", Body=b"ignored")
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    assert [r["status"] for r in out["results"]] == ["waiting"]
    assert aws.keys("batch/output/") == []


def test_missing_feature_column_fails_the_input_only(aws, publish, batch_app, models, lambda_context):
    publish("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/a.csv", Body=b"id,sepal_length\nx,1\n")
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/b.csv", Body=_csv_body(ROWS))
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    status = {r["key"]: r["status"] for r in out["results"]}
    assert status == {"batch/input/iris/a.csv": "failed", "batch/input/iris/b.csv": "scored"}
    assert "sepal_width" in out["results"][0]["reason"]


def test_large_input_runs_through_the_state_machine(aws, publish, batch_app, models, lambda_context,
                                                     monkeypatch):
    # GIVEN an input over MaxBatchFileBytes (two bad rows), and Distributed Map items of 20 lines
    publish("iris", models.iris)
    # (scoring chunks of the same size on both paths: numpy's sums may round differently per batch size)
    whole = dataclasses.replace(batch_app.SETTINGS, batch_chunk_rows=2)
    monkeypatch.setattr(batch_app, "SETTINGS", dataclasses.replace(whole, max_batch_file_bytes=64))
    body = _csv_body((ROWS * 12)[:45], bad={7: "r7,1,2,x,4", 30: "r30,,,"})
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/big.csv", Body=body)
    # WHEN the scheduled run hands it off (twice: the same execution name starts it once)
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    again = batch_app.lambda_handler({"action": "run"}, lambda_context)
    assert out["results"][0]["status"] == "handed_off" and again["results"][0]["status"] in (
        "handed_off", "skipped")
    (execution,) = aws.sfn.list_executions(stateMachineArn=aws.ref("BatchStateMachine"))["executions"]
    # THEN the template's state machine runs: Plan -> chunks from the S3 ItemReader -> Finalize
    done = aws.finished_execution(execution["executionArn"])
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["input"]) == {"model": "iris", "key": "batch/input/iris/big.csv", "version": 1}
    manifest = aws.get_json("batch/output/iris/big.v1.manifest.json")
    assert (manifest["mode"], manifest["chunks"], manifest["rows"], manifest["errors"]) == (
        "distributed", 3, 45, 2)
    # AND its merged output is byte for byte what scoring the same rows as one file gives
    monkeypatch.setattr(batch_app, "SETTINGS", whole)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/whole.csv", Body=body)
    (scored,) = [r for r in batch_app.lambda_handler({"action": "run"}, lambda_context)["results"]
                 if r["key"].endswith("whole.csv")]
    assert scored["status"] == "scored"
    for suffix in (".csv", ".errors.jsonl"):
        merged = aws.s3.get_object(Bucket=aws.bucket, Key=f"batch/output/iris/big.v1{suffix}")["Body"].read()
        one = aws.s3.get_object(Bucket=aws.bucket, Key=f"batch/output/iris/whole.v1{suffix}")["Body"].read()
        assert merged == one and merged


def test_state_machine_path_plan_chunks_finalize(aws, publish, batch_app, models, events, lambda_context,
                                                  monkeypatch):
    # GIVEN a 45-row CSV (two bad rows) and chunks of 2 rows (so 20 lines per Distributed Map item)
    publish("iris", models.iris)
    monkeypatch.setattr(batch_app, "SETTINGS", dataclasses.replace(batch_app.SETTINGS, batch_chunk_rows=2))
    rows = (ROWS * 12)[:45]
    body = _csv_body(rows, bad={7: "r7,1,2,x,4", 30: "r30,,,"})
    key = "batch/input/iris/2024-06-01-large.csv"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body)
    # WHEN the state machine's steps run: plan (sample event), each item of its chunk list, finalize
    plan = batch_app.lambda_handler(events("batch_plan"), lambda_context)
    assert plan["chunks"] == 3 and not plan["skipped"]
    items = aws.get_json(plan["chunks_key"])
    assert [(i["start_line"], i["end_line"]) for i in items] == [(2, 22), (22, 42), (42, 47)]
    summaries = [batch_app.lambda_handler(item, lambda_context) for item in items]
    manifest = batch_app.lambda_handler({"action": "finalize", "plan": plan}, lambda_context)
    # THEN the joined output equals what one pass scores, with the bad lines reported by line number
    assert sum(s["rows"] for s in summaries) == 45
    assert (manifest["rows"], manifest["scored"], manifest["errors"]) == (45, 43, 2)
    scored = _read_csv(aws, "batch/output/iris/2024-06-01-large.v1.csv")
    good = [r for i, r in enumerate(rows) if i not in (7, 30)]
    assert [r["prediction"] for r in scored] == scorer.load_model(models.iris).predict(good).tolist()
    errors = _read_jsonl(aws, "batch/output/iris/2024-06-01-large.v1.errors.jsonl")
    assert [e["line"] for e in errors] == [9, 32]
    assert aws.get_json("batch/output/iris/2024-06-01-large.v1.manifest.json")["chunks"] == 3
    # AND a plan for an input already scored is skipped (the Choice state ends the execution)
    assert batch_app.lambda_handler(events("batch_plan"), lambda_context)["skipped"] is True


def test_chunk_event_with_line_range_only(aws, publish, batch_app, models, events, lambda_context):
    # The minimal chunk shape {model, key, start_line, end_line}: the byte offset is found by scanning.
    publish("iris", models.iris)
    key = "batch/input/iris/2024-06-01-large.csv"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=_csv_body(ROWS * 3))
    sample = events("batch_chunk")
    event = {k: sample[k] for k in ("model", "key")} | {"start_line": 4, "end_line": 8}
    summary = batch_app.lambda_handler(event, lambda_context)
    assert (summary["rows"], summary["scored"], summary["errors"]) == (4, 4, 0)
    part = aws.s3.get_object(Bucket=aws.bucket, Key="batch/work/iris/2024-06-01-large.v1/part-00000.csv")
    lines = part["Body"].read().decode().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["r2", "r3", "r4", "r5"]


def test_unknown_event_is_an_error(batch_app, lambda_context):
    with pytest.raises(ValueError, match="unknown batch event"):
        batch_app.lambda_handler({"action": "explode"}, lambda_context)


def test_chunks_cut_where_records_start_and_join_to_the_whole_file_output(aws, publish, batch_app, models,
                                                                           lambda_context, monkeypatch):
    # GIVEN a CSV whose id cells hold quoted line breaks (CRLF), with a BOM and two bad rows, cut into
    # Distributed Map items of 20 records (chunks of 2 rows)
    publish("iris", models.iris)
    monkeypatch.setattr(batch_app, "SETTINGS", dataclasses.replace(batch_app.SETTINGS, batch_chunk_rows=2))
    rows = (ROWS * 12)[:45]
    lines = ["\ufeff" + HEADER.replace("\n", "\r\n")]
    for i, r in enumerate(rows):
        cells = "x,NA,3,4" if i == 20 else ("" if i == 33 else ",".join(map(str, r)))
        lines.append(f'"r{i}\r\nsecond line, with a comma",{cells}\r\n')
    body = "".join(lines).encode()
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/quoted.csv", Body=body)
    # WHEN the state machine's steps run
    plan = batch_app.lambda_handler({"action": "plan", "request": {"model": "iris",
                                                                   "key": "batch/input/iris/quoted.csv"}},
                                    lambda_context)
    items = aws.get_json(plan["chunks_key"])
    # THEN every item starts on a record (2 physical lines each), never inside a quoted line break
    assert [(i["start_line"], i["end_line"]) for i in items] == [(2, 42), (42, 82), (82, 92)]
    assert all(body[i["start_byte"]:i["start_byte"] + 2] == b'"r' for i in items)
    for item in items:
        batch_app.lambda_handler(item, lambda_context)
    batch_app.lambda_handler({"action": "finalize", "plan": plan}, lambda_context)
    # AND the joined output and errors are byte for byte those of one whole-file pass
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/quoted-whole.csv", Body=body)
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    assert out["counts"] == {"scored": 1, "skipped": 1}

    def raw(key: str) -> bytes:
        return aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()

    assert raw("batch/output/iris/quoted.v1.csv") == raw("batch/output/iris/quoted-whole.v1.csv")
    errors = raw("batch/output/iris/quoted.v1.errors.jsonl")
    assert errors == raw("batch/output/iris/quoted-whole.v1.errors.jsonl")
    assert [e["line"] for e in map(json.loads, errors.splitlines())] == [42, 68]
    scored = _read_csv(aws, "batch/output/iris/quoted.v1.csv")
    assert len(scored) == 43 and scored[0]["id"] == "r0\r\nsecond line, with a comma"


# -- one input never stops the run (issue 9) ------------------------------------------------------------

def _iris_jsonl(rows: list[list[float]]) -> list[str]:
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return [json.dumps({"id": f"r{i}", **dict(zip(names, r, strict=True))}) for i, r in enumerate(rows)]


def test_a_line_nested_100000_deep_is_reported_and_the_next_inputs_are_scored(aws, publish, batch_app,
                                                                              models, lambda_context):
    # GIVEN three inputs, the second with a line of 100,000 nested '[' between two good lines
    publish("iris", models.iris)
    good = _iris_jsonl(ROWS[:2])
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/a.jsonl", Body="\n".join(good).encode())
    deep = "\n".join([good[0], "[" * 100_000, good[1]]) + "\n"
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/b.jsonl", Body=deep.encode())
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/c.jsonl", Body="\n".join(good).encode())
    # WHEN the scheduled run fires
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    # THEN every input is scored, the deep line is in b's error report and the others of b are scored
    assert [(r["key"].rsplit("/", 1)[1], r["status"], r["scored"], r["errors"]) for r in out["results"]] == [
        ("a.jsonl", "scored", 2, 0), ("b.jsonl", "scored", 2, 1), ("c.jsonl", "scored", 2, 0)]
    (error,) = _read_jsonl(aws, "batch/output/iris/b.v1.errors.jsonl")
    assert error["line"] == 2 and "nested too deeply" in error["reason"]
    assert [r["id"] for r in _read_jsonl(aws, "batch/output/iris/b.v1.jsonl")] == ["r0", "r1"]


@pytest.mark.parametrize("failure", ["s3", "recursion", "model"])
def test_any_failure_of_one_input_is_its_report_and_the_run_goes_on(aws, publish, batch_app, models,
                                                                    lambda_context, monkeypatch, failure):
    from botocore.exceptions import ClientError

    publish("iris", models.iris)
    for name in ("a", "b", "c"):
        aws.s3.put_object(Bucket=aws.bucket, Key=f"batch/input/iris/{name}.csv", Body=_csv_body(ROWS))
    real_get = batch_app.s3.get_object

    def get_object(**kw):
        if kw["Key"] == "batch/input/iris/b.csv" and "Range" not in kw:
            if failure == "s3":
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your rate"}},
                                  "GetObject")
            if failure == "recursion":
                raise RecursionError("maximum recursion depth exceeded")
            body = real_get(**kw)
            body["Body"] = _Exploding(body["Body"])
            return body
        return real_get(**kw)

    monkeypatch.setattr(batch_app.s3, "get_object", get_object)
    out = batch_app.lambda_handler({"action": "run"}, lambda_context)
    status = {r["key"].rsplit("/", 1)[1]: (r["status"], r["reason"]) for r in out["results"]}
    assert status["a.csv"] == ("scored", None) and status["c.csv"] == ("scored", None)
    assert status["b.csv"][0] == "failed"
    want = {"s3": "SlowDown", "recursion": "RecursionError", "model": "IndexError"}[failure]
    assert want in status["b.csv"][1]
    (report,) = _read_jsonl(aws, "batch/output/iris/b.v1.errors.jsonl")
    assert report["line"] is None and want in report["reason"]
    # no manifest for b: the next run tries it again; no output either (the upload was aborted)
    assert aws.keys("batch/output/iris/b.") == ["batch/output/iris/b.v1.errors.jsonl"]


class _Exploding:
    """A body whose reads fail as a model or parser bug would (neither InvalidInput nor ServiceError)."""

    def __init__(self, body) -> None:
        self.body = body

    def read(self, n: int = -1) -> bytes:
        raise IndexError("index 3 is out of bounds for axis 0 with size 0")

    def close(self) -> None:
        self.body.close()
