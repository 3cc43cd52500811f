"""``modelsync export`` / ``validate`` / ``predict``: a model document from a fitted model, checked, used.

``export`` is the only place in modelsync where a pickle is read: on the data scientist's own machine,
from a file they produced themselves. Everything downstream (the cloud, devices) only ever sees JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

EXPORT_HELP = """\
Export a fitted scikit-learn model as a JSON model document.

MODEL_FILE is a pickle or joblib file of YOUR OWN fitted estimator. Unpickling runs arbitrary code,
so only pass a file you created or otherwise trust completely. This command is the only place
modelsync ever reads a pickle: here, on your machine. The document it writes is plain JSON; the
cloud and the devices never load pickles.

The sample CSV needs a header with the feature names (extra columns such as a target are ignored
when the model knows its feature names). Its first rows become the document's test vectors: the
outputs scikit-learn computes for them, which every scorer must reproduce. The CSV is read like every
table modelsync reads (docs/model-format.md, "Tabular files"): a column of numbers is numeric, any
other column stays text (categorical inputs); empty cells and NA, N/A, NaN, null, None are missing.

The document is validated (re-scored with modelsync's scorer) before it is written.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="export a fitted scikit-learn model (pickle/joblib you trust) as a JSON document",
        description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_file", metavar="MODEL_FILE",
                   help="your own fitted estimator, saved with joblib.dump or pickle (trusted input only)")
    p.add_argument("--sample", required=True, metavar="DATA.csv",
                   help="representative rows with a header of feature names; "
                        "the first rows become test vectors")
    p.add_argument("--name", required=True,
                   help="model name: 1-128 letters, digits, '.', '_' or '-' (used in storage keys and URLs)")
    p.add_argument("-o", "--output", metavar="model.json",
                   help="where to write the document (default NAME.json)")
    p.add_argument("--description", default="", help="free text stored in metadata.description")
    p.add_argument("--plain-arrays", action="store_true",
                   help="write arrays as plain JSON lists (readable, larger) instead of base64 blocks")
    p.add_argument("--compress", action="store_true", help="zlib-compress base64 array blocks")
    p.add_argument("--test-vectors", type=int, default=25, metavar="N",
                   help="number of sample rows kept as test vectors (default 25)")
    p.add_argument("--baseline", metavar="DATA.csv",
                   help="training-like rows (same header) whose distribution is stored as "
                        "metadata.baseline for drift checks (default: the --sample rows; a warning when "
                        "they are few)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "validate", help="fully check a model document (structure, sha256, test vectors re-scored)",
        description="Fully check a model document: structure, limits, sha256, and its test vectors "
                    "re-scored by this scorer. Prints OK, or one 'pointer: message' line per problem "
                    "(exit status 1).")
    p.add_argument("document", metavar="model.json")
    p.add_argument("--schema", action="store_true",
                   help="also check against scorer/schema.json (needs the jsonschema package)")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser(
        "predict", help="score a CSV or JSON Lines file with a model document; CSV/JSONL on stdout",
        description="Score DATA (CSV with a header, or JSON Lines; '-' reads stdin) with a model document. "
                    "Writes the input columns plus 'prediction' ('prediction_<i>' for several outputs; "
                    "one 'proba_<class>' column per class with --proba; --outputs names the methods "
                    "written instead) in the same format to stdout, the shape the batch function and "
                    "devices write. Stops at the first bad row, naming its row and line "
                    "(docs/model-format.md, 'Tabular files').")
    p.add_argument("document", metavar="model.json")
    p.add_argument("data", metavar="DATA.csv")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--proba", action="store_true", help="add one proba_<class> column per class")
    which.add_argument("--outputs", metavar="METHOD[,METHOD...]", type=_outputs_arg,
                       help="the methods to write, in order (predict, predict_proba, decision_function, "
                            "transform): columns prediction, proba_<class>, decision_function or "
                            "decision_<class>, transform_<i>")
    p.add_argument("--format", choices=("csv", "jsonl"),
                   help="input/output format (default: from the file extension, .jsonl/.ndjson = jsonl)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--chunk-rows", type=int, default=10_000, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_predict)


def _outputs_arg(text: str) -> list[str] | None:
    from scorer import tabular

    return tabular.parse_outputs(text)


def _err(message: str) -> None:
    sys.stderr.write(f"modelsync: error: {message}\n")


def _out(message: str) -> None:
    sys.stdout.write(message + "\n")


# -- export -----------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    import scorer
    from modelsync.export import UnsupportedEstimator, export_model, too_large
    from modelsync.service.config import Settings
    from modelsync_device.store import atomic_write

    try:
        estimator = load_trusted_model(pathlib.Path(args.model_file))
    except (OSError, ValueError, ImportError, EOFError) as exc:
        _err(f"cannot load {args.model_file}: {exc}")
        return 1
    try:
        X, names = read_sample(pathlib.Path(args.sample), estimator)
    except (OSError, ValueError) as exc:  # InvalidInput is a ValueError
        _err(f"cannot use {args.sample} as the sample: {exc}")
        return 1
    base = None
    if args.baseline:
        try:
            base, _ = read_sample(pathlib.Path(args.baseline), estimator)
        except (OSError, ValueError) as exc:
            _err(f"cannot use {args.baseline} as the baseline: {exc}")
            return 1
    try:
        doc = export_model(estimator, X, name=args.name, description=args.description, feature_names=names,
                           n_test_vectors=args.test_vectors, compact=not args.plain_arrays,
                           compress=args.compress, baseline=base)
    except UnsupportedEstimator as exc:
        _err(str(exc))
        return 1
    except scorer.InvalidModel as exc:  # export_model validates what it produced
        _invalid(exc)
        return 1
    except ValueError as exc:
        _err(f"export failed: {exc}")
        return 1
    path = pathlib.Path(args.output or f"{args.name}.json")
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False,
                      indent=1 if args.plain_arrays else None,
                      separators=None if args.plain_arrays else (",", ":")) + "\n"
    data = text.encode("utf-8")
    try:
        if len(data) > scorer.MAX_DOCUMENT_BYTES:
            how = "as written (--plain-arrays, indented)" if args.plain_arrays else "as written"
            raise scorer.InvalidModel(too_large(len(data), how))
        model = scorer.validate_model(data)  # the very bytes `modelsync validate` would read
    except scorer.InvalidModel as exc:
        _invalid(exc)
        return 1
    upload_limit = Settings.max_upload_bytes
    if len(data) > upload_limit:
        sys.stderr.write(
            f"modelsync: warning: {len(data):,} bytes is over the default upload limit of {upload_limit:,} "
            "bytes (template parameter MaxUploadBytes): Publish refuses it unless the deployment raises "
            "MaxUploadBytes; compact arrays (no --plain-arrays) and --compress make it smaller\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    _out(f"wrote {path}: {model.name} ({model.type_name}, {model.n_features} features, "
         f"methods {', '.join(model.methods)}), sha256 {model.sha256}, {path.stat().st_size} bytes")
    return 0


def _invalid(exc: Any) -> None:
    _err("the exported document does not validate (nothing written):")
    for pointer, message in exc.problems:
        sys.stderr.write(f"  {pointer or '/'}: {message}\n")


def load_trusted_model(path: pathlib.Path) -> Any:
    """Unpickle the data scientist's own model file (joblib when installed, else pickle).

    Never call this on a file from anyone else: unpickling executes code.
    """
    if not path.is_file():
        raise OSError(f"no such file: {path}")
    try:
        import joblib
    except ImportError:
        joblib = None
    if joblib is not None:
        return joblib.load(path)
    import pickle

    with path.open("rb") as fh:
        return pickle.load(fh)  # the user's own file, see EXPORT_HELP


def read_sample(path: pathlib.Path, estimator: Any) -> tuple[Any, list[str] | None]:
    """The sample rows as scikit-learn should see them, and the feature names when not in a DataFrame.

    The CSV is read by ``scorer.tabular`` (the cell rule of every path). An estimator fitted on a
    DataFrame gets a DataFrame (when pandas is installed) with exactly its columns, in its order.
    Otherwise an array whose columns are the CSV's, named by the header.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    header, columns = _read_csv_columns(path)
    if fitted is not None:
        names = [str(n) for n in fitted]
        absent = [n for n in names if n not in header]
        if absent:
            raise ValueError(f"the model was fitted on columns {names}; the CSV lacks {absent}")
        chosen = [columns[header.index(n)] for n in names]
        frame = _frame(names, chosen)
        if frame is not None:
            return frame, None
        return _matrix(chosen), names
    n = getattr(estimator, "n_features_in_", None)
    if n is not None and n != len(header):
        raise ValueError(f"the model expects {n} features, the CSV has {len(header)} columns ({header}); "
                         "without fitted feature names every column must be a feature")
    return _matrix(columns), header


def _read_csv_columns(path: pathlib.Path) -> tuple[list[str], list[list[Any]]]:
    """The sample as typed columns, read by the one table reader (scorer.tabular's cell rule)."""
    from scorer import tabular

    with path.open("rb") as fh:
        return tabular.read_columns(fh)


def _matrix(columns: list[list[Any]]) -> np.ndarray:
    if all(_numeric(col) for col in columns):
        return np.array(columns, dtype=np.float64).T
    return np.array(columns, dtype=object).T


def _frame(names: list[str], columns: list[list[Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return None
    return pd.DataFrame({n: pd.Series(c, dtype=None if _numeric(c) else object)
                         for n, c in zip(names, columns, strict=True)})


def _numeric(column: list[Any]) -> bool:
    return all(isinstance(v, float) for v in column)


# -- validate ---------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    import scorer

    problems: list[tuple[str, str]] = []
    model = None
    try:
        model = scorer.validate_model(pathlib.Path(args.document))
    except scorer.InvalidModel as exc:
        problems.extend(exc.problems)
    if args.schema:
        problems.extend(_schema_problems(pathlib.Path(args.document), scorer))
    if problems or model is None:
        for pointer, message in problems:
            _out(f"{pointer or '/'}: {message}")
        return 1
    _out(f"OK {model.name} {model.type_name} sha256={model.sha256}")
    return 0


def _schema_problems(path: pathlib.Path, scorer: Any) -> list[tuple[str, str]]:
    try:
        import jsonschema
    except ImportError:
        return [("", "--schema needs the jsonschema package (pip install jsonschema)")]
    try:
        doc = scorer.parse_document(path)
    except scorer.InvalidModel:
        return []  # already reported
    validator = jsonschema.Draft202012Validator(scorer.load_schema())
    out = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)
        out.append((pointer, f"schema: {error.message[:300]}"))
    return out


# -- predict ----------------------------------------------------------------------------------------

def cmd_predict(args: argparse.Namespace) -> int:
    import scorer
    from scorer import tabular

    try:
        model = scorer.load_model(pathlib.Path(args.document), verify_sha256=True)
    except scorer.InvalidModel as exc:
        _err(f"{args.document}: {exc}")
        return 1
    fmt = args.format or ("jsonl" if str(args.data).lower().endswith((".jsonl", ".ndjson")) else "csv")
    if args.outputs:
        try:  # a method the model lacks is a usage mistake: said before any file is opened
            tabular.output_methods(model, args.outputs)
        except scorer.MethodNotSupported as exc:
            _err(f"--outputs: {exc}")
            return 2
    try:
        with _open_in(args.data) as src, _open_out(args.output) as dst:
            tabular.score_table(model, tabular.TableReader(src, fmt), dst, proba=args.proba,
                                outputs=args.outputs, chunk_rows=args.chunk_rows)
    except (scorer.InvalidInput, scorer.MethodNotSupported) as exc:
        _err(str(exc))
        return 1
    except BrokenPipeError:  # `modelsync predict ... | head`: the reader has seen enough
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        _err(f"{exc.filename or args.data}: {exc.strerror or exc}")
        return 1
    return 0


@contextlib.contextmanager
def _open_in(name: str) -> Iterator[IO[bytes]]:
    if name == "-":
        yield sys.stdin.buffer
        return
    with open(name, "rb") as fh:
        yield fh


@contextlib.contextmanager
def _open_out(name: str | None) -> Iterator[IO[bytes]]:
    if not name or name == "-":
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with open(name, "wb") as fh:
        yield fh
