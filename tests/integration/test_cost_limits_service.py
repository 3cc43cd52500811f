"""The service applies the model cost limits (template parameters MODEL_*): Publish rejects a document
over them with a report naming the estimator and the figure; Score answers 413 when a request's rows cost
more than the model allows, whatever their count (issue 9)."""

from __future__ import annotations

import copy
import dataclasses

import scorer


def _error(body: dict) -> tuple[str, str]:
    """(code, message); V2 routes answer ``{"error": message}`` (Open Inference Protocol): code ""."""
    err = body["error"]
    return ("", err) if isinstance(err, str) else (err["code"], err["message"])


def test_rows_over_the_models_cost_are_413_naming_the_limit(api, publish, models, monkeypatch):
    assert publish("iris", models.iris)["status"] == "published"
    model = scorer.load_model(models.iris)
    # a request cost allowing 3 rows of this model: 3 pass, 4 are refused though under MaxRowsPerRequest
    limits = scorer.Limits(max_request_cost=3 * model.row_cost.work)
    assert model.max_rows(limits) == 3
    tight = dataclasses.replace(api.app.SETTINGS, model_limits=limits)
    monkeypatch.setattr(api.app, "SETTINGS", tight)
    monkeypatch.setattr(api.app.SERVICE, "settings", tight)
    rows = [[5.1, 3.5, 1.4, 0.2]] * 4
    status, _, body = api("POST", "/models/iris/predict", body={"instances": rows[:3]})
    assert status == 200, body
    status, _, body = api("POST", "/models/iris/predict", body={"instances": rows})
    assert status == 413, body
    code, message = _error(body)
    assert code == "payload_too_large" and "limit of 3 rows for this model" in message
    assert "MODEL_MAX_REQUEST_COST" in message
    status, _, body = api("POST", "/v2/models/iris/infer", body={"inputs": [
        {"name": "x", "shape": [4, 4], "datatype": "FP64", "data": [v for r in rows for v in r]}]})
    assert status == 413 and "limit of 3 rows" in _error(body)[1]


def test_a_document_over_the_cost_limits_is_rejected_with_the_pointer(aws, publish, models):
    doc = copy.deepcopy(models.iris)
    doc["estimator"]["classes"] = list(range(60_000))  # over MODEL_MAX_CLASSES (50,000)
    doc["sha256"] = scorer.content_sha256(doc)
    result = publish("iris", doc)
    assert result["status"] == "rejected" and result["version"] is None
    report = aws.get_json(result["report_key"])
    problems = {p["pointer"]: p["message"] for p in report["problems"]}
    assert "MODEL_MAX_CLASSES" in problems["/estimator/classes"], problems
