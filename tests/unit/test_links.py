"""scorer/_links.py against scipy.special and scikit-learn's own helpers, on many inputs including extremes.

Bit for bit where the scorer promises it (``libm_exp`` paths, softmax, log-softmax); within two ulps (one
ulp of exp) where a family documents numpy's exp (``expit(..., exp=numpy_exp)``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special
from sklearn.neural_network._base import inplace_softmax
from sklearn.utils._array_api import _logsumexp
from sklearn.utils.extmath import softmax as sk_softmax

from scorer import _links

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

EXTREMES = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, -5e-324, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 36.7,
                     -36.7, 37.0, -37.0, 700.0, -700.0, 709.78, -709.78, 709.782712893384, -709.782712893384,
                     709.79, -709.79, 745.2, -745.2, 746.0, -746.0, 1e10, -1e10, 1e308, -1e308, np.inf,
                     -np.inf, np.nan])


def scalars() -> np.ndarray:
    """Extremes plus 200,000 values spread over every scale an exp sees."""
    rng = np.random.default_rng(0)
    spread = rng.standard_normal(200_000) * 10.0 ** rng.uniform(-6, 2.9, 200_000)
    return np.concatenate([EXTREMES, spread, rng.uniform(-750, 750, 20_000)])


def matrices() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = [rng.standard_normal((500, k)) * s for k in (1, 2, 3, 7, 9, 17, 40)
           for s in (1e-3, 1.0, 30.0, 800.0)]
    out.append(np.array([[0.0, 0.0], [1e308, -1e308], [-1e308, 1e308], [745.0, -745.0], [-np.inf, 0.0],
                         [5e-324, -5e-324], [700.0, 700.0]]))
    out.append(np.tile(EXTREMES[np.isfinite(EXTREMES)], (3, 1)))
    return out


def test_libm_exp_is_the_c_librarys() -> None:
    x = scalars()
    got = _links.libm_exp(x)
    want = np.array([math.inf if v > 709.782712893384 else math.exp(v) for v in x.tolist()])
    np.testing.assert_array_equal(got, want)
    out = np.empty_like(x)
    assert _links.libm_exp(x, out=out) is out
    np.testing.assert_array_equal(out, want)


def test_expit_with_the_c_librarys_exp_is_scipys_bit_for_bit() -> None:
    x = scalars()
    want = special.expit(x)
    np.testing.assert_array_equal(_links.expit(x, exp=_links.libm_exp), want)
    y = x.copy()
    assert _links.expit(y, exp=_links.libm_exp, out=y) is y  # in place
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(np.array([_links.expit_scalar(v) for v in x.tolist()]), want)


def test_expit_with_numpys_exp_is_within_two_ulps_of_scipy() -> None:
    """One ulp of exp becomes at most two of 1 / (1 + exp(-x))."""
    x = scalars()
    want = special.expit(x)
    got = _links.expit(x, exp=_links.numpy_exp)
    np.testing.assert_array_max_ulp(got, want, maxulp=2)
    z = -x  # the MLP's negated output layer
    np.testing.assert_array_max_ulp(_links.expit_of_negated(z), want, maxulp=2)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(_links.expit_of_negated(-x.copy()), 1.0 / (1.0 + np.exp(-x)))


@pytest.mark.parametrize("order", ["C", "F"])
def test_softmax_is_scikit_learns_bit_for_bit(order: str) -> None:
    for X in matrices():
        X = np.asarray(X, order=order)  # type: ignore[call-overload]
        want = sk_softmax(X)
        np.testing.assert_array_equal(_links.softmax(X), want)
        mlp = np.array(X, order=order)
        inplace_softmax(mlp)
        np.testing.assert_array_equal(_links.softmax(X), mlp)
        own = np.array(X, order=order)
        assert _links.softmax(own, copy=False) is own
        np.testing.assert_array_equal(own, want)
        np.testing.assert_allclose(_links.softmax(X), special.softmax(X, axis=1), rtol=1e-12, atol=1e-300)


def test_log_softmax_is_naive_bayes_arithmetic_bit_for_bit() -> None:
    for X in matrices():
        want = X - np.atleast_2d(_logsumexp(X, axis=1)).T
        np.testing.assert_array_equal(_links.log_softmax(X), want)
        np.testing.assert_array_equal(_links.logsumexp_rows(X), _logsumexp(X, axis=1))
        finite = np.isfinite(want)
        np.testing.assert_allclose(_links.log_softmax(X)[finite], special.log_softmax(X, axis=1)[finite],
                                   rtol=1e-12, atol=1e-9)


def test_binary_proba_and_libsvm_sigmoid() -> None:
    x = scalars()
    x = x[np.isfinite(x)]
    p = special.expit(x)
    proba = _links.binary_proba(p)
    np.testing.assert_array_equal(proba, np.vstack([1 - p, p]).T)
    f = x
    sig = _links.libsvm_sigmoid(f, exp=_links.libm_exp)
    with np.errstate(over="ignore"):
        # libsvm's sigmoid_predict: the C library's exp on the branch that cannot overflow
        want = np.array([math.exp(-v) / (1.0 + math.exp(-v)) if v >= 0 else 1.0 / (1 + math.exp(v))
                         for v in f.tolist()])
    np.testing.assert_array_equal(sig, want)
    np.testing.assert_array_max_ulp(_links.libsvm_sigmoid(f, exp=_links.numpy_exp), want, maxulp=2)
