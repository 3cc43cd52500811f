"""modelsync's scorer: load a model document and predict exactly what scikit-learn predicts.

Imports numpy and the standard library only, so this folder can be copied beside a script,
vendored into a device app, or shipped in a Lambda layer.
"""

from __future__ import annotations

from typing import Any

from ._base import (
    REGISTRY,
    InvalidInput,
    InvalidModel,
    MethodNotSupported,
    ModelsyncScorerError,
    UnsupportedModel,
    decode_array,
    encode_array,
)
from ._model import (
    FORMAT_VERSION,
    Model,
    canonical_bytes,
    check_format_version,
    check_test_vectors,
    content_sha256,
    load_model,
    parse_document,
)

# Importing the implementations fills REGISTRY (model type name -> implementation).
from . import models as _models  # noqa: F401,E402  isort: skip

__all__ = [
    "FORMAT_VERSION",
    "REGISTRY",
    "InvalidInput",
    "InvalidModel",
    "MethodNotSupported",
    "Model",
    "ModelsyncScorerError",
    "UnsupportedModel",
    "canonical_bytes",
    "content_sha256",
    "decode_array",
    "encode_array",
    "load_model",
    "supported_types",
    "validate_model",
]
__version__ = "0.1.0"


def supported_types() -> list[str]:
    return sorted(REGISTRY)


def validate_model(doc: Any) -> Model:
    """Fully check a document: structure, semantics, limits, sha256 and the test vectors re-scored.

    Returns the loaded model; raises :class:`InvalidModel` whose ``problems`` lists every
    (JSON pointer, message) pair found.
    """
    from ._model import parse_document as _parse

    parsed = _parse(doc)
    problems: list[tuple[str, str]] = []
    sha = parsed.get("sha256")
    if not isinstance(sha, str):
        problems.append(("/sha256", "required string field is missing"))
    elif sha != content_sha256(parsed):
        problems.append(("/sha256", "does not match the document's content"))
    model = load_model(parsed)
    problems.extend(check_test_vectors(model))
    if problems:
        raise InvalidModel(problems)
    return model
