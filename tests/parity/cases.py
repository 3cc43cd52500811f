"""The parity case table: estimators fitted on a named data set (tests/parity/conftest.py), exported, reloaded
and compared with :func:`harness.assert_parity` by test_cases.py.

Every type the scorer registers (``scorer.supported_types()``) needs at least one case here, and every
case names the document type it exports: test_cases.py fails (never skips) when a registered type has no
case or a case's type is not registered. Family files (test_<family>.py) hold the cases that need more
than this (unusual inputs, corrupted documents, error messages).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import xgboost
from cases_ensemble import ROWS as ENSEMBLE_ROWS
from harness import EXACT, TOL
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel, SelectKBest, VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Perceptron,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR, OneClassSVM
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)


@dataclass(frozen=True)
class Case:
    """``make()`` fitted on data set ``data`` exports a document of type ``type``."""

    id: str
    type: str
    make: Callable[[], Any]
    data: str
    tol: float = TOL
    unsupervised: bool = False  # fitted on X alone
    retype: str | None = None  # the document's type rewritten to this generic alias before loading
    extra: tuple[str, ...] = ()  # estimator methods outside scorer.METHODS compared too (score_samples...)
    test_rows_from_train: int = 0  # training rows appended to the test rows
    sklearn: tuple[int, int] = (1, 4)  # the oldest scikit-learn that can fit it (make test-compat)


def fit(case: Case, X: Any, y: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = case.make()
        return est.fit(X) if case.unsupervised else est.fit(X, y)


def _cases(type_name: str, rows: list[tuple[Any, ...]], **kw: Any) -> list[Case]:
    """Rows ``(id, make, data)``, or ``(id, make, data, overrides)`` for Case fields of that row alone."""
    return [Case(r[0], type_name, r[1], r[2], **{**kw, **(r[3] if len(r) > 3 else {})}) for r in rows]



LINEAR = [
    Case("linear_regression", "linear_regression", LinearRegression, "diabetes"),
    Case("linear_regression_multi", "linear_regression", LinearRegression, "regression_multi"),
    Case(
        "linear_regressor_generic",
        "linear_regression",
        LinearRegression,
        "diabetes",
        retype="linear_regressor",
    ),
    Case("ridge", "ridge", lambda: Ridge(alpha=0.5), "regression"),
    Case(
        "ridge_multi_no_intercept", "ridge", lambda: Ridge(alpha=2.0, fit_intercept=False), "regression_multi"
    ),
    Case("lasso", "lasso", lambda: Lasso(alpha=0.1), "diabetes"),
    Case(
        "elastic_net_multi", "elastic_net", lambda: ElasticNet(alpha=0.05, l1_ratio=0.3), "regression_multi"
    ),
    Case(
        "sgd_regressor",
        "pipeline",
        lambda: make_pipeline(StandardScaler(), SGDRegressor(random_state=0)),
        "diabetes",
    ),
    Case(
        "sgd_regressor_alone",
        "sgd_regressor",
        lambda: SGDRegressor(random_state=0, max_iter=2000),
        "regression",
    ),
    Case("linear_svr", "linear_svr", lambda: LinearSVR(C=0.5, random_state=0, max_iter=5000), "regression"),
    Case("logreg_binary", "logistic_regression", lambda: LogisticRegression(max_iter=500), "binary"),
    Case("logreg_multinomial", "logistic_regression", lambda: LogisticRegression(max_iter=1000), "iris"),
    Case("logreg_liblinear", "logistic_regression", lambda: LogisticRegression(solver="liblinear"), "binary"),
    Case(
        "logreg_elasticnet",
        "logistic_regression",
        lambda: LogisticRegression(solver="saga", l1_ratio=0.5, max_iter=300),
        "classification",
    ),
    Case(
        "linear_classifier_generic",
        "logistic_regression",
        lambda: LogisticRegression(max_iter=1000),
        "iris",
        retype="linear_classifier",
    ),
    Case("ridge_classifier_binary", "ridge_classifier", RidgeClassifier, "binary"),
    Case("ridge_classifier_multi", "ridge_classifier", lambda: RidgeClassifier(alpha=3.0), "classification"),
    Case("sgd_hinge", "sgd_classifier", lambda: SGDClassifier(random_state=0), "classification"),
    Case(
        "sgd_log_binary", "sgd_classifier", lambda: SGDClassifier(loss="log_loss", random_state=0), "binary"
    ),
    Case(
        "sgd_log_multi",
        "sgd_classifier",
        lambda: SGDClassifier(loss="log_loss", random_state=0),
        "classification",
    ),
    Case(
        "sgd_huber_binary",
        "sgd_classifier",
        lambda: SGDClassifier(loss="modified_huber", random_state=0),
        "binary",
    ),
    Case(
        "sgd_huber_multi",
        "sgd_classifier",
        lambda: SGDClassifier(loss="modified_huber", random_state=1),
        "classification",
    ),
    Case("linear_svc_binary", "linear_svc", lambda: LinearSVC(random_state=0), "binary"),
    Case("linear_svc_multi", "linear_svc", lambda: LinearSVC(random_state=0, C=0.3), "classification"),
    Case(
        "linear_svc_crammer_singer",
        "linear_svc",
        lambda: LinearSVC(multi_class="crammer_singer", random_state=0),
        "classification",
    ),
    Case("perceptron_binary", "perceptron", lambda: Perceptron(random_state=0), "binary"),
    Case("perceptron_multi", "perceptron", lambda: Perceptron(random_state=0), "classification"),
]

TREES = [
    *_cases(
        "decision_tree_classifier",
        [
            ("tree-iris", lambda: DecisionTreeClassifier(random_state=0), "iris"),
            ("tree-depth3-wine", lambda: DecisionTreeClassifier(max_depth=3, random_state=0), "wine"),
            ("extra-tree-cancer", lambda: ExtraTreeClassifier(random_state=0), "breast_cancer"),
            ("tree-nan", lambda: DecisionTreeClassifier(max_depth=6, random_state=0), "classification_nan"),
        ],
        tol=EXACT,
    ),
    *_cases(
        "random_forest_classifier",
        [
            ("forest-iris", lambda: RandomForestClassifier(n_estimators=6, random_state=0), "iris"),
            (
                "forest-cancer-balanced",
                lambda: RandomForestClassifier(
                    n_estimators=5, max_depth=5, class_weight="balanced", random_state=1
                ),
                "breast_cancer",
            ),
            (
                "forest-nan",
                lambda: RandomForestClassifier(n_estimators=5, random_state=0),
                "classification_nan",
            ),
        ],
        tol=EXACT,
    ),
    *_cases(
        "extra_trees_classifier",
        [
            ("extra-trees-wine", lambda: ExtraTreesClassifier(n_estimators=5, random_state=0), "wine"),
            (
                "extra-trees-nan",
                lambda: ExtraTreesClassifier(n_estimators=4, max_depth=4, random_state=0),
                "classification_nan",
                {"sklearn": (1, 6)},  # NaN in extra trees
            ),
        ],
        tol=EXACT,
    ),
    *_cases(
        "decision_tree_regressor",
        [
            ("tree-diabetes", lambda: DecisionTreeRegressor(random_state=0), "diabetes"),
            (
                "tree-multi",
                lambda: DecisionTreeRegressor(max_depth=5, random_state=0),
                "regression_multi_small",
            ),
            ("extra-tree", lambda: ExtraTreeRegressor(random_state=0), "diabetes"),
        ],
        tol=EXACT,
    ),
    *_cases(
        "random_forest_regressor",
        [
            ("forest-diabetes", lambda: RandomForestRegressor(n_estimators=5, random_state=0), "diabetes"),
            (
                "forest-multi",
                lambda: RandomForestRegressor(n_estimators=4, max_depth=6, random_state=0),
                "regression_multi_small",
            ),
            (
                "forest-poisson",
                lambda: RandomForestRegressor(n_estimators=3, criterion="poisson", random_state=0),
                "diabetes",
            ),
        ],
        tol=EXACT,
    ),
    Case(
        "extra-trees",
        "extra_trees_regressor",
        lambda: ExtraTreesRegressor(n_estimators=4, max_depth=8, random_state=0),
        "diabetes",
        tol=EXACT,
    ),
    *_cases(
        "gradient_boosting_classifier",
        [
            (
                "gb-binary",
                lambda: GradientBoostingClassifier(n_estimators=15, random_state=0),
                "breast_cancer",
            ),
            (
                "gb-multiclass",
                lambda: GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0),
                "iris",
            ),
            (
                "gb-exponential",
                lambda: GradientBoostingClassifier(n_estimators=10, loss="exponential", random_state=0),
                "breast_cancer",
            ),
            (
                "gb-init-zero",
                lambda: GradientBoostingClassifier(n_estimators=8, init="zero", random_state=0),
                "wine",
            ),
            (
                "gb-init-dummy",
                lambda: GradientBoostingClassifier(
                    n_estimators=8, init=DummyClassifier(strategy="prior"), subsample=0.7, random_state=0
                ),
                "iris",
            ),
            (
                "gb-deep",
                lambda: GradientBoostingClassifier(
                    n_estimators=5, max_depth=6, learning_rate=0.3, random_state=0
                ),
                "wine",
            ),
        ],
        tol=EXACT,
        test_rows_from_train=30,
    ),
    *[
        Case(
            f"gbr-{loss}",
            "gradient_boosting_regressor",
            lambda loss=loss: GradientBoostingRegressor(
                n_estimators=12, loss=loss, alpha=0.7, random_state=0
            ),
            "diabetes",
            tol=EXACT,
        )
        for loss in ("squared_error", "absolute_error", "huber", "quantile")
    ],
    *[
        Case(
            f"gbr-init-{name}",
            "gradient_boosting_regressor",
            lambda init=init: GradientBoostingRegressor(n_estimators=6, init=init, random_state=0),
            "diabetes",
            tol=EXACT,
        )
        for name, init in (("zero", "zero"), ("median", DummyRegressor(strategy="median")))
    ],
    *_cases(
        "isolation_forest",
        [
            ("iforest-default", lambda: IsolationForest(n_estimators=10, random_state=0), "breast_cancer"),
            (
                "iforest-features-subset",
                lambda: IsolationForest(n_estimators=8, max_features=0.5, random_state=0),
                "wine",
            ),
            (
                "iforest-contamination",
                lambda: IsolationForest(n_estimators=8, contamination=0.1, max_samples=64, random_state=0),
                "iris",
            ),
            (
                "iforest-bootstrap-nan",
                lambda: IsolationForest(n_estimators=6, bootstrap=True, max_features=3, random_state=1),
                "classification_nan",
                {"sklearn": (1, 6)},  # NaN in extra trees
            ),
            (
                "iforest-two-samples",
                lambda: IsolationForest(n_estimators=3, max_samples=2, random_state=0),
                "iris",
            ),
        ],
        tol=1e-12,
        unsupervised=True,
        extra=("score_samples",),
    ),  # 2 ** -x: numpy's power, scikit-learn's too
    Case(
        "hgb-classifier",
        "hist_gradient_boosting_classifier",
        lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
        "classification_nan",
        tol=EXACT,
    ),
    Case(
        "hgb-regressor",
        "hist_gradient_boosting_regressor",
        lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0),
        "diabetes",
        tol=EXACT,
    ),
]

OTHERS = [
    Case(
        "svc-probability-pipeline",
        "pipeline",
        lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
        "iris",
    ),
    Case("svc-alone", "svc", lambda: SVC(kernel="rbf", gamma=0.1), "iris"),
    Case("svr", "svr", lambda: SVR(C=10.0), "regression"),
    Case(
        "one_class_svm",
        "one_class_svm",
        lambda: OneClassSVM(nu=0.2, gamma=0.05),
        "iris",
        unsupervised=True,
        extra=("score_samples",),
    ),
    Case(
        "k_neighbors_classifier",
        "k_neighbors_classifier",
        lambda: KNeighborsClassifier(n_neighbors=5),
        "wine",
    ),
    Case(
        "k_neighbors_regressor",
        "k_neighbors_regressor",
        lambda: KNeighborsRegressor(n_neighbors=4, weights="distance"),
        "diabetes",
    ),
    # iris (one decimal, duplicated rows): many queries tie at the k-th distance; scikit-learn's search
    # decides which tied rows are kept (docs/format/neighbors.md, *Ties*)
    Case("k_neighbors_classifier_iris_ties_kd_tree", "k_neighbors_classifier",
         lambda: KNeighborsClassifier(n_neighbors=7, metric="chebyshev", algorithm="kd_tree"), "iris",
         test_rows_from_train=20),
    Case("k_neighbors_classifier_iris_ties_ball_tree", "k_neighbors_classifier",
         lambda: KNeighborsClassifier(n_neighbors=6, weights="distance", metric="manhattan",
                                      algorithm="ball_tree"), "iris", test_rows_from_train=20),
    Case("k_neighbors_classifier_iris_ties_brute", "k_neighbors_classifier",
         lambda: KNeighborsClassifier(n_neighbors=5, algorithm="brute"), "iris", test_rows_from_train=20),
    Case("k_neighbors_regressor_iris_ties_ball_tree", "k_neighbors_regressor",
         lambda: KNeighborsRegressor(n_neighbors=8, metric="chebyshev", algorithm="ball_tree"), "iris",
         test_rows_from_train=20),
    Case("gaussian_nb", "gaussian_nb", GaussianNB, "wine", extra=("predict_log_proba",)),
    Case(
        "multinomial_nb",
        "multinomial_nb",
        lambda: MultinomialNB(alpha=0.3),
        "wine",
        extra=("predict_log_proba",),
    ),
    Case(
        "complement_nb",
        "complement_nb",
        lambda: ComplementNB(norm=True),
        "wine",
        extra=("predict_log_proba",),
    ),
    Case(
        "bernoulli_nb",
        "bernoulli_nb",
        lambda: BernoulliNB(binarize=0.0),
        "binary",
        extra=("predict_log_proba",),
    ),
    Case(
        "mlp_classifier-pipeline",
        "pipeline",
        lambda: make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)
        ),
        "iris",
    ),
    Case(
        "mlp_classifier-alone",
        "mlp_classifier",
        lambda: MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", max_iter=200, random_state=0),
        "binary",
    ),
    Case(
        "mlp_regressor",
        "mlp_regressor",
        lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0),
        "regression",
    ),
    Case(
        "k_means",
        "k_means",
        lambda: KMeans(n_clusters=4, n_init=2, random_state=1),
        "wine",
        unsupervised=True,
    ),
    Case("standard_scaler", "standard_scaler", StandardScaler, "wine", unsupervised=True),
    Case(
        "min_max_scaler",
        "min_max_scaler",
        lambda: MinMaxScaler(feature_range=(-1, 2)),
        "wine",
        unsupervised=True,
    ),
    Case("max_abs_scaler", "max_abs_scaler", MaxAbsScaler, "wine", unsupervised=True),
    Case("robust_scaler", "robust_scaler", RobustScaler, "wine", unsupervised=True),
    Case("normalizer", "normalizer", Normalizer, "wine", unsupervised=True),
    Case("binarizer", "binarizer", lambda: Binarizer(threshold=2.0), "wine", unsupervised=True),
    Case("pca", "pca", lambda: PCA(n_components=3, whiten=True), "wine", unsupervised=True),
    Case(
        "polynomial_features",
        "polynomial_features",
        lambda: PolynomialFeatures(degree=2),
        "iris",
        unsupervised=True,
    ),
    Case(
        "simple_imputer",
        "simple_imputer",
        lambda: SimpleImputer(strategy="median"),
        "classification_nan",
        unsupervised=True,
    ),
    Case(
        "one_hot_encoder",
        "one_hot_encoder",
        lambda: OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        "mixed_categories",
        unsupervised=True,
    ),
    Case(
        "ordinal_encoder",
        "ordinal_encoder",
        lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        "mixed_categories",
        unsupervised=True,
    ),
    Case(
        "pipeline",
        "pipeline",
        lambda: Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
        "wine",
    ),
    Case(
        "column_transformer",
        "column_transformer",
        lambda: ColumnTransformer(
            [
                ("num", StandardScaler(), ["alcohol", "magnesium"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["hue_band"]),
            ]
        ),
        "mixed_complete",
        unsupervised=True,
    ),
]

ENSEMBLE = [Case(i, t, m, d) if tol is None else Case(i, t, m, d, tol=tol)
            for i, t, m, d, tol in ENSEMBLE_ROWS]

# More transformers (docs/format/transforms.md); TargetEncoder is written with existing types.
TRANSFORMS = [
    Case("function-log1p", "function_transformer", lambda: FunctionTransformer(np.log1p), "wine",
         unsupervised=True),
    Case("function-clip-nan", "function_transformer",
         lambda: FunctionTransformer(np.clip, kw_args={"a_min": -1.0, "a_max": 1.5}), "classification_nan",
         unsupervised=True),
    Case("variance-threshold", "select_columns", lambda: VarianceThreshold(1.0), "classification_nan",
         unsupervised=True),
    Case("select-k-best", "select_columns", lambda: SelectKBest(k=5), "wine"),
    Case("select-from-model", "select_columns", lambda: SelectFromModel(Lasso(alpha=1.0)), "diabetes"),
    Case("power-yeo-johnson-nan", "power_transformer", PowerTransformer, "classification_nan",
         unsupervised=True),
    Case("power-box-cox", "power_transformer", lambda: PowerTransformer(method="box-cox"), "wine",
         unsupervised=True),
    *[Case(f"kbins-{s}-{e}", "kbins_discretizer", lambda s=s, e=e: KBinsDiscretizer(
        n_bins=5, strategy=s, encode=e), "wine", unsupervised=True)
      for s, e in (("uniform", "ordinal"), ("quantile", "onehot"), ("kmeans", "onehot-dense"))],
    Case("quantile-uniform-nan", "quantile_transformer", lambda: QuantileTransformer(n_quantiles=60),
         "classification_nan", unsupervised=True),
    Case("target-encoder-multiclass", "column_transformer", lambda: TargetEncoder(),
         "mixed_categories"),
    Case("spline-cubic-linear", "spline_transformer",
         lambda: SplineTransformer(n_knots=4, extrapolation="linear"), "diabetes", unsupervised=True),
    Case("spline-periodic", "spline_transformer",
         lambda: SplineTransformer(degree=2, extrapolation="periodic", include_bias=False), "iris",
         unsupervised=True),
    Case("lda-svd", "linear_discriminant_analysis", LinearDiscriminantAnalysis, "wine"),
    Case("lda-eigen-binary", "linear_discriminant_analysis",
         lambda: LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.1), "breast_cancer"),
    Case("qda", "quadratic_discriminant_analysis", lambda: QuadraticDiscriminantAnalysis(reg_param=0.01),
         "wine"),
    Case("qda-binary", "quadratic_discriminant_analysis",
         lambda: QuadraticDiscriminantAnalysis(reg_param=0.05), "binary"),
]

# XGBoost / LightGBM (docs/format/xgboost.md, lightgbm.md): native Boosters in test_boosting_libraries.py
XGB_TOL = 1e-6  # XGBoost accumulates and transforms in float32
BOOSTING_LIBRARIES = [
    Case("xgb-classifier-nan", "xgboost_classifier",
         lambda: xgboost.XGBClassifier(n_estimators=20, max_depth=4), "classification_nan", tol=XGB_TOL),
    Case("xgb-regressor", "xgboost_booster", lambda: xgboost.XGBRegressor(n_estimators=20), "diabetes",
         tol=XGB_TOL),
    Case("lgbm-classifier-nan", "lightgbm_classifier",
         lambda: lightgbm.LGBMClassifier(n_estimators=20, verbose=-1), "classification_nan", tol=EXACT),
    Case("lgbm-regressor", "lightgbm_booster",
         lambda: lightgbm.LGBMRegressor(n_estimators=20, verbose=-1), "diabetes", tol=EXACT),
]


CASES: list[Case] = LINEAR + TREES + OTHERS + ENSEMBLE + TRANSFORMS + BOOSTING_LIBRARIES
