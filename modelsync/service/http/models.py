"""Request bodies of the API as pydantic models: Powertools validates each body against its model
(400 naming the field) and the OpenAPI document takes their schemas. Module level, because Powertools
resolves the routes' annotations against these globals.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from modelsync_protocol import MODEL_NAME_RE
from modelsync_protocol.telemetry import MAX_BATCHES, MAX_FEATURES, MAX_LABELS, SCHEMA_RE

from ..inference import BYTES, METHODS, NUMERIC_DATATYPES
from ..rollout import CALLER_ID_RE
from ..telemetry import TIMESTAMP


def _doc_pattern(rule: re.Pattern[str]) -> dict[str, Any]:
    """A pattern the document states and the service enforces itself (with a message naming the rule).

    Anchored: an OpenAPI pattern matches anywhere in the value unless it says otherwise.
    """
    text = rule.pattern
    return {"pattern": text if text.startswith("^") else f"^{text}$"}


# -- scoring ------------------------------------------------------------------------------------------


DATATYPES = (*NUMERIC_DATATYPES, BYTES)  # checked by modelsync.service.inference (400 naming the tensor)


class InferTensor(BaseModel):
    """One [rows, features] tensor (FP32, FP64, INT32, INT64) in feature order, or one tensor per feature
    named after it, shape [rows] or [rows, 1] (BYTES for categorical features). Data flat (row-major) or
    nested as the shape says; null is a missing value. Rows: at most ``MaxRowsPerRequest`` (default
    10,000; 413 above)."""

    name: str = Field(min_length=1)
    shape: list[Annotated[StrictInt, Field(ge=0)]] = Field(min_length=1, max_length=2)
    datatype: str = Field(json_schema_extra={"enum": list(DATATYPES)})
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    """A method of the model (a method it lacks: 400 listing the ones it has)."""

    name: str = Field(json_schema_extra={"enum": list(METHODS)})
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """Open Inference Protocol request; tensors are checked in detail by modelsync.service.inference."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "req-42", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                                    "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}]}})
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}})
    instances: list[list[Any] | dict[str, Any]] = Field(
        description="Rows, each a list of values in feature order or an object keyed by feature name (one "
                    "form per request). At most `MaxRowsPerRequest` rows (default 10,000; 413 above).")
    outputs: list[Annotated[str, Field(json_schema_extra={"enum": list(METHODS)})]] | None = Field(
        default=None, min_length=1,
        description="The methods to return (default: predict, and predict_proba for classifiers that have "
                    "it; a model without predict: its first method). `predict` comes back as "
                    "`predictions`, `predict_proba` as `probabilities`, the others under their own name. "
                    "A method the model lacks: 400 listing the ones it has.")


# -- aliases ------------------------------------------------------------------------------------------


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: StrictInt = Field(ge=1, description="Must differ from the base version and be approved.")
    weight: float = Field(gt=0, lt=1, strict=True, allow_inf_nan=False,
                          description="Share of callers (by caller-id hash) sent to the canary.")


class AliasRequest(BaseModel):
    """``{"version": 1}``, or with a canary: ``{"version": 1, "canary": {"version": 2, "weight": 0.1}}``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"version": 3}, {"version": 1, "canary": {"version": 2, "weight": 0.1}}]})
    version: StrictInt = Field(ge=1, description="The base version.")
    canary: CanaryRequest | None = None


# -- device telemetry (schema modelsync.telemetry/1, docs/devices.md) ----------------------------------

Count = Annotated[StrictInt, Field(ge=0)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Timestamp = Annotated[StrictStr, Field(pattern=TIMESTAMP)]


class _Forward(BaseModel):
    # forward compatible: fields a newer device adds are ignored, not refused
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), populate_by_name=True)


class Latency(_Forward):
    sum: Annotated[Number, Field(ge=0)]
    min: Annotated[Number, Field(ge=0)] | None = None
    max: Annotated[Number, Field(ge=0)] | None = None
    mean: Number | None = None


class Summary(_Forward):
    """A numeric or categorical summary (input feature, or the outputs of a regressor)."""

    type: Literal["numeric", "categorical"]
    count: Count
    missing: Count = 0
    infinite: Count = 0
    sum: Number | None = None
    sum_squares: Annotated[Number, Field(ge=0)] | None = None
    min: Number | None = None
    max: Number | None = None
    mean: Number | None = None
    missing_rate: Number | None = None


class Batch(_Forward):
    batch_id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9-]{8,64}$",
                                         description="Deduplication key with the model and device id.")]
    model_version: Annotated[StrictInt, Field(ge=1)]
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    window_start: Timestamp
    window_end: Timestamp | None = None
    calls: Count
    rows: Count
    errors: Count
    latency_ms: Latency
    features: Annotated[dict[Annotated[StrictStr, Field(min_length=1, max_length=256)], Summary],
                        Field(max_length=MAX_FEATURES)] = Field(default_factory=dict)
    features_truncated: StrictBool = False
    predictions: Annotated[dict[Annotated[StrictStr, Field(max_length=256)], Count],
                           Field(max_length=MAX_LABELS)] = Field(default_factory=dict)
    output: Summary | None = None
    drift: dict[str, Any] | None = Field(
        default=None, description="Rows counted in the bins of the model's metadata.baseline "
                                  "(modelsync_protocol.drift); stored as sent, within the batch size limit.")


class TelemetryRequest(_Forward):
    """``POST /models/{name}/telemetry`` (schema ``modelsync.telemetry/1``)."""

    schema_: Annotated[StrictStr, Field(alias="schema", max_length=64,
                                        json_schema_extra=_doc_pattern(SCHEMA_RE),
                                        description="modelsync.telemetry/1; unknown majors are refused.")]
    model: Annotated[StrictStr, Field(json_schema_extra=_doc_pattern(MODEL_NAME_RE),
                                      description="Must equal the model in the URL.")]
    device_id: Annotated[StrictStr, Field(
        max_length=128, json_schema_extra=_doc_pattern(CALLER_ID_RE),
        description="Must equal X-Device-Id when both are sent.")] | None = None
    sent_at: Timestamp | None = None
    dropped_batches: Count = 0
    batches: Annotated[list[Batch], Field(min_length=1, max_length=MAX_BATCHES)]

    def plain(self) -> dict[str, Any]:
        """The request as JSON data for modelsync.service.telemetry (``schema`` under its wire name)."""
        return self.model_dump(mode="json", by_alias=True)
