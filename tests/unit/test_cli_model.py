"""``modelsync export / validate / predict`` end to end (the table reader itself: test_tabular.py)."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import pickle
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
joblib = pytest.importorskip("joblib")
pd = pytest.importorskip("pandas")

from modelsync import cli  # noqa: E402
from modelsync import export as ms_export  # noqa: E402


def need_converters(*classes: type) -> None:
    ms_export._load_families()
    absent = [c.__name__ for c in classes if c not in ms_export.CONVERTERS]
    if absent:
        pytest.fail(f"no converter for {', '.join(absent)}")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def read_csv_text(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def iris(tmp_path: pathlib.Path) -> dict[str, Any]:
    """A LogisticRegression fitted on a DataFrame with string labels, its joblib file and a sample CSV."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    need_converters(LogisticRegression)
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = LogisticRegression(max_iter=1000).fit(X, labels)
    model_file = tmp_path / "iris.joblib"
    joblib.dump(est, model_file)
    sample = X.iloc[::7].copy()
    sample.insert(0, "id", range(len(sample)))  # extra columns are carried through, not features
    sample["species"] = labels[::7]
    sample_csv = tmp_path / "sample.csv"
    sample.to_csv(sample_csv, index=False)
    return {
        "est": est,
        "X": X,
        "model_file": model_file,
        "sample": sample,
        "csv": sample_csv,
        "dir": tmp_path,
    }


def test_export_validate_predict_round_trip(capsys: pytest.CaptureFixture[str], iris: dict[str, Any]) -> None:
    out_file = iris["dir"] / "iris.json"
    code, out, err = run(
        capsys,
        "export",
        str(iris["model_file"]),
        "--sample",
        str(iris["csv"]),
        "--name",
        "iris",
        "-o",
        str(out_file),
        "--description",
        "the classic",
    )
    assert code == 0, err
    assert f"wrote {out_file}" in out and "logistic_regression" in out
    doc = json.loads(out_file.read_text())
    assert doc["metadata"]["description"] == "the classic"
    assert [f["name"] for f in doc["input"]["features"]] == list(iris["X"].columns)
    assert len(doc["test_vectors"]["inputs"]) == len(iris["sample"])
    assert isinstance(doc["estimator"]["coef"], dict)  # base64 blocks by default

    code, out, _ = run(capsys, "validate", str(out_file))
    assert code == 0 and out == f"OK iris logistic_regression sha256={doc['sha256']}\n"

    code, out, err = run(capsys, "predict", str(out_file), str(iris["csv"]), "--proba")
    assert code == 0, err
    rows = read_csv_text(out)
    assert list(rows[0]) == [
        *iris["sample"].columns,
        "prediction",
        "proba_setosa",
        "proba_versicolor",
        "proba_virginica",
    ]
    features = iris["sample"][list(iris["X"].columns)]
    assert [r["prediction"] for r in rows] == iris["est"].predict(features).tolist()
    proba = np.array([[float(r[f"proba_{c}"]) for c in iris["est"].classes_] for r in rows])
    np.testing.assert_allclose(proba, iris["est"].predict_proba(features), rtol=0, atol=1e-12)
    assert [r["id"] for r in rows] == [str(i) for i in range(len(rows))]


def test_predict_without_proba_and_from_stdin(
    capsys: pytest.CaptureFixture[str], iris: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_file = iris["dir"] / "m.json"
    assert (
        run(
            capsys,
            "export",
            str(iris["model_file"]),
            "--sample",
            str(iris["csv"]),
            "--name",
            "m",
            "-o",
            str(out_file),
        )[0]
        == 0
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(iris["csv"].read_bytes())))
    code, out, _ = run(capsys, "predict", str(out_file), "-")
    assert code == 0
    assert list(read_csv_text(out)[0])[-1] == "prediction"


def test_export_of_a_numpy_fitted_regressor_with_plain_arrays(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression

    need_converters(LinearRegression)
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    est = LinearRegression().fit(X, y)
    with (tmp_path / "lr.pkl").open("wb") as fh:  # plain pickle works too
        pickle.dump(est, fh)
    pd.DataFrame(X[:10], columns=["a", "b", "c"]).to_csv(tmp_path / "s.csv", index=False)
    code, out, err = run(
        capsys,
        "export",
        str(tmp_path / "lr.pkl"),
        "--sample",
        str(tmp_path / "s.csv"),
        "--name",
        "lr",
        "-o",
        str(tmp_path / "lr.json"),
        "--plain-arrays",
        "--test-vectors",
        "4",
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "lr.json").read_text())
    assert isinstance(doc["estimator"]["coef"], list) and len(doc["test_vectors"]["inputs"]) == 4
    code, out, err = run(capsys, "predict", str(tmp_path / "lr.json"), str(tmp_path / "s.csv"))
    assert code == 0, err
    got = np.array([float(r["prediction"]) for r in read_csv_text(out)])
    np.testing.assert_allclose(got, est.predict(X[:10]), rtol=1e-12, atol=1e-9)
    code, _, err = run(capsys, "predict", str(tmp_path / "lr.json"), str(tmp_path / "s.csv"), "--proba")
    assert code == 1 and "has no predict_proba" in err


def test_export_and_predict_with_categorical_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    need_converters(Pipeline, ColumnTransformer, OneHotEncoder, LogisticRegression)
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"size": rng.uniform(0, 10, 80), "colour": rng.choice(["red", "green", "blue"], 80)})
    y = np.where((frame["size"] > 5) ^ (frame["colour"] == "red"), 1, 0)
    est = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("oh", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough"
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, y)
    joblib.dump(est, tmp_path / "p.joblib")
    frame.iloc[:12].to_csv(tmp_path / "s.csv", index=False)
    code, _, err = run(
        capsys,
        "export",
        str(tmp_path / "p.joblib"),
        "--sample",
        str(tmp_path / "s.csv"),
        "--name",
        "mixed",
        "-o",
        str(tmp_path / "p.json"),
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["input"]["features"][1] == {
        "name": "colour",
        "type": "categorical",
        "categories": ["blue", "green", "red"],
    }
    (tmp_path / "new.csv").write_text("size,colour\n7.5,red\n1.0,purple\n3.0,green\n")
    code, out, err = run(capsys, "predict", str(tmp_path / "p.json"), str(tmp_path / "new.csv"), "--proba")
    assert code == 0, err
    new = pd.DataFrame({"size": [7.5, 1.0, 3.0], "colour": ["red", "purple", "green"]})
    rows = read_csv_text(out)
    assert [int(r["prediction"]) for r in rows] == est.predict(new).tolist()
    np.testing.assert_allclose([float(r["proba_1"]) for r in rows], est.predict_proba(new)[:, 1], atol=1e-12)


def test_validate_lists_every_problem(capsys: pytest.CaptureFixture[str], iris: dict[str, Any]) -> None:
    out_file = iris["dir"] / "iris.json"
    assert (
        run(
            capsys,
            "export",
            str(iris["model_file"]),
            "--sample",
            str(iris["csv"]),
            "--name",
            "iris",
            "-o",
            str(out_file),
        )[0]
        == 0
    )
    doc = json.loads(out_file.read_text())
    doc["test_vectors"]["outputs"]["predict"][1] = "daisy"
    doc["metadata"]["created"] = "last tuesday"
    out_file.write_text(json.dumps(doc))
    code, out, _ = run(capsys, "validate", str(out_file))
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("/metadata/created: must be an RFC 3339 timestamp") for line in lines)
    assert any(
        line.startswith("/test_vectors/outputs/predict/1: predict of row 1: expected 'daisy'")
        for line in lines
    )
    assert any(line.startswith("/sha256: does not match") for line in lines)
    code, out, _ = run(capsys, "validate", "--schema", str(out_file))
    assert code == 1 and "/metadata/created: schema: " in out


def test_validate_refuses_what_is_not_a_document(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    (tmp_path / "x.json").write_text('{"format_version": "2.0"}')
    code, out, _ = run(capsys, "validate", str(tmp_path / "x.json"))
    assert code == 1 and out.startswith("/format_version: format_version '2.0' is not supported")
    code, out, _ = run(capsys, "validate", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read model file" in out


def test_predict_errors_name_the_row_and_the_feature(
    capsys: pytest.CaptureFixture[str], iris: dict[str, Any]
) -> None:
    out_file = iris["dir"] / "iris.json"
    assert (
        run(
            capsys,
            "export",
            str(iris["model_file"]),
            "--sample",
            str(iris["csv"]),
            "--name",
            "iris",
            "-o",
            str(out_file),
        )[0]
        == 0
    )
    bad = iris["dir"] / "bad.csv"
    bad.write_text("sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n")
    code, _, err = run(capsys, "predict", str(out_file), str(bad))
    assert code == 1 and "missing feature 'petal_width'" in err
    bad.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n5.1,wide,1.4,0.2\n")
    code, _, err = run(capsys, "predict", str(out_file), str(bad))
    assert code == 1 and "row 1 (line 3): feature 'sepal_width': expected a number, got 'wide'" in err
    bad.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4\n")
    code, _, err = run(capsys, "predict", str(out_file), str(bad))
    assert code == 1 and "row 0 (line 2): expected 4 fields as in the header, got 3" in err


def test_predict_json_lines(capsys: pytest.CaptureFixture[str], iris: dict[str, Any]) -> None:
    out_file = iris["dir"] / "iris.json"
    assert (
        run(
            capsys,
            "export",
            str(iris["model_file"]),
            "--sample",
            str(iris["csv"]),
            "--name",
            "iris",
            "-o",
            str(out_file),
        )[0]
        == 0
    )
    data = iris["dir"] / "rows.jsonl"
    records = iris["sample"].drop(columns=["species"]).to_dict("records")
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    code, out, err = run(capsys, "predict", str(out_file), str(data), "--proba")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["prediction"] for line in lines] == iris["est"].predict(
        iris["sample"][list(iris["X"].columns)]
    ).tolist()
    assert abs(sum(v for k, v in lines[0].items() if k.startswith("proba_")) - 1) < 1e-12
    assert lines[0]["id"] == 0


def test_export_refusals(
    capsys: pytest.CaptureFixture[str], iris: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    args = ["export", str(iris["model_file"]), "--sample", str(iris["csv"]), "-o", str(tmp_path / "x.json")]
    code, _, err = run(capsys, *args, "--name", "no spaces allowed")
    assert code == 1 and "is not valid" in err and not (tmp_path / "x.json").exists()
    (tmp_path / "thin.csv").write_text("sepal_length,sepal_width\n1,2\n")
    code, _, err = run(
        capsys, "export", str(iris["model_file"]), "--sample", str(tmp_path / "thin.csv"), "--name", "x"
    )
    assert code == 1 and "the CSV lacks ['petal_length', 'petal_width']" in err
    code, _, err = run(
        capsys, "export", str(tmp_path / "nope.joblib"), "--sample", str(iris["csv"]), "--name", "x"
    )
    assert code == 1 and "cannot load" in err


def test_export_of_an_unsupported_estimator(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    from sklearn.dummy import DummyRegressor
    from sklearn.feature_selection import VarianceThreshold

    ms_export._load_families()
    est = next((c() for c in (DummyRegressor, VarianceThreshold) if c not in ms_export.CONVERTERS), None)
    if est is None:
        pytest.skip("every candidate is supported")
    est.fit(np.arange(12.0).reshape(6, 2), np.arange(6.0))
    joblib.dump(est, tmp_path / "u.joblib")
    (tmp_path / "s.csv").write_text("a,b\n1,2\n3,4\n")
    code, _, err = run(
        capsys, "export", str(tmp_path / "u.joblib"), "--sample", str(tmp_path / "s.csv"), "--name", "u"
    )
    assert code == 1 and f"{type(est).__name__} is not supported" in err


def test_export_help_says_the_pickle_must_be_trusted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    text = capsys.readouterr().out
    assert "trust" in text and "only place" in text and "never load pickles" in text


# -- export never writes what validate or the upload limit would refuse (issue 9) --------------------------

def _export(capsys: pytest.CaptureFixture[str], iris: dict[str, Any], out_file: pathlib.Path,
            *more: str) -> tuple[int, str, str]:
    return run(capsys, "export", str(iris["model_file"]), "--sample", str(iris["csv"]), "--name", "iris",
               "-o", str(out_file), *more)


def test_export_over_the_scorer_limit_fails_with_the_figure_and_the_fix(
    capsys: pytest.CaptureFixture[str], iris: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scorer

    # a 300-tree forest with --plain-arrays was 96 MB, over the 64 MiB limit; the same logic, scaled:
    # the limit lowered to between the compact and the plain size of the iris document
    out_file = iris["dir"] / "iris.json"
    assert _export(capsys, iris, out_file)[0] == 0
    compact = out_file.stat().st_size
    assert _export(capsys, iris, out_file, "--plain-arrays")[0] == 0
    plain = out_file.stat().st_size
    out_file.unlink()
    assert compact < plain
    monkeypatch.setattr(scorer, "MAX_DOCUMENT_BYTES", (compact + plain) // 2)
    code, out, err = _export(capsys, iris, out_file, "--plain-arrays")
    assert code == 1 and not out_file.exists() and out == ""
    assert f"{plain:,} bytes" in err and f"{(compact + plain) // 2:,} bytes" in err
    assert "no --plain-arrays" in err and "--compress" in err and "fewer or shallower trees" in err
    code, _, _ = _export(capsys, iris, out_file)
    assert code == 0 and out_file.stat().st_size == compact


def test_export_over_the_default_upload_limit_warns(
    capsys: pytest.CaptureFixture[str], iris: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelsync.service.config import Settings

    out_file = iris["dir"] / "iris.json"
    monkeypatch.setattr(Settings, "max_upload_bytes", 1024)
    code, _, err = _export(capsys, iris, out_file)
    assert code == 0 and out_file.exists()
    assert "warning" in err and "1,024 bytes" in err and "MaxUploadBytes" in err


def test_the_upload_limit_export_warns_about_is_the_template_default() -> None:
    from modelsync import template as tpl
    from modelsync.service.config import Settings

    parameters = tpl.load(pathlib.Path(__file__).resolve().parents[2] / "template.yaml").parameters
    assert Settings.max_upload_bytes == int(parameters["MaxUploadBytes"]["Default"])
    assert Settings.max_request_bytes == int(parameters["MaxRequestBytes"]["Default"])
    assert Settings.max_rows_per_request == int(parameters["MaxRowsPerRequest"]["Default"])


def test_export_model_validates_what_it_produced(iris: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import scorer

    # a converter that gets a coefficient wrong: the test vectors no longer match, export_model says so
    from modelsync.export import export_model

    real_convert = ms_export.convert

    def wrong(est: Any, ctx: Any) -> dict[str, Any]:
        node = real_convert(est, ctx)
        node["intercept"] = ctx.array(np.asarray(est.intercept_) + 5.0)
        return node

    monkeypatch.setattr(ms_export, "convert", wrong)
    with pytest.raises(scorer.InvalidModel) as info:
        export_model(iris["est"], iris["X"].iloc[:5], name="iris")
    problems = info.value.problems
    assert any("test_vectors" in pointer or "test vector" in message for pointer, message in problems)


def test_export_stores_the_baseline_given_or_warns_about_a_small_sample(
        capsys: pytest.CaptureFixture[str], iris: dict[str, Any]) -> None:
    full_csv = iris["dir"] / "train.csv"
    iris["X"].to_csv(full_csv, index=False)
    out_file = iris["dir"] / "iris.json"
    code, _, err = run(capsys, "export", str(iris["model_file"]), "--sample", str(iris["csv"]), "--name",
                       "iris", "-o", str(out_file), "--baseline", str(full_csv))
    assert code == 0, err
    base = json.loads(out_file.read_text())["metadata"]["baseline"]
    assert base["rows"] == len(iris["X"]) and set(base["features"]) == set(iris["X"].columns)
    assert sum(base["features"]["petal_length"]["counts"]) == len(iris["X"])
    assert set(base["prediction"]["counts"]) == {"setosa", "versicolor", "virginica"}
    with pytest.warns(UserWarning, match="drift baseline has 22 rows"):
        code, _, err = run(capsys, "export", str(iris["model_file"]), "--sample", str(iris["csv"]), "--name",
                           "iris", "-o", str(out_file))
    assert code == 0, err
    assert json.loads(out_file.read_text())["metadata"]["baseline"]["rows"] == len(iris["sample"])
