"""Kernel machines (libsvm): ``svc``, ``svr`` and ``one_class_svm``.

scikit-learn delegates prediction to libsvm (``svm_predict_values`` / ``svm_predict_probability`` in
``sklearn/svm/src/libsvm/svm.cpp``); this module reproduces that arithmetic in vectorised numpy:
the kernel matrix between the input rows and the support vectors, the one-vs-one decision values,
libsvm's voting, Platt's sigmoid and the Wu-Lin-Weng pairwise coupling for probabilities.

Documents hold scikit-learn's *public* ``dual_coef_`` / ``intercept_`` (for a binary SVC these are
libsvm's negated, which is why the binary decision function needs no extra sign flip here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, MethodNotSupported, finite_matrix, register
from .._limits import RowCost
from .._links import libsvm_sigmoid, numpy_exp

KERNELS = ("linear", "poly", "rbf", "sigmoid")
MIN_PROB = 1e-7  # libsvm's clip of the pairwise probabilities
_CHUNK_ELEMENTS = 1 << 22  # bound on the (rows x support vectors) kernel matrix




def _powi(base: np.ndarray, times: int) -> np.ndarray:
    """libsvm's ``powi``: exponentiation by squaring, same multiplication order."""
    tmp = base
    ret = np.ones_like(base)
    t = times
    while t > 0:
        if t % 2 == 1:
            ret = ret * tmp
        tmp = tmp * tmp
        t //= 2
    return ret


class _Kernel:
    """The kernel between input rows and the support vectors; squared norms precomputed at load."""

    def __init__(self, kernel: str, gamma: float, coef0: float, degree: int, sv: np.ndarray) -> None:
        self.kernel, self.gamma, self.coef0, self.degree = kernel, gamma, coef0, degree
        self.sv = sv
        self.sv_t = sv.T  # a view: X @ sv.T is the same BLAS call every time
        self.sv_sq = np.einsum("ij,ij->i", sv, sv)

    def project(self, X: np.ndarray, W: np.ndarray) -> np.ndarray:
        """``K(X, sv) @ W`` in row blocks, so that the kernel matrix never exceeds a few million values."""
        step = max(1, _CHUNK_ELEMENTS // max(1, self.sv.shape[0]))
        if X.shape[0] <= step:
            return self(X) @ W
        out = np.empty((X.shape[0], *W.shape[1:]))
        for s in range(0, X.shape[0], step):
            out[s:s + step] = self(X[s:s + step]) @ W
        return out

    def __call__(self, X: np.ndarray) -> np.ndarray:
        dot = X @ self.sv_t
        if self.kernel == "linear":
            return dot
        if self.kernel == "poly":
            return _powi(self.gamma * dot + self.coef0, self.degree)
        if self.kernel == "sigmoid":
            return np.tanh(self.gamma * dot + self.coef0)
        # rbf: libsvm sums (x - sv)^2; the expansion differs only by round-off (clipped at 0).
        d2 = np.einsum("ij,ij->i", X, X)[:, None] + self.sv_sq[None, :] - 2.0 * dot
        np.maximum(d2, 0.0, out=d2)
        return np.exp(-self.gamma * d2)


def _load_kernel(node: dict[str, Any], ctx: LoadContext) -> tuple[int, _Kernel, np.ndarray, np.ndarray]:
    """Fields every libsvm node shares: kernel parameters, support vectors, dual coefficients, intercept."""
    n_features = ctx.integer(node, "n_features_in", minimum=1)
    kernel = ctx.get(node, "kernel", str, choices=KERNELS)
    gamma = ctx.number(node, "gamma")
    coef0 = ctx.number(node, "coef0", default=0.0)
    degree = ctx.integer(node, "degree", default=3, minimum=0)
    if degree > 64:
        raise ctx.fail("must be <= 64", "degree")
    sv_raw = node.get("support_vectors")
    if isinstance(sv_raw, list) and not sv_raw:
        sv = np.zeros((0, n_features))
    else:
        sv = ctx.array(node, "support_vectors", "float64", ndim=2)
    if sv.shape[1] != n_features and sv.shape[0]:
        raise ctx.fail(f"expected {n_features} columns (n_features_in), got {sv.shape[1]}", "support_vectors")
    sv = sv.reshape(sv.shape[0], n_features)
    return n_features, _Kernel(kernel, gamma, coef0, degree, sv), sv, ctx.array(node, "intercept", ndim=1)


@register("svc")
class SVC(Estimator):
    """sklearn.svm.SVC / NuSVC: one-vs-one libsvm classifier."""

    kernel: _Kernel
    pairs: list[tuple[int, int]]
    W: np.ndarray
    intercept: np.ndarray
    shape: str
    break_ties: bool
    prob_a: np.ndarray | None
    prob_b: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> SVC:
        self = cls()
        self.n_features_in, self.kernel, sv, intercept = _load_kernel(node, ctx)
        self.classes = classes = ctx.labels(node, "classes")
        k = len(classes)
        if k < 2:
            raise ctx.fail("an SVC needs at least 2 classes", "classes")
        n_sv = sv.shape[0]
        n_support = ctx.array(node, "n_support", "int64", ndim=1, shape=(k,))
        for i, c in enumerate(n_support.tolist()):
            if c < 0:
                raise ctx.fail("must not be negative", "n_support", i)
        if int(n_support.sum()) != n_sv:
            raise ctx.fail(f"counts sum to {int(n_support.sum())}, but there are {n_sv} support vectors",
                           "n_support")
        dual = ctx.array(node, "dual_coef", ndim=2)
        if dual.shape != (k - 1, n_sv) and not (dual.size == 0 and n_sv == 0):
            raise ctx.fail(f"expected shape {k - 1}x{n_sv} (classes-1 x support vectors), "
                           f"got {'x'.join(map(str, dual.shape))}", "dual_coef")
        dual = dual.reshape(k - 1, n_sv)
        n_pairs = k * (k - 1) // 2
        if n_pairs > ctx.limits.max_width:  # before the (support vectors x pairs) matrix is built
            raise ctx.fail(f"{k} classes make {n_pairs} one-vs-one pairs, over the limit of "
                           f"{ctx.limits.max_width} values per row (MODEL_MAX_WIDTH)", "classes")
        ctx.take_budget(n_sv * n_pairs, 8 * n_sv * n_pairs)
        if intercept.shape != (n_pairs,):
            raise ctx.fail(f"expected {n_pairs} values (one per pair of classes), got {intercept.shape[0]}",
                           "intercept")
        self.pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        # W[:, p] holds the coefficients of pair p = (i, j): libsvm's sv_coef[j-1] on class i's support
        # vectors and sv_coef[i] on class j's, zero elsewhere, so decision values are one matrix product.
        start = np.concatenate([[0], np.cumsum(n_support)])
        W = np.zeros((n_sv, n_pairs))
        for p, (i, j) in enumerate(self.pairs):
            W[start[i]:start[i + 1], p] = dual[j - 1, start[i]:start[i + 1]]
            W[start[j]:start[j + 1], p] = dual[i, start[j]:start[j + 1]]
        self.W, self.intercept = W, intercept
        self.shape = ctx.get(node, "decision_function_shape", str, default="ovr", choices=("ovr", "ovo"))
        self.break_ties = ctx.get(node, "break_ties", bool, default=False)
        if self.break_ties and self.shape == "ovo":
            raise ctx.fail("break_ties requires decision_function_shape 'ovr'", "break_ties")
        self.prob_a = self.prob_b = None
        if "prob_a" in node or "prob_b" in node:
            self.prob_a = ctx.array(node, "prob_a", ndim=1, shape=(n_pairs,))
            self.prob_b = ctx.array(node, "prob_b", ndim=1, shape=(n_pairs,))
        return self

    def row_cost(self) -> RowCost:
        """Kernel values (support vectors), pair decisions and votes; with probabilities, libsvm's
        pairwise coupling holds a classes x classes matrix per row and iterates over it."""
        n, n_sv, k = self.n_features_in, int(self.W.shape[0]), len(self.classes)  # type: ignore[arg-type]
        n_pairs = len(self.pairs)
        width = 2 * n + 2 * n_sv + 3 * n_pairs + 4 * k
        work = n_sv * (n + n_pairs) + 2 * n_pairs
        if self.prob_a is not None:
            width += 3 * k * k
            work += 100 * k * k  # at most max(100, k) iterations of O(k^2), as libsvm
        return RowCost(width=width, work=work, out=k)

    def supports(self, method: str) -> bool:
        """predict_proba only when the document carries Platt's sigmoid parameters."""
        if method == "predict_proba":
            return self.prob_a is not None
        return super().supports(method)

    def _libsvm_dec(self, X: np.ndarray) -> np.ndarray:
        """libsvm's decision values (n, n_pairs): positive votes for the first class of the pair."""
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        dec = self.kernel.project(Xf, self.W) + self.intercept
        if len(self.pairs) == 1:
            dec = -dec  # the document holds scikit-learn's sign-flipped binary coefficients
        return dec

    def _votes(self, dec: np.ndarray) -> np.ndarray:
        votes = np.zeros((dec.shape[0], len(self.classes)), dtype=np.int64)  # type: ignore[arg-type]
        for p, (i, j) in enumerate(self.pairs):
            win = dec[:, p] > 0
            votes[:, i] += win
            votes[:, j] += ~win
        return votes

    def _ovr(self, dec: np.ndarray) -> np.ndarray:
        """sklearn.utils.multiclass._ovr_decision_function(dec < 0, -dec, n_classes)."""
        n, k = dec.shape[0], len(self.classes)  # type: ignore[arg-type]
        predictions, confidences = dec < 0, -dec
        votes = np.zeros((n, k))
        sums = np.zeros((n, k))
        for p, (i, j) in enumerate(self.pairs):
            sums[:, i] -= confidences[:, p]
            sums[:, j] += confidences[:, p]
            votes[~predictions[:, p], i] += 1
            votes[predictions[:, p], j] += 1
        return votes + sums / (3 * (np.abs(sums) + 1))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        dec = self._libsvm_dec(X)
        if len(self.pairs) == 1:
            return -dec[:, 0]
        if self.shape == "ovr":
            return self._ovr(dec)
        return dec

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        dec = self._libsvm_dec(X)
        if self.break_ties and len(self.pairs) > 1:
            return self.classes[np.argmax(self._ovr(dec), axis=1)]
        return self.classes[np.argmax(self._votes(dec), axis=1)]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.prob_a is None or self.prob_b is None:
            raise MethodNotSupported(
                "predict_proba is not available when the SVC was fitted with probability=False")
        dec = self._libsvm_dec(X)
        f = dec * self.prob_a + self.prob_b
        pairwise = libsvm_sigmoid(f, exp=numpy_exp)  # libsvm calls the C library's exp: within one ulp
        pairwise = np.minimum(np.maximum(pairwise, MIN_PROB), 1 - MIN_PROB)
        k = len(self.classes)  # type: ignore[arg-type]
        r = np.empty((dec.shape[0], k, k))
        for p, (i, j) in enumerate(self.pairs):
            r[:, i, j] = pairwise[:, p]
            r[:, j, i] = 1 - pairwise[:, p]
        return multiclass_probability(r)


def multiclass_probability(r: np.ndarray) -> np.ndarray:
    """libsvm's ``multiclass_probability`` (method 2 of Wu, Lin and Weng), one problem per row.

    ``r[:, i, j]`` is the pairwise probability of class i against j. Every row runs the same iterations
    it would in C; rows that meet the stopping rule are frozen while the others continue.
    """
    n, k = r.shape[0], r.shape[1]
    max_iter, eps = max(100, k), 0.005 / k
    Q = np.empty((n, k, k))
    for t in range(k):
        Q[:, t, t] = 0.0
        for j in range(t):
            Q[:, t, t] += r[:, j, t] * r[:, j, t]
            Q[:, t, j] = Q[:, j, t]
        for j in range(t + 1, k):
            Q[:, t, t] += r[:, j, t] * r[:, j, t]
            Q[:, t, j] = -r[:, j, t] * r[:, t, j]
    p = np.full((n, k), 1.0 / k)
    active = np.arange(n)
    for _ in range(max_iter):
        if active.size == 0:
            break
        P, Qa = p[active], Q[active]
        Qp = np.zeros((active.size, k))
        pQp = np.zeros(active.size)
        for t in range(k):
            for j in range(k):
                Qp[:, t] += Qa[:, t, j] * P[:, j]
            pQp += P[:, t] * Qp[:, t]
        max_error = np.zeros(active.size)
        for t in range(k):
            max_error = np.maximum(max_error, np.abs(Qp[:, t] - pQp))
        go = ~(max_error < eps)
        if not go.all():
            active, P, Qa, Qp, pQp = active[go], P[go], Qa[go], Qp[go], pQp[go]
            if active.size == 0:
                break
        for t in range(k):
            diff = (-Qp[:, t] + pQp) / Qa[:, t, t]
            P[:, t] += diff
            pQp = (pQp + diff * (diff * Qa[:, t, t] + 2 * Qp[:, t])) / (1 + diff) / (1 + diff)
            for j in range(k):
                Qp[:, j] = (Qp[:, j] + diff * Qa[:, t, j]) / (1 + diff)
                P[:, j] /= 1 + diff
        p[active] = P
    return p


class _OneOutput(Estimator):
    """Shared by SVR and OneClassSVM: ``sum_i dual_coef[0, i] * K(x, sv_i) + intercept[0]``."""

    kernel: _Kernel
    dual: np.ndarray
    intercept: float

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> _OneOutput:
        self = cls()
        self.n_features_in, self.kernel, sv, intercept = _load_kernel(node, ctx)
        n_sv = sv.shape[0]
        dual = ctx.array(node, "dual_coef", ndim=2)
        if dual.shape != (1, n_sv) and not (dual.size == 0 and n_sv == 0):
            raise ctx.fail(f"expected shape 1x{n_sv} (1 x support vectors), "
                           f"got {'x'.join(map(str, dual.shape))}", "dual_coef")
        if intercept.shape != (1,):
            raise ctx.fail(f"expected 1 value, got {intercept.shape[0]}", "intercept")
        self.dual = dual.reshape(n_sv)
        self.intercept = float(intercept[0])
        return self

    def _dec(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        return np.asarray(self.kernel.project(Xf, self.dual) + self.intercept)

    def row_cost(self) -> RowCost:
        n, n_sv = self.n_features_in, int(self.dual.shape[0])
        return RowCost(width=2 * n + 2 * n_sv + 2, work=n_sv * (n + 2), out=1)


@register("svr")
class SVR(_OneOutput):
    """sklearn.svm.SVR / NuSVR."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._dec(X)


@register("one_class_svm")
class OneClassSVM(_OneOutput):
    """sklearn.svm.OneClassSVM: +1 inside the learned support, -1 outside."""

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self._dec(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.where(self._dec(X) > 0, 1, -1).astype(np.intp)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """``decision_function + offset_`` where scikit-learn's ``offset_`` is ``-intercept``."""
        return self._dec(X) + (-self.intercept)
