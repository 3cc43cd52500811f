"""Scratch timing of the tree scorers against scikit-learn and onnxruntime (single thread everywhere).

    .venv/bin/python bench/trees_profile.py [--rows 100000] [--models rf,hgb,gb] [--cache DIR]

Trains (once, cached) the three benchmark models on 100k x 20 synthetic rows, exports them, and
reports batch seconds (best of N, CPU time of this process: the box is shared) and the median of
1,000 single-row calls through ``model.predict_proba([row])`` / ``predict``. Not the product benchmark
(bench/run.py is); this is the loop used to tune the layouts in scorer/models/trees.py.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import pickle
import statistics
import sys
import time
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _train(cache: pathlib.Path, rows: int) -> dict[str, Any]:
    path = cache / f"trees-{rows}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    from sklearn.datasets import make_classification, make_regression
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )

    X, y = make_classification(rows, 20, n_informative=10, random_state=0)
    Xr, yr = make_regression(rows, 20, noise=1.0, random_state=0)
    models = {
        "rf": RandomForestClassifier(100, max_depth=10, random_state=0, n_jobs=-1).fit(X, y),
        "hgb": HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0).fit(X, y),
        "gb": GradientBoostingRegressor(n_estimators=100, random_state=0).fit(Xr[:20000], yr[:20000]),
    }
    models["rf"].n_jobs = 1
    data = {"X": X, "Xr": Xr, "models": models}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _single(fn: Any, rows: np.ndarray, n: int) -> float:
    times = []
    for i in range(n):
        row = [rows[i % len(rows)].tolist()]
        t = time.perf_counter()
        fn(row)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _onnx(est: Any, X: np.ndarray, name: str) -> tuple[Any, int] | None:
    try:
        import onnx.helper as helper
        import onnxruntime as ort
        from skl2onnx import to_onnx
    except ImportError:
        return None
    original = helper.make_attribute

    def make_attribute(key: str, value: Any, *a: Any, **k: Any) -> Any:  # skl2onnx passes bools for ints
        if isinstance(value, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in value):
            value = [int(v) for v in value]
        return original(key, value, *a, **k)

    helper.make_attribute = make_attribute
    try:
        options = {id(est): {"zipmap": False}} if hasattr(est, "predict_proba") else None
        opset = {"": 17, "ai.onnx.ml": 3} if name != "hgb" else None
        blob = to_onnx(est, X[:1].astype(np.float32), options=options, target_opset=opset).SerializeToString()
    finally:
        helper.make_attribute = original
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"]), len(blob)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--models", default="rf,hgb,gb")
    ap.add_argument("--cache", default=os.environ.get("TMPDIR", "/tmp") + "/modelsync-trees-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--single", type=int, default=1000)
    ap.add_argument("--no-sklearn", action="store_true")
    args = ap.parse_args()
    import threadpoolctl

    import scorer
    from modelsync.export import export_model

    data = _train(pathlib.Path(args.cache), args.rows)
    for name in args.models.split(","):
        est = data["models"][name]
        X = data["Xr"] if name == "gb" else data["X"]
        method = "predict" if name == "gb" else "predict_proba"
        doc = export_model(est, X[:25], name=name, compact=True)
        text = json.dumps(doc, separators=(",", ":"))
        t = time.perf_counter()
        model = scorer.load_model(text)
        load = time.perf_counter() - t
        engine = type(model.estimator.forest).__name__  # type: ignore[attr-defined]
        with threadpoolctl.threadpool_limits(1):
            ours = _best(lambda: getattr(model, method)(X), args.repeat)  # noqa: B023
            ours_1 = _single(getattr(model, method), X, args.single)
            diff = np.max(np.abs(getattr(model, method)(X[:5000]) - getattr(est, method)(X[:5000])))
            same = diff <= (0.0 if method == "predict" or name == "rf" else 1e-12)
            line = (f"{name:4s} {engine:17s} doc {len(text) / 1e6:6.2f} MB load {load:5.2f}s | batch scorer "
                    f"{ours:6.3f}s")
            if not args.no_sklearn:
                sk = _best(lambda: getattr(est, method)(X), args.repeat)  # noqa: B023
                sk_1 = _single(getattr(est, method), X, min(args.single, 300))
                line += f" sklearn {sk:6.3f}s ({sk / ours:4.2f}x)"
            line += f" | single scorer {ours_1 * 1e6:7.1f}us"
            if not args.no_sklearn:
                line += f" sklearn {sk_1 * 1e6:8.1f}us ({sk_1 / ours_1:5.1f}x)"
            onnx = _onnx(est, X, name)
            if onnx is not None:
                sess, size = onnx
                inp = sess.get_inputs()[0].name
                X32 = X.astype(np.float32)
                ox = _best(lambda: sess.run(None, {inp: X32}), args.repeat)  # noqa: B023
                def run_one(r: Any) -> Any:
                    return sess.run(None, {inp: np.asarray(r, dtype=np.float32)})  # noqa: B023

                ox_1 = _single(run_one, X, args.single)
                line += (f" onnx {ox_1 * 1e6:6.1f}us ({ours_1 / ox_1:4.1f}x of it), onnx batch {ox:6.3f}s, "
                         f"onnx file {size / 1e6:5.2f} MB ({len(text) / size:4.2f}x)")
            print(line + ("" if same else "  MISMATCH"), flush=True)


if __name__ == "__main__":
    main()
