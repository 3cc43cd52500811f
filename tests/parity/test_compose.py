"""Pipelines and ColumnTransformers, end to end with string categories and string class labels."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import TOL, assert_parity
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.svm import LinearSVC

import scorer
from modelsync.export import UnsupportedEstimator, export_model

CAT = ["ash_level", "hue_band", "proline_class"]
NUM = ["alcohol", "malic_acid", "magnesium", "color_intensity"]


def check(est: Any, model: Any, X: Any) -> None:
    assert_parity(est, X, model)


def mixed_pipeline(final: Any = None, **ohe: Any) -> Pipeline:
    ohe = {"handle_unknown": "ignore", **ohe}
    pre = ColumnTransformer([
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(**ohe)), CAT),
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUM),
    ])
    clf = final if final is not None else LogisticRegression(max_iter=2000)
    return Pipeline([("pre", pre), ("clf", clf)])


@pytest.mark.parametrize("compact", [True, False], ids=["base64", "lists"])
def test_string_categories_and_labels_end_to_end(compact: bool, datasets: Any) -> None:
    """DataFrame with strings -> Pipeline(ColumnTransformer(OHE, scaler), LogisticRegression), string
    class labels: export, JSON text, reload, identical labels and probabilities."""
    d = datasets("mixed")
    est = mixed_pipeline().fit(d.X_train, d.y_train)
    doc = export_model(est, d.X_test, name="wine-mixed", compact=compact)
    text = json.dumps(doc)
    model = scorer.load_model(text)
    scorer.validate_model(text)
    assert model.classes is not None
    assert model.classes.tolist() == est.classes_.tolist() == ["barbera", "barolo", "grignolino"]
    assert {f["name"]: f["type"] for f in doc["input"]["features"]}["hue_band"] == "categorical"
    assert model.predict(d.X_test).tolist() == est.predict(d.X_test).tolist()
    check(est, model, d.X_test)
    # the same rows as records (dicts), as a JSON client would send them
    records = json.loads(d.X_test.to_json(orient="records"))
    np.testing.assert_allclose(model.predict_proba(records), est.predict_proba(d.X_test), rtol=0, atol=TOL)


def test_unknown_category_ignored_or_named(datasets: Any) -> None:
    d = datasets("mixed")
    test = d.X_test.copy()
    test.loc[[2, 7], "hue_band"] = "violet"
    est = mixed_pipeline().fit(d.X_train, d.y_train)
    _, model = export_and_load(est, d.X_test)
    check(est, model, test)  # ignore -> all zeros, as scikit-learn

    strict = mixed_pipeline(handle_unknown="error").fit(d.X_train, d.y_train)
    _, model = export_and_load(strict, d.X_test)
    with pytest.raises(ValueError):
        strict.predict(test)
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(test)
    assert info.value.row == 2 and info.value.feature == "hue_band" and "'violet'" in str(info.value)


def export_and_load(est: Any, X: Any, **kw: Any) -> tuple[dict[str, Any], Any]:
    doc = export_model(est, X, name="m", **kw)
    return doc, scorer.load_model(json.dumps(doc))


@pytest.mark.parametrize("final", [
    lambda: SGDClassifier(loss="modified_huber", random_state=0),
    lambda: LinearSVC(random_state=0),
    lambda: LogisticRegression(max_iter=2000, C=0.1),
])
def test_pipeline_delegates_every_method(final: Any, datasets: Any, roundtrip: Any) -> None:
    d = datasets("mixed")
    est = mixed_pipeline(final(), sparse_output=False, drop="if_binary").fit(d.X_train, d.y_train)
    _, model = roundtrip(est, d.X_test)
    check(est, model, d.X_test)


def numeric_frame(datasets: Any) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    d = datasets("diabetes")
    cols = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    return (pd.DataFrame(d.X_train, columns=cols), pd.DataFrame(d.X_test, columns=cols), d.y_train, d.y_test)


@pytest.mark.parametrize("selector", ["names", "indices", "negative_indices", "mask", "slice", "callable",
                                      "string_slice"])
@pytest.mark.parametrize("remainder", ["drop", "passthrough", "estimator"])
def test_column_selections_and_remainder(selector: str, remainder: str, datasets: Any,
                                         roundtrip: Any) -> None:
    Xtr, Xte, ytr, _ = numeric_frame(datasets)
    first, second = {
        "names": (["bmi", "s5"], ["age", "bp"]),
        "indices": ([2, 8], [0, 3]),
        "negative_indices": ([-8, -2], [0, 3]),
        "mask": ([c in ("bmi", "s5") for c in Xtr.columns], [c in ("age", "bp") for c in Xtr.columns]),
        "slice": (slice(2, 4), slice(6, 8)),
        "string_slice": (slice("bmi", "bp"), slice("s3", "s4")),
        "callable": (lambda X: ["s5", "bmi"], make_column_selector(pattern="^s[12]$")),
    }[selector]
    rem: Any = MinMaxScaler() if remainder == "estimator" else remainder
    ct = ColumnTransformer([("poly", PolynomialFeatures(2), first), ("scale", StandardScaler(), second)],
                           remainder=rem)
    est = make_pipeline(ct, Ridge(alpha=0.3)).fit(Xtr, ytr)
    _, model = roundtrip(est, Xte)
    check(est, model, Xte)
    _, tmodel = roundtrip(ct, Xte)
    check(ct, tmodel, Xte)


def test_column_transformer_weights_drop_passthrough_and_empty(datasets: Any, roundtrip: Any) -> None:
    Xtr, Xte, _, _ = numeric_frame(datasets)
    ct = ColumnTransformer([
        ("a", StandardScaler(), ["bmi", "bp"]),
        ("gone", "drop", ["s1"]),
        ("empty", StandardScaler(), []),
        ("keep", "passthrough", ["s3", "age"]),
        ("b", PCA(n_components=2), ["s4", "s5", "s6"]),
    ], remainder="passthrough", transformer_weights={"a": 2.0, "b": 0.5, "keep": 3.0})
    ct.fit(Xtr)
    doc, model = roundtrip(ct, Xte)
    names = [t["name"] for t in doc["estimator"]["transformers"]]
    assert names == ["a", "keep", "b", "remainder"]
    check(ct, model, Xte)
    all_dropped = ColumnTransformer([("x", "drop", ["age"])], remainder="drop").fit(Xtr)
    _, model = roundtrip(all_dropped, Xte, validate=False)  # no output columns: nothing to test-vector
    assert model.transform(Xte).shape == all_dropped.transform(Xte).shape == (len(Xte), 0)


def test_column_transformer_on_arrays_and_sparse_stacking(datasets: Any, roundtrip: Any) -> None:
    d = datasets("mixed")
    X = d.X_train[CAT].fillna("none").to_numpy(dtype=object)
    Xt = d.X_test[CAT].fillna("none").to_numpy(dtype=object)
    # default sparse OneHotEncoder + sparse_threshold: scikit-learn stacks sparse, the scorer dense
    ct = ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore"), [0, 2]),
                            ("ord", OrdinalEncoder(), [1])], sparse_threshold=0.9)
    est = make_pipeline(ct, LogisticRegression(max_iter=1000)).fit(X, d.y_train)
    assert ct.sparse_output_
    _, model = roundtrip(est, Xt, feature_names=["ash", "hue", "proline"])
    check(est, model, Xt)


def test_passthrough_strings_stay_strings(datasets: Any, roundtrip: Any) -> None:
    d = datasets("mixed")
    ct = ColumnTransformer([("num", StandardScaler(), ["alcohol"])], remainder="passthrough")
    frame = d.X_train[["alcohol", "proline_class"]]
    ct.fit(frame)
    test = d.X_test[["alcohol", "proline_class"]]
    _, model = roundtrip(ct, test, validate=False)  # string outputs are not numeric test vectors
    got, want = model.transform(test), ct.transform(test)
    assert got[:, 1].tolist() == want[:, 1].tolist()
    np.testing.assert_allclose(got[:, 0].astype(float), want[:, 0].astype(float), rtol=0, atol=TOL)


def test_pipeline_passthrough_steps(datasets: Any, roundtrip: Any) -> None:
    d = datasets("wine")
    est = Pipeline([("a", "passthrough"), ("scale", StandardScaler()), ("b", None), ("pca", PCA(3)),
                    ("clf", LogisticRegression(max_iter=1000))]).fit(d.X_train, d.y_train)
    doc, model = roundtrip(est, d.X_test)
    assert doc["estimator"]["steps"][0]["estimator"] == "passthrough"
    assert model.estimator.n_features_in == 13
    check(est, model, d.X_test)
    transformer = Pipeline([("scale", StandardScaler()), ("last", "passthrough")]).fit(d.X_train)
    _, tmodel = roundtrip(transformer, d.X_test)
    assert tmodel.methods == ["transform"]
    check(transformer, tmodel, d.X_test)
    with pytest.raises(scorer.MethodNotSupported):
        tmodel.predict(d.X_test)


def test_nested_pipelines_and_column_transformers(datasets: Any, roundtrip: Any) -> None:
    d = datasets("mixed")
    inner = ColumnTransformer([("o", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                    encoded_missing_value=-2), ["ash_level", "hue_band"])],
                              remainder=OneHotEncoder(sparse_output=False))
    outer = ColumnTransformer([
        ("c", inner, CAT),
        ("n", make_pipeline(SimpleImputer(add_indicator=True), PolynomialFeatures(2, interaction_only=True),
                            StandardScaler()), NUM),
    ])
    est = make_pipeline(outer, LogisticRegression(max_iter=3000)).fit(d.X_train, d.y_train)
    _, model = roundtrip(est, d.X_test)
    check(est, model, d.X_test)


# -- unhappy paths ------------------------------------------------------------------------------------

def test_corrupted_composites_point_at_the_field(datasets: Any) -> None:
    d = datasets("mixed")
    est = mixed_pipeline().fit(d.X_train, d.y_train)
    base = export_model(est, d.X_test, name="m", compact=False)

    def load(mutate: Any) -> str:
        doc = json.loads(json.dumps(base))
        mutate(doc["estimator"])
        with pytest.raises(scorer.InvalidModel) as info:
            scorer.load_model(doc)
        return info.value.problems[0][0]

    ct = "/estimator/steps/0/estimator"
    assert load(lambda e: e["steps"][0]["estimator"]["transformers"][1].update(columns=[0, 1, 3, 7])) == \
        f"{ct}/transformers/1/columns"
    assert load(lambda e: e["steps"][0]["estimator"]["transformers"][1].update(columns=[0, 1])) == \
        f"{ct}/transformers/1/columns"
    def narrow(e: dict[str, Any]) -> None:
        clf = e["steps"][1]["estimator"]
        clf.pop("feature_names", None)
        clf.update(n_features_in=5, coef=[r[:5] for r in clf["coef"]])

    assert load(narrow) == "/estimator/steps/1/estimator/n_features_in"
    assert load(lambda e: e["steps"].reverse()) == "/estimator/steps/0/estimator/type"
    assert load(lambda e: e["steps"][1].update(name="pre")) == "/estimator/steps/1/name"
    assert load(lambda e: e["steps"][0].update(estimator="identity")) == "/estimator/steps/0/estimator"
    assert load(lambda e: e.update(steps=[])) == "/estimator/steps"
    ohe = f"{ct}/transformers/0/estimator/steps/1/estimator"
    assert load(lambda e: e["steps"][0]["estimator"]["transformers"][0]["estimator"]["steps"][1]["estimator"]
                ["unknown_columns"].__setitem__(0, 5)) == f"{ohe}/unknown_columns/0"


def test_unsupported_inside_a_pipeline_is_named(datasets: Any) -> None:
    from sklearn.kernel_approximation import Nystroem
    from sklearn.preprocessing import FunctionTransformer

    d = datasets("wine")
    est = make_pipeline(Nystroem(n_components=5, random_state=0), LogisticRegression(max_iter=500))
    est.fit(d.X_train, d.y_train)
    with pytest.raises(UnsupportedEstimator, match="Nystroem"):
        export_model(est, d.X_test, name="x", feature_names=[f"f{i}" for i in range(13)])
    ct = ColumnTransformer([("tanh", FunctionTransformer(np.tanh), [0, 1])]).fit(d.X_train)
    with pytest.raises(UnsupportedEstimator, match="FunctionTransformer"):
        export_model(ct, d.X_test, name="x", feature_names=[f"f{i}" for i in range(13)])


def test_pipeline_input_errors_name_row_and_feature(datasets: Any) -> None:
    d = datasets("mixed")
    est = mixed_pipeline().fit(d.X_train, d.y_train)
    _, model = export_and_load(est, d.X_test)
    records = json.loads(d.X_test.head(3).to_json(orient="records"))
    records[1]["magnesium"] = "lots"
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(records)
    assert info.value.row == 1 and info.value.feature == "magnesium"
    records = json.loads(d.X_test.head(3).to_json(orient="records"))
    del records[2]["hue_band"]
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(records)
    assert info.value.row == 2 and info.value.feature == "hue_band"
    rows = d.X_test.head(2).to_numpy(dtype=object).tolist()
    rows[0] = rows[0][:-1]
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(rows)
    assert info.value.row == 0
