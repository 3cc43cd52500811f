"""Multi-layer perceptrons: ``mlp_classifier`` and ``mlp_regressor``.

The forward pass is scikit-learn's ``_forward_pass_fast`` (``sklearn/neural_network``): per layer
``a = a @ W; a += b`` then the activation in place, the output activation last. Per-call work is kept
to those few numpy calls because single-row latency matters for these models.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .._base import (
    Estimator,
    InvalidInput,
    LoadContext,
    RowPath,
    as_float,
    declared_shape,
    decode_array,
    register,
)
from .._inputs import plain_row
from .._limits import RowCost
from .._links import binary_proba, expit, expit_of_negated, expit_scalar, numpy_exp, softmax
from .linear import all_finite_fast

_F8 = np.dtype(np.float64)
_BLOCK_ROWS = 1024
_BLOCK_WORK = 1 << 21

HIDDEN = ("identity", "logistic", "tanh", "relu")
OUTPUTS = {"mlp_classifier": ("softmax", "logistic"), "mlp_regressor": ("identity", "exp")}
KINDS = ("binary", "multiclass", "multilabel")


def _identity(a: np.ndarray) -> None:
    pass


def _logistic(a: np.ndarray) -> None:
    """scikit-learn's logistic activation (scipy.special.expit in place), with numpy's exp."""
    expit(a, exp=numpy_exp, out=a)


def _logistic_of_negated(a: np.ndarray) -> None:
    """The logistic output layer, stored negated (see :func:`scorer._links.expit_of_negated`)."""
    expit_of_negated(a)


def _tanh(a: np.ndarray) -> None:
    np.tanh(a, out=a)


def _relu(a: np.ndarray) -> None:
    np.maximum(a, 0.0, out=a)


def _exp(a: np.ndarray) -> None:
    numpy_exp(a, out=a)  # scikit-learn's inplace_exp


def _softmax(a: np.ndarray) -> None:
    softmax(a, copy=False)  # scikit-learn's inplace_softmax: the same arithmetic


ACTIVATIONS: dict[str, Callable[[np.ndarray], None]] = {
    "identity": _identity, "logistic": _logistic, "tanh": _tanh, "relu": _relu, "exp": _exp,
    "softmax": _softmax}


class _MLP(Estimator):
    reads_input_only = True  # the forward pass never writes into X (the first product is a new array)

    layers: list[tuple[np.ndarray, np.ndarray]]
    hidden_layers: list[tuple[np.ndarray, np.ndarray]]
    last_W: np.ndarray
    last_b: np.ndarray
    hidden: Callable[[np.ndarray], None]
    output: Callable[[np.ndarray], None]
    out_fn: Callable[[np.ndarray], None]
    n_outputs: int

    def _load(self, node: dict[str, Any], ctx: LoadContext) -> None:
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.hidden = ACTIVATIONS[ctx.get(node, "activation", str, choices=HIDDEN)]
        self.output = ACTIVATIONS[ctx.get(node, "out_activation", str, choices=OUTPUTS[self.type_name])]
        coefs = ctx.get(node, "coefs", list)
        intercepts = ctx.get(node, "intercepts", list)
        if not coefs:
            raise ctx.fail("needs at least one layer", "coefs")
        if len(intercepts) != len(coefs):
            raise ctx.fail(f"expected {len(coefs)} intercept vectors (one per coefs matrix), "
                           f"got {len(intercepts)}", "intercepts")
        width = self.n_features_in
        self.layers = []
        for i, (c_raw, b_raw) in enumerate(zip(coefs, intercepts, strict=True)):
            units = declared_shape(c_raw)[1:2]
            if units and units[0] > ctx.limits.max_width:  # refused before the layer is decoded
                raise ctx.fail(f"layer {i} has {units[0]} units, over the limit of {ctx.limits.max_width} "
                               "values per row (MODEL_MAX_WIDTH)", "coefs", i)
            W = decode_array(c_raw, ctx.child("coefs", i), "float64", ndim=2)
            if W.shape[0] != width or W.shape[1] == 0:
                what = "n_features_in" if i == 0 else f"the width of layer {i - 1}"
                raise ctx.fail(f"expected {width} rows ({what}) and at least one column, got shape "
                               f"{'x'.join(map(str, W.shape))}", "coefs", i)
            b = decode_array(b_raw, ctx.child("intercepts", i), "float64", ndim=1, shape=(W.shape[1],))
            self.layers.append((W, b))
            width = W.shape[1]
        self.n_outputs = width
        self.hidden_layers = self.layers[:-1]
        self.last_W, self.last_b = self.layers[-1]
        self.out_fn = self.output
        if self.output is _logistic:
            self.last_W, self.last_b = -self.last_W, -self.last_b
            self.out_fn = _logistic_of_negated
        # Row blocks for large inputs (see _logits). Each block's products must take BLAS's regular GEMM
        # path (a small-matrix kernel sums differently), so every block is large enough that
        # rows * outputs * inputs >= _BLOCK_WORK for every layer. A one-column product is a GEMV, whose
        # results depend on where its threads split the rows: a one-column output layer runs once over
        # all rows, and a one-unit hidden layer (or none at all) turns blocking off.
        self._gemv_out = self.n_outputs == 1
        if not self.hidden_layers or any(W.shape[1] == 1 for W, _ in self.hidden_layers):
            self._block = sys.maxsize // 4
        else:
            work = [W.shape[0] * W.shape[1] for W, _ in self.layers if W.shape[1] > 1]
            rows = max([_BLOCK_ROWS] + [-(-_BLOCK_WORK // w) for w in work])
            self._block = -(-rows // 64) * 64
        self._last_b0 = float(self.last_b[0])
        self._last_w0 = np.ascontiguousarray(self.last_W[:, 0])  # one output unit: a dot product

    def row_cost(self) -> RowCost:
        """Two consecutive layers' activations at once (the product and its input) besides the input."""
        widths = [self.n_features_in] + [W.shape[1] for W, _ in self.layers]
        pairs = max(a + b for a, b in itertools.pairwise(widths))
        return RowCost(width=self.n_features_in + pairs + 3 * self.n_outputs,
                       work=sum(a * b + 2 * b for a, b in itertools.pairwise(widths)),
                       out=max(self.n_outputs, 2))

    def _forward(self, X: np.ndarray) -> np.ndarray:
        """The output layer's activations."""
        a = self._logits(X)
        self.out_fn(a)
        return a

    def _logits(self, X: np.ndarray) -> np.ndarray:
        """The output layer's pre-activations ``a @ W + b`` (negated when the output is logistic).

        Large inputs go through the network in blocks of rows whose activations stay in cache (about
        twice as fast); each output element is the same arithmetic as one pass over all rows (blocks
        start at multiples of the block size, the last one takes the remainder, see _load).
        """
        X = self._checked(X)
        n = X.shape[0]
        block = self._block
        if n < 2 * block:
            z = self._hidden(X) @ self.last_W
        elif self._gemv_out:  # the hidden layers by blocks into one matrix, then one GEMV over all rows
            h = np.empty((n, self.hidden_layers[-1][0].shape[1]))
            last = (n // block - 1) * block
            for start in range(0, last + 1, block):
                stop = n if start == last else start + block
                self._hidden(X[start:stop], h[start:stop])
            z = h @ self.last_W
        else:
            z = np.empty((n, self.n_outputs))
            last = (n // block - 1) * block
            for start in range(0, last + 1, block):
                stop = n if start == last else start + block
                np.matmul(self._hidden(X[start:stop]), self.last_W, out=z[start:stop])
        np.add(z, self.last_b, out=z)
        return z

    def _checked(self, X: np.ndarray) -> np.ndarray:
        """X as float64, checked: the width, no NaN, no infinity."""
        if X.dtype != _F8:
            X = as_float(X, self.type_name)
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise InvalidInput(f"{self.type_name}: expected a matrix with {self.n_features_in} columns, "
                               f"got shape {X.shape}")
        # One reduction instead of isfinite().all(): a NaN or infinity anywhere makes the sum non-finite
        # (a finite sum that overflows only costs the exact check below).
        if not all_finite_fast(X):
            bad = ~np.isfinite(X)
            if bad.any():
                r, c = (int(i) for i in np.argwhere(bad)[0])
                raise InvalidInput(f"row {r}, column {c}: {self.type_name} cannot handle NaN or infinite "
                                   "values", row=r)
        return X

    def _row_hidden(self, row: list[Any]) -> np.ndarray | None:
        """One row (a list) through the hidden layers as 1-D vectors (a vector-matrix product per layer,
        no matrix checks); None for the general path (NaN, infinities, non-numbers: it raises)."""
        x = plain_row(row, math.inf)
        if x is None:
            return None
        a = np.array(x)
        if self.hidden is _relu:  # the common case, kept to the bare calls (methods: no dispatch layers)
            for W, b in self.hidden_layers:
                a = a.dot(W)
                a += b
                np.maximum(a, 0.0, out=a)
            return a
        hidden = self.hidden
        for W, b in self.hidden_layers:
            a = a @ W
            a += b
            hidden(a)
        return a

    def _row_forward(self, row: list[Any]) -> np.ndarray | None:
        """The output layer's activations of one row, ``(1, n_outputs)``; None: the general path."""
        a = self._row_hidden(row)
        if a is None:
            return None
        z = a.dot(self.last_W).reshape(1, -1)
        z += self.last_b
        self.out_fn(z)
        return z

    def _hidden(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The hidden layers (scikit-learn's order: product, += intercept, activation in place); the
        last hidden layer's activations, written into ``out`` when given (then there is a hidden layer)."""
        a = X
        if out is None and self.hidden is _relu:  # the common case (and one row), kept to the bare calls
            for W, b in self.hidden_layers:
                a = a @ W
                np.add(a, b, out=a)
                np.maximum(a, 0.0, out=a)
            return a
        last = len(self.hidden_layers) - 1
        hidden = self.hidden
        for i, (W, b) in enumerate(self.hidden_layers):
            a = a @ W if out is None or i != last else np.matmul(a, W, out=out)
            np.add(a, b, out=a)
            hidden(a)
        return a


@register("mlp_classifier")
class MLPClassifier(_MLP):
    """sklearn.neural_network.MLPClassifier: binary (one logistic unit), multiclass (softmax) or
    multilabel (one logistic unit per label)."""

    kind: str

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> MLPClassifier:
        self = cls()
        self._load(node, ctx)
        self.classes = ctx.labels(node, "classes")
        self.kind = ctx.get(node, "output", str, choices=KINDS)
        k = len(self.classes)
        want = {"binary": (1, "logistic", 2), "multiclass": (k, "softmax", 3),
                "multilabel": (k, "logistic", 1)}
        n_out, act, min_classes = want[self.kind]
        if self.output is not ACTIVATIONS[act]:
            raise ctx.fail(f"a {self.kind} classifier needs out_activation {act!r}", "out_activation")
        if k < min_classes or (self.kind == "binary" and k != 2):
            raise ctx.fail(f"a {self.kind} classifier cannot have {k} classes", "classes")
        if self.n_outputs != n_out:
            raise ctx.fail(f"the last layer has {self.n_outputs} outputs; a {self.kind} classifier with {k} "
                           f"classes needs {n_out}", "coefs", len(self.layers) - 1)
        return self

    def row_path(self, method: str) -> RowPath | None:
        if method == "predict_proba" and self.kind == "binary":
            return self._row_binary_proba
        if method == "predict_proba":
            return self._row_forward

        def predict(row: list[Any]) -> np.ndarray | None:
            y = self._row_forward(row)
            return None if y is None else self._labels(y)

        return predict if method == "predict" else None

    def _row_binary_proba(self, row: list[Any]) -> np.ndarray | None:
        """``predict_proba`` of one row of a binary classifier, as its one-row branch computes it."""
        a = self._row_hidden(row)
        if a is None:
            return None
        p = expit_scalar(-(float(a.dot(self._last_w0)) + self._last_b0))  # the layer is negated (see _load)
        return np.array([[1.0 - p, p]])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._labels(self._forward(X))

    def _labels(self, y: np.ndarray) -> np.ndarray:
        """Labels from the output layer's activations (one column for a binary classifier)."""
        assert self.classes is not None
        if self.kind == "multiclass":
            return self.classes[y.argmax(axis=1)]
        if self.kind == "binary":
            return self.classes[(y[:, 0] > 0.5).astype(np.intp)]
        return (y > 0.5).astype(np.intp)  # multilabel: an indicator matrix, as LabelBinarizer returns

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.kind != "binary":
            return self._forward(X)
        # scikit-learn: np.vstack([1 - p, p]).T, built here without the stacking temporaries; the output
        # layer is stored negated (see _load): z = -(a @ W + b), one column.
        if X.ndim == 2 and X.shape[0] == 1:  # one row: Python floats, scipy's expit (the C library's exp)
            z = self._hidden(self._checked(X)) @ self.last_W
            p = expit_scalar(-(float(z[0, 0]) + self._last_b0))  # the layer is negated; negation is exact
            out = np.empty((1, 2))
            out[0, 0] = 1.0 - p
            out[0, 1] = p
            return out
        z = self._logits(X)
        return binary_proba(expit_of_negated(z).reshape(-1))


@register("mlp_regressor")
class MLPRegressor(_MLP):
    """sklearn.neural_network.MLPRegressor (identity output; exp output when fitted with Poisson loss)."""

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> MLPRegressor:
        self = cls()
        self._load(node, ctx)
        return self

    def row_path(self, method: str) -> RowPath | None:
        def predict(row: list[Any]) -> np.ndarray | None:
            y = self._row_forward(row)
            return None if y is None else y.ravel() if y.shape[1] == 1 else y

        return predict if method == "predict" else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        y = self._forward(X)
        return y.ravel() if y.shape[1] == 1 else y
