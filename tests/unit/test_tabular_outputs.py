"""``outputs=``: which methods a scored table writes (scorer.tabular, the one table path of ``modelsync
predict``, ``modelsync device predict`` / ``python -m modelsync_device predict`` and batch), issue 11.

Columns: ``prediction`` / ``prediction_<i>`` (predict), ``proba_<class>`` (predict_proba),
``decision_function`` (one value per row) or ``decision_<class>`` (``decision_<i>`` when the columns are
not classes), ``transform_<i>``. Without ``outputs`` the table is byte for byte what it was. A method the
model lacks is a MethodNotSupported naming the ones it has (the CLIs: one line, exit code 2). Every model
is fitted here on generated data.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import scorer
from scorer import MethodNotSupported, tabular

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

ROOT = pathlib.Path(__file__).resolve().parents[2]
FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    """Exported documents: a 3-class logistic regression (string labels), a binary one, an isolation
    forest, a PCA, SVCs with one-vs-rest and one-vs-one decision values, a linear regressor."""
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.svm import SVC

    from modelsync.export import export_model

    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(size=(90, 3)), columns=FEATURES)
    labels = np.array(["ant", "bee", "cat"])[np.argmax(X.to_numpy() @ rng.normal(size=(3, 3)), axis=1)]
    fitted = {
        "multi": LogisticRegression(max_iter=500).fit(X, labels),
        "binary": LogisticRegression().fit(X, labels == "bee"),
        "anomaly": IsolationForest(n_estimators=8, random_state=0).fit(X),
        "pca": PCA(n_components=2).fit(X),
        "svc_ovr": SVC().fit(X, labels),
        "svc_ovo": SVC(decision_function_shape="ovo").fit(X, labels),
        "reg": LinearRegression().fit(X, X["a"] * 2.0 - X["c"]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small drift baseline warning
        return {k: export_model(est, X.iloc[:12], name=k) for k, est in fitted.items()}


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(7, 3))


def _csv(rows: np.ndarray) -> bytes:
    lines = [f"r{i}," + ",".join(repr(float(v)) for v in r) + "\n" for i, r in enumerate(rows)]
    return ("id," + ",".join(FEATURES) + "\n" + "".join(lines)).encode()


def _jsonl(rows: np.ndarray) -> bytes:
    return "".join(json.dumps({"id": f"r{i}", **dict(zip(FEATURES, map(float, r), strict=True))}) + "\n"
                   for i, r in enumerate(rows)).encode()


def _score(doc: dict[str, Any], data: bytes, fmt: str = "csv", **kw: Any) -> bytes:
    out = io.BytesIO()
    tabular.score_table(scorer.load_model(doc), tabular.TableReader(io.BytesIO(data), fmt), out, **kw)
    return out.getvalue()


def _table(raw: bytes, fmt: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, rows as dicts of floats/strings) of a scored CSV or JSON Lines output."""
    if fmt == "jsonl":
        records = [json.loads(line) for line in raw.decode().splitlines()]
        return list(records[0]), records
    frame = pd.read_csv(io.BytesIO(raw), keep_default_na=False)
    return list(frame.columns), frame.to_dict("records")


def _column(records: list[dict[str, Any]], name: str) -> list[Any]:
    return [r[name] for r in records]


# -- every method, its columns, CSV and JSONL --------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_method_of_a_multiclass_classifier_in_the_order_asked(docs, rows, fmt):
    data = _csv(rows) if fmt == "csv" else _jsonl(rows)
    raw = _score(docs["multi"], data, fmt, outputs=["decision_function", "predict", "predict_proba"])
    names, records = _table(raw, fmt)
    assert names == ["id", *FEATURES, "decision_ant", "decision_bee", "decision_cat", "prediction",
                     "proba_ant", "proba_bee", "proba_cat"]
    model = scorer.load_model(docs["multi"])
    decision, proba = model.decision_function(rows), model.predict_proba(rows)
    for j, label in enumerate(["ant", "bee", "cat"]):
        np.testing.assert_array_equal(_column(records, f"decision_{label}"), decision[:, j])
        np.testing.assert_array_equal(_column(records, f"proba_{label}"), proba[:, j])
    assert _column(records, "prediction") == model.predict(rows).tolist()
    assert _column(records, "id") == [f"r{i}" for i in range(len(rows))]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("name", ["binary", "anomaly"])
def test_one_decision_value_per_row_is_one_decision_function_column(docs, rows, fmt, name):
    data = _csv(rows) if fmt == "csv" else _jsonl(rows)
    names, records = _table(_score(docs[name], data, fmt, outputs=["decision_function"]), fmt)
    assert names == ["id", *FEATURES, "decision_function"]
    np.testing.assert_array_equal(_column(records, "decision_function"),
                                  scorer.load_model(docs[name]).decision_function(rows))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_transform_columns(docs, rows, fmt):
    data = _csv(rows) if fmt == "csv" else _jsonl(rows)
    names, records = _table(_score(docs["pca"], data, fmt, outputs=["transform"]), fmt)
    assert names == ["id", *FEATURES, "transform_0", "transform_1"]
    want = scorer.load_model(docs["pca"]).transform(rows)
    np.testing.assert_array_equal([[r["transform_0"], r["transform_1"]] for r in records], want)


def test_decision_columns_are_named_by_class_only_when_they_are_classes(docs, rows):
    ovr = scorer.load_model(docs["svc_ovr"])
    assert tabular.output_columns(ovr, outputs=["decision_function"]) == [
        "decision_ant", "decision_bee", "decision_cat"]
    # one-vs-one: three columns for three classes, but each is a pair of classes
    ovo = scorer.load_model(docs["svc_ovo"])
    assert tabular.output_columns(ovo, outputs=["decision_function"]) == [
        "decision_0", "decision_1", "decision_2"]
    _, records = _table(_score(docs["svc_ovo"], _csv(rows), outputs=["decision_function"]), "csv")
    np.testing.assert_array_equal([[r[f"decision_{j}"] for j in range(3)] for r in records],
                                  ovo.decision_function(rows))


def test_every_output_of_a_model_without_predict_proba(docs):
    anomaly = scorer.load_model(docs["anomaly"])
    assert tabular.output_columns(anomaly, outputs=["predict", "decision_function", "predict"]) == [
        "prediction", "decision_function"]  # a method named twice is written once


def test_columns_without_test_vector_outputs_for_the_method(docs):
    # a document whose test vectors lack a method's outputs: its width comes from scoring one test row
    for name, want in (("multi", ["decision_ant", "decision_bee", "decision_cat"]),
                       ("binary", ["decision_function"]), ("pca", ["transform_0", "transform_1"])):
        doc = json.loads(json.dumps(docs[name]))
        method = "transform" if name == "pca" else "decision_function"
        del doc["test_vectors"]["outputs"][method]
        assert tabular.output_columns(scorer.load_model(doc), outputs=[method]) == want


# -- the default stays as it was ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("name", ["multi", "binary", "anomaly", "pca", "reg"])
def test_no_outputs_is_the_default_table_byte_for_byte(docs, rows, fmt, name):
    data = _csv(rows) if fmt == "csv" else _jsonl(rows)
    default = _score(docs[name], data, fmt, proba=None)
    assert _score(docs[name], data, fmt, proba=None, outputs=None) == default
    assert _score(docs[name], data, fmt, proba=None, outputs=[]) == default
    model = scorer.load_model(docs[name])
    # the default is the main method plus probabilities for a classifier that has them, as before
    main = "predict" if model.supports("predict") else "transform"
    same = [main, "predict_proba"] if name in ("multi", "binary") else [main]
    assert _score(docs[name], data, fmt, outputs=same) == default
    header = {"multi": "prediction,proba_ant,proba_bee,proba_cat",
              "binary": "prediction,proba_False,proba_True", "anomaly": "prediction",
              "pca": "transform_0,transform_1", "reg": "prediction"}[name]
    if fmt == "csv":
        assert default.decode().splitlines()[0] == "id,a,b,c," + header


def test_proba_is_ignored_when_outputs_are_named(docs, rows):
    assert _score(docs["multi"], _csv(rows), proba=True, outputs=["predict"]) == _score(
        docs["multi"], _csv(rows), proba=False)


# -- a method the model lacks -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "outputs", "offers"), [
    ("pca", ["predict"], "it offers transform"),
    ("pca", ["transform", "explain"], "it offers transform"),
    ("reg", ["predict_proba"], "it offers predict"),
    ("anomaly", ["transform"], "it offers predict, decision_function"),
])
def test_a_method_the_model_lacks_lists_the_ones_it_has(docs, rows, name, outputs, offers):
    out = io.BytesIO()
    model = scorer.load_model(docs[name])
    with pytest.raises(MethodNotSupported) as info:
        tabular.score_table(model, tabular.TableReader(io.BytesIO(_csv(rows))), out, outputs=outputs)
    missing = next(m for m in outputs if not model.supports(m))
    assert str(info.value) == f"model {name!r} has no {missing}; {offers}"
    assert out.getvalue() == b""  # refused before anything is written
    with pytest.raises(MethodNotSupported, match=offers):
        tabular.output_columns(model, outputs=outputs)


def test_bad_rows_are_still_set_aside_with_named_outputs(docs, rows):
    data = _csv(rows).replace(b"r2,", b"r2,oops,", 1).replace(b"\nr4,", b"\nr4,,", 1)
    bad: list[tabular.BadRow] = []
    out = io.BytesIO()
    tabular.score_table(scorer.load_model(docs["binary"]), tabular.TableReader(io.BytesIO(data)), out,
                        outputs=["decision_function"], on_error=bad.append)
    assert [b.line for b in bad] == [4, 6]
    _, records = _table(out.getvalue(), "csv")
    assert _column(records, "id") == ["r0", "r1", "r3", "r5", "r6"]


@pytest.mark.parametrize(("given", "want"), [
    ("decision_function", ["decision_function"]),
    (" predict , predict_proba,predict,", ["predict", "predict_proba"]),
    ("", None), (" , ", None), (None, None), (["transform"], ["transform"]), ([], None),
])
def test_parse_outputs(given, want):
    assert tabular.parse_outputs(given) == want


# -- the command lines ----------------------------------------------------------------------------------

@pytest.fixture
def files(docs, rows, tmp_path) -> dict[str, pathlib.Path]:
    out = {}
    for name in ("anomaly", "pca", "multi"):
        out[name] = tmp_path / f"{name}.json"
        out[name].write_text(json.dumps(docs[name]))
    out["csv"] = tmp_path / "rows.csv"
    out["csv"].write_bytes(_csv(rows))
    out["jsonl"] = tmp_path / "rows.jsonl"
    out["jsonl"].write_bytes(_jsonl(rows))
    return out


def test_modelsync_predict_outputs(files, docs, rows, capsys):
    from modelsync import cli

    assert cli.main(["predict", str(files["anomaly"]), str(files["csv"]),
                     "--outputs", "decision_function,predict"]) == 0
    assert capsys.readouterr().out.encode() == _score(docs["anomaly"], _csv(rows),
                                                      outputs=["decision_function", "predict"])
    assert cli.main(["predict", str(files["pca"]), str(files["jsonl"]), "--outputs", "transform"]) == 0
    assert capsys.readouterr().out.encode() == _score(docs["pca"], _jsonl(rows), "jsonl",
                                                      outputs=["transform"])
    # a method the model lacks: one line naming what it has, exit code 2, nothing on stdout
    assert cli.main(["predict", str(files["pca"]), str(files["csv"]), "--outputs", "predict"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "modelsync: error: --outputs: model 'pca' has no predict; it offers transform\n"
    # --proba and --outputs say the same thing twice: a usage error
    with pytest.raises(SystemExit) as info:
        cli.main(["predict", str(files["multi"]), str(files["csv"]), "--proba", "--outputs", "predict"])
    assert info.value.code == 2 and "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["-m", "modelsync_device"], ["-m", "modelsync.cli", "device"]])
def test_device_predict_outputs(files, docs, rows, tmp_path, command):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    store = tmp_path / "store"

    def device(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, *command, *args], capture_output=True, env=env, timeout=120,
                              check=False)

    assert device("install", "--dir", str(store), str(files["anomaly"])).returncode == 0
    done = device("predict", "--dir", str(store), "--no-telemetry", "--outputs", "decision_function",
                  str(files["csv"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout == _score(docs["anomaly"], _csv(rows), outputs=["decision_function"])
    refused = device("predict", "--dir", str(store), "--outputs", "transform", str(files["csv"]))
    assert refused.returncode == 2 and refused.stdout == b""
    assert refused.stderr.decode().splitlines() == [
        "device predict: --outputs: model 'anomaly' has no transform; it offers predict, decision_function"]


def test_multi_output_classifiers_have_no_proba_columns(tmp_path: pathlib.Path):
    """Several outputs, one class list each: no ``proba_<class>`` columns by default (batch, devices), a
    MethodNotSupported when asked (``--proba``, ``outputs=predict_proba``): the columns were once named
    ``proba_[0, 1, 2]`` with every output's probabilities under them (more cells than header fields)."""
    from sklearn.tree import DecisionTreeClassifier

    from modelsync.export import export_model

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=FEATURES)
    y = np.c_[np.where(X["a"] > 0, "hi", np.where(X["b"] > 0, "mid", "lo")),
              np.array(["x", "y", "z"], dtype=object)[np.arange(60) % 3]]
    model = scorer.load_model(export_model(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
                                           X.iloc[:10], name="multi"))
    text = X.iloc[:4].to_csv(index=False).encode()
    out = io.BytesIO()
    tabular.score_table(model, tabular.TableReader(io.BytesIO(text), "csv"), out, proba=None)
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == "a,b,c,prediction_0,prediction_1"
    assert all(len(line.split(",")) == 5 for line in lines)
    for kwargs in ({"proba": True}, {"outputs": ["predict", "predict_proba"]}):
        with pytest.raises(MethodNotSupported, match="per-class probabilities"):
            tabular.score_table(model, tabular.TableReader(io.BytesIO(text), "csv"), io.BytesIO(), **kwargs)
