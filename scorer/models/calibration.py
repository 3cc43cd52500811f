"""``isotonic_regression`` (sklearn.isotonic.IsotonicRegression) and ``calibrated_classifier``
(sklearn.calibration.CalibratedClassifierCV, sigmoid and isotonic). See docs/format/calibration.md.

IsotonicRegression predicts through scipy's ``interp1d(kind="linear")``, which for float64 thresholds is
``np.interp`` followed by NaN outside the thresholds: the same call here. Fitted on float32 data (e.g. the
isotonic calibrator of XGBoost's float32 probabilities: ``float32`` true), scikit-learn scores in float32
and scipy takes its generic path, ``slope * (t - x[lo]) + y[lo]``: the same float32 operations here.
The calibrated classifier follows ``_CalibratedClassifier.predict_proba`` and
``CalibratedClassifierCV.predict_proba`` step by step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, InvalidInput, LoadContext, finite_matrix, load_estimator, register
from .._links import exp32, expit, libm_exp

OUT_OF_BOUNDS = ("nan", "clip", "raise")


@register("isotonic_regression")
class IsotonicRegression(Estimator):
    """One input column; ``np.interp`` through (``x``, ``y``), NaN / clipped / an error outside."""

    x: np.ndarray
    y: np.ndarray
    out_of_bounds: str
    float32 = False

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> IsotonicRegression:
        self = cls()
        self.n_features_in = 1
        if ctx.integer(node, "n_features_in", default=1) != 1:
            raise ctx.fail("isotonic regression has one input column", "n_features_in")
        self.x = ctx.array(node, "x", ndim=1)
        if self.x.size == 0:
            raise ctx.fail("needs at least one threshold", "x")
        if self.x.size > 1 and not np.all(np.diff(self.x) > 0):
            raise ctx.fail("thresholds must be strictly increasing", "x")
        self.y = ctx.array(node, "y", ndim=1, shape=(self.x.size,))
        self.out_of_bounds = ctx.string(node, "out_of_bounds", choices=OUT_OF_BOUNDS)
        if ctx.boolean(node, "float32", default=False):
            self.float32 = True
            for key in ("x", "y"):
                values = getattr(self, key).astype(np.float32)
                if not np.array_equal(values.astype(np.float64), getattr(self, key)):
                    raise ctx.fail("must hold float32 values (float32 is true)", key)
                setattr(self, key, values)
        return self

    def predict_1d(self, t: np.ndarray) -> np.ndarray:
        """scikit-learn's ``_transform`` on a 1-D float64 array."""
        if self.float32:
            t = t.astype(np.float32)
        if self.out_of_bounds == "clip":
            t = np.clip(t, self.x[0], self.x[-1])
        if self.x.size == 1:
            return self.y.repeat(t.shape)
        below, above = t < self.x[0], t > self.x[-1]
        if self.out_of_bounds == "raise" and (below.any() or above.any()):
            r = int(np.flatnonzero(below | above)[0])
            raise InvalidInput(f"row {r}: {t[r]} is outside the range of the isotonic regression", row=r)
        if self.float32:  # scipy's _call_linear, in float32
            hi = np.searchsorted(self.x, t).clip(1, self.x.size - 1)
            lo = hi - 1
            slope = (self.y[hi] - self.y[lo]) / (self.x[hi] - self.x[lo])
            out = slope * (t - self.x[lo]) + self.y[lo]
        else:
            out = np.interp(t, self.x, self.y)
        out[below] = np.nan
        out[above] = np.nan
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_1d(finite_matrix(X, 1, self.type_name).reshape(-1))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.predict(X)


class _Fold:
    __slots__ = ("calibrators", "estimator", "indices", "use_decision")

    def __init__(self, estimator: Estimator, indices: np.ndarray, calibrators: list[Any]) -> None:
        self.estimator, self.indices, self.calibrators = estimator, indices, calibrators
        self.use_decision = estimator.supports("decision_function")


@register("calibrated_classifier")
class CalibratedClassifier(Estimator):
    """The mean over ``calibrated`` folds of each fold's one-vs-rest calibrated probabilities."""

    folds: list[_Fold]
    sigmoid: bool
    legacy_casting = False

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> CalibratedClassifier:
        self = cls()
        self.classes = ctx.labels(node, "classes")
        k = len(self.classes)
        if k < 2:
            raise ctx.fail("at least 2 classes are needed", "classes")
        self.sigmoid = ctx.string(node, "method", choices=("sigmoid", "isotonic")) == "sigmoid"
        self.legacy_casting = ctx.boolean(node, "legacy_casting", default=False)
        raw = ctx.get(node, "calibrated", list)
        if not raw:
            raise ctx.fail("at least one calibrated classifier is needed", "calibrated")
        self.folds = []
        for i, entry in enumerate(raw):
            fctx = ctx.child("calibrated", i)
            if not isinstance(entry, dict) or "estimator" not in entry:
                raise fctx.fail("expected an object with an 'estimator'")
            est = load_estimator(entry["estimator"], ctx.nested("calibrated", i, "estimator"))
            if not (est.supports("decision_function") or est.supports("predict_proba")):
                raise fctx.fail(f"{est.type_name} has neither decision_function nor predict_proba",
                                "estimator")
            idx = fctx.array(entry, "class_indices", "int64", ndim=1)
            n_out = 1 if k == 2 else idx.size
            if idx.size == 0 or idx.min() < 0 or idx.max() >= k or (k == 2 and idx.size != 2):
                raise fctx.fail(f"class indices must be in [0, {k})", "class_indices")
            cal_raw = fctx.get(entry, "calibrators", list)
            if len(cal_raw) != n_out:
                raise fctx.fail(f"expected {n_out} calibrators", "calibrators")
            cals: list[Any] = []
            for j, c in enumerate(cal_raw):
                if self.sigmoid:
                    cctx = fctx.child("calibrators", j)
                    cals.append((cctx.number(c, "a"), cctx.number(c, "b")))
                else:
                    iso = load_estimator(c, ctx.nested("calibrated", i, "calibrators", j))
                    if not isinstance(iso, IsotonicRegression):
                        raise fctx.fail("expected an isotonic_regression node", "calibrators", j, "type")
                    cals.append(iso)
            self.folds.append(_Fold(est, idx.astype(np.intp), cals))
        self.n_features_in = self.folds[0].estimator.n_features_in
        return self

    def _fold_proba(self, fold: _Fold, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        k = len(self.classes)
        est = fold.estimator
        # float64 (exact): scikit-learn's fitted a_, b_ are numpy float64 scalars, so a float32 prediction
        # (XGBoost's) is calibrated in float64; the document's Python floats would keep it float32
        raw = np.asarray(est.decision_function(X) if fold.use_decision else est.predict_proba(X))
        # numpy < 2 (legacy_casting): scikit-learn's float64 a_ * a float32 response stays float32
        sigmoid32 = self.legacy_casting and raw.dtype == np.float32
        pred = raw.astype(np.float64)
        if not fold.use_decision and k == 2:
            pred = pred[:, 1]  # scikit-learn's pos_label: the last class
        if pred.ndim == 1:
            pred = pred.reshape(-1, 1)
        proba = np.zeros((X.shape[0], k))
        for class_idx, this_pred, cal in zip(fold.indices, pred.T, fold.calibrators, strict=False):
            col = class_idx + 1 if k == 2 else class_idx
            if isinstance(cal, IsotonicRegression):
                proba[:, col] = cal.predict_1d(this_pred)
            elif sigmoid32:  # scipy's float32 expit: 1 / (1 + expf(a*p + b)), every step in float32
                a, b = cal
                z = np.float32(a) * this_pred.astype(np.float32) + np.float32(b)
                proba[:, col] = np.float32(1.0) / (np.float32(1.0) + exp32(z))
            else:
                a, b = cal
                proba[:, col] = expit(-(a * this_pred + b), exp=libm_exp)
        if k == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            denominator = np.sum(proba, axis=1)[:, np.newaxis]
            uniform = np.full_like(proba, 1 / k)
            proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        mean = np.zeros((X.shape[0], len(self.classes)))
        for fold in self.folds:
            mean += self._fold_proba(fold, X)
        mean /= len(self.folds)
        return mean

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        return self.classes[np.argmax(self.predict_proba(X), axis=1)]
