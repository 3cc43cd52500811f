"""Batch writes the methods asked for (issue 11): an ``outputs=`` folder in the input key, else the event's
``outputs``, else the template's ``BatchOutputs`` (``BATCH_OUTPUTS``); the Step Functions path writes the
same columns; a method the model lacks is the input's error report. The stack is the template's, in moto;
the events are events/ files."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import pathlib

import numpy as np
import pytest

import scorer
from modelsync.local.resources import function_specs
from modelsync.service.config import Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]

HEADER = "id,sepal_length,sepal_width,petal_length,petal_width\n"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 3.0, 1.4, 0.2]]
INPUT = ["id", "sepal_length", "sepal_width", "petal_length", "petal_width"]
DECISION = ["decision_setosa", "decision_versicolor", "decision_virginica"]
PROBA = ["proba_setosa", "proba_versicolor", "proba_virginica"]


def _body(rows: list[list[float]]) -> bytes:
    return (HEADER + "".join(f"r{i}," + ",".join(map(str, r)) + "\n" for i, r in enumerate(rows))).encode()


def _raw(aws, key: str) -> bytes:
    return aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def _table(aws, key: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(_raw(aws, key).decode()))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


@pytest.fixture
def batch_app(handler):
    return handler("BatchFunction")


@pytest.fixture
def iris(models) -> scorer.Model:
    return scorer.load_model(models.iris)


def test_the_key_folder_names_the_outputs_and_beats_the_event(aws, publish, batch_app, models, iris, events,
                                                              lambda_context):
    # GIVEN iris v1, one input under outputs=decision_function/ and one without a folder
    publish("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/outputs=decision_function/a.csv",
                      Body=_body(ROWS))
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/b.csv", Body=_body(ROWS))
    # WHEN a run asks for decision_function + predict in its event (events/batch_run_outputs.json)
    event = events("batch_run_outputs")
    assert event["outputs"] == ["decision_function", "predict"]
    out = batch_app.lambda_handler(event, lambda_context)
    assert out["counts"] == {"scored": 2}
    # THEN the folder's input has its folder's columns (its outputs beside it, under the same folder)
    names, rows = _table(aws, "batch/output/iris/outputs=decision_function/a.v1.csv")
    assert names == INPUT + DECISION
    decision = iris.decision_function(ROWS)
    for j, column in enumerate(DECISION):
        assert [float(r[column]) for r in rows] == decision[:, j].tolist()
    manifest = aws.get_json("batch/output/iris/outputs=decision_function/a.v1.manifest.json")
    assert manifest["outputs"] == ["decision_function"] and manifest["scored"] == 4
    # AND the other input has the event's, in the event's order
    names, rows = _table(aws, "batch/output/iris/b.v1.csv")
    assert names == INPUT + DECISION + ["prediction"]
    assert [r["prediction"] for r in rows] == iris.predict(ROWS).tolist()
    assert aws.get_json("batch/output/iris/b.v1.manifest.json")["outputs"] == ["decision_function", "predict"]


def test_the_scheduled_event_without_outputs_writes_the_default_columns(aws, publish, batch_app, models,
                                                                         events, lambda_context):
    publish("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/c.csv", Body=_body(ROWS))
    out = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    assert out["counts"] == {"scored": 1}
    assert _table(aws, "batch/output/iris/c.v1.csv")[0] == [*INPUT, "prediction", *PROBA]
    assert "outputs" not in aws.get_json("batch/output/iris/c.v1.manifest.json")


def test_the_template_parameter_sets_the_default(aws, publish, batch_app, models, iris, events,
                                                 lambda_context, monkeypatch):
    # the template's default: no BATCH_OUTPUTS at all (today's columns)
    assert "BATCH_OUTPUTS" not in aws.function_environment("BatchFunction")
    assert batch_app.SETTINGS.batch_outputs == ""
    # GIVEN the stack deployed with BatchOutputs=predict_proba,decision_function
    names = dataclasses.replace(aws.names, parameters={**aws.names.parameters,
                                                       "BatchOutputs": "predict_proba,decision_function"})
    env = function_specs(names, ROOT)["BatchFunction"].environment
    assert env["BATCH_OUTPUTS"] == "predict_proba,decision_function"
    monkeypatch.setattr(batch_app, "SETTINGS", Settings.from_env(env))
    publish("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/d.csv", Body=_body(ROWS))
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/outputs=predict/e.csv", Body=_body(ROWS))
    # WHEN the schedule fires
    out = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    assert out["counts"] == {"scored": 2}
    # THEN inputs without a folder get the parameter's columns; a folder still wins
    names_d, rows = _table(aws, "batch/output/iris/d.v1.csv")
    assert names_d == INPUT + PROBA + DECISION
    assert [float(r["proba_virginica"]) for r in rows] == iris.predict_proba(ROWS)[:, 2].tolist()
    assert _table(aws, "batch/output/iris/outputs=predict/e.v1.csv")[0] == [*INPUT, "prediction"]


def test_a_method_the_model_lacks_is_the_inputs_error_report(aws, publish, batch_app, models, events,
                                                             lambda_context):
    # GIVEN an input asking iris for transform, one asking for a method no model has, and a good one
    publish("iris", models.iris)
    for key in ("batch/input/iris/outputs=transform/f.csv", "batch/input/iris/outputs=explain,predict/g.csv",
                "batch/input/iris/outputs=predict_proba/h.csv"):
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=_body(ROWS))
    # WHEN the schedule fires
    out = batch_app.lambda_handler(events("batch_scheduled"), lambda_context)
    status = {r["key"].rsplit("/", 2)[-2]: (r["status"], r["reason"]) for r in out["results"]}
    # THEN each bad one fails with an error report naming the methods iris has; the good one is scored
    offers = "it offers predict, predict_proba, decision_function"
    assert status == {
        "outputs=transform": ("failed", f"model 'iris' has no transform; {offers}"),
        "outputs=explain,predict": ("failed", f"model 'iris' has no explain; {offers}"),
        "outputs=predict_proba": ("scored", None),
    }
    report = [json.loads(line) for line in _raw(
        aws, "batch/output/iris/outputs=transform/f.v1.errors.jsonl").splitlines()]
    assert report == [{"line": None, "reason": f"input not scored: model 'iris' has no transform; {offers}"}]
    assert aws.keys("batch/output/iris/outputs=transform/") == [
        "batch/output/iris/outputs=transform/f.v1.errors.jsonl"]  # no output, no manifest: retried later
    # AND an event whose outputs are not names is each input's report too, never a lost run
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/i.csv", Body=_body(ROWS))
    out = batch_app.lambda_handler({"action": "run", "model": "iris", "outputs": 5}, lambda_context)
    (failed,) = [r for r in out["results"] if r["key"].endswith("/i.csv")]
    assert failed["status"] == "failed" and "outputs must be a list" in failed["reason"]
    assert b"outputs must be a list" in _raw(aws, "batch/output/iris/i.v1.errors.jsonl")


def test_the_state_machine_writes_the_same_columns(aws, publish, batch_app, models, lambda_context,
                                                    monkeypatch):
    # GIVEN inputs over MaxBatchFileBytes, one with a key folder, one given outputs by the event
    publish("iris", models.iris)
    whole = dataclasses.replace(batch_app.SETTINGS, batch_chunk_rows=2)
    monkeypatch.setattr(batch_app, "SETTINGS", dataclasses.replace(whole, max_batch_file_bytes=64))
    rows = (ROWS * 12)[:45]
    body = _body(rows)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/outputs=decision_function/big.csv", Body=body)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/big2.csv", Body=body)
    # WHEN the run hands them off to the template's state machine (Plan -> chunks -> Finalize)
    out = batch_app.lambda_handler({"action": "run", "outputs": "predict_proba"}, lambda_context)
    assert [r["status"] for r in out["results"]] == ["handed_off", "handed_off"]
    executions = aws.sfn.list_executions(stateMachineArn=aws.ref("BatchStateMachine"))["executions"]
    inputs = []
    for execution in executions:
        done = aws.finished_execution(execution["executionArn"])
        assert done["status"] == "SUCCEEDED", done
        inputs.append(json.loads(done["input"]))
    assert sorted(i.get("outputs", [None])[0] for i in inputs) == ["decision_function", "predict_proba"]
    manifest = aws.get_json("batch/output/iris/outputs=decision_function/big.v1.manifest.json")
    assert (manifest["mode"], manifest["outputs"], manifest["rows"]) == (
        "distributed", ["decision_function"], 45)
    # THEN the joined outputs are byte for byte what one whole-file pass writes with the same outputs
    monkeypatch.setattr(batch_app, "SETTINGS", whole)
    folder = "batch/input/iris/outputs=decision_function/"
    aws.s3.put_object(Bucket=aws.bucket, Key=f"{folder}whole.csv", Body=body)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/whole2.csv", Body=body)
    out = batch_app.lambda_handler({"action": "run", "outputs": ["predict_proba"]}, lambda_context)
    assert out["counts"] == {"scored": 2, "skipped": 2}
    pairs = (("outputs=decision_function/big", "outputs=decision_function/whole"), ("big2", "whole2"))
    for big, one in pairs:
        merged = _raw(aws, f"batch/output/iris/{big}.v1.csv")
        assert merged == _raw(aws, f"batch/output/iris/{one}.v1.csv") and merged
    assert _table(aws, "batch/output/iris/big2.v1.csv")[0] == INPUT + PROBA
    decision = scorer.load_model(models.iris).decision_function(rows)
    got = _table(aws, "batch/output/iris/outputs=decision_function/big.v1.csv")[1]
    # (chunks of 2 rows: numpy's sums may round differently than over the 45 rows at once)
    np.testing.assert_allclose([[float(r[c]) for c in DECISION] for r in got], decision, rtol=1e-13)


def test_plan_refuses_a_method_the_model_lacks_with_a_report(aws, publish, batch_app, models, events,
                                                            lambda_context):
    # A plan started by hand (not through the run, which checks first) still leaves the error report
    publish("iris", models.iris)
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/2024-06-01-large.csv", Body=_body(ROWS))
    event = events("batch_plan")
    event["request"]["outputs"] = ["transform"]
    with pytest.raises(Exception, match="has no transform; it offers predict") as info:
        batch_app.lambda_handler(event, lambda_context)
    assert type(info.value).__name__ == "InputUnusable"
    assert b"has no transform" in _raw(aws, "batch/output/iris/2024-06-01-large.v1.errors.jsonl")
    # and a chunk event carries the plan's outputs to its part file
    event["request"]["outputs"] = ["decision_function"]
    plan = batch_app.lambda_handler(event, lambda_context)
    (item,) = aws.get_json(plan["chunks_key"])
    assert item["outputs"] == ["decision_function"] and plan["outputs"] == ["decision_function"]
    chunk = events("batch_chunk")
    summary = batch_app.lambda_handler({**{k: chunk[k] for k in ("model", "key")}, "start_line": 2,
                                        "end_line": 6, "outputs": "decision_function"}, lambda_context)
    assert summary["scored"] == 4
    part = _raw(aws, "batch/work/iris/2024-06-01-large.v1/part-00000.csv").decode().splitlines()
    decision = scorer.load_model(models.iris).decision_function(ROWS)
    assert [float(x) for x in part[0].split(",")[5:]] == decision[0].tolist()
