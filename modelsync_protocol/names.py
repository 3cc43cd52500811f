"""The model-name rule: the one regex is the scorer's ``NAME_PATTERN`` (document ``metadata.name``).

Names become S3 key segments on the server and directory names on a device, so they allow no path tricks.
"""

from __future__ import annotations

from scorer._envelope import NAME_PATTERN

MODEL_NAME_RE = NAME_PATTERN  # letters, digits, '.', '_', '-'; starts with a letter or digit; max 128


def valid_model_name(name: object) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None and name not in (".", "..")


def check_model_name(name: object) -> str:
    """``name`` if valid, else ValueError (a configuration error on the device side)."""
    if isinstance(name, str) and valid_model_name(name):
        return name
    raise ValueError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' (max 128)")
