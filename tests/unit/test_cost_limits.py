"""The cost model (scorer._limits): documents over the limits are refused at load, quickly and in bounded
memory, with a problem naming the estimator and the figure; allowed documents are scored in row blocks
whose peak memory stays under the budget; every family scores zero rows (issue 9)."""

from __future__ import annotations

import base64
import json
import pathlib
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import scorer
from scorer._base import REGISTRY, encode_array
from scorer._limits import DEFAULT_LIMITS, Limits

CASES = sorted((pathlib.Path(__file__).parents[2] / "conformance" / "cases").glob("*.json"))


def envelope(estimator: dict[str, Any], n: int, methods: tuple[str, ...] = ("predict",),
             classes: list[Any] | None = None) -> dict[str, Any]:
    """A document around ``estimator`` (numeric features f0..f{n-1}); no test vectors are scored."""
    output: dict[str, Any] = {"task": "regression", "methods": list(methods)}
    if classes is not None:
        output = {"task": "classification", "methods": list(methods), "classes": classes}
    if methods == ("transform",):
        output["task"] = "transform"
    return {
        "format_version": scorer.FORMAT_VERSION,
        "metadata": {"name": "cost", "description": "test", "created": "2024-05-01T12:00:00Z",
                     "producer": {"name": "tests", "version": "0"}, "sklearn_version": "1.9.1"},
        "input": {"features": [{"name": f"f{i}", "type": "numeric"} for i in range(n)]},
        "output": output,
        "estimator": estimator,
        "test_vectors": {"inputs": [[0.0] * n], "outputs": {}, "tolerance": 1e-9},
    }


def zeros_block(shape: list[int], dtype: str = "float64") -> dict[str, Any]:
    """A base64-zlib block of zeros, compressed piece by piece (never holding the inflated array)."""
    itemsize = np.dtype(dtype).itemsize
    total = int(np.prod(shape)) * itemsize
    comp = zlib.compressobj(9)
    piece = bytes(min(total, 1 << 22))
    parts, left = [], total
    while left:
        parts.append(comp.compress(piece[:min(left, len(piece))]))
        left -= min(left, len(piece))
    parts.append(comp.flush())
    return {"encoding": "base64-zlib", "dtype": dtype, "shape": shape,
            "data": base64.b64encode(b"".join(parts)).decode("ascii")}


def measured(fn: Callable[[], Any], trace: bool = True) -> tuple[Any, int, float]:
    """(result or the exception raised, peak bytes traced (0 untraced: tracing slows Python), seconds)."""
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out: Any = fn()
    except scorer.InvalidModel as exc:
        out = exc
    finally:
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    return out, peak, seconds


def refused(doc: dict[str, Any], limits: Limits | None = None) -> tuple[scorer.InvalidModel, int, float]:
    exc, peak, seconds = measured(lambda: scorer.load_model(doc, limits=limits))
    assert isinstance(exc, scorer.InvalidModel), f"not refused: {exc!r}"
    return exc, peak, seconds


def problem_with(exc: scorer.InvalidModel, needle: str) -> tuple[str, str]:
    hits = [(p, m) for p, m in exc.problems if needle in m]
    assert hits, exc.problems
    return hits[0]


# -- the reproductions of issue 9 ---------------------------------------------------------------------

def test_polynomial_degree_38_on_5_inputs_is_refused_quickly() -> None:
    doc = envelope({"type": "polynomial_features", "n_features_in": 5, "max_degree": 38, "min_degree": 0,
                    "interaction_only": False, "include_bias": True}, 5, ("transform",))
    assert len(json.dumps(doc)) < 11_000
    exc, peak, seconds = refused(doc)
    pointer, message = problem_with(exc, "MODEL_MAX_WIDTH")
    assert pointer == "/estimator"
    assert "polynomial_features" in message and "1925206 values per row" in message
    assert peak < 5 * 2**20 and seconds < 2


def test_mlp_with_a_20m_unit_layer_is_refused_before_decoding() -> None:
    units = 20_000_000
    est = {"type": "mlp_regressor", "n_features_in": 1, "activation": "relu", "out_activation": "identity",
           "coefs": [zeros_block([1, units]), zeros_block([units, 1])],
           "intercepts": [zeros_block([units]), [0.0]]}
    doc = envelope(est, 1)
    assert len(json.dumps(doc)) < 2_000_000
    exc, peak, seconds = refused(doc)
    pointer, message = problem_with(exc, f"{units} units")
    assert pointer == "/estimator/coefs/0" and "MODEL_MAX_WIDTH" in message
    assert peak < 20 * 2**20 and seconds < 2  # the layer alone would decode to 160 MB


def test_logistic_regression_with_1m_classes_is_refused_before_its_coefficients() -> None:
    k = 1_000_000
    est = {"type": "logistic_regression", "n_features_in": 2, "classes": list(range(k)),
           "coef": zeros_block([k, 2]), "intercept": zeros_block([k]), "probability": "multinomial"}
    exc, peak, seconds = refused(envelope(est, 2, ("predict", "predict_proba"), classes=[0, 1]))
    pointer, message = problem_with(exc, "MODEL_MAX_CLASSES")
    assert pointer == "/estimator/classes" and f"{k} classes" in message
    assert peak < 20 * 2**20 and seconds < 2


def _declared_tree(n_nodes: int) -> dict[str, Any]:
    """A tree node that declares ``n_nodes`` nodes (its data is never reached: refused before)."""
    block = {"encoding": "base64-zlib", "dtype": "int32", "shape": [n_nodes], "data": "eJwDAAAAAAE="}
    return {k: block for k in ("children_left", "children_right", "feature", "threshold",
                               "missing_go_to_left", "value")}


def test_a_compressed_forest_of_12_6m_nodes_is_refused_before_decoding() -> None:
    est = {"type": "random_forest_regressor", "n_features_in": 4, "n_outputs": 1,
           "trees": [_declared_tree(100_000) for _ in range(126)]}
    exc, peak, seconds = refused(envelope(est, 4))
    pointer, message = problem_with(exc, "MODEL_MAX_NODES")
    assert pointer == "/estimator/trees" and "12600000 nodes" in message
    assert peak < 5 * 2**20 and seconds < 1


def _tree(depth: int, n_outputs: int = 1, seed: int = 0) -> dict[str, Any]:
    """A complete binary tree (breadth-first numbering: children after their parent)."""
    rng = np.random.RandomState(seed)
    n = 2 ** (depth + 1) - 1
    idx = np.arange(n)
    inner = idx < 2**depth - 1
    left = np.where(inner, 2 * idx + 1, -1)
    right = np.where(inner, 2 * idx + 2, -1)
    return {"children_left": encode_array(left.astype(np.int32)),
            "children_right": encode_array(right.astype(np.int32)),
            "feature": encode_array(np.where(inner, rng.randint(0, 4, n), -2).astype(np.int32)),
            "threshold": encode_array(np.where(inner, rng.uniform(-1, 1, n), -2.0)),
            "missing_go_to_left": encode_array(np.ones(n, dtype=np.uint8)),
            "value": encode_array(rng.uniform(0, 1, (n, n_outputs)))}


SMALL_TREE = {"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2],
              "threshold": [0.5, -2.0, -2.0], "missing_go_to_left": [1, 0, 0], "value": [[1.0], [2.0], [3.0]]}


def test_100000_small_trees_are_refused_before_any_tree_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing the 18 MB text takes seconds (bounded by the upload limit); no tree is then decoded."""
    from scorer.models import trees

    def no_tree(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a tree was loaded")

    monkeypatch.setattr(trees, "load_tree", no_tree)
    est = {"type": "random_forest_regressor", "n_features_in": 4, "n_outputs": 1,
           "trees": [SMALL_TREE] * 100_000}
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(envelope(est, 4)).encode())
    assert problem_with(info.value, "MODEL_MAX_TREES")[0] == "/estimator/trees"


def test_the_most_trees_allowed_validate_in_bounded_time() -> None:
    limits = Limits(max_trees=5_000)
    est = {"type": "random_forest_regressor", "n_features_in": 4, "n_outputs": 1,
           "trees": [SMALL_TREE] * limits.max_trees}
    text = json.dumps(envelope(est, 4)).encode()
    model, _, seconds = measured(lambda: scorer.load_model(text, limits=limits), trace=False)
    assert isinstance(model, scorer.Model), model
    assert seconds < 30, seconds  # ~0.1 ms per tree idle: the default limit (20,000) is ~2 s


def test_forest_validation_memory_stays_a_small_multiple_of_its_nodes() -> None:
    """Loading a forest holds its arrays and the engine: bytes per node bounded, so MODEL_MAX_NODES
    bounds validation memory (the default, 2M nodes, stays well under the 2 GB function)."""
    trees = [_tree(12, seed=s) for s in range(16)]  # 131k nodes
    nodes = 16 * (2**13 - 1)
    doc = envelope({"type": "random_forest_regressor", "n_features_in": 4, "n_outputs": 1, "trees": trees}, 4)
    model, peak, _ = measured(lambda: scorer.load_model(doc))
    assert isinstance(model, scorer.Model), model
    assert peak / nodes < 400, peak / nodes  # ~230 measured
    assert DEFAULT_LIMITS.max_nodes * 400 < 2**30


# -- allowed documents: bounded memory per request ---------------------------------------------------

SMALL = Limits(memory_budget=32 * 2**20, max_width=30_000, max_classes=5_000, max_nodes=200_000,
               max_row_cost=2_000_000, max_request_cost=200_000_000)


def _worst_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Per family, a document close to SMALL's limits."""
    rng = np.random.RandomState(0)
    yield "polynomial", envelope({"type": "polynomial_features", "n_features_in": 5, "max_degree": 14,
                                  "min_degree": 0, "interaction_only": False, "include_bias": True},
                                 5, ("transform",))  # 11,628 columns
    h = 13_000
    yield "mlp", envelope({"type": "mlp_regressor", "n_features_in": 4, "activation": "relu",
                           "out_activation": "identity",
                           "coefs": [encode_array(rng.normal(size=(4, h))),
                                     encode_array(rng.normal(size=(h, 1)))],
                           "intercepts": [encode_array(rng.normal(size=h)), [0.5]]}, 4)
    k = SMALL.max_classes
    yield "logistic", envelope({"type": "logistic_regression", "n_features_in": 4, "classes": list(range(k)),
                                "coef": encode_array(rng.normal(size=(k, 4))),
                                "intercept": encode_array(rng.normal(size=k)), "probability": "multinomial"},
                               4, ("predict", "predict_proba", "decision_function"), classes=list(range(k)))
    n_fit = 9_000
    yield "knn", envelope({"type": "k_neighbors_regressor", "n_features_in": 4,
                           "fit_X": encode_array(rng.normal(size=(n_fit, 4))), "n_neighbors": 5,
                           "weights": "distance", "metric": "euclidean",
                           "y": encode_array(rng.normal(size=n_fit))}, 4)
    yield "forest", envelope({"type": "random_forest_regressor", "n_features_in": 4, "n_outputs": 1,
                              "trees": [_tree(10, seed=s) for s in range(90)]}, 4)


@pytest.mark.parametrize("name,doc", list(_worst_documents()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_most_rows_allowed_stay_within_the_memory_budget(name: str, doc: dict[str, Any]) -> None:
    model = scorer.load_model(doc, limits=SMALL)
    rows = min(model.max_rows(), 5_000)
    assert rows >= 1
    X = np.random.RandomState(1).normal(size=(rows, model.n_features))
    for method in model.methods:
        out, peak, seconds = measured(lambda m=method: getattr(model, m)(X))
        assert not isinstance(out, Exception), out
        assert np.asarray(out).shape[0] == rows
        # intermediates within the budget, plus the result and input held whole (bounded by max_rows)
        assert peak < 2 * SMALL.memory_budget, (name, method, rows, peak)
        assert seconds < 30, (name, method, seconds)
    assert model.max_rows() < model.max_rows(Limits(memory_budget=4 * SMALL.memory_budget,
                                                    max_request_cost=4 * SMALL.max_request_cost))


def test_a_document_over_the_small_limits_names_its_estimator_inside_a_pipeline() -> None:
    poly = {"type": "polynomial_features", "n_features_in": 5, "max_degree": 20, "min_degree": 0,
            "interaction_only": False, "include_bias": True}
    doc = envelope({"type": "pipeline", "steps": [{"name": "poly", "estimator": poly}]}, 5, ("transform",))
    assert isinstance(scorer.load_model(doc), scorer.Model)  # 53,130 columns: within the defaults
    exc, _, _ = refused(doc, SMALL)
    pointer, message = problem_with(exc, "MODEL_MAX_WIDTH")
    assert pointer == "/estimator/steps/0/estimator" and "polynomial_features" in message


# -- blocks do not change results; zero rows in every family -----------------------------------------

def _kit() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in CASES:
        yield path.stem, json.loads(path.read_text())


def _types(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in REGISTRY:
            yield node["type"]
        for v in node.values():
            yield from _types(v)
    elif isinstance(node, list):
        for v in node:
            yield from _types(v)


def test_the_kit_covers_every_registered_type() -> None:
    from scorer import models

    models.import_all()
    seen = {t for _, doc in _kit() for t in _types(doc["estimator"])}
    assert set(REGISTRY) <= seen, sorted(set(REGISTRY) - seen)


def _as_list(out: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


@pytest.mark.parametrize("name,doc", list(_kit()), ids=[p.stem for p in CASES])
def test_zero_rows_give_empty_results_of_the_right_shape(name: str, doc: dict[str, Any]) -> None:
    model = scorer.load_model(doc)
    rows = doc["test_vectors"]["inputs"]
    for method in model.methods:
        full = _as_list(getattr(model, method)(rows))
        empty = _as_list(getattr(model, method)([]))
        assert [e.shape for e in empty] == [(0, *f.shape[1:]) for f in full], method
        assert [e.dtype.kind for e in empty] == [f.dtype.kind for f in full] or all(
            f.dtype.kind == "O" or e.dtype.kind == "O" for e, f in zip(empty, full, strict=True)), method


@pytest.mark.parametrize("name,doc", list(_kit()), ids=[p.stem for p in CASES])
def test_row_blocks_give_the_one_shot_results(name: str, doc: dict[str, Any]) -> None:
    """Blocks of 64 rows (the smallest the limits allow) against one call over all rows: labels equal,
    numbers within 1e-12 (a BLAS product may take another kernel for another number of rows)."""
    one_shot = scorer.load_model(doc)
    rows = doc["test_vectors"]["inputs"]
    many = (rows * (-(-200 // len(rows))))[:200]
    budget = 64 * one_shot.row_cost.row_bytes
    blocked = scorer.load_model(doc, limits=Limits(memory_budget=budget, max_width=10**9))
    assert blocked._block == 64
    for method in one_shot.methods:
        for a, b in zip(_as_list(getattr(one_shot, method)(many)), _as_list(getattr(blocked, method)(many)),
                        strict=True):
            if a.dtype.kind == "f":
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-300, err_msg=f"{method}")
            else:
                assert _same(a.tolist(), b.tolist()), method


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (object results may hold float NaN)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (a != a and b != b)


# -- the deployment's limits: template parameters -> environment -> Settings -> scorer ---------------

def test_every_limit_is_a_template_parameter_with_the_scorer_default() -> None:
    from dataclasses import fields

    from modelsync import template as tpl
    from modelsync.service.config import MODEL_LIMIT_VARIABLES, Settings

    T = tpl.load(pathlib.Path(__file__).resolve().parents[2] / "template.yaml")
    env = T.globals["Function"]["Environment"]["Variables"]
    assert set(MODEL_LIMIT_VARIABLES) == {f.name for f in fields(Limits)}
    for field, var in MODEL_LIMIT_VARIABLES.items():
        param = env[var]["Ref"]
        assert T.parameter_defaults()[param] == getattr(DEFAULT_LIMITS, field), var
    base = {"MODELS_BUCKET": "b", "REGISTRY_TABLE": "t"}
    assert Settings.from_env(base).model_limits == DEFAULT_LIMITS
    custom = Settings.from_env({**base, "MODEL_MAX_WIDTH": "1234", "MODEL_MEMORY_BUDGET": "1048576"})
    assert custom.model_limits.max_width == 1234 and custom.model_limits.memory_budget == 2**20
    deploy = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for var in MODEL_LIMIT_VARIABLES.values():
        assert f"`{var}`" in deploy, var
