"""scorer/schema.json: valid draft 2020-12 that accepts exported documents and rejects broken ones."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scorer

jsonschema = pytest.importorskip("jsonschema")
sklearn = pytest.importorskip("sklearn")

from modelsync import export as ms_export  # noqa: E402
from scorer.models import FAMILIES  # noqa: E402  (the scorer's own list: no family left out)


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = scorer.load_schema()
    return jsonschema.Draft202012Validator(schema)


def errors(validator: Any, doc: dict[str, Any]) -> list[str]:
    return ["/" + "/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc)]


def test_the_schema_is_valid_draft_2020_12() -> None:
    schema = scorer.load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


# -- one simple model per family --------------------------------------------------------------------


def _numeric(task: str) -> tuple[Any, Any]:
    from sklearn.datasets import make_classification, make_regression

    if task == "regression":
        X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    else:
        X, y = make_classification(
            n_samples=60, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
        )
    return X, y


def _mixed() -> tuple[Any, Any]:
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"size": rng.uniform(0, 10, 60), "colour": rng.choice(["red", "green", "blue"], 60)})
    y = np.where((frame["size"] > 5) ^ (frame["colour"] == "red"), "yes", "no")
    return frame, y


def _cases() -> list[tuple[str, str, Callable[[], Any], str]]:
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, SVR
    from sklearn.tree import DecisionTreeClassifier

    def mixed_pipeline() -> Any:
        return make_pipeline(
            ColumnTransformer(
                [("onehot", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough"
            ),
            LogisticRegression(),
        )

    return [
        ("linear", "LinearRegression", LinearRegression, "regression"),
        ("linear", "LogisticRegression", lambda: LogisticRegression(max_iter=500), "classification"),
        ("preprocessing", "StandardScaler", StandardScaler, "regression"),
        (
            "compose",
            "Pipeline",
            lambda: make_pipeline(StandardScaler(), LogisticRegression()),
            "classification",
        ),
        ("compose", "ColumnTransformer", mixed_pipeline, "mixed"),
        (
            "trees",
            "DecisionTreeClassifier",
            lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
            "classification",
        ),
        (
            "trees",
            "RandomForestRegressor",
            lambda: RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0),
            "regression",
        ),
        (
            "trees",
            "GradientBoostingClassifier",
            lambda: GradientBoostingClassifier(n_estimators=3, random_state=0),
            "classification",
        ),
        ("trees", "IsolationForest", lambda: IsolationForest(n_estimators=5, random_state=0), "regression"),
        (
            "hist_gradient_boosting",
            "HistGradientBoostingClassifier",
            lambda: HistGradientBoostingClassifier(max_iter=3),
            "classification",
        ),
        ("kernel", "SVC", SVC, "classification"),
        ("kernel", "SVR", SVR, "regression"),
        ("neighbors", "KNeighborsClassifier", lambda: KNeighborsClassifier(3), "classification"),
        ("naive_bayes", "GaussianNB", GaussianNB, "classification"),
        (
            "neural_network",
            "MLPClassifier",
            lambda: MLPClassifier((5,), max_iter=50, random_state=0),
            "classification",
        ),
        ("cluster", "KMeans", lambda: KMeans(3, n_init=1, random_state=0), "regression"),
    ]


def _registered(cls: type) -> bool:
    ms_export._load_families()
    return cls in ms_export.CONVERTERS


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("compact", [True, False], ids=["base64", "plain"])
@pytest.mark.parametrize("family, label, factory, data", _cases(), ids=[c[1] for c in _cases()])
def test_exported_documents_are_accepted(
    validator: Any, family: str, label: str, factory: Callable[[], Any], data: str, compact: bool
) -> None:
    est = factory()
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    for part in [est] + [s for _, s in getattr(est, "steps", [])]:
        assert _registered(type(part)), f"the {family} family has no converter for {type(part).__name__}"
    X, y = _mixed() if data == "mixed" else _numeric(data)
    est.fit(X, y)
    sample = X.iloc[:8] if hasattr(X, "iloc") else X[:8]
    names = None if hasattr(X, "iloc") else [f"x{i}" for i in range(X.shape[1])]
    doc = ms_export.export_model(est, sample, name=f"{family}-{label}", feature_names=names, compact=compact)
    assert errors(validator, doc) == []
    assert scorer.validate_model(doc).type_name == doc["estimator"]["type"]
    assert type(final).__name__ in doc["metadata"]["estimator_class"] or hasattr(est, "steps")


# -- rejections -------------------------------------------------------------------------------------


@pytest.fixture
def doc() -> dict[str, Any]:
    """A minimal hand-written document (no converter needed): the schema checks structure only."""
    return {
        "format_version": "1.0",
        "metadata": {
            "name": "m",
            "created": "2024-05-01T12:00:00Z",
            "producer": {"name": "t", "version": "1"},
        },
        "input": {
            "features": [
                {"name": "a", "type": "numeric"},
                {"name": "b", "type": "categorical", "categories": ["x", "y"]},
            ]
        },
        "output": {
            "task": "classification",
            "methods": ["predict", "predict_proba"],
            "classes": ["no", "yes"],
        },
        "estimator": {
            "type": "pipeline",
            "steps": [
                {
                    "name": "prep",
                    "estimator": {
                        "type": "column_transformer",
                        "n_features_in": 2,
                        "transformers": [
                            {"name": "num", "estimator": "passthrough", "columns": [0]},
                            {
                                "name": "cat",
                                "estimator": {"type": "one_hot_encoder", "categories": [["x", "y"]]},
                                "columns": {
                                    "encoding": "base64",
                                    "dtype": "int64",
                                    "shape": [1],
                                    "data": "AQAAAAAAAAA=",
                                },
                            },
                        ],
                    },
                },
                {
                    "name": "clf",
                    "estimator": {
                        "type": "logistic_regression",
                        "coef": [[0.5, 1.0, -1.0]],
                        "intercept": [0.0],
                        "classes": ["no", "yes"],
                    },
                },
            ],
        },
        "test_vectors": {
            "inputs": [[1.5, "x"], [None, "y"]],
            "outputs": {"predict": ["no", "yes"], "predict_proba": [[0.6, 0.4], [0.3, 0.7]]},
            "tolerance": 1e-9,
        },
        "sha256": "0" * 64,
    }


def test_the_hand_written_document_is_accepted(validator: Any, doc: dict[str, Any]) -> None:
    assert errors(validator, doc) == []


_COEF = ("estimator", "steps", 1, "estimator", "coef")
_COLUMNS = ("estimator", "steps", 0, "estimator", "transformers", 1, "columns")


@pytest.mark.parametrize(
    "path, value, where",
    [
        (("sha256",), "ABC", "/sha256"),
        (("sha256",), "g" * 64, "/sha256"),
        (("format_version",), "2.0", "/format_version"),
        (("format_version",), "1", "/format_version"),
        (("estimator", "type"), "gpt_5", "/estimator/type"),
        (("estimator", "steps", 1, "estimator", "type"), "gpt_5", "/estimator/steps/1/estimator/type"),
        (
            ("estimator", "steps", 0, "estimator", "transformers", 0, "estimator"),
            "drop",
            "/estimator/steps/0/estimator/transformers/0/estimator",
        ),
        ((*_COLUMNS, "dtype"), "float16", "/estimator/steps/0/estimator/transformers/1/columns"),
        ((*_COLUMNS, "encoding"), "hex", "/estimator/steps/0/estimator/transformers/1/columns"),
        ((*_COLUMNS, "shape"), [-1], "/estimator/steps/0/estimator/transformers/1/columns"),
        ((*_COLUMNS, "extra"), 1, "/estimator/steps/0/estimator/transformers/1/columns"),
        ((*_COLUMNS, "data"), "not base64!", "/estimator/steps/0/estimator/transformers/1/columns"),
        (
            _COEF,
            {"encoding": "base64", "dtype": "complex128", "shape": [1], "data": ""},
            "/estimator/steps/1/estimator/coef",
        ),
        (
            _COEF,
            {"encoding": "base64", "dtype": "float64", "shape": [1]},
            "/estimator/steps/1/estimator/coef",
        ),
        (("metadata", "name"), "bad name!", "/metadata/name"),
        (("metadata", "created"), "yesterday", "/metadata/created"),
        (("input", "features"), [], "/input/features"),
        (("input", "features", 0, "categories"), ["x"], "/input/features/0"),
        (("input", "features", 1, "type"), "text", "/input/features/1/type"),
        (("output", "task"), "ranking", "/output/task"),
        (("output", "methods"), ["predict", "predict"], "/output/methods"),
        (("output", "methods"), ["predict_proba"], "/output"),
        (("test_vectors", "outputs"), {"explain": []}, "/test_vectors/outputs"),
        (("test_vectors", "tolerance"), 0.5, "/test_vectors/tolerance"),
        (("test_vectors", "inputs"), [], "/test_vectors/inputs"),
    ],
)
def test_broken_documents_are_rejected(
    validator: Any, doc: dict[str, Any], path: tuple[Any, ...], value: Any, where: str
) -> None:
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = errors(validator, doc)
    assert found, f"{path} = {value!r} was accepted"
    # the error sits at the field, or at the composite child holding it ("not valid under any of ...")
    paths = [e.split(": ", 1)[0] for e in found]
    assert any(p.startswith(where) or (where.startswith(p + "/") and p.count("/") >= 3) for p in paths), found


@pytest.mark.parametrize(
    "field", ["format_version", "metadata", "input", "output", "estimator", "test_vectors", "sha256"]
)
def test_every_envelope_field_is_required(validator: Any, doc: dict[str, Any], field: str) -> None:
    del doc[field]
    assert any(field in e for e in errors(validator, doc))


def test_classification_needs_classes_and_only_classification_has_them(
    validator: Any, doc: dict[str, Any]
) -> None:
    no_classes = copy.deepcopy(doc)
    del no_classes["output"]["classes"]
    assert errors(validator, no_classes)
    regression = copy.deepcopy(doc)
    regression["output"]["task"] = "regression"
    assert errors(validator, regression)


def test_unknown_envelope_keys_are_allowed_for_minor_versions(validator: Any, doc: dict[str, Any]) -> None:
    doc["format_version"] = "1.3"
    doc["provenance"] = {"git": "abc"}
    doc["metadata"]["tags"] = ["a"]
    assert errors(validator, doc) == []


def test_neighbour_search_fields(validator: Any, doc: dict[str, Any]) -> None:
    """k-nearest neighbours: a tree algorithm needs its tree, a ball tree its radii."""
    doc["estimator"] = {"type": "k_neighbors_classifier", "algorithm": "kd_tree"}
    assert any("'tree' is a required property" in e for e in errors(validator, doc))
    doc["estimator"]["algorithm"] = "octree"
    assert errors(validator, doc)
    tree = {k: [0] for k in ("idx_array", "node_start", "node_end", "node_is_leaf", "node_bounds")}
    doc["estimator"] = {"type": "k_neighbors_regressor", "algorithm": "ball_tree", "tree": tree}
    assert any("'node_radius' is a required property" in e for e in errors(validator, doc))
    doc["estimator"]["algorithm"] = "kd_tree"
    assert errors(validator, doc) == []


# -- type names -------------------------------------------------------------------------------------


def test_schema_type_names_match_the_registry() -> None:
    for family in FAMILIES:  # a family that cannot be imported fails here: no family may go missing
        importlib.import_module(f"scorer.models.{family}")
    in_schema = set(scorer.load_schema()["$defs"]["type_name"]["enum"])
    registered = {name for name in scorer.REGISTRY if not name.startswith("test_")}
    assert sorted(registered - in_schema) == [], "registered types missing from scorer/schema.json"
    assert sorted(in_schema - registered) == [], "types in scorer/schema.json that no family registers"
