"""scikit-learn's float32 view of inputs, reproduced on float64: thresholds that decide as a float32
comparison would, order-preserving integer keys of float32 values, and ``check_array(dtype=float32)``."""

from __future__ import annotations

import numpy as np

from ..._base import InvalidInput, as_float

FLOAT32_MAX = float(np.finfo(np.float32).max)
# float64 values from this magnitude up round to an infinite float32 (the tie rounds away: FLT_MAX is odd)
FLOAT32_OVERFLOW = (FLOAT32_MAX + 2.0**128) / 2


def float32_equivalent(thr: np.ndarray) -> np.ndarray:
    """Thresholds ``T`` such that ``x <= T`` equals scikit-learn's ``float32(x) <= thr`` for every float64
    ``x`` (NaN aside), so float64 inputs never need rounding at predict time.

    ``float32(x) <= thr`` iff ``float32(x) <= t``, ``t`` the largest float32 not above ``thr``; ``x``
    rounds to at most ``t`` iff it is below the midpoint of ``t`` and the next float32, or exactly on
    it when the tie goes to ``t`` (round half to even: ``t``'s last mantissa bit is 0).
    """
    thr = np.asarray(thr, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = thr.astype(np.float32)
        down = t32.astype(np.float64) > thr
        t32[down] = np.nextafter(t32[down], np.float32(-np.inf))
        nxt = np.nextafter(t32, np.float32(np.inf)).astype(np.float64)
    lo = t32.astype(np.float64)
    nxt[np.isposinf(nxt) & np.isfinite(lo)] = 2.0**128  # past FLT_MAX: the "next" value is 2**128
    mid = (lo + nxt) / 2  # exact: 25 significant bits
    even = (t32.view(np.uint32) & 1) == 0
    out = np.where(even, mid, np.nextafter(mid, -np.inf))
    out[np.isposinf(lo)] = np.inf
    out[np.isneginf(lo)] = -FLOAT32_OVERFLOW  # float32(x) == -inf iff x <= -FLOAT32_OVERFLOW
    return out


def float32_floor(thr: np.ndarray) -> np.ndarray:
    """The largest float32 not above each threshold (``float32(x) <= thr`` iff ``float32(x) <= floor``)."""
    with np.errstate(over="ignore", invalid="ignore"):
        t32 = np.asarray(thr, dtype=np.float64).astype(np.float32)
        down = t32.astype(np.float64) > thr
        t32[down] = np.nextafter(t32[down], np.float32(-np.inf))
    return t32


def float32_key(x32: np.ndarray) -> np.ndarray:
    """Order-preserving int64 keys of float32 values (``a <= b`` iff ``key(a) <= key(b)``), -0.0 as +0.0,
    NaN above +inf; shifted left 32 bits so that a key compares with a packed (key, column) word."""
    x32 = np.asarray(x32, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 = +0.0
    nan = np.isnan(x32)
    if nan.any():
        x32 = np.where(nan, np.float32(np.nan), x32)  # one positive NaN, above +inf
    b = x32.view(np.int32)
    return (b ^ ((b >> 31) & 0x7FFFFFFF)).astype(np.int64) << 32


KEY_INF = int(float32_key(np.array([np.inf], dtype=np.float32))[0])  # key(+inf); NaN keys are larger
LOW32 = 0xFFFFFFFF


def check_matrix(X: np.ndarray, n_features: int, type_name: str) -> np.ndarray:
    """Numbers of the right width (composites hand sub-matrices to their children)."""
    if X.ndim != 2:
        raise InvalidInput(f"{type_name}: expected a 2-D matrix, got {X.ndim}-D")
    if X.shape[1] != n_features:
        raise InvalidInput(f"{type_name}: expected {n_features} columns, got {X.shape[1]}")
    return as_float(X, type_name)


_SAFE_SQUARES = FLOAT32_MAX * FLOAT32_MAX / 4  # a sum of squares below this has no value near overflow


def float32_checks(X: np.ndarray, type_name: str, allow_nan: bool, allow_inf: bool = False) -> bool:
    """scikit-learn's ``check_array(dtype=float32)``: values that round to an infinite float32 are refused,
    as is NaN unless the estimator supports missing values. Returns whether X holds NaN.

    One dot product decides the common case (no NaN, nothing near float32's range); only then is the
    matrix inspected value by value.
    """
    ss = float(np.vdot(X, X))  # BLAS, one call: no floating-point warnings, 0.0 when empty
    if ss < _SAFE_SQUARES:
        return False
    nan = np.isnan(X)
    bad = (np.abs(np.where(nan, 0.0, X)) >= FLOAT32_OVERFLOW) if not allow_inf else np.zeros(X.shape, bool)
    if not allow_nan:
        bad |= nan
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        v = X[r, c]
        what = ("a missing value (NaN)" if np.isnan(v) else "an infinite value" if np.isinf(v)
                else f"{v!r}, too large for float32")
        raise InvalidInput(f"row {r}, column {c}: {type_name} cannot handle {what}", row=r)
    return bool(nan.any())
