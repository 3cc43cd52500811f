"""Parity cases for the ensemble family (voting, stacking, bagging): binary, multiclass, regression, NaN
(children that accept it) and a DataFrame with string columns and string labels (children are pipelines)."""

from __future__ import annotations

from typing import Any

from harness import EXACT, SKLEARN
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    HistGradientBoostingClassifier,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor


def _three() -> list[tuple[str, Any]]:
    return [("lr", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))), ("nb", GaussianNB()),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]


def _mixed_pipe(clf: Any) -> Any:
    ct = ColumnTransformer([("num", StandardScaler(), ["alcohol", "magnesium", "color_intensity"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["hue_band", "proline_class"])])
    return make_pipeline(ct, clf)


def _nan_tree(depth: int) -> Any:
    return DecisionTreeClassifier(max_depth=depth, random_state=0)


# (id, type, make, data, tol)
ROWS: list[tuple[str, str, Any, str, float | None]] = [
    ("voting-soft-weights-iris", "voting_classifier",
     lambda: VotingClassifier(_three(), voting="soft", weights=[2, 1, 0.5]), "iris", None),
    ("voting-hard-binary", "voting_classifier",
     lambda: VotingClassifier(_three(), weights=[1, 1, 2]), "binary", None),
    ("voting-hard-mixed", "voting_classifier",
     lambda: VotingClassifier([("lr", _mixed_pipe(LogisticRegression(max_iter=500))),
                               ("knn", _mixed_pipe(KNeighborsClassifier()))]), "mixed_complete", None),
    ("voting-soft-nan", "voting_classifier",
     lambda: VotingClassifier([("hgb", HistGradientBoostingClassifier(max_iter=5, random_state=0)),
                               ("tree", _nan_tree(4))], voting="soft"), "classification_nan", None),
    ("voting-regressor", "voting_regressor",
     lambda: VotingRegressor([("ridge", Ridge()),
                              ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))],
                             weights=[0.3, 0.7]), "diabetes", None),
    ("stacking-binary-passthrough", "stacking_classifier",
     lambda: StackingClassifier([("svc", make_pipeline(StandardScaler(), LinearSVC(random_state=0))),
                                 ("nb", GaussianNB()), ("tree", _nan_tree(3))],
                                final_estimator=LogisticRegression(), passthrough=True), "binary", None),
    ("stacking-predict-iris", "stacking_classifier",
     lambda: StackingClassifier([("svc", SVC()), ("nb", GaussianNB())], stack_method="predict"), "iris",
     None),
    ("stacking-proba-multiclass", "stacking_classifier",
     lambda: StackingClassifier([("lr", LogisticRegression(max_iter=500)), ("nb", GaussianNB())],
                                stack_method="predict_proba", final_estimator=_nan_tree(3)),
     "classification", None),
    ("stacking-decision-mixed", "stacking_classifier",
     lambda: StackingClassifier([("lr", _mixed_pipe(LogisticRegression(max_iter=500)))],
                                stack_method="decision_function"), "mixed_complete", None),
    ("stacking-regressor-passthrough", "stacking_regressor",
     lambda: StackingRegressor([("ridge", Ridge()),
                                ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))],
                               final_estimator=Ridge(), passthrough=True), "regression", None),
    ("bagging-nan-feature-bootstrap", "bagging_classifier",
     lambda: BaggingClassifier(_nan_tree(4), n_estimators=5, max_features=4, bootstrap_features=True,
                               random_state=0), "classification_nan", EXACT),
    ("bagging-logreg-subsets", "bagging_classifier",
     lambda: BaggingClassifier(LogisticRegression(max_iter=300), n_estimators=4, max_samples=0.3,
                               max_features=3,
                               random_state=0), "iris", None),
    ("bagging-votes-binary", "bagging_classifier",
     lambda: BaggingClassifier(LinearSVC(random_state=0), n_estimators=4, random_state=0), "binary", None),
    ("bagging-regressor", "bagging_regressor",
     lambda: BaggingRegressor(Ridge(), n_estimators=4, max_features=0.5, random_state=0), "diabetes", None),
]


def _calibrated(est: Any, method: str, **kw: Any) -> Any:
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(est, method=method, **kw)


def _isotonic(oob: str) -> Any:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(out_of_bounds=oob)


ROWS += [
    ("calibrated-sigmoid-binary", "calibrated_classifier",
     lambda: _calibrated(LogisticRegression(max_iter=500), "sigmoid", cv=3), "binary", None),
    ("calibrated-isotonic-iris", "calibrated_classifier", lambda: _calibrated(GaussianNB(), "isotonic", cv=3),
     "iris", None),
    ("calibrated-sigmoid-no-ensemble", "calibrated_classifier",
     lambda: _calibrated(LinearSVC(random_state=0), "sigmoid", ensemble=False), "classification", None),
    ("calibrated-isotonic-nan-tree", "calibrated_classifier",
     lambda: _calibrated(_nan_tree(4), "isotonic", cv=2), "classification_nan", None),
    ("calibrated-pipeline-mixed", "calibrated_classifier",
     lambda: _calibrated(_mixed_pipe(LogisticRegression(max_iter=500)), "sigmoid", cv=2), "mixed_complete",
     None),
    ("isotonic-regression", "isotonic_regression", lambda: _isotonic("clip"), "isotonic", None),
    ("isotonic-regression-nan-outside", "isotonic_regression", lambda: _isotonic("nan"), "isotonic", None),
]


def _ada(regressor: bool, **kw: Any) -> Any:
    from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor

    if not regressor and SKLEARN < (1, 6):  # SAMME.R, the default before 1.6, is not in the format
        kw.setdefault("algorithm", "SAMME")
    return AdaBoostRegressor(**kw) if regressor else AdaBoostClassifier(**kw)


ROWS += [
    ("ada-boost-binary-stumps", "ada_boost_classifier", lambda: _ada(False, n_estimators=10, random_state=0),
     "binary", None),
    ("ada-boost-multiclass", "ada_boost_classifier",
     lambda: _ada(False, estimator=DecisionTreeClassifier(max_depth=2), n_estimators=8, random_state=0),
     "iris", None),
    ("ada-boost-logreg", "ada_boost_classifier",
     lambda: _ada(False, estimator=LogisticRegression(max_iter=300), n_estimators=5, random_state=0),
     "classification", None),
    ("ada-boost-regressor-median", "ada_boost_regressor",
     lambda: _ada(True, estimator=DecisionTreeRegressor(max_depth=3), n_estimators=12, random_state=0),
     "diabetes", None),
    ("ada-boost-regressor-square", "ada_boost_regressor",
     lambda: _ada(True, n_estimators=20, loss="square", random_state=0), "regression", None),
]


def _ttr(regressor: Any, **kw: Any) -> Any:
    from sklearn.compose import TransformedTargetRegressor

    return TransformedTargetRegressor(regressor, **kw)


def _np(name: str) -> Any:
    import numpy as np

    return getattr(np, name)


def _scaler(name: str) -> Any:
    from sklearn import preprocessing

    return getattr(preprocessing, name)()


ROWS += [
    ("ttr-log1p", "transformed_target_regressor",
     lambda: _ttr(Ridge(), func=_np("log1p"), inverse_func=_np("expm1")), "diabetes", None),
    ("ttr-sqrt-square-pipeline", "transformed_target_regressor",
     lambda: _ttr(make_pipeline(StandardScaler(), Ridge()), func=_np("sqrt"), inverse_func=_np("square")),
     "diabetes", None),
    ("ttr-standard-scaler", "transformed_target_regressor",
     lambda: _ttr(Ridge(), transformer=_scaler("StandardScaler")), "regression", None),
    ("ttr-min-max-tree", "transformed_target_regressor",
     lambda: _ttr(DecisionTreeRegressor(max_depth=4, random_state=0), transformer=_scaler("MinMaxScaler")),
     "regression", None),
    ("ttr-robust-multi", "transformed_target_regressor",
     lambda: _ttr(Ridge(), transformer=_scaler("RobustScaler")), "regression_multi", None),
    ("ttr-identity", "transformed_target_regressor", lambda: _ttr(Ridge()), "regression", None),
]
