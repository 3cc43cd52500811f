"""One set of tricky tables through every path that reads rows, byte for byte the same answer.

Paths: ``modelsync predict`` (CLI subprocess), the Batch function on the local stack (scheduled run over
``batch/input/``), and ``modelsync device predict`` after a ``modelsync device sync`` from the stack.
The inputs are generated here: missing-value tokens, a categorical column whose declared categories
include ``"NA"``, quoted line breaks / commas / quotes, a BOM, CRLF, a blank line, bad rows of every
kind (bad numbers, a short record, an unknown category, a line that is not UTF-8, broken JSON), a
multi-class classifier with string labels (probabilities) and a multi-output regressor.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO, Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]

PETS = "conf-pets"
MULTI = "conf-multi"

# (id, size, weight, colour): colour's declared categories are ["NA", "blue", "red"]
PET_ROWS: list[tuple[str, str, str, str]] = [
    ("p1", "1.5", "3", "red"),
    ('two\r\nlines, a "quote"', "2.25", "NA", "blue"),  # quoted CRLF, comma and quotes in a carried column
    ("p3", "N/A", "4.5", "NA"),  # a missing number; "NA" stays the declared category
    ("p4", "none", "null", "red"),
    ("p5", "-1e-1", "7.", "blue"),
    ("p6", "", "2E0", "NA"),
    ("p7", "NaN", ".5", "red"),
]
# inserted before the good row of the same index: (CSV line or raw bytes, reason the batch reports)
PET_BAD: dict[int, list[tuple[Any, str]]] = {
    1: [(("b1", "abc", "1", "red"), "feature 'size': expected a number, got 'abc'")],
    3: [(("b2", "1_0", "1", "red"), "feature 'size': expected a number, got '1_0'"),
        (b"b3,1,2\r\n", "expected 4 fields as in the header, got 3")],
    5: [(("b4", "1", "2", "purple"), "feature 'colour': unknown category 'purple'"),
        (b"b5,1,2,r\xffd\r\n", "is not UTF-8"),
        (("b6", " 1", "2", "red"), "feature 'size': expected a number, got ' 1'")],
}
MULTI_ROWS = [("1", "2"), ("NA", "3.5"), ('4', "null"), ("-2", "1e1")]


def _csv_line(cells: tuple[str, ...]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(cells)
    return buf.getvalue().encode()


def pets_csv(with_bad: bool) -> tuple[bytes, list[tuple[int, str]]]:
    """BOM, CRLF, a blank line after the header; with_bad: the bad rows and (line, reason) expected."""
    out = [b"\xef\xbb\xbfid,size,weight,colour\r\n", b"\r\n"]
    expected: list[tuple[int, str]] = []
    line = 3
    for i, row in enumerate(PET_ROWS):
        for bad, reason in PET_BAD.get(i, []) if with_bad else []:
            raw = bad if isinstance(bad, bytes) else _csv_line(bad)
            out.append(raw)
            expected.append((line, reason))
            line += raw.count(b"\n")
        raw = _csv_line(row)
        out.append(raw)
        line += raw.count(b"\n")
    return b"".join(out), expected


def pets_jsonl(with_bad: bool) -> tuple[bytes, list[tuple[int, str]]]:
    def typed(v: str) -> Any:  # numbers as JSON numbers, tokens as text (read by the same cell rule)
        try:
            return json.loads(v) if v not in ("NaN",) else v
        except ValueError:
            return v

    lines: list[str] = []
    expected: list[tuple[int, str]] = []
    bad_lines = {
        2: [('{"id": "j1", "size": NaN, "weight": 1, "colour": "red"}', "not valid JSON"),
            ('{"id": "j2", "size": 1, "size": 2, "weight": 1, "colour": "red"}', "duplicate key 'size'")],
        4: [("[" * 50_000 + "]" * 50_000, "not valid JSON: nested too deeply"),
            ('{"id": "j4", "size": 1, "colour": "red"}', "missing feature 'weight'"),
            ('{"id": "j5", "size": true, "weight": 1, "colour": "red"}',
             "feature 'size': expected a number, got true")],
    }
    for i, (rid, size, weight, colour) in enumerate(PET_ROWS):
        for text, reason in bad_lines.get(i, []) if with_bad else []:
            lines.append(text)
            expected.append((len(lines), reason))
        lines.append(json.dumps({"id": rid, "size": typed(size), "weight": typed(weight), "colour": colour}))
    return ("\n".join(lines) + "\n").encode(), expected


def multi_csv() -> bytes:
    return b"a,b\n" + b"".join(_csv_line(r).replace(b"\r\n", b"\n") for r in MULTI_ROWS)


# -- models -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelsync.export import export_model

    rng = np.random.RandomState(0)
    n = 90
    frame = pd.DataFrame({"size": rng.uniform(0, 5, n), "weight": rng.uniform(1, 9, n),
                          "colour": rng.choice(["red", "blue", "NA"], n)})
    frame.loc[::7, "size"] = np.nan
    labels = np.array(["cat", "dog", "emu"])[(frame["weight"] // 3).astype(int).clip(0, 2)]
    prep = ColumnTransformer([("oh", OneHotEncoder(handle_unknown="error"), ["colour"]),
                              ("num", SimpleImputer(), ["size", "weight"])])
    pets = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))]).fit(frame, labels)
    X = pd.DataFrame(rng.uniform(-3, 3, (40, 2)), columns=["a", "b"])
    X.iloc[::5, 0] = np.nan
    Y = np.c_[np.nan_to_num(X["a"]) * 2 + X["b"], X["b"] - 1]
    multi = Pipeline([("imp", SimpleImputer()), ("lr", LinearRegression())]).fit(X, Y)
    return {PETS: export_model(pets, frame.iloc[:12], name=PETS),
            MULTI: export_model(multi, X.iloc[:8], name=MULTI)}


@dataclass
class Paths:
    stack: Stack
    tmp: Path
    versions: dict[str, int]
    device_dir: Path

    def cli(self, model: str, data: bytes, name: str, proba: bool) -> subprocess.CompletedProcess[bytes]:
        doc = self.tmp / f"{model}.json"
        src = self.tmp / name
        src.write_bytes(data)
        return _run("predict", str(doc), str(src), *(["--proba"] if proba else []))

    def device(self, model: str, data: bytes, name: str) -> subprocess.CompletedProcess[bytes]:
        src = self.tmp / f"device-{name}"
        src.write_bytes(data)
        return _run("device", "predict", "--dir", str(self.device_dir), "--model", model, "--no-telemetry",
                    str(src))

    def batch(self, model: str, data: bytes, name: str) -> tuple[bytes, list[dict[str, Any]]]:
        s3, bucket, v = self.stack.client("s3"), self.stack.bucket, self.versions[model]
        s3.put_object(Bucket=bucket, Key=f"batch/input/{model}/v{v}/{name}", Body=data)
        stem, ext = name.rsplit(".", 1)
        prefix = f"batch/output/{model}/{stem}.v{v}"

        def manifest() -> Any:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            return any(o["Key"] == f"{prefix}.manifest.json" for o in listed)

        wait_for(f"{prefix}.manifest.json (the scheduled Batch run)", manifest, timeout=40)
        out = s3.get_object(Bucket=bucket, Key=f"{prefix}.{ext}")["Body"].read()
        errors = s3.get_object(Bucket=bucket, Key=f"{prefix}.errors.jsonl")["Body"].read().decode()
        return out, [json.loads(line) for line in errors.splitlines()]


def _run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "modelsync.cli", *argv], cwd=REPO, capture_output=True,
                          timeout=120)


@pytest.fixture(scope="module")
def paths(stack: Stack, docs: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Paths:
    tmp = tmp_path_factory.mktemp("conformance")
    versions: dict[str, int] = {}
    for model, doc in docs.items():
        (tmp / f"{model}.json").write_text(json.dumps(doc))
        stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{model}/model.json",
                                      Body=json.dumps(doc).encode(), ContentType="application/json")

        def version(model: str = model, sha: str = doc["sha256"]) -> Any:
            r = stack.http("GET", f"/models/{model}")
            mine = [v["version"] for v in r.json().get("versions", []) if v["sha256"] == sha] \
                if r.status == 200 else []
            return mine and mine[0]

        versions[model] = int(wait_for(f"{model} published", version, timeout=30))
    device_dir = tmp / "device"
    for model in docs:
        synced = _run("device", "sync", "--api", stack.api, "--model", model, "--dir", str(device_dir),
                      "--alias", "latest", "--once", "--no-telemetry")
        assert synced.returncode == 0, synced.stderr.decode()[-2000:]
        assert json.loads(synced.stdout)["status"] == "updated"
    return Paths(stack, tmp, versions, device_dir)


def _first_error(stderr: bytes) -> tuple[int, str]:
    """(line, reason) of the 'row R (line L): reason' message a CLI path stopped at."""
    m = re.search(r"row \d+ \(line (\d+)\): (.*)", stderr.decode())
    assert m, stderr.decode()[-2000:]
    return int(m.group(1)), m.group(2).strip()


# -- the conformance tests ------------------------------------------------------------------------

def test_pets_csv_is_byte_identical_on_every_path(paths: Paths) -> None:
    data, _ = pets_csv(with_bad=False)
    cli = paths.cli(PETS, data, "pets.csv", proba=True)
    assert cli.returncode == 0, cli.stderr.decode()
    device = paths.device(PETS, data, "pets.csv")
    assert device.returncode == 0, device.stderr.decode()
    batch, errors = paths.batch(PETS, data, "pets.csv")
    assert errors == []
    assert cli.stdout == device.stdout == batch
    # what they agree on is the documented shape and cell rule
    rows = list(csv.reader(io.StringIO(cli.stdout.decode())))
    assert rows[0] == ["id", "size", "weight", "colour", "prediction", "proba_cat", "proba_dog", "proba_emu"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in PET_ROWS]  # the quoted CRLF survives in its cell
    assert [r[3] for r in rows[1:]] == [r[3] for r in PET_ROWS]
    assert all(r[4] in ("cat", "dog", "emu") and abs(sum(map(float, r[5:])) - 1) < 1e-12 for r in rows[1:])


def test_pets_csv_with_bad_rows(paths: Paths) -> None:
    data, expected = pets_csv(with_bad=True)
    good, _ = pets_csv(with_bad=False)
    batch, errors = paths.batch(PETS, data, "pets-bad.csv")
    # the good rows score exactly as in the file without the bad ones
    assert batch == paths.cli(PETS, good, "pets-good.csv", proba=True).stdout
    assert [e["line"] for e in errors] == [line for line, _ in expected]
    for e, (_, reason) in zip(errors, expected, strict=True):
        assert reason in e["reason"], (e, reason)
    # the CLI and the device stop at the first bad row and say what the batch wrote first
    cli = paths.cli(PETS, data, "pets-bad.csv", proba=True)
    device = paths.device(PETS, data, "pets-bad.csv")
    assert cli.returncode == 1 and device.returncode == 1
    first = (errors[0]["line"], errors[0]["reason"])
    assert _first_error(cli.stderr) == _first_error(device.stderr) == first


def test_pets_jsonl_cli_and_batch(paths: Paths) -> None:
    data, _ = pets_jsonl(with_bad=False)
    cli = paths.cli(PETS, data, "pets.jsonl", proba=True)
    assert cli.returncode == 0, cli.stderr.decode()
    batch, errors = paths.batch(PETS, data, "pets-json.jsonl")  # stems are per model, not per format
    assert errors == [] and cli.stdout == batch
    first = json.loads(cli.stdout.splitlines()[0])
    assert list(first)[-4:] == ["prediction", "proba_cat", "proba_dog", "proba_emu"]  # flat keys, as in CSV
    # the same cells, as CSV or as JSON, get the same answers
    as_csv = paths.cli(PETS, pets_csv(False)[0], "p.csv", True).stdout.decode()
    csv_rows = list(csv.DictReader(io.StringIO(as_csv)))
    for obj, row in zip((json.loads(line) for line in cli.stdout.splitlines()), csv_rows, strict=True):
        assert obj["prediction"] == row["prediction"]
        assert [repr(obj[k]) for k in ("proba_cat", "proba_dog", "proba_emu")] == \
            [row[k] for k in ("proba_cat", "proba_dog", "proba_emu")]


def test_pets_jsonl_with_bad_rows(paths: Paths) -> None:
    data, expected = pets_jsonl(with_bad=True)
    batch, errors = paths.batch(PETS, data, "pets-json-bad.jsonl")
    assert batch == paths.cli(PETS, pets_jsonl(False)[0], "pets-good.jsonl", proba=True).stdout
    assert [e["line"] for e in errors] == [line for line, _ in expected]
    for e, (_, reason) in zip(errors, expected, strict=True):
        assert reason in e["reason"], (e, reason)
    cli = paths.cli(PETS, data, "pets-bad.jsonl", proba=True)
    assert cli.returncode == 1 and _first_error(cli.stderr) == (errors[0]["line"], errors[0]["reason"])


def test_multi_output_regressor_on_every_path(paths: Paths) -> None:
    data = multi_csv()
    cli = paths.cli(MULTI, data, "multi.csv", proba=False)
    assert cli.returncode == 0, cli.stderr.decode()
    device = paths.device(MULTI, data, "multi.csv")
    batch, errors = paths.batch(MULTI, data, "multi.csv")
    assert errors == [] and cli.stdout == device.stdout == batch
    lines = cli.stdout.decode().splitlines()
    assert lines[0] == "a,b,prediction_0,prediction_1" and len(lines) == len(MULTI_ROWS) + 1
    assert all(line.count(",") == 3 and "[" not in line for line in lines)
