"""The one whitelist of numpy functions a document may name (FunctionTransformer, TransformedTargetRegressor).

``FUNCS`` maps a document name to the numpy ufunc scikit-learn called; the exporter finds a fitted
estimator's function by identity in it (``NAMES``), so a function outside this table is refused at
export rather than approximated. ``clip`` takes constants (``apply(..., lo, hi)``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "log": np.log,
    "log1p": np.log1p,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "square": np.square,
    "clip": np.clip,
}

# numpy function object -> document name (``np.absolute is np.abs``: one entry covers both spellings).
NAMES: dict[object, str] = {fn: name for name, fn in FUNCS.items()}


def apply(name: str, X: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """``FUNCS[name](X)`` with numpy's floating-point warnings silenced (log of a negative is NaN, as
    scikit-learn returns it); ``clip`` between the constants ``lo`` / ``hi`` (None: unbounded)."""
    with np.errstate(all="ignore"):
        if name == "clip":
            return np.clip(X, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        return FUNCS[name](X)


# The functions that take no constants: what TransformedTargetRegressor's func / inverse_func may be.
UNARY: tuple[str, ...] = tuple(name for name in FUNCS if name != "clip")


def function_name(func: object) -> str | None:
    """The whitelist name of ``func`` (``np.absolute`` is ``abs``), or None when it is not whitelisted."""
    return NAMES.get(func)
