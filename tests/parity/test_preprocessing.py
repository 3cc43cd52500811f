"""Parity of the transformers (scalers, imputer, encoders, polynomial features, PCA) with scikit-learn."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import SKLEARN, TOL
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

import scorer
from modelsync.export import UnsupportedEstimator, export_model


def dense(a: Any) -> np.ndarray:
    return a.toarray() if hasattr(a, "toarray") else np.asarray(a)


def assert_same(got: np.ndarray, want: Any) -> None:
    want = dense(want)
    assert got.shape == want.shape
    if want.dtype == object or got.dtype == object:
        g, w = got.tolist(), want.tolist()
        for gr, wr in zip(g, w, strict=True):
            for a, b in zip(gr, wr, strict=True):
                if isinstance(a, str) or isinstance(b, str):
                    assert a == b
                else:
                    assert (a is None and b is None) or np.isclose(float(a), float(b), rtol=0, atol=TOL,
                                                                    equal_nan=True), (a, b)
        return
    np.testing.assert_allclose(got, want.astype(np.float64), rtol=0, atol=TOL)


def numeric_with_gaps(datasets: Any) -> tuple[np.ndarray, np.ndarray]:
    """Wine features with NaN injected (train and test), plus one constant column."""
    d = datasets("wine")
    rng = np.random.RandomState(0)
    Xtr, Xte = d.X_train[:, :6].copy(), d.X_test[:, :6].copy()
    Xtr[:, 5] = 3.0
    Xte[:, 5] = np.linspace(2, 4, len(Xte))
    for X in (Xtr, Xte):
        X[rng.rand(*X.shape) < 0.1] = np.nan
    return Xtr, Xte


SCALERS = [
    ("standard", lambda: StandardScaler()),
    ("standard_no_mean", lambda: StandardScaler(with_mean=False)),
    ("standard_no_std", lambda: StandardScaler(with_std=False)),
    ("min_max", lambda: MinMaxScaler(feature_range=(-2, 3))),
    ("min_max_clip", lambda: MinMaxScaler(clip=True)),
    ("max_abs", lambda: MaxAbsScaler()),
    *([("max_abs_clip", lambda: MaxAbsScaler(clip=True))] if SKLEARN >= (1, 9) else []),
    ("robust", lambda: RobustScaler(quantile_range=(10.0, 90.0))),
    ("robust_no_center", lambda: RobustScaler(with_centering=False)),
]


@pytest.mark.parametrize("compact", [True, False], ids=["base64", "lists"])
@pytest.mark.parametrize(("label", "make"), SCALERS, ids=[s[0] for s in SCALERS])
def test_scalers_pass_nan_through(label: str, make: Any, compact: bool, datasets: Any,
                                  roundtrip: Any) -> None:
    Xtr, Xte = numeric_with_gaps(datasets)
    est = make().fit(Xtr)
    Xs = Xte * 1.5  # outside the fitted range: clipping matters
    complete = Xs[~np.isnan(Xs).any(axis=1)]  # test vectors must be finite; NaN rows are compared below
    _, model = roundtrip(est, complete, compact=compact)
    assert np.isnan(Xs).any()
    assert_same(model.transform(Xs), est.transform(Xs))
    if isinstance(est, StandardScaler) and est.with_std:
        assert est.scale_[5] == 1.0  # zero-variance column


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalizer(norm: str, datasets: Any, roundtrip: Any) -> None:
    d = datasets("diabetes")
    X = d.X_test.copy()
    X[3] = 0.0  # zero row stays zero
    X[4] = 1e-17
    est = Normalizer(norm=norm).fit(d.X_train)
    _, model = roundtrip(est, X)
    assert_same(model.transform(X), est.transform(X))


@pytest.mark.parametrize("threshold", [0.0, 0.02, -0.01])
def test_binarizer(threshold: float, datasets: Any, roundtrip: Any) -> None:
    d = datasets("diabetes")
    est = Binarizer(threshold=threshold).fit(d.X_train)
    _, model = roundtrip(est, d.X_test)
    assert_same(model.transform(d.X_test), est.transform(d.X_test))


@pytest.mark.parametrize(("kwargs", "compact"), [
    ({"degree": 2}, True),
    ({"degree": 3}, False),
    ({"degree": 3, "interaction_only": True}, True),
    ({"degree": 2, "include_bias": False}, True),
    ({"degree": (2, 3)}, True),
    ({"degree": (2, 3), "include_bias": False, "interaction_only": True}, True),
    ({"degree": (0, 2)}, True),
    ({"degree": 4, "order": "F"}, True),
])
def test_polynomial_features(kwargs: dict[str, Any], compact: bool, datasets: Any, roundtrip: Any) -> None:
    d = datasets("iris")
    est = PolynomialFeatures(**kwargs).fit(d.X_train)
    doc, model = roundtrip(est, d.X_test, compact=compact)
    want = est.transform(d.X_test)
    got = model.transform(d.X_test)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # same products in the same order: bitwise
    assert doc["estimator"]["n_output_features"] == est.n_output_features_


@pytest.mark.parametrize("kwargs", [{"n_components": 3}, {"n_components": 4, "whiten": True},
                                    {"n_components": 0.95, "svd_solver": "full"}])
def test_pca(kwargs: dict[str, Any], datasets: Any, roundtrip: Any) -> None:
    d = datasets("wine")
    est = PCA(**kwargs).fit(d.X_train)
    _, model = roundtrip(est, d.X_test)
    assert_same(model.transform(d.X_test), est.transform(d.X_test))


# -- imputer ------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("keep_empty", [False, True])
@pytest.mark.parametrize("indicator", [False, True])
def test_simple_imputer_numeric(strategy: str, keep_empty: bool, indicator: bool, datasets: Any,
                                roundtrip: Any) -> None:
    Xtr, Xte = numeric_with_gaps(datasets)
    Xtr = np.round(Xtr, 0)  # so that most_frequent has real modes
    Xtr[:, 2] = np.nan  # a column with no observed value: dropped unless keep_empty_features
    Xtr[:, 4][~np.isnan(Xtr[:, 4])] = 1.0
    Xte[:, 4] = 1.0  # no missing value at fit time for the indicator... except column 4 has none at test
    est = SimpleImputer(strategy=strategy, fill_value=-7.5 if strategy == "constant" else None,
                        keep_empty_features=keep_empty, add_indicator=indicator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(Xtr)
        want = est.transform(Xte)
    doc, model = roundtrip(est, Xte)
    assert_same(model.transform(Xte), want)
    stats = doc["estimator"]["statistics"]
    # an all-NaN column is dropped unless keep_empty_features (scikit-learn < 1.6 keeps it for constant)
    assert (stats[2] is None) == (not keep_empty and (strategy != "constant" or SKLEARN >= (1, 6)))


def test_simple_imputer_custom_missing_value(datasets: Any, roundtrip: Any) -> None:
    d = datasets("iris")
    Xtr, Xte = np.round(d.X_train), np.round(d.X_test)
    est = SimpleImputer(missing_values=1.0, strategy="median", add_indicator=True).fit(Xtr)
    _, model = roundtrip(est, Xte)
    assert_same(model.transform(Xte), est.transform(Xte))
    bad = Xte[:3].tolist()
    bad[1][2] = None
    with pytest.raises(scorer.InvalidInput) as info:
        model.transform(bad)  # scikit-learn rejects NaN when missing_values is a number
    assert info.value.row == 1


def string_frame(n: int, seed: int, missing: Any) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    colour = rng.choice(["red", "green", "blue", "teal"], n, p=[0.4, 0.3, 0.25, 0.05]).astype(object)
    size = rng.choice(["S", "M", "L"], n).astype(object)
    colour[rng.rand(n) < 0.15] = missing
    size[rng.rand(n) < 0.1] = missing
    frame = pd.DataFrame({"colour": colour, "size": size}, dtype=object)
    return frame


@pytest.mark.parametrize("missing", [np.nan, None], ids=["nan", "none"])
@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_simple_imputer_strings(missing: Any, strategy: str, roundtrip: Any) -> None:
    train, test = string_frame(120, 0, missing), string_frame(30, 1, missing)
    est = SimpleImputer(missing_values=missing, strategy=strategy, add_indicator=True).fit(train)
    # Object output (strings) cannot be test vectors compared as numbers: validate separately.
    doc, model = roundtrip(est, test, validate=False)
    assert doc["estimator"]["dtype"] == "object"
    assert_same(model.transform(test), est.transform(test))


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_simple_imputer_string_all_missing_column(roundtrip: Any) -> None:
    train, test = string_frame(60, 0, np.nan), string_frame(10, 1, np.nan)
    train["size"] = np.nan
    train = train.astype(object)
    for keep in (False, True):
        est = SimpleImputer(strategy="most_frequent", keep_empty_features=keep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.fit(train)
            want = est.transform(test)
        _, model = roundtrip(est, test, validate=False)
        assert_same(model.transform(test), want)


# -- encoders -----------------------------------------------------------------------------------------

def mixed_frames(datasets: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = datasets("mixed")
    cols = ["ash_level", "hue_band", "proline_class"]
    return d.X_train[cols], d.X_test[cols]


INFREQ = "infrequent_if_exist"
OHE = [
    ("default_dense", {"sparse_output": False, "handle_unknown": "ignore"}),
    ("sparse_output", {"handle_unknown": "ignore"}),
    ("drop_first", {"sparse_output": False, "drop": "first", "handle_unknown": "ignore"}),
    ("drop_if_binary", {"sparse_output": False, "drop": "if_binary"}),
    ("drop_explicit", {"sparse_output": False, "drop": ["mid", "pale", "b"]}),
    ("min_frequency", {"sparse_output": False, "min_frequency": 30, "handle_unknown": INFREQ}),
    ("max_categories", {"sparse_output": False, "max_categories": 3, "handle_unknown": INFREQ}),
    ("infrequent_ignore", {"sparse_output": False, "max_categories": 2, "handle_unknown": "ignore"}),
    ("infrequent_drop_first", {"sparse_output": False, "max_categories": 3, "drop": "first",
                               "handle_unknown": INFREQ}),
    *([("warn", {"sparse_output": False, "max_categories": 3, "handle_unknown": "warn"})]
      if SKLEARN >= (1, 6) else []),
    ("all_infrequent", {"sparse_output": False, "max_categories": 1, "handle_unknown": INFREQ}),
]


@pytest.mark.parametrize("compact", [True, False], ids=["base64", "lists"])
@pytest.mark.parametrize(("label", "kwargs"), OHE, ids=[o[0] for o in OHE])
def test_one_hot_encoder_strings(label: str, kwargs: dict[str, Any], compact: bool, datasets: Any,
                                 roundtrip: Any) -> None:
    train, test = mixed_frames(datasets)
    est = OneHotEncoder(**kwargs).fit(train)
    test = test.copy()
    if kwargs.get("handle_unknown", "error") != "error":
        test.loc[[0, 5], "hue_band"] = "violet"  # unknown at scoring time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = est.transform(test)
        _, model = roundtrip(est, test, compact=compact)
    assert_same(model.transform(test), want)


def test_one_hot_encoder_numeric_categories_with_nan(datasets: Any, roundtrip: Any) -> None:
    d = datasets("iris")
    Xtr, Xte = np.round(d.X_train[:, :2]), np.round(d.X_test[:, :2])
    Xtr[::7, 0] = np.nan
    Xte[::5, 0] = np.nan
    Xte[1, 1] = 99.0  # unknown
    est = OneHotEncoder(sparse_output=False, handle_unknown="ignore").fit(Xtr)
    doc, model = roundtrip(est, Xte)
    assert None in doc["estimator"]["categories"][0]
    assert_same(model.transform(Xte), est.transform(Xte))


def test_one_hot_encoder_none_category(roundtrip: Any) -> None:
    train, test = string_frame(100, 0, None), string_frame(20, 1, None)
    est = OneHotEncoder(sparse_output=False).fit(train)
    assert est.categories_[0][-1] is None
    _, model = roundtrip(est, test)
    assert_same(model.transform(test), est.transform(test))


def test_one_hot_encoder_unknown_error_names_row_feature_value(datasets: Any, roundtrip: Any) -> None:
    train, test = mixed_frames(datasets)
    train = train.dropna()
    est = OneHotEncoder(sparse_output=False).fit(train)
    _, model = roundtrip(est, test.dropna().reset_index(drop=True))
    bad = test.dropna().reset_index(drop=True).head(4).copy()
    bad.loc[2, "hue_band"] = "violet"
    with pytest.raises(ValueError, match="violet"):
        est.transform(bad)
    with pytest.raises(scorer.InvalidInput) as info:
        model.transform(bad)
    assert info.value.row == 2 and info.value.feature == "hue_band"
    assert "'violet'" in str(info.value) and "'hue_band'" in str(info.value) and "row 2" in str(info.value)
    bad.loc[1, "ash_level"] = None  # a missing value the encoder never saw is unknown too
    with pytest.raises(scorer.InvalidInput, match=r"row 1, feature 'ash_level': unknown category a missing"):
        model.transform(bad)


@pytest.mark.parametrize("kwargs", [
    {},
    {"handle_unknown": "use_encoded_value", "unknown_value": -1},
    {"handle_unknown": "use_encoded_value", "unknown_value": np.nan, "encoded_missing_value": -2},
    {"handle_unknown": "use_encoded_value", "unknown_value": 99, "max_categories": 3},
    {"min_frequency": 20},
    {"dtype": np.int64, "encoded_missing_value": -5},
])
def test_ordinal_encoder(kwargs: dict[str, Any], datasets: Any, roundtrip: Any) -> None:
    train, test = mixed_frames(datasets)
    est = OrdinalEncoder(**kwargs).fit(train)
    test = test.copy()
    if kwargs.get("handle_unknown") == "use_encoded_value":
        test.loc[[1, 3], "ash_level"] = "extreme"
    # NaN outputs (encoded_missing_value) cannot be test vectors: export with complete rows
    _, model = roundtrip(est, test.drop(index=[1, 3]).dropna())
    assert_same(model.transform(test), est.transform(test))


def test_encoder_rejects_none_and_nan_in_one_column() -> None:
    X = np.array([["x"], [None], [np.nan], ["y"]], dtype=object)
    est = OneHotEncoder().fit(X)
    with pytest.raises(UnsupportedEstimator, match="both None and NaN"):
        export_model(est, X, name="x", feature_names=["a"])


def test_corrupted_encoder_points_at_the_field(datasets: Any) -> None:
    train, test = mixed_frames(datasets)
    est = OneHotEncoder(sparse_output=False, handle_unknown="ignore").fit(train)
    doc = export_model(est, test, name="x", compact=False)
    doc["estimator"]["columns"][1] = [0, 1, 2, 9, 0]
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    assert info.value.problems[0][0] == "/estimator/columns/1"
    doc = export_model(est, test, name="x", compact=False)
    doc["estimator"]["categories"][2] = ["a", "a"]
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator/categories/2/1"
    scaler = StandardScaler().fit(datasets("iris").X_train)
    doc = export_model(scaler, datasets("iris").X_test, name="s", compact=False, feature_names=list("abcd"))
    doc["estimator"]["scale"] = [1.0, 0.0, 1.0, 1.0]
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator/scale"
    doc["estimator"]["scale"] = [1.0, 2.0, 1.0]
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator/scale"


def test_transform_rejects_non_numeric_and_infinite_input(datasets: Any, roundtrip: Any) -> None:
    d = datasets("iris")
    est = StandardScaler().fit(d.X_train)
    _, model = roundtrip(est, d.X_test)
    rows = d.X_test[:3].tolist()
    rows[2][1] = "wide"
    with pytest.raises(scorer.InvalidInput) as info:
        model.transform(rows)
    assert info.value.row == 2 and info.value.feature == "x1"
    X = d.X_test[:3].copy()
    X[1, 3] = np.inf
    with pytest.raises(scorer.InvalidInput) as info:
        model.transform(X)
    assert info.value.row == 1
