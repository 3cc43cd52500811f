"""Link functions, one implementation for every family: the logistic function, softmax, log-softmax,
the two-column binary probabilities, libsvm's Platt sigmoid.

Which ``exp``: two implementations exist and they differ in the last bit, so every caller names its choice.

* :func:`libm_exp` - the C library's ``exp`` (glibc's), element by element. scipy's ``special.expit``
  and libsvm call it, so ``expit(x, exp=libm_exp)`` is bit for bit ``scipy.special.expit(x)``. One C
  call per element (``math.exp`` over the values as Python floats): about 50 times slower than numpy's.
* :data:`numpy_exp` - numpy's vectorised ``np.exp`` (SIMD on AVX-512 machines), which scikit-learn's
  ``utils.extmath.softmax``, its log link (``exp``) and its MLP activations call. Where numpy's SIMD
  path runs it differs from the C library's by one ulp on about 2% of inputs (elsewhere it is the C
  library's).

Families that promise bit-exact probabilities (trees, gradient boosting, HGB) use ``libm_exp`` wherever
scikit-learn uses scipy's ``expit``; the linear models and MLPs use ``numpy_exp`` for batches (within one
ulp, as their format pages state) and :func:`expit_scalar` (the C library's) for single rows.
tests/unit/test_links.py compares every function here with scipy and scikit-learn.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

ExpFunction = Callable[..., Any]  # (x, out=None) -> exp(x), a numpy ufunc's signature

_EXP_OVERFLOW = 709.782712893384  # math.log(sys.float_info.max): above it C's exp() is +inf
_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce

numpy_exp: ExpFunction = np.exp
"""numpy's vectorised exp (scikit-learn's softmax, log link and MLP activations)."""


def libm_exp(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """exp() as the C library computes it, element by element (scipy's expit, libsvm)."""
    x = np.asarray(x, dtype=np.float64)
    over = x > _EXP_OVERFLOW
    if over.any():  # math.exp raises OverflowError where C's exp returns +inf
        r = _exp_each(np.where(over, 0.0, x))
        r[over] = np.inf
    else:
        r = _exp_each(x)
    if out is None:
        return r
    out[...] = r
    return out


def _exp_each(x: np.ndarray) -> np.ndarray:
    """math.exp of every element (none overflows): Python floats in, one float64 array out (about 1.6
    times faster than a frompyfunc ufunc, which goes through an object array)."""
    return np.fromiter(map(math.exp, x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def expit(x: np.ndarray, *, exp: ExpFunction, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))`` with scipy.special.expit's operations; ``out`` may be
    ``x`` itself (a float64 array the caller owns). Overflow gives 0, as in scipy."""
    z = np.negative(x, out=out)
    with np.errstate(over="ignore"):
        exp(z, out=z)
    z += 1.0
    return np.divide(1.0, z, out=z)


def expit_of_negated(z: np.ndarray) -> np.ndarray:
    """``expit(-z)`` in place with numpy's exp: ``1 / (1 + exp(z))``. The MLP stores its logistic output
    layer negated (``x @ -W + -b`` is exactly ``-(x @ W + b)``), which saves one pass per call."""
    with np.errstate(over="ignore"):
        numpy_exp(z, out=z)
    z += 1.0
    return np.divide(1.0, z, out=z)


def libm_exp_scalar(x: float) -> float:
    """:func:`libm_exp` of one Python float (+inf where it overflows)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def expit_scalar(x: float) -> float:
    """expit of one Python float with the C library's exp: bit for bit scipy.special.expit."""
    return 1.0 / (1.0 + libm_exp_scalar(-x))


def binary_proba(p: np.ndarray) -> np.ndarray:
    """``[1 - p, p]`` per row for a 1-D ``p``: scikit-learn's binary ``predict_proba`` (``np.vstack([1 - p,
    p]).T`` or its losses' ``proba[:, 0] = 1 - proba[:, 1]``), built without the stacking temporaries."""
    out = np.empty((p.shape[0], 2))
    out[:, 1] = p
    np.subtract(1.0, p, out=out[:, 0])
    return out


def softmax(x: np.ndarray, copy: bool = True) -> np.ndarray:
    """sklearn.utils.extmath.softmax (and the MLP's ``inplace_softmax``, the same arithmetic) with numpy's
    exp: subtract the row maximum, exp, divide by the row sum. ``copy=False`` overwrites ``x``. The memory
    order of ``x`` is kept (a row sum over an F-ordered array adds in another order, as in scikit-learn)."""
    X = np.array(x, dtype=np.float64, copy=True) if copy else x
    X -= _max_reduce(X, axis=1, keepdims=True)
    numpy_exp(X, out=X)
    X /= _add_reduce(X, axis=1, keepdims=True)
    return X


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """sklearn.utils._array_api._logsumexp(a, axis=1) step for step (numpy's exp)."""
    a_max = np.max(a, axis=1, keepdims=True)
    index_max = a == a_max
    a = np.array(a, copy=True)
    a[index_max] = -np.inf
    m = np.sum(index_max.astype(a.dtype), axis=1, keepdims=True, dtype=a.dtype)
    shift = np.where(np.isfinite(a_max), a_max, 0)
    with np.errstate(invalid="ignore"):
        e = numpy_exp(a - shift)
    s = np.sum(e, axis=1, keepdims=True, dtype=e.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(s == 0, s, s / m)
        out = np.log1p(s) + np.log(m) + a_max
    return np.squeeze(out, axis=1)


def log_softmax(a: np.ndarray) -> np.ndarray:
    """``a - logsumexp(a)`` per row, as scikit-learn's naive Bayes ``predict_log_proba`` computes it."""
    return a - np.atleast_2d(logsumexp_rows(a)).T


def libsvm_sigmoid(f: np.ndarray, *, exp: ExpFunction) -> np.ndarray:
    """libsvm's ``sigmoid_predict`` (Platt scaling) of ``f = dec * A + B``: ``exp(-f) / (1 + exp(-f))`` when
    ``f >= 0``, else ``1 / (1 + exp(f))``; one ``exp(-|f|)`` serves both branches."""
    e = exp(-np.abs(f))
    return np.where(f >= 0, e / (1.0 + e), 1.0 / (1 + e))


# -- float32 links (XGBoost computes its transforms in float32) ----------------------------------------

def exp32(x: np.ndarray) -> np.ndarray:
    """expf of float32 values: exp in float64 rounded once to float32 (glibc's expf is correctly rounded)."""
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64)).astype(np.float32)


def sigmoid32(x: np.ndarray) -> np.ndarray:
    """XGBoost's ``1.0f / (expf(-x) + 1.0f + 1e-16f)`` in float32 (the 1e-16f never changes a sum >= 1)."""
    return np.float32(1.0) / (exp32(-x) + np.float32(1.0))


_FLOAT32 = struct.Struct("<f")


def round32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even; beyond float32's range, infinite), as a float.
    One float32 operation on float32 operands is its exact result rounded once, and the float64 result
    of +, -, *, / on float32 values rounded to float32 is exactly that (53 >= 2 * 24 + 2 bits: double
    rounding is innocuous), so float32 arithmetic on one value is float64 arithmetic + ``round32``."""
    try:
        return float(_FLOAT32.unpack(_FLOAT32.pack(x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def sigmoid32_scalar(x: float) -> float:
    """:func:`sigmoid32` of one float32 value (a float): ``expf`` as the C library's exp rounded once."""
    e = round32(libm_exp_scalar(-x))
    return round32(1.0 / round32(e + 1.0))


def softmax32(x: np.ndarray) -> np.ndarray:
    """XGBoost's Softmax: float32 ``expf(x - max)`` summed in double, each divided in float32 by the sum
    rounded to float32."""
    wmax = np.max(x, axis=1, keepdims=True)
    e = exp32(x - wmax)
    wsum = np.add.accumulate(e.astype(np.float64), axis=1)[:, -1:]  # left to right, in double
    return e / wsum.astype(np.float32)


def softmax_numpy32(x: np.ndarray) -> np.ndarray:
    """scipy.special.softmax of float32 values, staying in float32 with numpy's exp and row sum (what
    XGBClassifier.predict_proba computes from the margins under ``multi:softmax``)."""
    X = np.array(x, dtype=np.float32, copy=True)
    X -= _max_reduce(X, axis=1, keepdims=True)
    numpy_exp(X, out=X)
    X /= _add_reduce(X, axis=1, keepdims=True)
    return X


# -- LightGBM's links (C library exp, double arithmetic, its own summation order) ---------------------

def sigmoid_libm(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``1 / (1 + exp(-scale * x))`` with the C library's exp (LightGBM's binary and cross-entropy)."""
    return 1.0 / (1.0 + libm_exp(-scale * x))


def softmax_libm(x: np.ndarray) -> np.ndarray:
    """LightGBM's softmax: C library ``exp(x - max)`` per row, divided by the row's left-to-right sum."""
    e = libm_exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.add.accumulate(e, axis=1)[:, -1:]
