"""``transformed_target_regressor`` (sklearn.compose.TransformedTargetRegressor): the regressor's
prediction, then the target transformer's inverse as a list of element-wise steps (docs/format/target.md).

scikit-learn calls ``transformer_.inverse_transform(pred.reshape(-1, 1))``; the exporter writes that
inverse as the steps it performs in order (StandardScaler: ``*= scale`` then ``+= mean``; a whitelisted
``inverse_func``: that numpy function), so the arithmetic is scikit-learn's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, load_estimator, register
from .._numpy_funcs import FUNCS, UNARY

OPS = ("add", "subtract", "multiply", "divide", "function")


@register("transformed_target_regressor")
class TransformedTargetRegressor(Estimator):
    regressor: Estimator
    steps: list[tuple[str, Any, bool]]
    squeeze: bool

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> TransformedTargetRegressor:
        self = cls()
        if "regressor" not in node:
            raise ctx.fail("required field is missing", "regressor")
        self.regressor = load_estimator(node["regressor"], ctx.nested("regressor"))
        if not self.regressor.supports("predict"):
            raise ctx.fail(f"{self.regressor.type_name} has no predict", "regressor", "type")
        self.n_features_in = self.regressor.n_features_in
        n_targets = ctx.integer(node, "n_targets", minimum=1)
        self.squeeze = ctx.boolean(node, "one_d")
        if self.squeeze and n_targets != 1:
            raise ctx.fail("a 1-D target has one column", "one_d")
        self.steps = []
        for i, step in enumerate(ctx.get(node, "inverse", list)):
            sctx = ctx.child("inverse", i)
            op = sctx.string(step, "op", choices=OPS)
            if op == "function":
                name = sctx.string(step, "name", choices=UNARY)
                self.steps.append((op, FUNCS[name], False))
            else:
                self.steps.append((op, sctx.array(step, "value", ndim=1, shape=(n_targets,)),
                                   sctx.boolean(step, "cast", default=False)))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        pred = np.asarray(self.regressor.predict(X))
        if pred.dtype != np.float32:  # a float32 prediction (XGBoost's) stays float32, as in scikit-learn:
            pred = pred.astype(np.float64)  # each step then rounds to float32 (in-place numpy arithmetic)
        y = pred.reshape(-1, 1) if pred.ndim == 1 else pred.copy()
        for op, arg, cast in self.steps:
            if cast:  # the value rounded to the prediction's precision first (float32 predictions)
                arg = arg.astype(y.dtype)
            if op == "function":
                with np.errstate(all="ignore"):
                    y = arg(y)
            elif op == "add":
                y += arg
            elif op == "subtract":
                y -= arg
            elif op == "multiply":
                y *= arg
            else:
                y /= arg
        if self.squeeze and y.ndim == 2 and y.shape[1] == 1:
            y = y.squeeze(axis=1)
        return y
