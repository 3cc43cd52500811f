"""Model implementations, one module per family. Importing a module registers its types.

Families are imported on first use: loading a forest imports only ``trees``, which keeps the cold start
of a Lambda or a device app short. :func:`import_all` fills the whole registry (for listings).
"""

from __future__ import annotations

import importlib

FAMILIES = ("linear", "preprocessing", "compose", "trees", "hist_gradient_boosting", "kernel", "neighbors",
            "naive_bayes", "neural_network", "cluster", "ensemble", "calibration", "target", "transforms",
            "discriminant_analysis", "xgboost", "lightgbm")

# Document ``type`` -> the family module that registers it (a unit test keeps this equal to REGISTRY).
TYPE_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("linear_regressor", "linear_regression", "ridge", "lasso", "elastic_net",
                     "sgd_regressor", "linear_svr", "linear_classifier", "logistic_regression",
                     "ridge_classifier", "sgd_classifier", "linear_svc", "perceptron"), "linear"),
    **dict.fromkeys(("standard_scaler", "min_max_scaler", "max_abs_scaler", "robust_scaler", "normalizer",
                     "binarizer", "pca", "polynomial_features", "simple_imputer", "one_hot_encoder",
                     "ordinal_encoder"), "preprocessing"),
    **dict.fromkeys(("pipeline", "column_transformer"), "compose"),
    **dict.fromkeys(("decision_tree_classifier", "decision_tree_regressor", "random_forest_classifier",
                     "extra_trees_classifier", "random_forest_regressor", "extra_trees_regressor",
                     "gradient_boosting_regressor", "gradient_boosting_classifier", "isolation_forest"),
                    "trees"),
    **dict.fromkeys(("hist_gradient_boosting_regressor", "hist_gradient_boosting_classifier"),
                    "hist_gradient_boosting"),
    **dict.fromkeys(("svc", "svr", "one_class_svm"), "kernel"),
    **dict.fromkeys(("k_neighbors_classifier", "k_neighbors_regressor"), "neighbors"),
    **dict.fromkeys(("gaussian_nb", "multinomial_nb", "complement_nb", "bernoulli_nb"), "naive_bayes"),
    **dict.fromkeys(("mlp_classifier", "mlp_regressor"), "neural_network"),
    "k_means": "cluster",
    **dict.fromkeys(("voting_classifier", "voting_regressor", "stacking_classifier", "stacking_regressor",
                     "bagging_classifier", "bagging_regressor", "ada_boost_classifier",
                     "ada_boost_regressor"),
                    "ensemble"),
    **dict.fromkeys(("isotonic_regression", "calibrated_classifier"), "calibration"),
    "transformed_target_regressor": "target",
    **dict.fromkeys(("function_transformer", "select_columns", "power_transformer", "kbins_discretizer",
                     "quantile_transformer", "spline_transformer"), "transforms"),
    **dict.fromkeys(("linear_discriminant_analysis", "quadratic_discriminant_analysis"),
                    "discriminant_analysis"),
    **dict.fromkeys(("xgboost_classifier", "xgboost_booster"), "xgboost"),
    **dict.fromkeys(("lightgbm_classifier", "lightgbm_booster"), "lightgbm"),
}


def import_family_of(type_name: str) -> bool:
    """Import the module implementing ``type_name``; False when no family declares it."""
    family = TYPE_FAMILIES.get(type_name)
    if family is None:
        return False
    importlib.import_module(f"{__name__}.{family}")
    return True


def import_all() -> None:
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
