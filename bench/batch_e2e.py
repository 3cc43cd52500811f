"""Batch end to end: the batch function's own code on a large CSV / JSON Lines input, against the scorer.

    .venv/bin/python bench/run.py --only batch_e2e [--quick]
    .venv/bin/python bench/batch_e2e.py [--quick] [--rows N]   # the same section printed alone; --rows:
                                                            # N-row inputs, no 1 GB run (a quick A/B)

Each run is a fresh child process calling ``modelsync.service.batch.score_input`` (what the Batch
function's scheduled run does for one input) with a local-file stand-in for S3 (:class:`LocalS3`: the
calls batch makes, streamed from and to files), so it measures reading, parsing, scoring and writing,
and its peak RSS (``VmHWM``) is the batch's alone. The in-memory figure is the scorer on the same rows
as a float64 matrix, doing what the batch computes (``predict`` and ``predict_proba``), in another child.
Inputs are generated once into a temporary directory (the benchmark's test rows, tiled; numbers written
with ``repr``, as a float exported by Python is) and deleted after. Targets (issue 13): e2e throughput
at least half the in-memory one, JSON Lines within 2x of CSV, peak RSS under 512 MB at 1 GB of input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(REPO), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

from _section import Section, Target, passed  # noqa: E402

MODELS = (("rf", "RandomForestClassifier"), ("logreg", "LogisticRegression"))
FULL = {"rows": 1_000_000, "jsonl_rows": 1_000_000, "big_bytes": 1 << 30, "mem_rows": 200_000}
QUICK = {"rows": 50_000, "jsonl_rows": 50_000, "big_bytes": 0, "mem_rows": 50_000}
RSS_LIMIT_MB = 512
E2E_TARGET = 0.5  # e2e rows/s / in-memory rows/s
JSONL_TARGET = 2.0  # JSONL seconds / CSV seconds


# -- a local-file S3 -----------------------------------------------------------------------------------

class _Body:
    def __init__(self, path: Path) -> None:
        self._f = path.open("rb")

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def close(self) -> None:
        self._f.close()


class LocalS3:
    """The S3 calls the batch code makes, on files under ``root`` (bucket/key); parts are appended to
    the object's file as they come, so nothing is held in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._uploads: dict[str, Any] = {}

    def _path(self, bucket: str, key: str) -> Path:
        p = self.root / bucket / key
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        size = self._path(Bucket, Key).stat().st_size
        return {"ETag": f'"{size:x}"', "ContentLength": size}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        return {"Body": _Body(self._path(Bucket, Key))}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._path(Bucket, Key).write_bytes(Body)
        return {}

    def create_multipart_upload(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        upload = f"u{len(self._uploads)}"
        self._uploads[upload] = self._path(Bucket, Key + ".part").open("wb")
        return {"UploadId": upload}

    def upload_part(self, Bucket: str, Key: str, UploadId: str, PartNumber: int,
                    Body: bytes) -> dict[str, Any]:
        self._uploads[UploadId].write(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, Bucket: str, Key: str, UploadId: str, **_: Any
                                  ) -> dict[str, Any]:
        self._uploads.pop(UploadId).close()
        self._path(Bucket, Key + ".part").replace(self._path(Bucket, Key))
        return {}

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        self._uploads.pop(UploadId).close()
        self._path(Bucket, Key + ".part").unlink(missing_ok=True)
        return {}


# -- the children ---------------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_e2e(doc: str, root: str, key: str) -> dict[str, Any]:
    import logging

    import scorer
    from modelsync.service import batch, layout
    from modelsync.service.config import Settings

    logging.getLogger("modelsync").setLevel(logging.WARNING)  # no progress lines on the bench's stderr
    model = scorer.load_model(Path(doc).read_text())
    ctx = batch.BatchContext(s3=LocalS3(Path(root)), registry=None,  # type: ignore[arg-type]
                             settings=Settings(models_bucket="bench", registry_table=""),
                             load_model=lambda record: model)
    inp = layout.parse_batch_input(key)
    assert inp is not None
    t0 = time.perf_counter()
    result = batch.score_input(ctx, inp, {"version": 1, "sha256": model.sha256})
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": result.rows, "scored": result.scored, "errors": result.errors,
            "rss_mb": _peak_rss_mb(), "chunk_rows": ctx.settings.batch_chunk_rows}


def child_memory(doc: str, task_rows: int) -> dict[str, Any]:
    import numpy as np
    import run

    import scorer

    _, _, Xte, _ = run.make_data("classification")
    X = np.ascontiguousarray(np.resize(Xte, (task_rows, Xte.shape[1])))
    model = scorer.load_model(Path(doc).read_text())
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(X)
        model.predict_proba(X)
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "rows": task_rows}


def _child(mode: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(BENCH)])}
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--child", mode, *args], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- inputs ---------------------------------------------------------------------------------------------

def _models() -> dict[str, Path]:
    """The benchmark's forest and logistic model documents (run.py's fits and exports, cached)."""
    import run

    run.CACHE.mkdir(parents=True, exist_ok=True)
    src = run.source_hash(REPO / "modelsync" / "export", REPO / "scorer")
    specs = {s.name: s for s in run._specs()}
    out = {}
    for name, _ in MODELS:
        spec = specs[name]
        Xtr, ytr, Xte, _ = run.make_data(spec.task)
        est, key, _ = run.fit_cached(spec, Xtr, ytr)
        out[name] = run.export_cached(spec, est, key, Xte[:run.TEST_VECTOR_ROWS], src)
    return out


def _write_inputs(folder: Path, rows: int, jsonl_rows: int, big_bytes: int) -> dict[str, Path]:
    """CSV and JSON Lines of the benchmark's test rows, tiled to ``rows``; a CSV of at least
    ``big_bytes`` by repeating the first one's data lines."""
    import numpy as np
    import run

    _, _, Xte, _ = run.make_data("classification")
    names = [f"x{j}" for j in range(Xte.shape[1])]
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, jsonl_path = folder / "rows.csv", folder / "rows.jsonl"
    with csv_path.open("w") as csv_f, jsonl_path.open("w") as jsonl_f:
        csv_f.write(",".join(names) + "\n")
        keys = [f'"{n}": ' for n in names]
        for start in range(0, max(rows, jsonl_rows), 50_000):
            n = min(50_000, max(rows, jsonl_rows) - start)
            block = np.resize(np.roll(Xte, -(start % len(Xte)), axis=0), (n, Xte.shape[1])).tolist()
            if start < rows:
                csv_f.write("".join(",".join(map(repr, r)) + "\n" for r in block[:rows - start]))
            if start < jsonl_rows:
                jsonl_f.write("".join("{" + ", ".join(k + repr(v) for k, v in zip(keys, r, strict=True))
                                      + "}\n" for r in block[:jsonl_rows - start]))
    paths = {"csv": csv_path, "jsonl": jsonl_path}
    if big_bytes:
        big = folder / "big.csv"
        with csv_path.open("rb") as src, big.open("wb") as dst:
            header = src.readline()
            dst.write(header)
            while dst.tell() < big_bytes:
                src.seek(len(header))
                shutil.copyfileobj(src, dst, 16 << 20)
        paths["big"] = big
    return paths


# -- the section ------------------------------------------------------------------------------------------

def _stage(root: Path, model: str, path: Path) -> str:
    """Link an input into the fake bucket as a batch input of ``model``; return its key."""
    key = f"batch/input/{model}/{path.name}"
    target = root / "bench" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    os.link(path, target)
    return key


def measure(quick: bool, rows: int | None = None) -> dict[str, Any]:
    cfg = dict(QUICK if quick else FULL)
    if rows:
        cfg.update(rows=rows, jsonl_rows=rows, big_bytes=0)
    docs = _models()
    tmp = Path(tempfile.mkdtemp(prefix="modelsync-batch-bench-"))
    out: dict[str, Any] = {"cfg": cfg, "runs": {}, "memory": {}}
    try:
        t0 = time.perf_counter()
        inputs = _write_inputs(tmp / "inputs", cfg["rows"], cfg["jsonl_rows"], cfg["big_bytes"])
        out["generate_s"] = time.perf_counter() - t0
        out["sizes"] = {k: p.stat().st_size for k, p in inputs.items()}
        root = tmp / "s3"
        for name, _ in MODELS:
            out["memory"][name] = _child("memory", str(docs[name]), str(cfg["mem_rows"]))
            kinds = ["csv", "jsonl"] + (["big"] if "big" in inputs and name == "logreg" else [])
            for kind in kinds:
                key = _stage(root, name, inputs[kind])
                out["runs"][(name, kind)] = _child("e2e", str(docs[name]), str(root), key)
                shutil.rmtree(root / "bench" / "batch" / "output", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _fmt_rate(rows: float, seconds: float) -> str:
    return f"{rows / seconds:,.0f}"


def section(quick: bool, rows: int | None = None) -> Section:
    m = measure(quick, rows)
    labels = dict(MODELS)
    rows_md = ["| model | input | rows | size | e2e time | e2e rows/s | in-memory rows/s | e2e / in-memory | "
               "peak RSS |", "|---|---|---|---|---|---|---|---|---|"]
    targets: list[Target] = []
    kind_label = {"csv": "CSV", "jsonl": "JSON Lines", "big": "CSV, 1 GB"}
    size_key = {"csv": "csv", "jsonl": "jsonl", "big": "big"}
    peak = 0.0
    for (name, kind), r in m["runs"].items():
        mem = m["memory"][name]
        mem_rate = mem["rows"] / mem["seconds"]
        rate = r["rows"] / r["seconds"]
        ratio = rate / mem_rate
        peak = max(peak, r["rss_mb"])
        rows_md.append(f"| {labels[name]} | {kind_label[kind]} | {r['rows']:,} | "
                       f"{m['sizes'][size_key[kind]] / 2**20:,.0f} MiB | {r['seconds']:.2f} s | "
                       f"{_fmt_rate(r['rows'], r['seconds'])} | {mem_rate:,.0f} | {ratio:.3f}× | "
                       f"{r['rss_mb']:.0f} MB |")
        if kind == "csv":
            targets.append(Target(f"batch e2e: {labels[name]} CSV ≥ {E2E_TARGET}× the scorer in memory",
                                  f"{ratio:.3f}×", passed(ratio >= E2E_TARGET)))
        if kind == "jsonl":
            csv_rate = m["runs"][(name, "csv")]["rows"] / m["runs"][(name, "csv")]["seconds"]
            slower = csv_rate / rate
            targets.append(Target(f"batch e2e: {labels[name]} JSON Lines ≤ {JSONL_TARGET}× CSV's time",
                                  f"{slower:.2f}×", passed(slower <= JSONL_TARGET)))
    big = m["runs"].get(("logreg", "big"))
    if big is not None:
        targets.append(Target(f"batch e2e: peak RSS < {RSS_LIMIT_MB} MB at 1 GB of input",
                              f"{big['rss_mb']:.0f} MB (max over all runs {peak:.0f} MB)",
                              passed(max(big["rss_mb"], peak) < RSS_LIMIT_MB)))
    else:
        targets.append(Target(f"batch e2e: peak RSS < {RSS_LIMIT_MB} MB at 1 GB of input",
                              f"{peak:.0f} MB (max, small inputs)",
                              "not measured at 1 GB (--quick or --rows)"))
    cfg = m["cfg"]
    chunk_rows = next(iter(m["runs"].values()))["chunk_rows"]
    body = "\n".join([
        f"`modelsync.service.batch.score_input` (the Batch function's scheduled path for one input) in a "
        f"fresh process per run, on a local-file stand-in for S3 (reads streamed, outputs as multipart "
        f"parts appended to a file), `batch_chunk_rows` = {chunk_rows:,}. "
        f"Input: the benchmark's test rows tiled to {cfg['rows']:,} rows x 20 features "
        f"(numbers as Python's `repr`); output: the input columns + prediction + one proba column per "
        f"class. In-memory: `predict` + `predict_proba` on {cfg['mem_rows']:,} rows as a float64 matrix "
        f"(best of 3), the work the batch does per row. Peak RSS: the child's `VmHWM`. Inputs generated "
        f"in {m['generate_s']:.0f} s into a temporary directory and deleted. A 2-core machine shared with "
        f"other work: figures are noisy.",
        "",
        *rows_md,
        "",
        "Where the time goes (cProfile of the CSV path): the number parsing. Plain blocks (digits, signs,"
        " points, exponents, commas) are parsed with one `numpy.loadtxt` call per block (numpy's C text "
        "reader; every cell goes through CPython's correctly rounded `PyOS_string_to_double`): ~0.3 µs "
        "for a 17-digit `repr` number, ~6 µs per 20-feature row, close to the forest's own time per row "
        "(predict + predict_proba) and ~100x the logistic model's, so the 0.5x target is out of reach for"
        " the logistic model by construction and borderline for the forest. Output: the plain lines are "
        "written back as the bytes read, plus one `repr` per output float (~1 µs each). The next block is"
        " read and parsed by one worker thread while this one is scored (`batch.read_ahead`, one chunk "
        "queued) and full output parts are uploaded by another (one in flight): on S3 the network reads "
        "and writes overlap the CPU work; CPU work overlaps CPU work only while numpy runs without the "
        "GIL (every cell's conversion and every output `repr` need it), and on this shared 2-core machine"
        " the threads showed no reliable gain: A/B at 200,000 rows (fresh processes calling "
        "`score_input` as here, alternated, load 2-3) the CSV path took 3-9% (forest) and 12% (logistic) "
        "less time than the code of 2026-12-05, from less CPU per row (the C reader ~15% less per cell "
        "than `numpy.fromstring`, no decode/split of the written lines); JSON Lines ~2%. The forest's "
        "input check (`float32_checks`, one `np.vdot` per call) wakes OpenBLAS's thread pool, whose "
        "spinning thread then holds the second core (CPU time ~1.5x wall for one scoring thread); with "
        "`OPENBLAS_NUM_THREADS=1` the in-memory forest scored ~20% more rows/s on this machine. Tried: "
        "the csv module and per-cell Python work are gone (bulk path, ~2-3x faster than before); an exact"
        " vectorised parser in numpy (digits to a uint64 mantissa, long-double division, midpoint check) "
        "was bit-identical but 2.5x slower than `fromstring` (byte-level numpy passes cost more than C "
        "strtod) and was dropped; blocks of 20,000 rows by default instead of 5,000 (the forest scores "
        "5,000-row blocks at about half its large-block rate). JSON Lines: one strict decoder reused (~16"
        " µs a row of 20 numbers), a chunk's features read into one matrix in one call, rows re-encoded "
        "by a C encoder built once; it stays bound by parsing every input number and re-encoding it as "
        "the one output shape requires (byte-identical to before): the encoder spends ~0.75 µs per "
        "17-digit input number in `float.__repr__` (shortest round trip, ~15 µs a row), about the parse, "
        "and both need the GIL (no overlap by threads), so JSON Lines costs ~3x (forest) to ~5x "
        "(logistic) CSV's time on these rows. Writing an input line's own text back instead needs a proof"
        " per number that it is `repr`'s spelling, which costs a `repr`.",
    ])
    return Section("Batch end to end", body, targets)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, default=None, help="rows of the CSV and JSON Lines inputs "
                    "(no 1 GB run): a shorter A/B of the batch code")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, *rest = args.child
        result = child_e2e(*rest) if mode == "e2e" else child_memory(rest[0], int(rest[1]))
        print(json.dumps(result))
        return 0
    s = section(args.quick, args.rows)
    print(f"## {s.title}\n\n{s.body}\n")
    for t in s.targets:
        print(f"- {t.target}: {t.figure} {t.verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
