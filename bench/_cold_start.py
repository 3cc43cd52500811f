"""One cold start, run by bench/run.py as a fresh process: import, load a model, score one row.

Usage: python bench/_cold_start.py MODE MODEL_PATH ROW_JSON [INPUT_DTYPE]
  MODE: scorer | sklearn | onnxruntime | bare
       python bench/_cold_start.py boto3 - -            (import boto3: the Lambda baseline)
       python bench/_cold_start.py handler CODE_DIR EVENT_JSON|-
         (import the handler module ``app`` from CODE_DIR, as Lambda's init does, with the environment
         the caller set; with an event, then invoke ``lambda_handler`` once: the first request;
         bench/cold_start.py)

Imports only what MODE needs (the runtime under test), so the process's cost is that runtime's.
Prints one JSON line: the in-process phase times (seconds, from the first line of this script,
so the interpreter's own start-up is not in them; run.py times the whole process from outside) and
the scored output, which run.py checks against scikit-learn's.
"""

import sys
import time

_T0 = time.perf_counter()
_EXTRA: dict = {}  # handler mode: the first request's response body


def _main() -> None:
    mode, path, row_json = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "bare":
        t1 = t2 = t3 = time.perf_counter()
        out = None
    elif mode == "boto3":
        import boto3  # noqa: F401

        t1 = t2 = t3 = time.perf_counter()
        out = None
    elif mode == "handler":
        import importlib
        import json
        import os

        sys.path.insert(0, path)
        os.chdir(path)
        app = importlib.import_module("app")
        t1 = time.perf_counter()
        out = None
        t2 = t3 = t1
        if row_json != "-":
            response = app.lambda_handler(json.loads(row_json), _Context())
            t3 = time.perf_counter()
            body = json.loads(response["body"])
            if response["statusCode"] != 200:
                raise SystemExit(f"first request: {response['statusCode']} {body}")
            _EXTRA["response"] = body
    elif mode == "scorer":
        import os

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import json

        import scorer

        t1 = time.perf_counter()
        model = scorer.load_model(path)
        t2 = time.perf_counter()
        out = model.predict_proba([json.loads(row_json)])
        t3 = time.perf_counter()
    elif mode == "sklearn":
        import json

        import joblib
        import numpy as np
        import sklearn.ensemble  # noqa: F401  (joblib.load would import it; timed as import here)

        t1 = time.perf_counter()
        est = joblib.load(path)
        t2 = time.perf_counter()
        out = est.predict_proba(np.array([json.loads(row_json)], dtype=np.float64))
        t3 = time.perf_counter()
    elif mode == "onnxruntime":
        import json

        import numpy as np
        import onnxruntime as ort

        t1 = time.perf_counter()
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        t2 = time.perf_counter()
        dtype = sys.argv[4] if len(sys.argv) > 4 else "float32"
        outs = sess.run(None, {sess.get_inputs()[0].name: np.array([json.loads(row_json)], dtype=dtype)})
        out = outs[-1]
        t3 = time.perf_counter()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    import json as _json

    print(_json.dumps({
        "import": t1 - _T0,
        "load": t2 - t1,
        "score": t3 - t2,
        "out": None if out is None else [[float(v) for v in r] for r in out],
        **_EXTRA,
    }))


class _Context:
    """The Lambda context the handler's Powertools decorators read."""

    function_name = "bench-cold-start"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-cold-start"
    memory_limit_in_mb = 1024
    aws_request_id = "bench-first-request"
    log_group_name = "/aws/lambda/bench-cold-start"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


_main()
