"""modelsync's scorer: load a model document and predict exactly what scikit-learn predicts.

Imports numpy and the standard library only, so this folder can be copied beside a script,
vendored into a device app, or shipped in a Lambda layer.

    import scorer
    model = scorer.load_model("model.json")      # dict, path, bytes or JSON text
    model.predict([{"age": 41, "colour": "red"}])
    scorer.validate_model("model.json")          # full check: raises InvalidModel listing .problems

The document format is specified in docs/model-format.md; ``scorer/schema.json`` is its JSON Schema.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from ._base import (
    ARRAY_DTYPES,
    ARRAY_ENCODINGS,
    MAX_DOCUMENT_BYTES,
    REGISTRY,
    Estimator,
    InvalidInput,
    InvalidModel,
    LoadContext,
    MethodNotSupported,
    ModelsyncScorerError,
    UnsupportedModel,
    as_float,
    decode_array,
    decode_labels,
    encode_array,
    load_estimator,
    register,
)
from ._envelope import FORMAT_VERSION, METHODS, TASKS, check_format_version, parse_document
from ._inputs import Feature, to_matrix
from ._json import canonical_bytes, canonical_json, content_sha256, loads_strict
from ._limits import DEFAULT_LIMITS, Limits, RowCost
from ._model import Model, load_model, validate_model
from ._vectors import check_test_vectors

# The implementations register themselves in REGISTRY when their family is first needed.
from . import models as _models  # isort: skip

__all__ = [
    "ARRAY_DTYPES",
    "ARRAY_ENCODINGS",
    "DEFAULT_LIMITS",
    "FORMAT_VERSION",
    "MAX_DOCUMENT_BYTES",
    "METHODS",
    "REGISTRY",
    "TASKS",
    "Estimator",
    "Feature",
    "InvalidInput",
    "InvalidModel",
    "Limits",
    "LoadContext",
    "MethodNotSupported",
    "Model",
    "ModelsyncScorerError",
    "RowCost",
    "UnsupportedModel",
    "as_float",
    "canonical_bytes",
    "canonical_json",
    "check_format_version",
    "check_test_vectors",
    "content_sha256",
    "decode_array",
    "decode_labels",
    "encode_array",
    "load_estimator",
    "load_model",
    "load_schema",
    "loads_strict",
    "parse_document",
    "register",
    "supported_types",
    "to_matrix",
    "validate_model",
]
__version__ = "0.1.0"

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.json")


def supported_types() -> list[str]:
    """The estimator ``type`` names this scorer can load."""
    _models.import_all()
    return sorted(REGISTRY)


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model document, for tools that validate with jsonschema."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema
