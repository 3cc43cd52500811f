"""The whitelist of element-wise numpy functions a document may name (TransformedTargetRegressor's
``func`` / ``inverse_func``; FunctionTransformer shares it). One place, so every family and the exporter
agree on the names; each name is the numpy function of that name, applied to float64 values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log": np.log,
    "log1p": np.log1p,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "square": np.square,
    "abs": np.abs,
}


def function_name(func: Any) -> str | None:
    """The whitelist name of ``func`` (``np.absolute`` is ``abs``), or None when it is not whitelisted."""
    return next((name for name, f in NUMPY_FUNCTIONS.items() if func is f), None)
