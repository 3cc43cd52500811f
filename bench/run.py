#!/usr/bin/env python3
"""modelsync's benchmark: the scorer against scikit-learn and onnxruntime, on one machine, in one run.

    .venv/bin/python bench/run.py [--write bench/RESULTS.md] [--quick] [--only NAME[,NAME...]]
                                  [--unset-openblas-env] [--strict]

Fits each model once (cached under bench/.cache/ as joblib, ONNX and the exported JSON document),
checks that the scorer's outputs equal scikit-learn's, then measures batch throughput, single-row
latency, cold start (fresh processes) and size, each against its target. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import gzip
import hashlib
import importlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CACHE = BENCH / ".cache"
COLD_SCRIPT = BENCH / "_cold_start.py"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_MARK = "MODELSYNC_BENCH_REEXECED"
_REMOVED_MARK = "MODELSYNC_BENCH_REMOVED_ENV"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# -- configuration ----------------------------------------------------------------------------------

DATA = {"n_train": 20_000, "n_test": 100_000, "n_features": 20, "random_state": 0,
        "n_informative": 10, "n_redundant": 4}
# "budget": seconds one runtime may spend on one model's batch repeats / latency calls before the
# remaining repeats or calls are skipped (a slow implementation must not blow the run time; the report
# then says how many were done).
FULL = {"rows": 100_000, "repeat": 5, "calls": 1_000, "cold_runs": 5, "budget": 45.0}
QUICK = {"rows": 20_000, "repeat": 3, "calls": 300, "cold_runs": 3, "budget": 10.0}
TEST_VECTOR_ROWS = 25
NON_TREE_TOL = 1e-9  # the project's parity tolerance (docs/CONTRIBUTING.md)
TARGETS = {
    "batch": 1.0,          # scorer time / sklearn (or the library's) time, non-tree models
    "batch_tree": 0.5,     # the same for tree models, whatever their size (issue 13)
    "lat_sklearn": 1 / 20,  # scorer latency / sklearn latency: the MLP (issue 13); informational otherwise
    "lat_onnx": 2.0,       # scorer latency / onnxruntime latency, every model
    "cold_sklearn": 1 / 5,  # scorer cold start / sklearn cold start
    "cold_onnx": 1.0,      # scorer cold start / onnxruntime cold start
    "size_onnx": 1.5,      # forest document bytes / ONNX bytes
}
SECTIONS = ("batch", "latency", "cold", "size")
# Benchmarks in their own modules (bench/<module>.py, ``section(quick) -> _section.Section``), run after the
# model benchmarks; each name is also an ``--only`` choice.
EXTRA_SECTIONS: dict[str, str] = {
    "batch_e2e": "batch_e2e",  # the batch function end to end (bench/batch_e2e.py)
    "cold_start": "cold_start",  # Lambda cold start of each function + the first request
    "warm": "warm",  # a single-row request through the Score handler, model cached; registry reads
    "local_api": "local_api",  # requests/s and p50/p99 through modelsync local with 8 clients
}


# For each scorer target that can miss: what bounds it (profiled with cProfile on 2026-12-05) and what was
# tried. run.py prints the line under the summary whenever that target FAILs, so the committed table says
# why (see also "Where the scorer's time goes" in bench/README.md).
MISS_NOTES: dict[tuple[str, str], str] = {
    ("rf", "lat_ort"): "one row through 100 trees of depth 10 walks the level tables in three steps "
    "(4 + 3 + 3 levels, ~8 numpy calls of ~1 µs each per step: gathers of the subtrees' columns and "
    "thresholds and of the row's values, the comparisons read as one integer, a multiply gathering their "
    "bits, the exit looked up) plus ~12 µs of row check, leaf values, sums and division. Tried: a level "
    "at a time (~60 calls, 2.0×), a Python list walk (`_forest/rowwalk.py`, 2× slower at 75k nodes: the "
    "lists leave the CPU caches), four-level steps everywhere (two words of comparisons: no faster), "
    "`packbits` or a remainder instead of the multiply (slower).",
    ("rf", "batch"): "memory-bound element work over (tree × row) lanes, ~7 numpy operations per level and "
    "lane. Tried: larger chunks (no change), the bit-vector layout (slower for deep forests).",
    ("rf10", "batch"): "as the 100-tree forest: per-element lane work; with 10 trees scikit-learn's own "
    "per-row cost is small, so fixed per-chunk costs weigh more. Tried: larger chunks, bit-vector layout.",
    ("rf10", "lat_ort"): "the Python list walk of 10 trees (~10 levels each).",
    ("hgb_es", "batch"): "scikit-learn needs ~0.9 µs a row for 16 trees; ours is dominated by the threshold "
    "ranks of 20 features and the C library's exp per row (needed for bit-exact probabilities). Tried: "
    "comparing each value with every threshold instead of a binary search (slower, reverted).",
    ("hgb_es", "lat_ort"): "the Python list walk of 16 trees plus the scalar expit.",
    ("xgb", "lat_ort"): "the bit-vector single-row step (~22 of 38 µs: ranks + masks in numpy). Tried: "
    "float32 sigmoid on Python floats (`round32`), one `accumulate` per row.",
    ("xgb", "batch"): "measured against XGBoost's own compiled C++ `inplace_predict`, not scikit-learn.",
    ("lgbm", "lat_ort"): "the bit-vector single-row step, as XGBoost.",
    ("hgb", "lat_ort"): "the bit-vector single-row step (ranks of 20 features, masks, leaf lookup).",
    ("gbr", "lat_ort"): "the bit-vector single-row step of 100 shallow trees.",
    ("mlp", "lat_sk"): "two small matrix products through `ndarray.dot` plus the softmax; numpy's call "
    "overhead (~1 µs per call) against scikit-learn's own per-call overhead.",
}


@dataclass
class Spec:
    name: str
    label: str
    task: str  # "classification" | "regression"
    method: str
    tree: bool
    make: Callable[[], Any]
    params: dict[str, Any]
    fit_jobs: bool = False  # fit with n_jobs=-1, predict with n_jobs=1 (same fitted trees)
    tol: float | None = None  # tree models whose library computes in float32 (XGBoost): this tolerance
    # the "sklearn" column of XGBoost / LightGBM: the library's own fastest predict (est -> callable on X)
    library: Callable[[Any], Callable[[Any], Any]] | None = None
    lat_sklearn_target: bool = False  # whether "scorer <= 1/20 of sklearn" is a target for this model
    onnx: Callable[[Any, Any, int], Any] | None = None  # converter (est, input type, opset); else skl2onnx


def _specs() -> list[Spec]:
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    rf = {"n_estimators": 100, "max_depth": 10, "random_state": 0, "n_jobs": 1}
    rf10 = {**rf, "n_estimators": 10}
    hgb = {"max_iter": 100, "early_stopping": False, "random_state": 0}
    # early stopping after 16 trees (the fixed costs of a small ensemble show)
    hgb_es = {"max_iter": 100, "early_stopping": True, "learning_rate": 1.0, "random_state": 0}
    gbr = {"n_estimators": 100, "random_state": 0}
    lr = {"max_iter": 1000}
    mlp = {"hidden_layer_sizes": (100,), "max_iter": 30, "random_state": 0}
    return [
        Spec("rf", "RandomForestClassifier", "classification", "predict_proba", True,
             lambda: RandomForestClassifier(**rf), rf, fit_jobs=True),
        Spec("rf10", "RandomForestClassifier (10 trees)", "classification", "predict_proba", True,
             lambda: RandomForestClassifier(**rf10), rf10, fit_jobs=True),
        Spec("hgb", "HistGradientBoostingClassifier", "classification", "predict_proba", True,
             lambda: HistGradientBoostingClassifier(**hgb), hgb),
        Spec("hgb_es", "HistGradientBoostingClassifier (early-stopped)", "classification", "predict_proba",
             True, lambda: HistGradientBoostingClassifier(**hgb_es), hgb_es),
        Spec("gbr", "GradientBoostingRegressor", "regression", "predict", True,
             lambda: GradientBoostingRegressor(**gbr), gbr),
        Spec("logreg", "LogisticRegression", "classification", "predict_proba", False,
             lambda: LogisticRegression(**lr), lr),
        Spec("mlp", "MLPClassifier", "classification", "predict_proba", False,
             lambda: MLPClassifier(**mlp), mlp, lat_sklearn_target=True),
        *_library_specs(),
    ]


def _library_specs() -> list[Spec]:
    """XGBoost / LightGBM, when installed (`pip install modelsync[xgboost,lightgbm]`); ONNX through
    onnxmltools (float32 input only: its converters take FloatTensorType)."""
    import importlib.util

    out = []
    xgb = {"n_estimators": 100, "max_depth": 6, "random_state": 0, "n_jobs": 1}
    lgbm = {"n_estimators": 100, "num_leaves": 31, "random_state": 0, "n_jobs": 1, "verbose": -1}
    if importlib.util.find_spec("xgboost"):
        import xgboost

        out.append(Spec("xgb", "XGBClassifier", "classification", "predict_proba", True,
                        lambda: xgboost.XGBClassifier(**xgb), xgb, tol=1e-6,
                        onnx=lambda est, T, opset: _onnxmltools("convert_xgboost", est, T, opset),
                        library=_xgb_inplace))
    if importlib.util.find_spec("lightgbm"):
        import lightgbm

        out.append(Spec("lgbm", "LGBMClassifier", "classification", "predict_proba", True,
                        lambda: lightgbm.LGBMClassifier(**lgbm), lgbm,
                        onnx=lambda est, T, opset: _onnxmltools("convert_lightgbm", est, T, opset,
                                                                zipmap=False),
                        library=_lgbm_booster))
    return out


def _xgb_inplace(est: Any) -> Callable[[Any], Any]:
    """XGBoost's fastest predict: ``Booster.inplace_predict`` (no DMatrix; P(class 1) for binary)."""
    booster = est.get_booster()
    booster.set_param({"nthread": 1})
    return lambda X, _b=booster: _b.inplace_predict(X)


def _lgbm_booster(est: Any) -> Callable[[Any], Any]:
    """LightGBM's fastest predict: the Booster's own ``predict`` (no scikit-learn wrapper checks)."""
    booster = est.booster_
    return lambda X, _b=booster: _b.predict(X, num_threads=1)


def _onnxmltools(fn: str, est: Any, T: Any, opset: int, **kw: Any) -> Any:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType
    from onnxmltools.convert.common.onnx_ex import get_maximum_opset_supported

    if T.__name__ != "FloatTensorType":
        raise TypeError("onnxmltools converters take float32 input only")
    return getattr(onnxmltools, fn)(est, initial_types=[("X", FloatTensorType([None, DATA["n_features"]]))],
                                    target_opset=min(opset, get_maximum_opset_supported()), **kw)


MODEL_NAMES = ("rf", "rf10", "hgb", "hgb_es", "gbr", "logreg", "mlp", "xgb", "lgbm")

# -- small helpers ----------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def short(exc: BaseException, n: int = 160) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= n else text[: n - 1] + "…"


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:.3f}×" if r < 10 else f"{r:.1f}×"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.2f} {unit} ({n:,} B)"
    return f"{n:,} B"


def verdict(ratio: float | None, limit: float, answers: str = "ok") -> str:
    """PASS/FAIL against the target; INVALID when the answers are wrong. ``answers == "near"`` (a tree
    not bit-identical but within the non-tree tolerance) keeps the speed verdict, marked with †."""
    if ratio is None:
        return "n/a"
    if answers == "wrong":
        return "INVALID (wrong answers)"
    base = "PASS" if ratio <= limit else "FAIL"
    return base + " †" if answers == "near" else base


def sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def source_hash(*folders: Path) -> str:
    """Hash of the exporter's and scorer's sources: a cached document is re-exported when they change."""
    h = hashlib.sha256()
    for folder in folders:
        for p in sorted(folder.rglob("*.py")):
            if "__pycache__" in p.parts:
                continue
            h.update(str(p.relative_to(REPO)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# -- data and models --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def make_data(task: str) -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    n = DATA["n_train"] + DATA["n_test"]
    if task == "classification":
        X, y = make_classification(n_samples=n, n_features=DATA["n_features"],
                                   n_informative=DATA["n_informative"], n_redundant=DATA["n_redundant"],
                                   random_state=DATA["random_state"])
    else:
        X, y = make_regression(n_samples=n, n_features=DATA["n_features"],
                               n_informative=DATA["n_informative"], noise=10.0,
                               random_state=DATA["random_state"])
    X = np.ascontiguousarray(X, dtype=np.float64)
    k = DATA["n_train"]
    return X[:k], y[:k], np.ascontiguousarray(X[k:]), y[k:]


@dataclass
class Result:
    spec: Spec
    est: Any = None
    key: str = ""
    joblib_path: Path | None = None
    doc_path: Path | None = None
    onnx_path: Path | None = None
    onnx_dtype: str | None = None
    onnx_note: str = ""
    model: Any = None  # scorer.Model
    supported: bool = False
    unsupported_reason: str = ""
    self_check: str = ""
    parity: str = "–"
    parity_ok: bool = False
    answers: str = "wrong"  # ok | near (tree off by <= NON_TREE_TOL, not bit-identical) | wrong
    onnx_parity: str = "–"
    batch: dict[str, float | None] = field(default_factory=dict)
    batch_n: dict[str, int] = field(default_factory=dict)
    lat: dict[str, tuple[float, float, float] | None] = field(default_factory=dict)
    lat_n: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def fit_cached(spec: Spec, X: Any, y: Any) -> tuple[Any, str, Path]:
    import joblib
    import sklearn

    key = sha({"model": spec.label, "params": spec.params, "data": DATA, "task": spec.task,
               "sklearn": sklearn.__version__})
    path = CACHE / f"{spec.name}-{key}.joblib"
    if path.exists():
        try:
            return joblib.load(path), key, path
        except Exception as exc:  # noqa: BLE001  a stale or truncated cache entry: refit
            log(f"{spec.name}: cached fit unreadable ({short(exc)}); refitting")
    from sklearn.exceptions import ConvergenceWarning

    est = spec.make()
    if spec.fit_jobs:
        est.set_params(n_jobs=-1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    if spec.fit_jobs:
        est.set_params(n_jobs=1)
    log(f"{spec.name}: fitted in {time.perf_counter() - t0:.1f} s")
    tmp = path.with_suffix(".tmp")
    joblib.dump(est, tmp)
    tmp.replace(path)
    return est, key, path


def onnx_opset() -> dict[str, int]:
    import onnx
    import skl2onnx

    main = min(onnx.defs.onnx_opset_version(), int(getattr(skl2onnx, "__max_supported_opset__", 17)))
    return {"": main, "ai.onnx.ml": 3}


def ort_session(source: bytes | str) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])


_PATCHED_SKL2ONNX = False


def _patch_skl2onnx_bool_attr() -> bool:
    """skl2onnx 1.20's HistGradientBoosting converter passes Python/numpy bools in an ``ints`` attribute
    (nodes_missing_value_tracks_true), which onnx >= 1.17's make_attribute rejects. Coerce to int."""
    global _PATCHED_SKL2ONNX
    if _PATCHED_SKL2ONNX:
        return True
    try:
        from skl2onnx.common import tree_ensemble as te
    except ImportError:
        return False
    orig = te.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return orig(*args, **kwargs)

    te.add_node = add_node
    _PATCHED_SKL2ONNX = True
    return True


def onnx_cached(spec: Spec, est: Any, key: str, X_probe: Any) -> tuple[Path | None, str | None, str]:
    """Convert with skl2onnx; double input when the converter and onnxruntime accept it, else float32."""
    import numpy as np
    import onnx
    import skl2onnx

    opset = onnx_opset()
    okey = sha({"fit": key, "skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__, "opset": opset})
    for dtype in ("float64", "float32"):
        p = CACHE / f"{spec.name}-{okey}.{dtype}.onnx"
        if p.exists():
            note = (CACHE / f"{p.name}.note").read_text() if (CACHE / f"{p.name}.note").exists() else ""
            return p, dtype, note
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    options = {id(est): {"zipmap": False}} if spec.task == "classification" else None
    notes: list[str] = []
    for dtype, T in (("float64", DoubleTensorType), ("float32", FloatTensorType)):
        for attempt in range(2):
            try:
                onx = (spec.onnx(est, T, opset[""]) if spec.onnx is not None else
                       convert_sklearn(est, initial_types=[("X", T([None, DATA["n_features"]]))],
                                       target_opset=opset, options=options))
                data = onx.SerializeToString()
                ort_session(data).run(None, {"X": X_probe.astype(np.dtype(dtype))})
            except Exception as exc:  # noqa: BLE001  try the next input type, and say why
                chain = f"{exc} {exc.__cause__} {exc.__context__}"
                if attempt == 0 and "Expected an int, got a boolean" in chain and _patch_skl2onnx_bool_attr():
                    notes.append("skl2onnx bool-attribute workaround applied")
                    continue
                notes.append(f"{dtype} input not usable ({short(exc, 110)})")
                break
            p = CACHE / f"{spec.name}-{okey}.{dtype}.onnx"
            p.write_bytes(data)
            note = "; ".join(notes)
            (CACHE / f"{p.name}.note").write_text(note)
            return p, dtype, note
    return None, None, "; ".join(notes)


def export_cached(spec: Spec, est: Any, key: str, X_sample: Any, src: str, compress: bool = False) -> Path:
    """The exported document as written to disk (compact arrays, compact JSON separators)."""
    from modelsync.export import export_model

    p = CACHE / f"{spec.name}-{key}-{src}{'-z' if compress else ''}.json"
    if p.exists():
        return p
    doc = export_model(est, X_sample, name=f"bench-{spec.name}", compact=True, compress=compress)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    tmp.replace(p)
    for old in CACHE.glob(f"{spec.name}-{key}-*.json"):  # exports by older exporter/scorer sources
        if old != p and old.name.endswith("-z.json") == compress:
            old.unlink(missing_ok=True)
    return p


def prepare(spec: Spec, src: str) -> Result:
    res = Result(spec)
    Xtr, ytr, Xte, _ = make_data(spec.task)
    res.est, key, res.joblib_path = fit_cached(spec, Xtr, ytr)
    res.key = key
    try:
        res.onnx_path, res.onnx_dtype, res.onnx_note = onnx_cached(spec, res.est, key, Xte[:5])
    except Exception as exc:  # noqa: BLE001
        res.onnx_note = f"conversion failed: {short(exc)}"
    if res.onnx_path is None:
        log(f"{spec.name}: no ONNX model ({res.onnx_note})")
    # scorer side: exporter converter and scorer implementation must both exist
    import scorer
    from modelsync.export import UnsupportedEstimator

    try:
        res.doc_path = export_cached(spec, res.est, key, Xte[:TEST_VECTOR_ROWS], src)
    except UnsupportedEstimator as exc:
        res.unsupported_reason = f"exporter: {str(exc).split('; supported')[0]}"
        return res
    except Exception as exc:  # noqa: BLE001  a converter being written may still crash
        res.unsupported_reason = f"exporter error: {short(exc, 200)}"
        return res
    text = res.doc_path.read_text()
    try:
        res.model = scorer.load_model(text)
    except scorer.UnsupportedModel as exc:
        res.unsupported_reason = f"scorer: {str(exc).split('; supported')[0]}"
        return res
    except Exception as exc:  # noqa: BLE001
        res.unsupported_reason = f"scorer load error: {short(exc, 200)}"
        return res
    try:
        scorer.validate_model(json.loads(text))
        res.self_check = "test vectors OK"
    except Exception as exc:  # noqa: BLE001
        res.self_check = f"FAILED: {short(exc, 120)}"
    res.supported = True
    return res


# -- measurements -----------------------------------------------------------------------------------

def runners(res: Result) -> dict[str, Callable[[Any], Any]]:
    """Batch callables per runtime, each taking the float64 matrix."""
    spec = res.spec
    out: dict[str, Callable[[Any], Any]] = {"sklearn": _library_call(res)}
    if res.model is not None:
        out["scorer"] = getattr(res.model, spec.method)
    if res.onnx_path is not None:
        sess = ort_session(str(res.onnx_path))
        name = sess.get_inputs()[0].name
        idx = _onnx_output_index(sess, spec)

        def run_onnx(X: Any, _s: Any = sess, _n: str = name, _i: int = idx) -> Any:
            return _s.run(None, {_n: X})[_i]

        out["onnxruntime"] = run_onnx
    return out


def _library_call(res: Result) -> Callable[[Any], Any]:
    """What the "sklearn" column times: scikit-learn's method, or the library's own fastest predict."""
    spec = res.spec
    return spec.library(res.est) if spec.library is not None else getattr(res.est, spec.method)


def _onnx_output_index(sess: Any, spec: Spec) -> int:
    names = [o.name for o in sess.get_outputs()]
    if spec.task == "classification":
        return names.index("probabilities") if "probabilities" in names else len(names) - 1
    return 0


def _compare(got: Any, want: Any, tree: bool, tol: float | None = None) -> tuple[str, str]:
    """Trees: bit-identical (or within ``tol``, XGBoost's float32). Others: within the parity tolerance."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return "wrong", f"WRONG shape {got.shape}, sklearn {want.shape}"
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    if tree and np.array_equal(got, want):
        return "ok", "exact (bit-identical)"
    if tree and tol is not None:
        return ("ok" if diff <= tol else "wrong"), f"max abs diff {diff:.2g} (documented tolerance {tol:g})"
    if tree:
        if np.array_equal(got, want):
            return "ok", "exact (bit-identical)"
        nbad = int(np.sum(np.any((got != want).reshape(len(got), -1), axis=1)))
        return ("near" if diff <= NON_TREE_TOL else "wrong"), \
            f"NOT exact: {nbad:,} of {len(got):,} rows differ, max abs diff {diff:.3g}"
    ok = diff <= NON_TREE_TOL
    return ("ok" if ok else "wrong"), f"max abs diff {diff:.2g}" + ("" if ok else f" > {NON_TREE_TOL:g}")


def check_parity(res: Result, X: Any) -> None:
    import numpy as np

    spec = res.spec
    sk = getattr(res.est, spec.method)
    want = np.asarray(sk(X))
    if res.model is not None:
        sc = getattr(res.model, spec.method)
        try:
            res.answers, res.parity = _compare(sc(X), want, spec.tree, spec.tol)
            # the single-row public path (a list row) against sklearn on the same single row
            n1 = min(20, len(X))
            got1 = np.vstack([np.asarray(sc([r.tolist()]), dtype=np.float64).reshape(1, -1)
                              for r in X[:n1]])
            want1 = np.vstack([np.asarray(sk(r.reshape(1, -1)), dtype=np.float64).reshape(1, -1)
                               for r in X[:n1]])
            level1, text1 = _compare(got1, want1, spec.tree, spec.tol)
            if level1 != "ok":
                res.parity += f"; single-row calls: {text1}"
                if level1 == "wrong" or res.answers == "ok":
                    res.answers = level1
        except Exception as exc:  # noqa: BLE001
            res.parity, res.answers = f"ERROR {short(exc)}", "wrong"
        res.parity_ok = res.answers == "ok"
    if res.onnx_path is not None:
        try:
            sess = ort_session(str(res.onnx_path))
            o = np.asarray(sess.run(None, {sess.get_inputs()[0].name: X.astype(res.onnx_dtype)})
                           [_onnx_output_index(sess, spec)], dtype=np.float64)
            o = o.reshape(want.shape)
            diff = float(np.max(np.abs(o - want)))
            extra = ""
            if spec.task == "classification":
                ndiff = int(np.sum(o.argmax(1) != want.argmax(1)))
                extra = f", argmax differs on {ndiff:,} of {len(o):,} rows"
            res.onnx_parity = f"max abs diff {diff:.2g}{extra}"
        except Exception as exc:  # noqa: BLE001
            res.onnx_parity = f"ERROR {short(exc)}"


def _time_once(fn: Callable[[Any], Any], X: Any) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn(X)
        return time.perf_counter() - t0
    finally:
        gc.enable()


def measure_batch(res: Result, X: Any, repeat: int, budget: float) -> None:
    """Best of ``repeat`` per runtime; the runtimes take turns so that load drift hits all of them."""
    jobs = {rt: (fn, X.astype(res.onnx_dtype) if rt == "onnxruntime" else X)  # cast outside the timing
            for rt, fn in runners(res).items()}
    times: dict[str, list[float]] = {rt: [] for rt in jobs}
    failed: set[str] = set()
    for _ in range(repeat):
        for rt, (fn, Xin) in jobs.items():
            if rt in failed or sum(times[rt]) > budget:
                continue
            try:
                times[rt].append(_time_once(fn, Xin))
            except Exception as exc:  # noqa: BLE001
                failed.add(rt)
                res.errors.append(f"batch {rt}: {short(exc)}")
    for rt, ts in times.items():
        res.batch[rt] = min(ts) if ts and rt not in failed else None
        res.batch_n[rt] = len(ts)
    log(f"{res.spec.name}: batch best " + ", ".join(f"{k} {fmt_s(v)}" for k, v in res.batch.items()))


def _time_calls(call: Callable[[Any], Any], rows: list[Any], start: int, n: int) -> list[int]:
    ts = []
    pc = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(start, start + n):
            r = rows[i % len(rows)]
            t0 = pc()
            call(r)
            ts.append(pc() - t0)
    finally:
        gc.enable()
    return ts


def measure_latency(res: Result, X: Any, calls: int, budget: float, block: int = 100) -> None:
    """Median (and p90/p99) of ``calls`` one-row calls per runtime, in interleaved blocks of ``block``."""
    spec = res.spec
    Xr = X[: min(calls, len(X))]
    m = spec.method
    callers: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {
        "sklearn": (_library_call(res), [r.reshape(1, -1) for r in Xr])}
    if res.model is not None:
        sc = getattr(res.model, m)
        callers["scorer"] = (lambda r, sc=sc: sc([r]), Xr.tolist())
    if res.onnx_path is not None:
        sess = ort_session(str(res.onnx_path))
        name = sess.get_inputs()[0].name
        callers["onnxruntime"] = (lambda r, s=sess, n=name: s.run(None, {n: r}),
                                  [r.reshape(1, -1).astype(res.onnx_dtype) for r in Xr])
    ts: dict[str, list[int]] = {rt: [] for rt in callers}
    failed: set[str] = set()
    for rt, (call, rows) in callers.items():  # warm-up
        try:
            for r in rows[:20]:
                call(r)
        except Exception as exc:  # noqa: BLE001
            failed.add(rt)
            res.errors.append(f"latency {rt}: {short(exc)}")
    for start in range(0, calls, block):
        for rt, (call, rows) in callers.items():
            if rt in failed or sum(ts[rt]) > budget * 1e9:
                continue
            try:
                ts[rt] += _time_calls(call, rows, start, min(block, calls - start))
            except Exception as exc:  # noqa: BLE001
                failed.add(rt)
                res.errors.append(f"latency {rt}: {short(exc)}")
    for rt, t in ts.items():
        if rt in failed or not t:
            res.lat[rt] = None
            continue
        res.lat_n[rt] = len(t)
        t.sort()
        last = len(t) - 1
        res.lat[rt] = (statistics.median(t) / 1e9, t[int(0.9 * last)] / 1e9, t[int(0.99 * last)] / 1e9)
    log(f"{spec.name}: latency median " + ", ".join(
        f"{k} {fmt_s(v[0]) if v else '–'}" for k, v in res.lat.items()))


@dataclass
class Cold:
    mode: str
    walls: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    out: Any = None
    error: str = ""

    def median(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None

    def phase(self, k: str) -> float | None:
        return statistics.median(p[k] for p in self.phases) if self.phases else None


def measure_cold(res: Result, row: list[float], runs: int) -> dict[str, Cold]:
    modes: dict[str, list[str]] = {"bare": ["bare", "-", "[]"]}
    if res.doc_path is not None and res.supported:
        modes["scorer"] = ["scorer", str(res.doc_path), json.dumps(row)]
    modes["sklearn"] = ["sklearn", str(res.joblib_path), json.dumps(row)]
    if res.onnx_path is not None:
        modes["onnxruntime"] = ["onnxruntime", str(res.onnx_path), json.dumps(row),
                                res.onnx_dtype or "float32"]
    out = {m: Cold(m) for m in modes}
    # Every runtime runs as installed: with bytecode. scikit-learn and onnxruntime have theirs in
    # site-packages; the scorer's goes to a cache outside the repository (as pip or the Lambda layer's
    # compileall would write it), even where PYTHONDONTWRITEBYTECODE is set in the environment.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(CACHE / "pycache")
    # run 0 warms the OS file cache (and writes the bytecode) and is discarded; then round-robin so drift
    # hits every runtime alike
    for rep in range(runs + 1):
        for m, argv in modes.items():
            c = out[m]
            if c.error:
                continue
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(COLD_SCRIPT), *argv], capture_output=True, text=True,
                                  cwd=str(REPO), check=False, env=env)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                c.error = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit {proc.returncode}"
                continue
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            if rep == 0:
                c.out = info.pop("out")
                continue
            info.pop("out", None)
            c.walls.append(wall)
            c.phases.append(info)
    log("cold start median " + ", ".join(f"{m} {fmt_s(c.median())}" for m, c in out.items()))
    return out


def du_bytes(path: Path) -> tuple[int, int]:
    """(apparent bytes, disk KiB) as du reports them."""
    apparent = int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
    disk = int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])
    return apparent, disk


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sum(p.stat().st_size for p in files), len(files)


# -- machine info -----------------------------------------------------------------------------------

def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=str(REPO), capture_output=True, text=True,
                              check=False).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD")
    if not rev:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "scorer", "modelsync")
    return rev + (" with uncommitted changes in scorer/ or modelsync/" if dirty else "")


def machine_info(blas_limited: list[dict[str, Any]]) -> list[tuple[str, str]]:
    import numpy
    import sklearn
    import threadpoolctl

    try:
        import onnxruntime
        ort_v = onnxruntime.__version__
    except ImportError:
        ort_v = "not installed"
    try:
        import onnx
        import skl2onnx
        conv_v = f"skl2onnx {skl2onnx.__version__}, onnx {onnx.__version__}, target opset {onnx_opset()}"
    except ImportError:
        conv_v = "not installed"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:
        avail = os.cpu_count() or 0
    rows = [
        ("modelsync revision", git_revision()),
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} logical, {avail} available to this process"),
        ("OS", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", numpy.__version__),
        ("scikit-learn", sklearn.__version__),
        ("onnxruntime", ort_v),
        ("converter", conv_v),
        ("threadpoolctl", threadpoolctl.__version__),
    ]
    for lib in threadpoolctl.threadpool_info():
        if lib.get("user_api") == "blas":
            owner = Path(lib.get("filepath", "")).parent.name
            rows.append((f"BLAS ({owner})", f"{lib.get('internal_api')} {lib.get('version')}, kernel "
                         f"**{lib.get('architecture', '?')}**, {lib.get('num_threads')} threads by default"))
    limited = sorted({f"{x.get('internal_api')}={x.get('num_threads')}" for x in blas_limited})
    rows.append(("threads while measuring", "sklearn n_jobs=1; BLAS/OpenMP limited via threadpoolctl ("
                 + ", ".join(limited) + "); onnxruntime intra_op=inter_op=1, sequential"))
    removed = os.environ.get(_REMOVED_MARK)
    for var in OPENBLAS_VARS:
        val = os.environ.get(var)
        if removed is not None:
            was = dict(kv.split("=", 1) for kv in removed.split(";") if "=" in kv).get(var)
            rows.append((var, f"unset by --unset-openblas-env (was {was!r})" if was is not None
                         else "unset by --unset-openblas-env (was not set)"))
        else:
            rows.append((var, f"**{val}** (set in the environment; left as is)" if val is not None
                         else "not set"))
    return rows


# -- report -----------------------------------------------------------------------------------------

def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(ctx: dict[str, Any], results: list[Result], cold: dict[str, Cold] | None,
           sizes: list[list[str]] | None,
           size_ratio: tuple[float | None, str] | None) -> tuple[str, list[str]]:
    cfg = ctx["cfg"]
    nys = "not yet supported"
    summary: dict[str, dict[str, str]] = {r.spec.label: {} for r in results}
    other: list[list[str]] = []
    body: list[str] = []

    body.append("## Correctness (scorer vs scikit-learn on the measured rows)\n")
    body.append(f"Trees must be bit-identical; the others within {NON_TREE_TOL:g} (max abs diff), on the "
                "batch and on 20 single-row calls. onnxruntime is informational: ONNX tree ensembles "
                "accumulate in float32 (and float32-input trees also compare thresholds in float32), so they "
                "are not exact.\n")
    rows = []
    for r in results:
        sup = "yes" if r.supported else f"**{nys}** ({r.unsupported_reason})"
        onnx_col = (f"{r.onnx_dtype}: {r.onnx_parity}" if r.onnx_path else f"no ONNX model ({r.onnx_note})")
        rows.append([r.spec.label, r.spec.method, sup, r.parity if r.supported else "–",
                     r.self_check or "–", onnx_col])
        summary[r.spec.label]["correct"] = ("PASS" if r.parity_ok else "FAIL") if r.supported else nys
    body.append(table(["model", "method", "scorer supports it", "scorer vs sklearn", "document self-check",
                       "onnxruntime vs sklearn (input dtype)"], rows) + "\n")
    notes = [f"{r.spec.label}: {r.onnx_note}" for r in results if r.onnx_note and r.onnx_path]
    if notes:
        body.append("ONNX conversion notes: " + "; ".join(notes) + ".\n")

    if "batch" in ctx["sections"]:
        body.append(f"## 1. Batch throughput ({cfg['rows']:,} × {DATA['n_features']}, "
                    f"best of {cfg['repeat']} wall times)\n")
        body.append(f"Targets: scorer time ≤ {TARGETS['batch_tree']:g}× scikit-learn's for tree models "
                    f"(whatever their size), ≤ {TARGETS['batch']:g}× for the others. The \"sklearn\" column "
                    "of XGBoost and LightGBM is the library's own fastest predict (XGBoost "
                    "`Booster.inplace_predict`, LightGBM `Booster.predict`). onnxruntime gets its input "
                    "already cast to its dtype; the scorer and the library get the float64 matrix.\n")
        rows = []
        for r in results:
            b = r.batch
            rr = ratio(b.get("scorer"), b.get("sklearn"))
            limit = TARGETS["batch_tree"] if r.spec.tree else TARGETS["batch"]
            v = verdict(rr, limit, r.answers) if r.supported else nys
            summary[r.spec.label]["batch"] = v
            def cell(k: str, r: Result = r) -> str:
                n = r.batch_n.get(k, 0)
                short_run = f" (best of {n}: time budget)" if 0 < n < cfg["repeat"] else ""
                return fmt_s(r.batch.get(k)) + short_run

            rows.append([r.spec.label, cell("sklearn"), cell("scorer"), cell("onnxruntime"), fmt_ratio(rr),
                         fmt_ratio(ratio(b.get("scorer"), b.get("onnxruntime"))),
                         f"{cfg['rows'] / b['scorer']:,.0f}" if b.get("scorer") else "–", f"≤ {limit:g}×", v])
        body.append(table(["model", "sklearn / library", "scorer", "onnxruntime", "scorer/sklearn",
                           "scorer/onnxruntime", "scorer rows/s", "target", "verdict"], rows) + "\n")

    if "latency" in ctx["sections"]:
        body.append(f"## 2. Single-row latency (median of {cfg['calls']:,} calls, one row each)\n")
        body.append("Public API per call: `model.predict_proba([row])` with a list row (scorer), "
                    "`est.predict_proba(row.reshape(1, -1))` (sklearn; XGBoost `inplace_predict`, LightGBM "
                    "`Booster.predict`), `sess.run(None, {name: row})` (onnxruntime); `predict` for the "
                    f"regressor. Targets: scorer ≤ {TARGETS['lat_onnx']:g}× onnxruntime for every model; "
                    "the MLP also ≤ 1/20 of scikit-learn (for the others that ratio is for information).\n")
        rows = []
        for r in results:
            lat = r.lat

            def med(k: str, lat: dict[str, Any] = lat) -> float | None:
                return lat[k][0] if lat.get(k) else None

            r1 = ratio(med("scorer"), med("sklearn"))
            r2 = ratio(med("scorer"), med("onnxruntime"))
            if r.supported:
                v1 = verdict(r1, TARGETS["lat_sklearn"], r.answers) if r.spec.lat_sklearn_target else "info"
                v2 = verdict(r2, TARGETS["lat_onnx"], r.answers)
            else:
                v1 = v2 = nys
            if r.spec.lat_sklearn_target or not r.supported:
                summary[r.spec.label]["lat_sk"] = v1
            summary[r.spec.label]["lat_ort"] = v2
            sc = lat.get("scorer")
            tail = f"{fmt_s(sc[1])} / {fmt_s(sc[2])}" if sc else "–"
            def lcell(k: str, r: Result = r) -> str:
                n = r.lat_n.get(k, 0)
                return fmt_s(med(k)) + (f" ({n} calls: time budget)" if 0 < n < cfg["calls"] else "")

            rows.append([r.spec.label, lcell("sklearn"), lcell("scorer"), lcell("onnxruntime"),
                         tail, fmt_ratio(r1), v1, fmt_ratio(r2), v2])
        body.append(table(["model", "sklearn / library", "scorer", "onnxruntime", "scorer p90 / p99",
                           "scorer/sklearn", "target ≤ 0.05× (MLP)", "scorer/onnxruntime",
                           f"target ≤ {TARGETS['lat_onnx']:g}×"], rows) + "\n")

    if cold is not None:
        body.append("## 3. Cold start (RandomForestClassifier; fresh process, "
                    f"median of {cfg['cold_runs']})\n")
        body.append("Each run is a new `python bench/_cold_start.py MODE …` process: import the runtime, "
                    "load the forest (JSON document / joblib pickle / ONNX InferenceSession), score one row. "
                    "Wall time is measured from outside and includes interpreter start-up; one untimed run "
                    "per mode first warms the OS file cache, then the modes alternate. Every runtime runs "
                    "with its bytecode, as installed (the scorer's is written once to "
                    "`bench/.cache/pycache`, as pip or the layer's `compileall` would; "
                    "`PYTHONDONTWRITEBYTECODE` is dropped for "
                    "these processes). Phase columns are medians measured inside the process.\n")
        rows = []
        labels = {"bare": "bare interpreter (reference)", "scorer": "scorer (import scorer + load JSON)",
                  "sklearn": "scikit-learn (import + joblib.load)",
                  "onnxruntime": "onnxruntime (import + InferenceSession)"}
        for m, c in cold.items():
            if c.error:
                rows.append([labels[m], f"ERROR {c.error}", "", "", "", ""])
            elif m == "bare":
                rows.append([labels[m], fmt_s(c.median()), fmt_s(min(c.walls)) + " / " + fmt_s(max(c.walls)),
                             "–", "–", "–"])
            else:
                rows.append([labels[m], fmt_s(c.median()), fmt_s(min(c.walls)) + " / " + fmt_s(max(c.walls)),
                             fmt_s(c.phase("import")), fmt_s(c.phase("load")), fmt_s(c.phase("score"))])
        body.append(table(["runtime", "median wall", "min / max", "import", "load", "score 1 row"], rows)
                    + "\n")
        sc_, sk_, on_ = (cold.get(k) for k in ("scorer", "sklearn", "onnxruntime"))
        r1 = ratio(sc_.median() if sc_ else None, sk_.median() if sk_ else None)
        r2 = ratio(sc_.median() if sc_ else None, on_.median() if on_ else None)
        cold_answers = "ok" if ctx["cold_ok"] else "wrong"
        v1 = verdict(r1, TARGETS["cold_sklearn"], cold_answers) if sc_ else nys
        v2 = verdict(r2, TARGETS["cold_onnx"], cold_answers) if sc_ else nys
        tgt = [["cold start: scorer ≤ 1/5 of scikit-learn", fmt_ratio(r1), v1],
               ["cold start: scorer ≤ onnxruntime", fmt_ratio(r2), v2]]
        other += tgt
        body.append(table(["target", "ratio", "verdict"], tgt) + "\n")
        body.append(f"Outputs of the cold processes: {ctx['cold_check']}.\n")

    if sizes is not None and size_ratio is not None:
        body.append("## 4. Size\n")
        body.append(table(["artifact", "bytes", "gzip -6"], sizes) + "\n")
        rr, v = size_ratio
        tgt = [["size: forest document ≤ 1.5× its ONNX file", fmt_ratio(rr), v]]
        other += tgt
        body.append(table(["target", "ratio", "verdict"], tgt) + "\n")
        body.append(ctx["layer_note"] + "\n")

    for number, sec in enumerate(ctx.get("extra_sections", []), start=5):
        body.append(f"## {number}. {sec.title}\n")
        body.append(sec.body.rstrip() + "\n")
        if sec.targets:
            tgt = [[t.target, t.figure, t.verdict] for t in sec.targets]
            other += tgt
            body.append(table(["target", "figure", "verdict"], tgt) + "\n")

    errors = [f"{r.spec.label}: {e}" for r in results for e in r.errors]
    if errors:
        body.append("## Errors during measurement\n")
        body.extend(f"- {md_escape(e)}" for e in errors)
        body.append("")

    out: list[str] = ["# modelsync benchmark results\n"]
    out.append(f"Generated {ctx['date']} by:\n\n```\n{ctx['command']}\n```\n")
    if ctx["quick"]:
        out.append("**`--quick` run: fewer rows, repeats and calls; a smoke test, not figures to quote.**\n")
    out.append(f"Load average (1/5/15 min) at start: {ctx['load_start']}; at end: {ctx['load_end']}. "
               "On this machine anything near or above 1 means other work shared the cores and the timings "
               f"are noisy. Total run time {ctx['elapsed']:.0f} s.\n")
    out.append("## Summary\n")
    cols = [("correct", "correct"),
            ("batch", f"batch ≤ {TARGETS['batch_tree']:g}× (trees) / {TARGETS['batch']:g}× sklearn"),
            ("lat_ort", f"single row ≤ {TARGETS['lat_onnx']:g}× onnxruntime"),
            ("lat_sk", "single row ≤ sklearn/20 (MLP)")]
    cols = [c for c in cols if any(c[0] in s for s in summary.values())]
    out.append(table(["model", *(c[1] for c in cols)],
                     [[m, *(s.get(k, "–") for k, _ in cols)] for m, s in summary.items()]) + "\n")
    misses = [f"- **{r.spec.label}, {dict(cols)[k]}** ({v}): {MISS_NOTES[(r.spec.name, k)]}"
              for r in results for k, v in summary[r.spec.label].items()
              if "FAIL" in v and (r.spec.name, k) in MISS_NOTES and k in dict(cols)]
    if misses:
        out.append("What bounds each miss, and what was tried:\n\n" + "\n".join(misses) + "\n")
    if any(r.supported and r.answers == "near" for r in results):
        out.append("† The scorer's answers for this tree model are not bit-identical to scikit-learn's "
                   f"(they are within {NON_TREE_TOL:g}), so correctness FAILs; its speed verdicts are shown "
                   "for information. Anything further off is reported as INVALID.\n")
    if other:
        out.append(table(["target", "ratio / figure", "verdict"], other) + "\n")
    out.append("## Machine\n")
    out.append(table(["", ""], [[k, v] for k, v in ctx["machine"]]) + "\n")
    out.extend(f"> **Note:** {w}\n" for w in ctx["warnings"])
    out.append(f"Data: `make_classification` / `make_regression` (n_features={DATA['n_features']}, "
               f"n_informative={DATA['n_informative']}, random_state={DATA['random_state']}); models fitted "
               f"on {DATA['n_train']:,} training rows, measured on {cfg['rows']:,} separate rows.\n")
    out.extend(body)
    verdicts = [f"{k} {m}: {v}" for m, s in summary.items() for k, v in s.items()] + \
        [f"{t}: {v}" for t, _, v in other]
    return "\n".join(out), verdicts


# -- main -------------------------------------------------------------------------------------------

def _reexec_without_openblas_env(argv: list[str]) -> None:
    env = dict(os.environ)
    removed = ";".join(f"{v}={env.pop(v)}" for v in OPENBLAS_VARS if v in env)
    env[_REMOVED_MARK] = removed
    env[_REEXEC_MARK] = "1"
    log(f"re-executing with {', '.join(OPENBLAS_VARS)} unset (removed: {removed or 'nothing was set'})")
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv], env)


def command_line(argv: list[str]) -> str:
    exe = Path(sys.executable)
    try:
        shown = str(exe.relative_to(REPO)) if exe.is_relative_to(REPO) else str(exe)
    except ValueError:
        shown = str(exe)
    cmd = shlex.join([shown, "bench/run.py", *argv])
    if os.environ.get("MAKELEVEL"):
        cmd += "   # via `make bench`"
    return cmd


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", metavar="PATH", help="write the Markdown report here (else print it)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer rows, repeats and calls: a smoke test (< 2 min)")
    ap.add_argument("--only", metavar="NAME[,NAME]", default="",
                    help=f"models ({', '.join(MODEL_NAMES)}) and/or sections ({', '.join(SECTIONS)}); "
                         "cold start and size need rf")
    ap.add_argument("--unset-openblas-env", action="store_true",
                    help="re-exec with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset "
                         "(recorded in the results)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails or a result is wrong")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.unset_openblas_env and not os.environ.get(_REEXEC_MARK):
        _reexec_without_openblas_env(argv)
    t_start = time.perf_counter()
    load_start = loadavg()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    bad = only - set(MODEL_NAMES) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if bad:
        print(f"unknown --only name(s): {', '.join(sorted(bad))}; choose from "
              f"{', '.join((*MODEL_NAMES, *SECTIONS, *EXTRA_SECTIONS))}", file=sys.stderr)
        return 2
    extras = [e for e in EXTRA_SECTIONS if not only or e in only]
    models = [m for m in MODEL_NAMES if not (only & set(MODEL_NAMES)) or m in only]
    sections = [s for s in SECTIONS if not (only & set(SECTIONS)) or s in only]
    if only and only <= set(EXTRA_SECTIONS):  # only extra sections: no model benchmarks
        models, sections = [], []
    if ("cold" in sections or "size" in sections) and "rf" not in models:
        sections = [s for s in sections if s not in ("cold", "size")]
    cfg = QUICK if args.quick else FULL
    warns: list[str] = []
    for var in OPENBLAS_VARS:
        if os.environ.get(var) is not None and not os.environ.get(_REEXEC_MARK):
            warns.append(f"{var}={os.environ[var]} is set in this environment and was left as is; it can "
                         "slow numpy's BLAS. Compare with `--unset-openblas-env`.")
            log(f"warning: {warns[-1]}")

    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    CACHE.mkdir(parents=True, exist_ok=True)
    src = source_hash(REPO / "modelsync" / "export", REPO / "scorer")
    specs = {s.name: s for s in _specs()}
    models = [m for m in models if m in specs]  # xgb / lgbm only where their library is installed
    results: list[Result] = []
    for name in models:
        log(f"{name}: preparing (fit/convert/export, cached in bench/.cache)")
        results.append(prepare(specs[name], src))
        r = results[-1]
        if not r.supported:
            log(f"{name}: scorer: not yet supported ({r.unsupported_reason})")

    with threadpool_limits(limits=1):
        limited_info = threadpool_info()
        for r in results:
            _, _, Xte, _ = make_data(r.spec.task)
            X = np.ascontiguousarray(Xte[: cfg["rows"]])
            check_parity(r, X)
            log(f"{r.spec.name}: parity: {r.parity}; onnx: {r.onnx_parity}")
            if "batch" in sections:
                measure_batch(r, X, cfg["repeat"], cfg["budget"])
            if "latency" in sections:
                measure_latency(r, X, cfg["calls"], cfg["budget"])

    ctx: dict[str, Any] = {"cfg": cfg, "quick": args.quick, "sections": sections, "warnings": warns,
                           "command": command_line(argv), "cold_ok": True, "cold_check": "–",
                           "layer_note": ""}
    cold = None
    sizes = None
    size_ratio = None
    rf = next((r for r in results if r.spec.name == "rf"), None)
    if rf is not None and "cold" in sections:
        _, _, Xte, _ = make_data("classification")
        row = [float(v) for v in Xte[0]]
        cold = measure_cold(rf, row, cfg["cold_runs"])
        want = rf.est.predict_proba(Xte[:1]).tolist()
        checks = []
        for m in ("scorer", "sklearn", "onnxruntime"):
            c = cold.get(m)
            if c is None or c.error or c.out is None:
                continue
            same = c.out == want
            if m == "scorer" and not same:
                ctx["cold_ok"] = False
            close = max(abs(a - b) for a, b in zip(c.out[0], want[0], strict=True))
            how = "identical to" if same else f"max abs diff {close:.2g} from"
            checks.append(f"{m} {how} scikit-learn's in-process output")
        ctx["cold_check"] = "; ".join(checks) or "–"
    if rf is not None and "size" in sections:
        sizes = []
        doc_bytes = onnx_bytes = None
        if rf.doc_path is not None:
            data = rf.doc_path.read_bytes()
            doc_bytes = len(data)
            sizes.append(["forest document (compact arrays, compact JSON, as written)", fmt_bytes(doc_bytes),
                          fmt_bytes(len(gzip.compress(data, 6)))])
            try:
                zp = export_cached(rf.spec, rf.est, rf.key, Xte[:TEST_VECTOR_ROWS], src, compress=True)
                zd = zp.read_bytes()
                sizes.append(["forest document, `compress=True` (base64-zlib arrays; informational)",
                              fmt_bytes(len(zd)), fmt_bytes(len(gzip.compress(zd, 6)))])
            except Exception as exc:  # noqa: BLE001
                sizes.append(["forest document, `compress=True`", f"failed: {short(exc, 80)}", ""])
        else:
            sizes.append(["forest document", f"not yet supported ({rf.unsupported_reason})", ""])
        if rf.onnx_path is not None:
            data = rf.onnx_path.read_bytes()
            onnx_bytes = len(data)
            sizes.append([f"forest ONNX file ({rf.onnx_dtype} input)", fmt_bytes(onnx_bytes),
                          fmt_bytes(len(gzip.compress(data, 6)))])
        jl = rf.joblib_path
        if jl is not None:
            sizes.append(["forest joblib pickle (informational)", fmt_bytes(jl.stat().st_size), ""])
        sb, nfiles = folder_size(REPO / "scorer")
        sizes.append([f"scorer/ folder ({nfiles} files, without __pycache__)", fmt_bytes(sb), ""])
        layer = REPO / ".aws-sam" / "build" / "ScorerLayer"
        if layer.exists():
            app, disk = du_bytes(layer)
            sizes.append(["Lambda layer .aws-sam/build/ScorerLayer (du -sb; du -sk)", fmt_bytes(app),
                          f"{disk:,} KiB on disk"])
            ctx["layer_note"] = "Layer size measured from the existing `.aws-sam/build/ScorerLayer`."
        else:
            ctx["layer_note"] = ("Lambda layer size: `.aws-sam/build/ScorerLayer` does not exist; run "
                                 "`make sam-build`, then `bench/run.py --only rf,size` (or "
                                 "`du -sh .aws-sam/build/ScorerLayer`).")
        rr = ratio(doc_bytes, onnx_bytes)
        size_ratio = (rr, verdict(rr, TARGETS["size_onnx"]) if doc_bytes is not None else "not yet supported")

    extra_sections = []
    for name in extras:
        log(f"{name}: running bench/{EXTRA_SECTIONS[name]}.py")
        module = importlib.import_module(EXTRA_SECTIONS[name])
        extra_sections.append(module.section(args.quick))
    ctx["extra_sections"] = extra_sections
    ctx.update({"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "load_end": loadavg(),
                "load_start": load_start, "elapsed": time.perf_counter() - t_start,
                "machine": machine_info(limited_info)})
    text, verdicts = report(ctx, results, cold, sizes, size_ratio)
    if args.write:
        path = Path(args.write)
        if not path.is_absolute():
            path = Path.cwd() / path
        path.write_text(text)
        log(f"wrote {path}")
    else:
        print(text)
    log("summary: " + "; ".join(verdicts))
    failed = [v for v in verdicts if "FAIL" in v or "INVALID" in v]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
