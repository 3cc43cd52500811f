"""Regenerate the conformance kit (``make conformance``): model documents, input rows, the outputs
scikit-learn gives for them, and invalid documents with the JSON pointer a validator must report.

Every case is a model document exported by ``modelsync.export.export_model`` whose test vectors *are*
the case: ``test_vectors.inputs`` are the rows (missing values and unseen categories included where the
model handles them) and ``test_vectors.outputs`` what scikit-learn computed for every method the model
has. ``index.json`` adds the per-method tolerance a scorer in any language must meet. The kit is
written deterministically (fixed seeds, fixed ``created``) so that regenerating it without a change in
scikit-learn rewrites the same bytes.

Run: ``python conformance/generate.py [--out conformance]``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import pathlib
import shutil
import sys
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import scorer  # noqa: E402
from modelsync.export import export_model  # noqa: E402

CREATED = "2026-01-01T00:00:00Z"
KIT_VERSION = 1

# Tolerances, in the test-vector rule |got - expected| <= tol * max(1, |expected|); 0 means bit-exact.
EXACT = 0.0
EXP = 1e-12    # arithmetic through exp/log: math libraries may differ by an ulp or two
DEFAULT = 1e-9  # matrix products: a scorer may sum in another order
XGB = 1e-6  # XGBoost's float32 sums and transforms: a float32 exp may differ by an ulp

Case = dict[str, Any]
CASES: list[Case] = []


def case(case_id: str, notes: str = "") -> Callable[[Callable[[], tuple[Any, Any, dict[str, float]]]], None]:
    """Register a case builder returning (fitted estimator, sample rows as DataFrame/array, tolerances)."""
    def deco(fn: Callable[[], tuple[Any, Any, dict[str, float]]]) -> None:
        CASES.append({"id": case_id, "build": fn, "notes": notes})
    return deco


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _frame(X: np.ndarray, names: list[str] | None = None) -> Any:
    import pandas as pd

    names = names or [f"x{i}" for i in range(X.shape[1])]
    return pd.DataFrame(X, columns=names)


def _iris() -> tuple[Any, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    d = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return _frame(d.data, names), d.target, np.array(d.target_names)[d.target]


def _diabetes(p: int = 5) -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    return _frame(d.data[:, :p], list(d.feature_names[:p])), d.target


def _cancer(p: int = 6) -> tuple[Any, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    names = [n.replace(" ", "_") for n in d.feature_names[:p]]
    return _frame(d.data[:, :p], names), d.target, np.array(["malignant", "benign"])[d.target]


def _pick(X: Any, n: int = 12, step: int = 0) -> Any:
    """n rows spread over the data (every class of a sorted dataset like iris)."""
    idx = np.linspace(0, len(X) - 1, n).astype(int)
    return X.iloc[idx].reset_index(drop=True)


def _with_nan(X: Any, cells: list[tuple[int, int]]) -> Any:
    X = X.copy()
    for r, c in cells:
        X.iat[r, c] = np.nan
    return X


def _mixed(n: int = 300, seed: int = 1) -> tuple[Any, np.ndarray]:
    """Synthetic table with numeric and categorical columns, missing values in both."""
    import pandas as pd

    rng = _rng(seed)
    colour = rng.choice(["red", "green", "blue", "amber"], n, p=[0.4, 0.3, 0.25, 0.05]).astype(object)
    size = rng.choice(["S", "M", "L"], n).astype(object)
    age = rng.normal(40, 12, n).round(1)
    income = rng.lognormal(3, 0.5, n).round(2)
    age[rng.random(n) < 0.08] = np.nan
    colour[rng.random(n) < 0.05] = None
    logit = (0.05 * (np.nan_to_num(age, nan=40) - 40) + (colour == "red") * 1.2 - (size == "S") * 0.8
             + 0.02 * income)
    y = np.where(logit + rng.normal(0, 0.7, n) > 0.3, "yes", "no")
    X = pd.DataFrame({"age": age, "income": income, "colour": colour, "size": size})
    return X, y


def _mixed_rows(X: Any, n: int = 14) -> Any:
    """Sample rows plus unseen categories and missing values in every column."""
    import pandas as pd

    rows = X.iloc[:n].copy().reset_index(drop=True)
    extra = pd.DataFrame({"age": [np.nan, 33.0, 58.5], "income": [12.5, 40.0, 7.25],
                          "colour": ["purple", None, "red"], "size": ["M", "XL", "S"]})
    return pd.concat([rows, extra], ignore_index=True)


# ---------------------------------------------------------------- linear
@case("linear_regression_plain", "plain arrays")
def _lr_plain() -> Any:
    from sklearn.linear_model import LinearRegression

    X, y = _diabetes()
    return LinearRegression().fit(X, y), _pick(X), {"predict": DEFAULT}, {"compact": False}


@case("linear_regression_multioutput_compact", "(1, p) and (t, p) coef, base64 blocks")
def _lr_multi() -> Any:
    from sklearn.linear_model import LinearRegression

    X, y = _diabetes()
    Y = np.c_[y, y * 0.5 + X.iloc[:, 0] * 100]
    return LinearRegression().fit(X, Y), _pick(X), {"predict": DEFAULT}


@case("ridge")
def _ridge() -> Any:
    from sklearn.linear_model import Ridge

    X, y = _diabetes()
    return Ridge(alpha=0.5).fit(X, y), _pick(X), {"predict": DEFAULT}


@case("lasso")
def _lasso() -> Any:
    from sklearn.linear_model import Lasso

    X, y = _diabetes()
    return Lasso(alpha=0.05).fit(X, y), _pick(X), {"predict": DEFAULT}


@case("elastic_net_zlib", "base64-zlib blocks")
def _enet() -> Any:
    from sklearn.linear_model import ElasticNet

    X, y = _diabetes()
    return ElasticNet(alpha=0.01).fit(X, y), _pick(X), {"predict": DEFAULT}, {"compress": True}


@case("sgd_regressor")
def _sgdr() -> Any:
    from sklearn.linear_model import SGDRegressor

    X, y = _diabetes()
    return SGDRegressor(random_state=0, max_iter=50, tol=None).fit(X, y), _pick(X), {"predict": DEFAULT}


@case("linear_svr")
def _lsvr() -> Any:
    from sklearn.svm import LinearSVR

    X, y = _diabetes()
    return LinearSVR(random_state=0, C=10.0, max_iter=5000).fit(X, y), _pick(X), {"predict": DEFAULT}


@case("logistic_regression_binary_strings", "string labels; expit")
def _logreg_bin() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _, labels = _cancer()
    m = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, labels)
    return m, _pick(X, 14), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}


@case("logistic_regression_multinomial", "softmax")
def _logreg_multi() -> Any:
    from sklearn.linear_model import LogisticRegression

    X, _, labels = _iris()
    return (LogisticRegression(max_iter=500).fit(X, labels), _pick(X, 15),
            {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT})


@case("ridge_classifier")
def _ridgec() -> Any:
    from sklearn.linear_model import RidgeClassifier

    X, y, _ = _iris()
    return RidgeClassifier().fit(X, y), _pick(X, 15), {"predict": EXACT, "decision_function": DEFAULT}


@case("sgd_classifier_log_loss_ovr", "one-vs-rest probabilities")
def _sgdc() -> Any:
    from sklearn.linear_model import SGDClassifier

    X, y, _ = _iris()
    m = SGDClassifier(loss="log_loss", random_state=0, max_iter=30, tol=None).fit(X, y)
    return m, _pick(X, 15), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}


@case("sgd_classifier_modified_huber")
def _sgdc_mh() -> Any:
    from sklearn.linear_model import SGDClassifier

    X, y, _ = _iris()
    m = SGDClassifier(loss="modified_huber", random_state=0, max_iter=30, tol=None).fit(X, y)
    return m, _pick(X, 15), {"predict": EXACT, "predict_proba": DEFAULT, "decision_function": DEFAULT}


@case("linear_svc")
def _lsvc() -> Any:
    from sklearn.svm import LinearSVC

    X, y, _ = _iris()
    return LinearSVC(random_state=0, max_iter=5000).fit(X, y), _pick(X, 15), {"predict": EXACT,
                                                                            "decision_function": DEFAULT}


@case("perceptron_binary_bool_labels", "boolean labels")
def _perc() -> Any:
    from sklearn.linear_model import Perceptron

    X, y, _ = _cancer()
    return Perceptron(random_state=0).fit(X, y == 1), _pick(X, 12), {"predict": EXACT,
                                                                     "decision_function": DEFAULT}


# ---------------------------------------------------------------- preprocessing (transform only)
def _prep_x() -> Any:
    X, _ = _diabetes(4)
    return _with_nan(_pick(X, 10), [(2, 1), (5, 3)])


@case("standard_scaler_nan_passthrough", "NaN passes through (null in outputs)")
def _stds() -> Any:
    from sklearn.preprocessing import StandardScaler

    X, _ = _diabetes(4)
    return StandardScaler().fit(X), _prep_x(), {"transform": DEFAULT}, {"compact": False}


@case("min_max_scaler_clip")
def _mms() -> Any:
    from sklearn.preprocessing import MinMaxScaler

    X, _ = _diabetes(4)
    return MinMaxScaler(feature_range=(-1, 2), clip=True).fit(X.iloc[:100]), _prep_x(), {"transform": DEFAULT}


@case("max_abs_scaler")
def _mas() -> Any:
    from sklearn.preprocessing import MaxAbsScaler

    X, _ = _diabetes(4)
    return MaxAbsScaler().fit(X), _prep_x(), {"transform": DEFAULT}


@case("robust_scaler")
def _rs() -> Any:
    from sklearn.preprocessing import RobustScaler

    X, _ = _diabetes(4)
    return RobustScaler().fit(X), _prep_x(), {"transform": DEFAULT}


@case("normalizer_binarizer_polynomial_pca_pipeline", "transformer-only pipeline")
def _norm() -> Any:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, PolynomialFeatures

    X, _ = _diabetes(4)
    m = make_pipeline(Normalizer(norm="l1"), PolynomialFeatures(degree=2), PCA(n_components=3, whiten=True))
    m.fit(X)
    return m, _pick(X, 10), {"transform": DEFAULT}


@case("normalizer_max")
def _normmax() -> Any:
    from sklearn.preprocessing import Normalizer

    X, _ = _diabetes(4)
    return Normalizer(norm="max").fit(X), _pick(X, 8), {"transform": DEFAULT}


@case("binarizer")
def _bin() -> Any:
    from sklearn.preprocessing import Binarizer

    X, _ = _diabetes(4)
    return Binarizer(threshold=0.01).fit(X), _pick(X, 8), {"transform": EXACT}


@case("polynomial_interaction_only")
def _poly() -> Any:
    from sklearn.preprocessing import PolynomialFeatures

    X, _ = _diabetes(3)
    m = PolynomialFeatures(degree=3, interaction_only=True, include_bias=False).fit(X)
    return m, _pick(X, 8), {"transform": DEFAULT}


@case("pca")
def _pca() -> Any:
    from sklearn.decomposition import PCA

    X, _ = _diabetes(5)
    return PCA(n_components=2).fit(X), _pick(X, 8), {"transform": DEFAULT}


@case("simple_imputer_indicator", "mean imputation, add_indicator")
def _imp() -> Any:
    from sklearn.impute import SimpleImputer

    X, _ = _diabetes(4)
    Xf = _with_nan(X, [(0, 0), (3, 2), (7, 2)])
    return SimpleImputer(add_indicator=True).fit(Xf), _prep_x(), {"transform": DEFAULT}


@case("simple_imputer_object_most_frequent", "strings kept in the output")
def _imp_obj() -> Any:
    from sklearn.impute import SimpleImputer

    X, _ = _mixed()
    cols = X[["colour", "size"]]
    return SimpleImputer(strategy="most_frequent").fit(cols), _mixed_rows(X)[["colour", "size"]], \
        {"transform": EXACT}


@case("one_hot_encoder_ignore_drop", "unknown category ignored, drop='if_binary', missing as a category")
def _ohe() -> Any:
    from sklearn.preprocessing import OneHotEncoder

    X, _ = _mixed()
    cols = X[["colour", "size"]]
    m = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(cols)
    return m, _mixed_rows(X)[["colour", "size"]], {"transform": EXACT}


@case("one_hot_encoder_infrequent", "infrequent categories grouped, unknown -> infrequent column")
def _ohe_inf() -> Any:
    from sklearn.preprocessing import OneHotEncoder

    X, _ = _mixed()
    cols = X[["colour", "size"]]
    m = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=30, drop="first").fit(cols)
    return m, _mixed_rows(X)[["colour", "size"]], {"transform": EXACT}


@case("ordinal_encoder_unknown_value")
def _ord() -> Any:
    from sklearn.preprocessing import OrdinalEncoder

    X, _ = _mixed()
    cols = X[["colour", "size"]]
    m = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(cols)
    return m, _mixed_rows(X)[["colour", "size"]], {"transform": EXACT}


# ---------------------------------------------------------------- compose
@case("column_transformer_pipeline_logreg", "categorical inputs, unseen categories, missing values")
def _ct() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = _mixed()
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age", "income"]),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), ["colour", "size"]),
    ])
    m = Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y)
    return m, _mixed_rows(X), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}


@case("column_transformer_passthrough_remainder_weights", "passthrough, remainder, transformer weights")
def _ct2() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import MinMaxScaler, OrdinalEncoder

    X, _ = _mixed()
    Xn = X.copy()
    Xn["age"] = Xn["age"].fillna(40.0)
    ct = ColumnTransformer([
        ("ord", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["colour", "size"]),
        ("mm", MinMaxScaler(), ["income"]),
    ], remainder="passthrough", transformer_weights={"ord": 2.0, "mm": 0.5}).fit(Xn)
    rows = _mixed_rows(Xn)
    rows["age"] = rows["age"].fillna(41.0)
    return ct, rows, {"transform": DEFAULT}


# ---------------------------------------------------------------- trees
TREE_EXACT = {"predict": EXACT, "predict_proba": EXACT}


def _nan_iris() -> tuple[Any, Any, np.ndarray]:
    X, _, labels = _iris()
    rng = _rng(3)
    Xn = X.copy()
    mask = rng.random(Xn.shape) < 0.1
    Xn = Xn.mask(mask)
    rows = _pick(Xn, 16)
    rows.iloc[1, 2] = np.nan
    rows.iloc[5, 3] = np.nan
    rows.iloc[9, :] = np.nan
    return Xn, rows, labels


@case("decision_tree_classifier_nan_strings", "NaN routing learnt at fit (missing_go_to_left), string labels")
def _dtc() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    Xn, rows, labels = _nan_iris()
    return DecisionTreeClassifier(random_state=0, max_depth=5).fit(Xn, labels), rows, TREE_EXACT, \
        {"compact": False}


@case("decision_tree_classifier_multioutput", "two outputs, string labels")
def _dtc_multi() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    X, _, labels = _iris()
    Y = np.c_[labels, np.select([X["sepal_width"] > 3.2, X["sepal_width"] > 2.8], ["wide", "mid"], "narrow")]
    return DecisionTreeClassifier(random_state=0, max_depth=4).fit(X, Y), _pick(X, 12), TREE_EXACT


@case("decision_tree_regressor_float32_thresholds", "inputs rounded to float32 before <= threshold")
def _dtr() -> Any:
    from sklearn.tree import DecisionTreeRegressor

    X, y = _diabetes(4)
    m = DecisionTreeRegressor(random_state=0, max_depth=6).fit(X, y)
    rows = _pick(X, 12)
    # values on and next to split thresholds (the float32 rounding decides these)
    t = m.tree_
    split = np.where(t.children_left >= 0)[0][:4]
    for i, node in enumerate(split):
        rows.iat[i, int(t.feature[node])] = float(t.threshold[node])
        rows.iat[i + 4, int(t.feature[node])] = float(np.nextafter(t.threshold[node], np.inf))
    return m, rows, {"predict": EXACT}


@case("extra_tree_regressor_multioutput")
def _etr_multi() -> Any:
    from sklearn.tree import ExtraTreeRegressor

    X, y = _diabetes(4)
    Y = np.c_[y, -y / 3]
    return ExtraTreeRegressor(random_state=0, max_depth=5).fit(X, Y), _pick(X, 10), {"predict": EXACT}


@case("random_forest_classifier_nan")
def _rfc() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    Xn, rows, labels = _nan_iris()
    return RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(Xn, labels), rows, \
        TREE_EXACT


@case("random_forest_regressor_zlib", "base64-zlib blocks")
def _rfr() -> Any:
    from sklearn.ensemble import RandomForestRegressor

    X, y = _diabetes(4)
    m = RandomForestRegressor(n_estimators=4, max_depth=5, random_state=0).fit(X, y)
    return m, _pick(X, 10), {"predict": EXACT}, {"compress": True}


@case("extra_trees_classifier")
def _etc() -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    X, y, _ = _iris()
    return ExtraTreesClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y), _pick(X, 12), \
        TREE_EXACT


@case("extra_trees_regressor")
def _etr() -> Any:
    from sklearn.ensemble import ExtraTreesRegressor

    X, y = _diabetes(4)
    return ExtraTreesRegressor(n_estimators=4, max_depth=4, random_state=0).fit(X, y), _pick(X, 10), \
        {"predict": EXACT}


@case("gradient_boosting_classifier_binary", "expit of raw scores")
def _gbc() -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    X, _, labels = _cancer(4)
    m = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, labels)
    return m, _pick(X, 12), {"predict": EXACT, "decision_function": EXACT, "predict_proba": EXP}


@case("gradient_boosting_classifier_multiclass", "softmax of raw scores")
def _gbc_multi() -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    X, y, _ = _iris()
    m = GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0).fit(X, y)
    return m, _pick(X, 12), {"predict": EXACT, "decision_function": EXACT, "predict_proba": EXP}


@case("gradient_boosting_classifier_exponential")
def _gbc_exp() -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    X, y, _ = _cancer(4)
    m = GradientBoostingClassifier(loss="exponential", n_estimators=6, max_depth=2, random_state=0).fit(X, y)
    return m, _pick(X, 10), {"predict": EXACT, "decision_function": EXACT, "predict_proba": EXP}


@case("gradient_boosting_regressor")
def _gbr() -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = _diabetes(4)
    m = GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    return m, _pick(X, 10), {"predict": EXACT}


@case("hist_gradient_boosting_classifier_categorical", "categorical splits, unseen categories, NaN")
def _hgbc() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _mixed()
    Xc = X.copy()
    Xc["colour"] = Xc["colour"].astype("category")
    Xc["size"] = Xc["size"].astype("category")
    m = HistGradientBoostingClassifier(max_iter=8, max_depth=3, categorical_features="from_dtype",
                                       random_state=0).fit(Xc, y)
    rows = _mixed_rows(X)
    rows["colour"] = rows["colour"].astype(object)
    return m, rows, {"predict": EXACT, "decision_function": EXACT, "predict_proba": EXP}


@case("hist_gradient_boosting_classifier_multiclass_nan")
def _hgbc_multi() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    Xn, rows, labels = _nan_iris()
    m = HistGradientBoostingClassifier(max_iter=5, max_depth=3, random_state=0).fit(Xn, labels)
    return m, rows, {"predict": EXACT, "decision_function": EXACT, "predict_proba": EXP}


@case("hist_gradient_boosting_regressor_poisson", "exp link")
def _hgbr() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = _diabetes(4)
    Xn = _with_nan(X, [(i, i % 4) for i in range(0, 400, 7)])
    m = HistGradientBoostingRegressor(loss="poisson", max_iter=8, max_depth=3, random_state=0).fit(Xn, y)
    return m, _with_nan(_pick(X, 10), [(1, 0), (4, 2)]), {"predict": EXP}


@case("hist_gradient_boosting_regressor_squared")
def _hgbr2() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = _diabetes(4)
    m = HistGradientBoostingRegressor(max_iter=8, max_depth=3, random_state=0).fit(X, y)
    return m, _with_nan(_pick(X, 10), [(2, 1)]), {"predict": EXACT}


@case("isolation_forest", "inputs rounded to float32; NaN routed")
def _iso() -> Any:
    from sklearn.ensemble import IsolationForest

    X, _ = _diabetes(4)
    m = IsolationForest(n_estimators=5, max_samples=64, random_state=0).fit(X)
    return m, _pick(X, 12), {"predict": EXACT, "decision_function": EXP}


# ---------------------------------------------------------------- kernel
@case("svc_binary_rbf_probability", "Platt scaling + libsvm's multiclass_probability loop")
def _svc() -> Any:
    from sklearn.svm import SVC

    X, _, labels = _cancer(4)
    Xs = (X - X.mean()) / X.std()
    m = SVC(probability=True, random_state=0).fit(Xs.iloc[::4], labels[::4])
    return m, _pick(Xs, 10), {"predict": EXACT, "decision_function": DEFAULT, "predict_proba": DEFAULT}


@case("svc_multiclass_ovr_poly")
def _svc_multi() -> Any:
    from sklearn.svm import SVC

    X, y, _ = _iris()
    m = SVC(kernel="poly", degree=3, coef0=1.0, probability=True, random_state=0).fit(X, y)
    return m, _pick(X, 12), {"predict": EXACT, "decision_function": DEFAULT, "predict_proba": DEFAULT}


@case("nu_svc_ovo_sigmoid")
def _svc_ovo() -> Any:
    from sklearn.svm import NuSVC

    X, _, labels = _iris()
    Xs = (X - X.mean()) / X.std()
    m = NuSVC(kernel="sigmoid", gamma=0.1, decision_function_shape="ovo").fit(Xs, labels)
    return m, _pick(Xs, 12), {"predict": EXACT, "decision_function": DEFAULT}


@case("svc_break_ties_linear")
def _svc_bt() -> Any:
    from sklearn.svm import SVC

    X, y, _ = _iris()
    return SVC(kernel="linear", break_ties=True).fit(X, y), _pick(X, 12), {"predict": EXACT,
                                                                           "decision_function": DEFAULT}


@case("svr_rbf")
def _svr() -> Any:
    from sklearn.svm import SVR

    X, y = _diabetes(4)
    return SVR(C=50.0).fit(X.iloc[:120], y[:120]), _pick(X, 10), {"predict": DEFAULT}


@case("one_class_svm")
def _ocsvm() -> Any:
    from sklearn.svm import OneClassSVM

    X, _ = _diabetes(3)
    Xs = X * 20
    return OneClassSVM(nu=0.2, gamma=0.5).fit(Xs.iloc[:80]), _pick(Xs, 10), {"predict": EXACT,
                                                                            "decision_function": DEFAULT}


# ---------------------------------------------------------------- neighbors
@case("k_neighbors_classifier_distance")
def _knc() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    X, _, labels = _cancer(4)
    m = KNeighborsClassifier(n_neighbors=5, weights="distance").fit(X.iloc[::5], labels[::5])
    rows = _pick(X, 10) + 0.001
    return m, rows, {"predict": EXACT, "predict_proba": DEFAULT}


@case("k_neighbors_classifier_manhattan")
def _knc2() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    X, _, labels = _cancer(4)
    m = KNeighborsClassifier(n_neighbors=3, metric="manhattan").fit(X.iloc[::5], labels[::5])
    return m, _pick(X, 10) * 1.01, {"predict": EXACT, "predict_proba": DEFAULT}


@case("k_neighbors_regressor_multioutput_minkowski")
def _knr() -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    X, y = _diabetes(4)
    Y = np.c_[y, y / 7]
    m = KNeighborsRegressor(n_neighbors=4, p=3, weights="distance").fit(X.iloc[::3], Y[::3])
    return m, _pick(X, 10) * 1.01, {"predict": DEFAULT}


@case("k_neighbors_regressor_cosine")
def _knr2() -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    X, y = _diabetes(4)
    m = KNeighborsRegressor(n_neighbors=3, metric="cosine").fit(X.iloc[::3], y[::3])
    return m, _pick(X, 10) * 1.01, {"predict": DEFAULT}


@case("k_neighbors_classifier_ties_kd_tree",
      "iris (one decimal): ties at the 7th chebyshev distance, kept as the kd-tree search keeps them")
def _knc_ties() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    X, _, labels = _iris()
    m = KNeighborsClassifier(n_neighbors=7, metric="chebyshev", algorithm="kd_tree", leaf_size=5)
    m.fit(X.iloc[::2], labels[::2])
    return m, _pick(X, 15), {"predict": EXACT, "predict_proba": DEFAULT}


@case("k_neighbors_regressor_ties_ball_tree",
      "integer features: ties at the 5th manhattan distance, kept as the ball-tree search keeps them")
def _knr_ties() -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    rng = _rng(3)
    X = _frame(rng.integers(0, 4, size=(90, 3)).astype(np.float64))
    m = KNeighborsRegressor(n_neighbors=5, metric="manhattan", algorithm="ball_tree", leaf_size=4)
    m.fit(X.iloc[:80], rng.normal(size=80).round(2)[:80])
    return m, X.iloc[75:90].reset_index(drop=True), {"predict": DEFAULT}


@case("k_neighbors_classifier_ties_brute",
      "one integer feature: every query has ties; brute force keeps them in scikit-learn's heap order")
def _knc_ties_brute() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    rng = _rng(4)
    X = _frame(rng.integers(0, 8, size=(60, 1)).astype(np.float64))
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, size=60)]
    m = KNeighborsClassifier(n_neighbors=4, algorithm="brute").fit(X.iloc[:50], labels[:50])
    return m, X.iloc[45:60].reset_index(drop=True), {"predict": EXACT, "predict_proba": DEFAULT}


# ---------------------------------------------------------------- naive bayes
NB_TOL = {"predict": EXACT, "predict_proba": EXP}


@case("gaussian_nb")
def _gnb() -> Any:
    from sklearn.naive_bayes import GaussianNB

    X, _, labels = _iris()
    return GaussianNB().fit(X, labels), _pick(X, 12), NB_TOL


def _counts() -> tuple[Any, np.ndarray]:
    rng = _rng(5)
    X = rng.poisson(2.0, size=(200, 6)).astype(float)
    y = (X[:, 0] + X[:, 1] > X[:, 2] + X[:, 3]).astype(int) + (X[:, 4] > 3)
    return _frame(X), y


@case("multinomial_nb")
def _mnb() -> Any:
    from sklearn.naive_bayes import MultinomialNB

    X, y = _counts()
    return MultinomialNB().fit(X, y), X.iloc[:10], NB_TOL


@case("complement_nb")
def _cnb() -> Any:
    from sklearn.naive_bayes import ComplementNB

    X, y = _counts()
    return ComplementNB().fit(X, y), X.iloc[:10], NB_TOL


@case("bernoulli_nb")
def _bnb() -> Any:
    from sklearn.naive_bayes import BernoulliNB

    X, y = _counts()
    return BernoulliNB(binarize=1.5).fit(X, y), X.iloc[:10], NB_TOL


# ---------------------------------------------------------------- neural networks
@case("mlp_classifier_binary")
def _mlpb() -> Any:
    from sklearn.neural_network import MLPClassifier

    X, _, labels = _cancer(4)
    Xs = (X - X.mean()) / X.std()
    m = MLPClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=0).fit(Xs, labels)
    return m, _pick(Xs, 10), {"predict": EXACT, "predict_proba": EXP}


@case("mlp_classifier_multiclass_tanh")
def _mlpm() -> Any:
    from sklearn.neural_network import MLPClassifier

    X, _, labels = _iris()
    m = MLPClassifier(hidden_layer_sizes=(5, 4), activation="tanh", max_iter=400, random_state=0)
    return m.fit(X, labels), _pick(X, 12), {"predict": EXACT, "predict_proba": EXP}


@case("mlp_classifier_multilabel_logistic")
def _mlpl() -> Any:
    from sklearn.neural_network import MLPClassifier

    X, y, _ = _iris()
    Y = np.c_[y == 0, X["sepal_width"] > 3.0, y == 2].astype(int)
    m = MLPClassifier(hidden_layer_sizes=(5,), activation="logistic", max_iter=400, random_state=0)
    return m.fit(X, Y), _pick(X, 12), {"predict": EXACT, "predict_proba": EXP}


@case("mlp_regressor_multioutput")
def _mlpr() -> Any:
    from sklearn.neural_network import MLPRegressor

    X, y = _diabetes(4)
    Y = np.c_[y / 100, y / 50]
    m = MLPRegressor(hidden_layer_sizes=(6,), max_iter=300, random_state=0).fit(X * 10, Y)
    return m, _pick(X * 10, 10), {"predict": DEFAULT}


@case("mlp_regressor_poisson")
def _mlpp() -> Any:
    from sklearn.neural_network import MLPRegressor

    X, y = _diabetes(4)
    m = MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=200, random_state=0)
    m.fit(X * 10, y / 100)
    return m, _pick(X * 10, 10), {"predict": EXP}


# ---------------------------------------------------------------- cluster
@case("k_means")
def _km() -> Any:
    from sklearn.cluster import KMeans

    X, _, _ = _iris()
    return KMeans(n_clusters=3, n_init=3, random_state=0).fit(X), _pick(X, 12), {"predict": EXACT,
                                                                                   "transform": DEFAULT}


# ---------------------------------------------------------------- more options
@case("linear_regression_no_intercept_input_errors", "fit_intercept=False; rows a scorer must refuse")
def _lr_noint() -> Any:
    from sklearn.linear_model import LinearRegression

    X, y = _diabetes(3)
    errors = [([0.01, None, 0.02], X.columns[1]), ([0.01, 0.02, "abc"], X.columns[2])]
    return LinearRegression(fit_intercept=False).fit(X, y), _pick(X, 6), {"predict": DEFAULT}, \
        {"errors": errors}


@case("standard_scaler_without_mean", "with_mean=False: no mean field")
def _std_nomean() -> Any:
    from sklearn.preprocessing import StandardScaler

    X, _ = _diabetes(3)
    return StandardScaler(with_mean=False).fit(X), _pick(X, 6), {"transform": DEFAULT}, {"compact": False}


@case("polynomial_min_degree")
def _poly_min() -> Any:
    from sklearn.preprocessing import PolynomialFeatures

    X, _ = _diabetes(3)
    return PolynomialFeatures(degree=(2, 3)).fit(X), _pick(X, 6), {"transform": DEFAULT}


@case("simple_imputer_sentinel_constant", "missing_values=-1 (a sentinel), strategy='constant'")
def _imp_sentinel() -> Any:
    from sklearn.impute import SimpleImputer

    rng = _rng(11)
    X = _frame(rng.integers(-1, 5, size=(40, 3)).astype(float))
    rows = X.iloc[:8]
    errors = [([1.0, None, 2.0], "x1")]
    return SimpleImputer(missing_values=-1, strategy="constant", fill_value=9.5).fit(X), rows, \
        {"transform": EXACT}, {"errors": errors}


@case("ordinal_encoder_missing_category", "NaN seen at fit encoded as encoded_missing_value")
def _ord_nan() -> Any:
    from sklearn.preprocessing import OrdinalEncoder

    X, _ = _mixed()
    cols = X[["colour", "size"]]
    m = OrdinalEncoder(encoded_missing_value=-2, handle_unknown="error").fit(cols)
    rows = _mixed_rows(X)[["colour", "size"]].iloc[:14]
    rows.iloc[3, 0] = None
    errors = [(["purple", "S"], "colour"), (["red", "XL"], "size")]
    return m, rows, {"transform": EXACT}, {"errors": errors}


@case("one_hot_encoder_error_unknown", "handle_unknown='error': unseen categories are input errors")
def _ohe_err() -> Any:
    from sklearn.preprocessing import OneHotEncoder

    X, _ = _mixed()
    cols = X[["size"]]
    m = OneHotEncoder(handle_unknown="error", drop="first", sparse_output=False).fit(cols)
    return m, cols.iloc[:6], {"transform": EXACT}, {"errors": [(["XL"], "size")]}


@case("gradient_boosting_regressor_huber_zero_init", "init='zero'; NaN is an input error")
def _gbr_huber() -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = _diabetes(3)
    m = GradientBoostingRegressor(loss="huber", init="zero", n_estimators=6, max_depth=2, random_state=0)
    return m.fit(X, y), _pick(X, 8), {"predict": EXACT}, {"errors": [([0.01, None, 0.0], X.columns[1])]}


@case("gradient_boosting_regressor_quantile")
def _gbr_q() -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = _diabetes(3)
    m = GradientBoostingRegressor(loss="quantile", alpha=0.8, n_estimators=6, max_depth=2, random_state=0)
    return m.fit(X, y), _pick(X, 8), {"predict": EXACT}


@case("hist_gradient_boosting_regressor_gamma_numeric_categories", "categories that are numbers")
def _hgb_gamma() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = _diabetes(3)
    Xc = X.copy()
    Xc["grade"] = (np.arange(len(X)) % 5).astype(float)
    m = HistGradientBoostingRegressor(loss="gamma", max_iter=6, max_depth=3, categorical_features=[3],
                                      random_state=0).fit(Xc, y + Xc["grade"] * 20)
    rows = _pick(Xc, 10)
    rows.iloc[2, 3] = 7.0  # unseen category
    rows.iloc[4, 3] = np.nan
    return m, rows, {"predict": EXP}


@case("k_neighbors_classifier_chebyshev_uniform")
def _knc_cheb() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    X, _, labels = _cancer(3)
    m = KNeighborsClassifier(n_neighbors=4, metric="chebyshev").fit(X.iloc[::4], labels[::4])
    return m, _pick(X, 8) * 1.003, {"predict": EXACT, "predict_proba": DEFAULT}


@case("svr_linear_nu")
def _nusvr() -> Any:
    from sklearn.svm import NuSVR

    X, y = _diabetes(3)
    return NuSVR(kernel="linear", C=100.0).fit(X.iloc[:80], y[:80]), _pick(X, 6), {"predict": DEFAULT}


@case("k_means_input_errors", "NaN is an input error")
def _km_err() -> Any:
    from sklearn.cluster import MiniBatchKMeans

    X, _ = _diabetes(3)
    m = MiniBatchKMeans(n_clusters=3, n_init=2, random_state=0).fit(X)
    errors = [([None, 0.0, 0.0], X.columns[0])]
    return m, _pick(X, 6), {"predict": EXACT, "transform": DEFAULT}, {"errors": errors}


@case("random_forest_classifier_multioutput_ints", "integer labels per output; predict_proba per output")
def _rfc_multi() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    X, y, _ = _iris()
    Y = np.c_[y, (X["petal_width"] > 1.0).astype(int) + (X["sepal_length"] > 6.0)]
    m = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(X, Y)
    return m, _pick(X, 10), TREE_EXACT


@case("pipeline_ending_in_passthrough", "transform only: the last step is 'passthrough'")
def _pipe_pass() -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = _diabetes(3)
    m = Pipeline([("scale", StandardScaler()), ("keep", "passthrough")]).fit(X)
    return m, _pick(X, 6), {"transform": DEFAULT}


# ---------------------------------------------------------------- ensembles (voting, stacking, bagging)
ENS_CLF = {"predict": EXACT, "predict_proba": EXP, "transform": EXP, "decision_function": EXP}


def _clf_members() -> list[tuple[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    return [("lr", LogisticRegression(max_iter=500)), ("nb", GaussianNB()),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]


@case("voting_classifier_soft_weights", "soft voting: np.average of the probabilities with weights")
def _vote_soft() -> Any:
    from sklearn.ensemble import VotingClassifier

    X, _, labels = _iris()
    m = VotingClassifier(_clf_members(), voting="soft", weights=[2, 1, 0.5]).fit(X, labels)
    return m, _pick(X, 12), ENS_CLF


@case("voting_classifier_hard", "hard voting: weighted bincount of the children's class indices")
def _vote_hard() -> Any:
    from sklearn.ensemble import VotingClassifier

    X, _, labels = _cancer(5)
    m = VotingClassifier(_clf_members(), weights=[1, 1, 2]).fit(X, labels)
    return m, _pick(X, 12), {"predict": EXACT, "transform": EXACT}


@case("voting_regressor", "np.average of the predictions with weights")
def _vote_reg() -> Any:
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = _diabetes()
    m = VotingRegressor([("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))],
                        weights=[0.3, 0.7]).fit(X, y)
    return m, _pick(X, 10), {"predict": DEFAULT, "transform": DEFAULT}


@case("stacking_classifier_binary_passthrough", "binary: predict_proba without its first column, then X")
def _stack_bin() -> Any:
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression

    X, _, labels = _cancer(5)
    Xs = (X - X.mean()) / X.std()
    m = StackingClassifier(_clf_members(), final_estimator=LogisticRegression(), passthrough=True)
    m.fit(Xs, labels)
    return m, _pick(Xs, 12), ENS_CLF


@case("stacking_classifier_multiclass_predict", "stack_method='predict': class indices as features")
def _stack_multi() -> Any:
    from sklearn.ensemble import StackingClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, _, labels = _iris()
    m = StackingClassifier(_clf_members()[1:], stack_method="predict",
                           final_estimator=DecisionTreeClassifier(max_depth=3, random_state=0)).fit(X, labels)
    return m, _pick(X, 12), ENS_CLF


@case("stacking_regressor", "predictions side by side, then a ridge")
def _stack_reg() -> Any:
    from sklearn.ensemble import StackingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = _diabetes()
    m = StackingRegressor([("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))],
                          final_estimator=Ridge(), passthrough=True).fit(X, y)
    return m, _pick(X, 10), {"predict": DEFAULT, "transform": DEFAULT}


@case("bagging_classifier_nan", "feature subsets with bootstrap features; trees route missing values")
def _bag_clf() -> Any:
    from sklearn.ensemble import BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, rows, labels = _nan_iris()
    m = BaggingClassifier(DecisionTreeClassifier(max_depth=4, random_state=0), n_estimators=5, max_features=3,
                          bootstrap_features=True, random_state=0).fit(X, labels)
    return m, rows, ENS_CLF


@case("bagging_regressor", "mean of the children's predictions over feature subsets")
def _bag_reg() -> Any:
    from sklearn.ensemble import BaggingRegressor
    from sklearn.linear_model import Ridge

    X, y = _diabetes()
    m = BaggingRegressor(Ridge(), n_estimators=4, max_features=0.6, random_state=0).fit(X, y)
    return m, _pick(X, 10), {"predict": DEFAULT}


@case("calibrated_classifier_sigmoid", "CalibratedClassifierCV(method='sigmoid'), 3 folds, binary")
def _cal_sig() -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    X, _, labels = _cancer(5)
    Xs = (X - X.mean()) / X.std()
    m = CalibratedClassifierCV(LogisticRegression(), method="sigmoid", cv=3).fit(Xs, labels)
    return m, _pick(Xs, 12), {"predict": EXACT, "predict_proba": EXP}


@case("calibrated_classifier_isotonic", "CalibratedClassifierCV(method='isotonic'), multiclass, normalised")
def _cal_iso() -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.naive_bayes import GaussianNB

    X, _, labels = _iris()
    m = CalibratedClassifierCV(GaussianNB(), method="isotonic", cv=3).fit(X, labels)
    return m, _pick(X, 12), {"predict": EXACT, "predict_proba": EXP}


@case("isotonic_regression", "np.interp through the thresholds; NaN outside them")
def _iso_reg() -> Any:
    from sklearn.isotonic import IsotonicRegression

    X, y = _diabetes(3)
    m = IsotonicRegression(out_of_bounds="nan").fit(X[["bmi"]], y)
    rows = _pick(X[["bmi"]], 10).copy()
    rows.iloc[0, 0] = float(X["bmi"].min()) - 0.01
    return m, rows, {"predict": DEFAULT, "transform": DEFAULT}


@case("ada_boost_classifier_binary", "SAMME with stumps: decision = sum of +-w, divided by the weight sum")
def _ada_bin() -> Any:
    from sklearn.ensemble import AdaBoostClassifier

    X, _, labels = _cancer(5)
    m = AdaBoostClassifier(n_estimators=12, random_state=0).fit(X, labels)
    return m, _pick(X, 12), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}


@case("ada_boost_classifier_multiclass", "SAMME, 3 classes; predict_proba = softmax(decision / (k - 1))")
def _ada_multi() -> Any:
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, _, labels = _iris()
    m = AdaBoostClassifier(DecisionTreeClassifier(max_depth=2), n_estimators=8, random_state=0).fit(X, labels)
    return m, _pick(X, 12), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}


@case("ada_boost_regressor", "AdaBoost.R2: the weighted median of the trees' predictions")
def _ada_reg() -> Any:
    from sklearn.ensemble import AdaBoostRegressor
    from sklearn.tree import DecisionTreeRegressor

    X, y = _diabetes()
    m = AdaBoostRegressor(DecisionTreeRegressor(max_depth=3), n_estimators=15, random_state=0).fit(X, y)
    return m, _pick(X, 12), {"predict": EXACT}


@case("transformed_target_regressor_log1p", "func=np.log1p, inverse_func=np.expm1 (the whitelist)")
def _ttr_log() -> Any:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge

    X, y = _diabetes()
    m = TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1).fit(X, y)
    return m, _pick(X, 10), {"predict": EXP}


@case("transformed_target_regressor_scaler", "StandardScaler on the target: *= scale, then += mean")
def _ttr_scaler() -> Any:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    X, y = _diabetes()
    m = TransformedTargetRegressor(DecisionTreeRegressor(max_depth=4, random_state=0),
                                   transformer=StandardScaler()).fit(X, y)
    return m, _pick(X, 10), {"predict": EXACT}
# ---------------------------------------------------------------- transforms (docs/format/transforms.md)
@case("function_transformer_log1p_then_clip", "whitelisted numpy functions; NaN passes through")
def _func() -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, _ = _diabetes(4)
    m = make_pipeline(FunctionTransformer(np.abs), FunctionTransformer(np.log1p),
                      FunctionTransformer(np.clip, kw_args={"a_min": 0.01, "a_max": 0.1})).fit(X)
    return m, _prep_x(), {"transform": EXP}


@case("select_columns_selectors", "VarianceThreshold then SelectKBest in a pipeline")
def _select() -> Any:
    from sklearn.feature_selection import SelectKBest, VarianceThreshold
    from sklearn.pipeline import make_pipeline

    X, y = _diabetes(5)
    m = make_pipeline(VarianceThreshold(0.0), SelectKBest(k=3)).fit(X, y)
    return m, _pick(X, 8), {"transform": EXACT}


@case("power_transformer_yeo_johnson_nan", "standardized; NaN passes through")
def _power() -> Any:
    from sklearn.preprocessing import PowerTransformer

    X, _ = _diabetes(4)
    return PowerTransformer().fit(X), _prep_x(), {"transform": EXP}


@case("power_transformer_box_cox", "not standardized; zero is an input error")
def _boxcox() -> Any:
    from sklearn.preprocessing import PowerTransformer

    X, _ = _iris()[:2]
    m = PowerTransformer(method="box-cox", standardize=False).fit(X)
    return m, _pick(X, 8), {"transform": EXP}, {"errors": [([0.0, 1.0, 1.0, 1.0], X.columns[0])]}


@case("kbins_discretizer_quantile_onehot", "one column per bin")
def _kbins() -> Any:
    from sklearn.preprocessing import KBinsDiscretizer

    X, _ = _diabetes(3)
    m = KBinsDiscretizer(n_bins=4, strategy="quantile", encode="onehot-dense").fit(X)
    return m, _pick(X, 10), {"transform": EXACT}


@case("kbins_discretizer_uniform_ordinal")
def _kbins_ord() -> Any:
    from sklearn.preprocessing import KBinsDiscretizer

    X, _ = _diabetes(3)
    m = KBinsDiscretizer(n_bins=5, strategy="uniform", encode="ordinal").fit(X.iloc[:200])
    return m, _pick(X, 10), {"transform": EXACT}


@case("quantile_transformer_uniform_ties", "repeated quantiles: np.interp forwards and backwards averaged")
def _quant() -> Any:
    from sklearn.preprocessing import QuantileTransformer

    X, _, _ = _iris()
    m = QuantileTransformer(n_quantiles=40).fit(X)
    rows = _with_nan(_pick(X, 12), [(3, 1)])
    rows.iloc[4] = [4.0, 2.0, 7.5, 0.3]  # below / above the fitted range
    return m, rows, {"transform": DEFAULT}


@case("quantile_transformer_normal", "normal output: Cephes ndtri, clipped; NaN passes through")
def _quant_normal() -> Any:
    from sklearn.preprocessing import QuantileTransformer

    X, _ = _diabetes(4)
    m = QuantileTransformer(n_quantiles=50, output_distribution="normal").fit(X.iloc[:200])
    return m, _prep_x(), {"transform": EXP}


@case("spline_transformer_cubic_linear", "cubic B-splines, linear extrapolation beyond the knots")
def _spline() -> Any:
    from sklearn.preprocessing import SplineTransformer

    X, _ = _diabetes(2)
    m = SplineTransformer(n_knots=4, degree=3, extrapolation="linear").fit(X.iloc[:150])
    return m, _pick(X, 12), {"transform": DEFAULT}


@case("spline_transformer_periodic_no_bias", "periodic, include_bias=False")
def _spline_periodic() -> Any:
    from sklearn.preprocessing import SplineTransformer

    X, _ = _diabetes(2)
    m = SplineTransformer(n_knots=5, degree=2, extrapolation="periodic", include_bias=False).fit(X.iloc[:150])
    return m, _pick(X, 12), {"transform": DEFAULT}


@case("spline_transformer_constant_quantile_knots")
def _spline_constant() -> Any:
    from sklearn.preprocessing import SplineTransformer

    X, _ = _diabetes(2)
    m = SplineTransformer(n_knots=4, degree=2, knots="quantile", extrapolation="constant").fit(X.iloc[:150])
    return m, _pick(X, 12), {"transform": DEFAULT}


@case("spline_transformer_continue_missing_zeros", "continue extrapolation; NaN -> zeros (handle_missing)")
def _spline_nan() -> Any:
    from sklearn.preprocessing import SplineTransformer

    X, _ = _diabetes(4)
    m = SplineTransformer(n_knots=3, degree=3, extrapolation="continue", handle_missing="zeros")
    return m.fit(X.iloc[:150]), _prep_x(), {"transform": DEFAULT}


# ---------------------------------------------------------------- discriminant analysis
@case("linear_discriminant_analysis_svd", "three classes: softmax; transform projects on 2 components")
def _lda() -> Any:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X, _, labels = _iris()
    return LinearDiscriminantAnalysis().fit(X, labels), _pick(X, 10), \
        {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT, "transform": DEFAULT}


@case("linear_discriminant_analysis_eigen_binary", "two classes: expit; shrinkage")
def _lda_bin() -> Any:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X, _, labels = _cancer(4)
    m = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.2).fit(X, labels)
    return m, _pick(X, 10), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT,
                             "transform": DEFAULT}


@case("quadratic_discriminant_analysis", "per-class rotations and scalings")
def _qda() -> Any:
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    X, _, labels = _iris()
    m = QuadraticDiscriminantAnalysis(reg_param=0.01).fit(X, labels)
    return m, _pick(X, 10), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}


@case("quadratic_discriminant_analysis_binary", "two classes: decision = score1 - score0")
def _qda_bin() -> Any:
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    X, _, labels = _cancer(4)
    m = QuadraticDiscriminantAnalysis().fit(X, labels)
    return m, _pick(X, 10), {"predict": EXACT, "predict_proba": EXP, "decision_function": DEFAULT}
@case("xgboost_classifier_multiclass_nan", "float32 inputs, x < threshold, float32 sums and softmax")
def _xgbc() -> Any:
    import xgboost

    Xn, rows, labels = _nan_iris()
    codes = np.unique(labels, return_inverse=True)[1]  # XGBClassifier takes classes 0..K-1 only
    m = xgboost.XGBClassifier(n_estimators=6, max_depth=3, random_state=0).fit(Xn, codes)
    return m, rows, {"predict": EXACT, "predict_proba": XGB}


@case("xgboost_regressor_poisson", "float32 base margin, sums and expf")
def _xgbr() -> Any:
    import xgboost

    X, y = _diabetes(4)
    Xn = _with_nan(X, [(i, i % 4) for i in range(0, 400, 7)])
    m = xgboost.XGBRegressor(objective="count:poisson", n_estimators=6, max_depth=3).fit(Xn, y)
    return m, _with_nan(_pick(X, 10), [(1, 0), (4, 2)]), {"predict": XGB}


@case("lightgbm_classifier_categorical_nan", "categorical bitsets, missing_type NaN and None, double sums")
def _lgbc() -> Any:
    import lightgbm

    X, y = _diabetes(4)
    Xc = X.copy()
    Xc["grade"] = (np.arange(len(X)) % 6).astype(float)
    Xn = _with_nan(Xc, [(i, 1) for i in range(0, 400, 5)])
    labels = ((y + Xc["grade"].to_numpy() * 30) > 180).astype(int)
    m = lightgbm.LGBMClassifier(n_estimators=6, num_leaves=8, min_child_samples=5, verbose=-1).fit(
        Xn, labels, categorical_feature=[4])
    rows = _with_nan(_pick(Xc, 10), [(1, 1), (3, 4), (5, 0)])
    rows.iloc[2, 4] = 9.0  # unseen category
    rows.iloc[6, 4] = -1.0
    return m, rows, {"predict": EXACT, "predict_proba": EXP, "decision_function": EXACT}


@case("lightgbm_regressor_zero_as_missing", "missing_type Zero: NaN and 0.0 follow default_left")
def _lgbr() -> Any:
    import lightgbm

    X, y = _diabetes(4)
    Xz = X.copy()
    Xz.iloc[::6, 0] = 0.0
    m = lightgbm.LGBMRegressor(n_estimators=6, num_leaves=8, zero_as_missing=True, verbose=-1).fit(Xz, y)
    rows = _with_nan(_pick(Xz, 10), [(1, 0), (2, 3)])
    rows.iloc[3, 0] = 0.0
    return m, rows, {"predict": EXACT}


# ---------------------------------------------------------------- documents other producers write
Built = tuple[str, dict[str, Any], dict[str, float], str]


def _generic_linear(docs: dict[str, dict[str, Any]]) -> list[Built]:
    """`linear_regressor` / `linear_classifier`: the generic names, same arithmetic, same outputs."""
    out: list[Built] = []
    for src, new_type, new_id in (("linear_regression_plain", "linear_regressor", "generic_linear_regressor"),
                                  ("logistic_regression_multinomial", "linear_classifier",
                                   "generic_linear_classifier")):
        doc = copy.deepcopy(docs[src])
        doc["estimator"]["type"] = new_type
        doc["metadata"]["name"] = new_id
        doc["sha256"] = scorer.content_sha256(doc)
        out.append((new_id, doc, {}, f"the generic type name; same arithmetic as {src}"))
    return out


# ---------------------------------------------------------------- invalid documents
DELETE = object()  # set_pointer's value that removes the member instead


def set_pointer(doc: dict[str, Any], pointer: str, value: Any) -> None:
    """Set (or, with ``DELETE``, remove) the member a JSON pointer (RFC 6901) names."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node: Any = doc
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    key: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value is DELETE:
        del node[key]
    else:
        node[key] = value


def _invalid(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry: id, the document text, the pointer the problems must include, and a description."""
    lin = docs["linear_regression_plain"]
    tree = docs["decision_tree_classifier_nan_strings"]
    logreg = docs["logistic_regression_multinomial"]
    out: list[dict[str, Any]] = []

    def mutate(case_id: str, base: dict[str, Any], pointer: str, value: Any, expect: str, why: str,
               rehash: bool = True) -> None:
        doc = copy.deepcopy(base)
        set_pointer(doc, pointer, value)
        if rehash:
            doc["sha256"] = scorer.content_sha256(doc)
        out.append({"id": case_id, "text": json.dumps(doc, separators=(",", ":")), "pointer": expect,
                    "description": why})

    n = lin["estimator"]["n_features_in"]
    mutate("coef_wrong_length", lin, "/estimator/coef", lin["estimator"]["coef"][:-1], "/estimator/coef",
           f"coef has {n - 1} entries for {n} features")
    mutate("created_not_rfc3339", lin, "/metadata/created", "yesterday", "/metadata/created",
           "metadata.created is not an RFC 3339 timestamp")
    mutate("bad_name", lin, "/metadata/name", "no spaces allowed", "/metadata/name", "invalid model name")
    mutate("sha256_mismatch", lin, "/metadata/description", "changed after export", "/sha256",
           "content changed after the sha256 was computed", rehash=False)
    row1 = lin["test_vectors"]["outputs"]["predict"][1]
    mutate("test_vector_mismatch", lin, "/test_vectors/outputs/predict/1", row1 + 1.0,
           "/test_vectors/outputs/predict/1", "row 1's expected output is off by 1")
    mutate("unknown_method", lin, "/output/methods", ["predict", "predict_proba"], "/output/methods/1",
           "a regressor listing predict_proba")
    mutate("unknown_major_version", lin, "/format_version", "2.0", "/format_version",
           "format 2.x: must be refused naming both versions")
    mutate("unsupported_type", lin, "/estimator/type", "quantum_forest", "/estimator/type",
           "unknown node type: unsupported (a subclass of invalid), listing the supported types")
    mutate("classes_mismatch", logreg, "/output/classes", ["setosa", "versicolor", "other"],
           "/output/classes", "output.classes differs from the estimator's classes")
    # a tree whose node 2 points back to node 1 (children must come after their parent)
    t = tree["estimator"]["tree"]
    left = list(t["children_left"])
    first_split_child = next(i for i in range(1, len(left)) if left[i] != -1)
    left[first_split_child] = first_split_child - 1 if first_split_child > 1 else 0
    mutate("tree_child_before_parent", tree, "/estimator/tree/children_left", left,
           f"/estimator/tree/children_left/{first_split_child}", "a child index not after its parent (cycle)")
    feat = list(t["feature"])
    feat[0] = 99
    mutate("tree_feature_out_of_range", tree, "/estimator/tree/feature", feat, "/estimator/tree/feature/0",
           "split feature beyond n_features_in")
    comp = docs["linear_regression_multioutput_compact"]
    block = dict(comp["estimator"]["coef"])
    block["data"] = block["data"][:-8]
    mutate("block_length_mismatch", comp, "/estimator/coef", block, "/estimator/coef/data",
           "base64 data shorter than shape x itemsize")
    block = dict(comp["estimator"]["coef"])
    block["dtype"] = "complex128"
    mutate("block_bad_dtype", comp, "/estimator/coef", block, "/estimator/coef/dtype", "unknown dtype")
    mutate("missing_feature_name", lin, "/input/features/1/name", "", "/input/features/1/name",
           "empty feature name")
    # a node with two parents: the right child of the root also the left child of its left child
    left, right = list(t["children_left"]), list(t["children_right"])
    two = copy.deepcopy(tree)
    split = next(i for i in range(1, len(left)) if left[i] != -1)
    right_list = list(right)
    right_list[split] = left[split]
    mutate("tree_node_two_parents", two, "/estimator/tree/children_right", right_list,
           f"/estimator/tree/children_right/{split}", "a node that is the child of two splits")
    big = dict(comp["estimator"]["coef"])
    big["shape"] = [100_000_000]
    mutate("declared_shape_too_large", comp, "/estimator/coef", big, "/estimator/coef/shape",
           "a block declaring more elements than the limit (refused before decoding)")
    bomb = {"encoding": "base64-zlib", "dtype": "float64", "shape": [2, 5],
            "data": base64.b64encode(zlib.compress(bytes(1 << 20), 9)).decode("ascii")}
    mutate("zlib_bomb", comp, "/estimator/coef", bomb, "/estimator/coef/data",
           "zlib data inflating beyond the declared shape")
    nested: dict[str, Any] = copy.deepcopy(lin["estimator"])
    for _ in range(17):
        nested = {"type": "pipeline", "steps": [{"name": "s", "estimator": nested}]}
    deep_ptr = "/estimator" + "/steps/0/estimator" * 17  # the 17th nested node
    mutate("estimators_nested_too_deep", lin, "/estimator", nested, deep_ptr,
           "more than 16 nested estimators")
    no_out = copy.deepcopy(lin)
    del no_out["test_vectors"]["outputs"]["predict"]
    no_out["test_vectors"]["outputs"]["transform"] = [[0.0]]
    mutate("test_vectors_missing_method", no_out, "/metadata/name", no_out["metadata"]["name"],
           "/test_vectors/outputs/predict", "a listed method without test vector outputs")
    pipe = docs["column_transformer_pipeline_logreg"]
    mutate("column_out_of_range", pipe, "/estimator/steps/0/estimator/transformers/0/columns", [0, 9],
           "/estimator/steps/0/estimator/transformers/0/columns", "a column index beyond n_features_in")
    svc = docs["svc_multiclass_ovr_poly"]
    mutate("svc_negative_n_support", svc, "/estimator/n_support", [-1, 1, 0], "/estimator/n_support/0",
           "a negative support-vector count")
    hgb = copy.deepcopy(docs["hist_gradient_boosting_classifier_categorical"])
    t0 = hgb["estimator"]["trees"][0]
    bits = np.frombuffer(base64.b64decode(t0["category_bitsets"]["data"]), dtype=np.uint8).copy()
    bits[31] = 0x80  # category index 255 of the first categorical split: beyond its 4 categories
    t0["category_bitsets"]["data"] = base64.b64encode(bits.tobytes()).decode("ascii")
    mutate("hgb_bitset_beyond_categories", hgb, "/metadata/name", hgb["metadata"]["name"],
           "/estimator/trees/0/category_split/0", "a categorical split sending an impossible category left")
    # texts that are not strict JSON
    text = json.dumps(lin, separators=(",", ":"))
    dup = text.replace('{"format_version":"1.0",', '{"format_version":"1.0","format_version":"1.0",', 1)
    out.append({"id": "duplicate_key", "text": dup,
                "pointer": "", "description": "duplicate object key"})
    out.append({"id": "nan_literal", "text": text.replace('"tolerance":1e-09', '"tolerance":NaN', 1),
                "pointer": "", "description": "NaN is not JSON"})
    out.append({"id": "root_not_object", "text": "[" + text + "]", "pointer": "",
                "description": "the root must be an object"})
    return out


# ---------------------------------------------------------------- driver
def build(out_dir: pathlib.Path) -> dict[str, Any]:
    import warnings

    warnings.simplefilter("ignore")  # scikit-learn's convergence / deprecation chatter
    cases_dir = out_dir / "cases"
    invalid_dir = out_dir / "invalid"
    for d in (cases_dir, invalid_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    docs: dict[str, dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    built: list[Built] = []
    errors: dict[str, list[dict[str, Any]]] = {}
    for c in CASES:
        result = c["build"]()
        est, rows, tol = result[:3]
        opts = result[3] if len(result) > 3 else {}
        doc = export_model(est, rows, c["id"], n_test_vectors=len(rows), compact=opts.get("compact", True),
                           compress=opts.get("compress", False))
        doc["metadata"]["created"] = CREATED
        doc["metadata"].pop("description", None)
        doc["sha256"] = scorer.content_sha256(doc)
        docs[c["id"]] = doc
        built.append((c["id"], doc, tol, c["notes"]))
        if opts.get("errors"):
            errors[c["id"]] = _input_errors(est, rows, doc, opts["errors"])
    for case_id, doc, _tol, notes in _generic_linear(docs):
        src_tol = next(t for i, _d, t, _n in built if i in ("linear_regression_plain",
                                                              "logistic_regression_multinomial")
                       and docs[i]["estimator"]["coef"] == doc["estimator"]["coef"])
        built.append((case_id, doc, src_tol, notes))
    for case_id, doc, tol, notes in built:
        methods = doc["output"]["methods"]
        missing = [m for m in methods if m not in tol]
        if missing:
            raise SystemExit(f"case {case_id}: no tolerance for {missing}")
        path = cases_dir / f"{case_id}.json"
        path.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
        entries.append({
            "id": case_id,
            "file": f"cases/{case_id}.json",
            "types": sorted(_node_types(doc["estimator"])),
            "methods": methods,
            "rows": len(doc["test_vectors"]["inputs"]),
            "tolerance": {m: tol[m] for m in methods},
            "notes": notes,
            **({"input_errors": errors[case_id]} if case_id in errors else {}),
        })
    invalid_entries = []
    for inv in _invalid(docs):
        path = invalid_dir / f"{inv['id']}.json"
        path.write_text(inv["text"] + "\n", encoding="utf-8")
        invalid_entries.append({"id": inv["id"], "file": f"invalid/{inv['id']}.json",
                                "pointer": inv["pointer"], "description": inv["description"]})
    index = {
        "kit_version": KIT_VERSION,
        "format_version": scorer.FORMAT_VERSION,
        "generated_by": "conformance/generate.py (make conformance)",
        "rules": {
            "inputs": "each case file is a model document; score test_vectors.inputs (rows in feature order, "
                      "null = missing) with every method in output.methods",
            "expected": "test_vectors.outputs, computed by scikit-learn; null stands for NaN",
            "tolerance": "per method: |got - expected| <= tol * max(1, |expected|); 0 means bit-for-bit "
                         "equal; labels (strings, booleans, integers of classifiers) are always compared "
                         "exactly; shapes must match",
            "exp": "tolerance 1e-12 marks outputs computed through exp/log (expit, softmax, Poisson/exp "
                   "links, isolation-forest scores, naive Bayes probabilities): a language's exp may "
                   "differ from glibc's by an ulp, so these are not bit-exact across languages",
            "input_errors": "rows (in feature order) that every method must refuse with an input error "
                            "(naming row 0 and, where the scorer knows names, `feature`, the cell at "
                            "fault); scikit-learn refuses them too",
            "invalid": "validating each invalid document must fail with a problem whose JSON pointer "
                       "equals `pointer` ('' = the whole document: parse errors)",
        },
        "cases": entries,
        "invalid": invalid_entries,
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return index


def _input_errors(est: Any, rows: Any, doc: dict[str, Any],
                  bad: list[tuple[list[Any], str]]) -> list[dict[str, Any]]:
    """Rows every method must refuse as an input error naming ``feature``; scikit-learn refuses them too."""
    import pandas as pd

    model = scorer.load_model(doc)
    out = []
    for values, feature in bad:
        frame = pd.DataFrame([[np.nan if v is None and not isinstance(rows.iloc[0, j], str) else v
                               for j, v in enumerate(values)]], columns=rows.columns)
        method = doc["output"]["methods"][0]
        try:
            getattr(est, method)(frame)
        except (ValueError, TypeError):
            pass
        else:
            raise SystemExit(f"{doc['metadata']['name']}: scikit-learn accepts the error row {values}")
        try:
            getattr(model, method)([values])
        except scorer.InvalidInput as exc:
            if exc.feature not in (None, feature):
                name = doc["metadata"]["name"]
                raise SystemExit(f"{name}: the scorer names {exc.feature!r}, not {feature!r}") from None
        else:
            raise SystemExit(f"{doc['metadata']['name']}: the scorer accepts the error row {values}")
        out.append({"row": values, "feature": feature})
    return out


def _node_types(node: Any) -> set[str]:
    """Every estimator type in a node tree (pipelines and column transformers included)."""
    if not isinstance(node, dict) or "type" not in node:
        return set()
    found = {node["type"]}
    for step in node.get("steps", []):
        found |= _node_types(step.get("estimator"))
    for tr in node.get("transformers", []):
        found |= _node_types(tr.get("estimator"))
    for member in node.get("estimators", []):  # ensembles
        found |= _node_types(member.get("estimator"))
    found |= _node_types(node.get("final_estimator"))
    found |= _node_types(node.get("regressor"))  # transformed_target_regressor
    for fold in node.get("calibrated", []):  # calibrated_classifier
        found |= _node_types(fold.get("estimator"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT)
    args = parser.parse_args()
    index = build(args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*.json"))
    print(f"{len(index['cases'])} cases, {len(index['invalid'])} invalid documents, {size / 1e6:.2f} MB")  # noqa: T201 (a command-line tool)


if __name__ == "__main__":
    main()
