"""The conformance kit (conformance/): the Python scorer passes every case, and the kit covers every type.

The kit is what a scorer in another language runs (scorer-js does, under ``node --test``); this test keeps
the reference scorer and the checked-in kit in agreement, and fails when a supported type has no case
(regenerate with ``make conformance`` after adding a case to conformance/generate.py).
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import subprocess
from typing import Any

import pytest

import scorer

KIT = pathlib.Path(__file__).resolve().parents[2] / "conformance"
INDEX: dict[str, Any] = json.loads((KIT / "index.json").read_text(encoding="utf-8"))


def _close(got: Any, want: Any, tol: float, where: str) -> float:
    """Compare nested outputs with the kit's rule; return the largest numeric difference seen."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: shape differs"
        pairs = enumerate(zip(got, want, strict=True))
        return max((_close(g, w, tol, f"{where}/{i}") for i, (g, w) in pairs), default=0.0)
    if want is None:
        assert isinstance(got, float) and math.isnan(got), f"{where}: expected NaN, got {got!r}"
        return 0.0
    if isinstance(want, (str, bool)) or isinstance(got, (str, bool)):
        assert got == want and type(got) is type(want), f"{where}: expected {want!r}, got {got!r}"
        return 0.0
    diff = abs(float(got) - float(want))
    assert diff <= tol * max(1.0, abs(float(want))), f"{where}: expected {want!r}, got {got!r} (tol {tol})"
    return diff


def _jsonish(values: Any) -> Any:
    """The scorer's numpy outputs as nested Python lists."""
    if isinstance(values, list):  # multi-output predict_proba: one array per output
        return [_jsonish(v) for v in values]
    return values.tolist()


@pytest.mark.parametrize("case", INDEX["cases"], ids=[c["id"] for c in INDEX["cases"]])
def test_python_scorer_passes_case(case: dict[str, Any]) -> None:
    doc = json.loads((KIT / case["file"]).read_text(encoding="utf-8"))
    model = scorer.validate_model(doc)  # sha256, schema and the test vectors at the document's tolerance
    inputs = doc["test_vectors"]["inputs"]
    assert sorted(case["methods"]) == sorted(doc["output"]["methods"])
    for method in case["methods"]:
        got = _jsonish(getattr(model, method)(inputs))
        want = doc["test_vectors"]["outputs"][method]
        _close(got, want, case["tolerance"][method], f"{case['id']}/{method}")
    for bad in case.get("input_errors", []):
        for method in case["methods"]:
            with pytest.raises(scorer.InvalidInput) as err:
                getattr(model, method)([bad["row"]])
            assert err.value.row == 0
            assert err.value.feature in (None, bad["feature"])


@pytest.mark.parametrize("case", INDEX["invalid"], ids=[c["id"] for c in INDEX["invalid"]])
def test_python_validator_reports_pointer(case: dict[str, Any]) -> None:
    text = (KIT / case["file"]).read_bytes()
    with pytest.raises(scorer.InvalidModel) as err:
        scorer.validate_model(text)
    assert case["pointer"] in [p for p, _ in err.value.problems], err.value.problems


def test_kit_covers_every_supported_type() -> None:
    covered = {t for c in INDEX["cases"] for t in c["types"]}
    missing = sorted(set(scorer.supported_types()) - covered)
    assert not missing, f"no conformance case for {missing}: add one to conformance/generate.py"
    assert INDEX["format_version"] == scorer.FORMAT_VERSION


def test_kit_has_input_errors() -> None:
    assert sum(len(c.get("input_errors", [])) for c in INDEX["cases"]) >= 5


def test_kit_covers_both_encodings_and_edge_inputs() -> None:
    texts = {c["id"]: (KIT / c["file"]).read_text(encoding="utf-8") for c in INDEX["cases"]}
    assert any('"base64-zlib"' in t for t in texts.values())
    assert any('"encoding":"base64"' in t for t in texts.values())
    assert any('"encoding"' not in t for t in texts.values())  # plain arrays only
    rows = [json.loads(t)["test_vectors"]["inputs"] for t in texts.values()]
    assert any(v is None for rs in rows for r in rs for v in r)  # missing values
    assert any(v == "purple" for rs in rows for r in rs for v in r)  # an unseen category


def test_kit_is_small_and_index_lists_every_file() -> None:
    listed = {c["file"] for c in INDEX["cases"]} | {c["file"] for c in INDEX["invalid"]}
    on_disk = {str(p.relative_to(KIT)) for p in KIT.glob("*/*.json")}
    assert listed == on_disk
    assert sum((KIT / f).stat().st_size for f in listed) < 4_000_000


# -- the JavaScript command line against `modelsync predict`, on models exported outside the kit ------

NODE = shutil.which("node")
JS_CLI = KIT.parent / "scorer-js" / "bin" / "modelsync-score.mjs"


def _cli_models() -> dict[str, tuple[Any, Any, bool]]:
    """name -> (fitted estimator, frame of rows to score, whether to ask for --proba)."""
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.compose import make_column_transformer
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC

    iris = load_iris(as_frame=True)
    Xi, yi = iris.data, iris.target
    yi_s = np.array(iris.target_names)[yi]
    diab = load_diabetes(as_frame=True)
    Xd, yd = diab.data.iloc[:, :5], diab.target
    rng = np.random.default_rng(7)
    Xm = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], 200), "x": rng.normal(size=200)})
    ym = np.where((Xm["colour"] == "red") ^ (Xm["x"] > 0), "yes", "no")
    Xn = Xi.mask(rng.random(Xi.shape) < 0.1)
    ct = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                                 (StandardScaler(), ["x"]))
    return {
        "gbc_strings": (GradientBoostingClassifier(n_estimators=20, random_state=0).fit(Xi, yi_s), Xi, True),
        "rf_regressor": (RandomForestRegressor(n_estimators=10, random_state=0).fit(Xd, yd), Xd, False),
        "ct_logreg": (make_pipeline(ct, LogisticRegression()).fit(Xm, ym), Xm, True),
        "hgb_nan": (HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xn, yi), Xn, True),
        "kmeans": (KMeans(4, n_init=2, random_state=0).fit(Xd), Xd, False),
        "isolation_forest": (IsolationForest(n_estimators=10, random_state=0).fit(Xd), Xd, False),
        "mlp": (MLPClassifier((8,), max_iter=50, random_state=0).fit(Xi, yi), Xi, True),
        "svc": (SVC(probability=True, random_state=0).fit(Xi, yi_s), Xi, True),
        "knn_multi": (KNeighborsRegressor(3).fit(Xd, np.c_[yd, yd / 3]), Xd, False),
        "pca": (PCA(3).fit(Xd), Xd, False),
    }


# Outputs without exp/log or reassociated sums: the two command lines write the same bytes. (gbc_strings'
# multiclass probabilities go through softmax's exp: numpy's SIMD exp and JS's Math.exp may differ by an ulp,
# which numpy 1.26 shows on one row; its labels are still compared exactly below.)
EXACT_CLI = frozenset({"rf_regressor", "kmeans", "isolation_forest", "knn_multi"})


def _same_cell(js: str, py: str) -> bool:
    if js == py:
        return True
    try:
        a, b = float(js), float(py)
    except ValueError:
        return False
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


@pytest.mark.skipif(NODE is None, reason="node (20+) is not installed")
def test_js_command_line_matches_modelsync_predict(tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from modelsync import cli
    from modelsync.export import export_model

    warnings.simplefilter("ignore")
    for name, (est, X, proba) in _cli_models().items():
        doc_path = tmp_path / f"{name}.json"
        doc = export_model(est, X.iloc[:40], name, n_test_vectors=5)
        doc_path.write_text(json.dumps(doc), encoding="utf-8")
        data = X.iloc[::3].copy()
        data.insert(0, "id", [f"r{i}" for i in range(len(data))])
        csv_path = tmp_path / f"{name}.csv"
        data.to_csv(csv_path, index=False)
        args = ["predict", str(doc_path), str(csv_path)] + (["--proba"] if proba else [])
        capsys.readouterr()
        assert cli.main(args) == 0
        want = capsys.readouterr().out
        got = subprocess.run([str(NODE), str(JS_CLI), *args], capture_output=True, text=True, check=False,
                             timeout=120)
        assert got.returncode == 0, got.stderr
        if name in EXACT_CLI:  # trees, labels, distances: byte for byte
            assert got.stdout == want, name
            continue
        js_lines, py_lines = got.stdout.splitlines(), want.splitlines()
        assert js_lines[0] == py_lines[0], name  # the same columns
        assert len(js_lines) == len(py_lines), name
        label = py_lines[0].split(",").index("prediction") if "prediction" in py_lines[0].split(",") else None
        for js_line, py_line in zip(js_lines[1:], py_lines[1:], strict=True):
            js_cells, py_cells = js_line.split(","), py_line.split(",")
            assert len(js_cells) == len(py_cells), (name, js_line, py_line)
            same = all(_same_cell(a, b) for a, b in zip(js_cells, py_cells, strict=True))
            assert same, (name, js_line, py_line)
            if label is not None:
                assert js_cells[label] == py_cells[label], (name, js_line, py_line)


# -- the JavaScript validator against the reference, on mutated kit documents -------------------------

def _paths(node: Any, ptr: str = "") -> list[str]:
    out = [ptr]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, ptr + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(node, list) and len(node) < 50:
        for i, v in enumerate(node):
            out += _paths(v, f"{ptr}/{i}")
    return out


def _generator() -> Any:
    """conformance/generate.py as a module (it is a script, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("conformance_generate", KIT / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mutate(gen: Any, doc: dict[str, Any], ptr: str, kind: str) -> None:
    values = {"string": "zz", "negative": -3, "big": 10**6, "null": None, "half": 0.5, "true": True,
              "delete": gen.DELETE}
    if kind == "shrink":
        parent, _, key = ptr.rpartition("/")
        container: Any = doc
        for p in parent.split("/")[1:]:
            container = container[int(p)] if isinstance(container, list) else container[p]
        current = container[int(key)] if isinstance(container, list) else container[key]
        if isinstance(current, list) and current:
            gen.set_pointer(doc, ptr, current[:-1])
        return
    gen.set_pointer(doc, ptr, values[kind])


@pytest.mark.skipif(NODE is None, reason="node (20+) is not installed")
def test_js_validator_agrees_with_the_reference_on_mutated_documents() -> None:
    import copy
    import random

    gen = _generator()
    rng = random.Random(20261204)
    kinds = ["delete", "string", "negative", "big", "null", "half", "true", "shrink"]
    docs: list[dict[str, Any]] = []
    for case in INDEX["cases"]:
        base = json.loads((KIT / case["file"]).read_text(encoding="utf-8"))
        ptrs = [p for p in _paths(base["estimator"], "/estimator") if p != "/estimator"]
        for _ in range(4):
            doc = copy.deepcopy(base)
            _mutate(gen, doc, rng.choice(ptrs), rng.choice(kinds))
            doc["sha256"] = scorer.content_sha256(doc)
            docs.append(doc)
    lines = "\n".join(json.dumps(d) for d in docs) + "\n"
    tool = KIT.parent / "scorer-js" / "tools" / "validate-jsonl.mjs"
    got = subprocess.run([str(NODE), str(tool)], input=lines, capture_output=True, text=True, check=True,
                         timeout=300).stdout.splitlines()
    assert len(got) == len(docs)
    rejected = 0
    for doc, js_line in zip(docs, got, strict=True):
        js = json.loads(js_line)
        try:
            scorer.validate_model(doc)
            py = None
        except scorer.InvalidModel as exc:
            py = [p for p, _ in exc.problems]
        assert (py is None) == (js is None), (doc["metadata"]["name"], py, js)
        if py is not None:  # the same first problem, or the JavaScript one pointing inside it
            rejected += 1
            assert js[0] == py[0] or js[0].startswith(py[0] + "/") or py[0] in js, (py, js)
    assert rejected > len(docs) // 2  # most mutations break a document: the comparison means something
