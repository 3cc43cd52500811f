"""Progress bars of the CLI's long work (modelsync/progress.py): shown with rows/s when asked
(MODELSYNC_PROGRESS=1 stands for a terminal), hidden when stderr is not a terminal and with --quiet;
the batch function's "batch progress" log lines drive a bar; the device package never imports tqdm.
Models and tables are generated here."""

from __future__ import annotations

import io
import json
import logging
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from modelsync import progress
from modelsync.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    import joblib
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = LogisticRegression().fit(X, y)
    folder = tmp_path_factory.mktemp("progress")
    doc = export_model(est, X[:200], name="bar", feature_names=["a", "b", "c"])
    paths = {"doc": folder / "bar.json", "csv": folder / "rows.csv", "pickle": folder / "est.joblib"}
    paths["doc"].write_text(json.dumps(doc))
    paths["csv"].write_text("a,b,c\n" + "".join(",".join(map(repr, r)) + "\n" for r in X.tolist()))
    joblib.dump(est, paths["pickle"])
    return paths


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["predict", "device"])
def test_a_bar_with_rows_per_second_when_forced(files: dict[str, pathlib.Path], tmp_path: pathlib.Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], command: str) -> None:
    monkeypatch.setenv(progress.ENV, "1")
    if command == "predict":
        argv = ["predict", str(files["doc"]), str(files["csv"]), "--chunk-rows", "500"]
    else:
        assert main(["device", "install", "--dir", str(tmp_path), str(files["doc"])]) == 0
        capsys.readouterr()
        argv = ["device", "predict", "--dir", str(tmp_path), "--no-telemetry", str(files["csv"])]
    code, out, err = run(argv, capsys)
    assert code == 0 and len(out.splitlines()) == 3001
    assert "rows/s" in err and "predict" in err


@pytest.mark.parametrize("env, quiet", [(None, False), ("1", True), ("0", False)])
def test_no_bar_off_a_terminal_with_quiet_or_switched_off(files: dict[str, pathlib.Path],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str],
                                                          env: str | None, quiet: bool) -> None:
    if env is None:
        monkeypatch.delenv(progress.ENV, raising=False)
    else:
        monkeypatch.setenv(progress.ENV, env)
    code, out, err = run(["predict", str(files["doc"]), str(files["csv"]), *(["--quiet"] if quiet else [])],
                         capsys)
    assert code == 0 and len(out.splitlines()) == 3001
    assert "rows/s" not in err


def test_export_reading_a_sample_shows_a_bar(files: dict[str, pathlib.Path], tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(progress.ENV, "1")
    code, out, err = run(["export", str(files["pickle"]), "--sample", str(files["csv"]), "--name", "bar",
                          "-o", str(tmp_path / "out.json")], capsys)
    assert code == 0 and "wrote" in out
    assert "reading rows.csv" in err and "rows/s" in err
    code, out, err = run(["export", str(files["pickle"]), "--sample", str(files["csv"]), "--name", "bar",
                          "-o", str(tmp_path / "out.json"), "--quiet"], capsys)
    assert code == 0 and "rows/s" not in err


def _progress_record(rows: int, key: str = "batch/input/m/a.csv") -> logging.LogRecord:
    record = logging.LogRecord(progress.BATCH_LOGGER, logging.INFO, __file__, 1, "batch progress", None, None)
    record.__dict__.update({"key": key, "rows": rows, "bytes_read": rows * 10, "bytes_total": 10_000})
    return record


@pytest.mark.parametrize("quiet", [False, True])
def test_batch_progress_lines_drive_a_bar(monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    monkeypatch.setenv(progress.ENV, "1")
    stream = io.StringIO()
    with progress.batch_log_bar("batch", quiet=quiet, stream=stream) as bar:
        kept = [bar.filter(_progress_record(rows)) for rows in (250, 500, 1000)]
        other = _progress_record(5)
        other.msg = "something else"
        assert bar.filter(other)
    if quiet:
        assert all(kept) and stream.getvalue() == ""  # the log lines stay: no bar shows them
    else:
        assert not any(kept)  # shown as the bar instead of log lines
        text = stream.getvalue()
        assert "batch batch/input/m/a.csv" in text and "rows/s" in text and "1.00k" in text


def test_the_batch_function_logs_progress_per_chunk(caplog: pytest.LogCaptureFixture) -> None:
    from modelsync.service.batch import ProgressLog
    from scorer.tabular import Counts

    log = logging.getLogger(progress.BATCH_LOGGER)
    caplog.set_level(logging.INFO, logger=progress.BATCH_LOGGER)
    report = ProgressLog(log, "batch/input/m/a.csv", 1000, first_byte=100)
    report(Counts(rows=10, scored=9, errors=1), 300)
    report(Counts(rows=20, scored=19, errors=1), 600)
    lines = [r for r in caplog.records if r.getMessage() == "batch progress"]
    seen = [(r.rows, r.bytes_read, r.bytes_total, r.rows_per_s > 0) for r in lines]  # type: ignore[attr-defined]
    assert seen == [(10, 200, 1000, True), (20, 500, 1000, True)]


def test_the_device_package_never_imports_tqdm() -> None:
    code = ("import sys, modelsync_device.__main__, modelsync_device.cli, scorer.tabular; "
            "sys.exit('tqdm' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
