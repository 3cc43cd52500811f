"""The public model: :class:`Model` (a loaded document's scikit-learn-like methods), :func:`load_model`
and :func:`validate_model`. The pieces they assemble live beside it: the envelope (:mod:`scorer._envelope`),
the input schema and conversion (:mod:`scorer._inputs`), the test vectors (:mod:`scorer._vectors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._base import (
    Estimator,
    InvalidModel,
    LoadContext,
    MethodNotSupported,
    UnsupportedModel,
    _short,
    load_estimator,
)
from ._envelope import (
    METHODS,
    Problem,
    check_format_version,
    envelope_problems,
    parse_document,
    sha256_problems,
)
from ._inputs import CATEGORICAL, F8, Feature, feature_list, number_rows, to_matrix
from ._limits import DEFAULT_LIMITS, Limits, RowCost
from ._vectors import check_test_vectors, labels_equal


class Model:
    """A loaded model: the scikit-learn-like methods over the document's input schema.

    ``predict``/``predict_proba``/``decision_function``/``transform`` accept every input form
    :func:`to_matrix` accepts. A method the document does not offer raises :class:`MethodNotSupported`.
    """

    def __init__(self, doc: dict[str, Any], estimator: Estimator, features: list[Feature],
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.document = doc
        self.estimator = estimator
        self.limits = limits
        self.row_cost: RowCost = estimator.row_cost()
        # rows scored at once: intermediates stay within the memory budget whatever the request
        self._block = limits.block_rows(self.row_cost)
        self._features = features
        self._numeric = all(f.kind != CATEGORICAL for f in features)
        # float64 arrays go to the estimator uncopied when it promises never to write into its input
        self._pass_arrays = self._numeric and bool(getattr(estimator, "reads_input_only", False))
        meta = doc.get("metadata")
        self.metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
        name = self.metadata.get("name")
        self.name: str = name if isinstance(name, str) else ""
        fv = doc.get("format_version")
        self.format_version: str = fv if isinstance(fv, str) else ""
        sha = doc.get("sha256")
        self.sha256: str | None = sha if isinstance(sha, str) else None
        output = doc.get("output")
        output = output if isinstance(output, dict) else {}
        task = output.get("task")
        self.task: str = task if isinstance(task, str) else ""
        declared = output.get("methods")
        supported = [m for m in METHODS if estimator.supports(m)]
        if isinstance(declared, list):
            self._methods = [m for m in METHODS if m in declared and m in supported]
        else:
            self._methods = supported
        # one row of plain numbers: the estimator's own path where it has one (no matrix, no checks of a
        # whole matrix, Python floats through the link), built once here
        self._row_paths: dict[str, Any] = {}
        self._width = len(features)
        if self._numeric:
            for m in self._methods:
                path = estimator.row_path(m)
                if path is not None:
                    self._row_paths[m] = path

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self._features]

    @property
    def features(self) -> list[Feature]:
        return list(self._features)

    @property
    def n_features(self) -> int:
        return len(self._features)

    @property
    def type_name(self) -> str:
        return self.estimator.type_name

    @property
    def classes(self) -> np.ndarray | None:
        return self.estimator.classes

    @property
    def methods(self) -> list[str]:
        """The methods this model offers: declared in ``output.methods`` and implemented."""
        return list(self._methods)

    def supports(self, method: str) -> bool:
        return method in self._methods

    def max_rows(self, limits: Limits | None = None) -> int:
        """Most rows one request may score under ``limits`` (the model's own by default): bounded by the
        work per row (MODEL_MAX_REQUEST_COST) and by the inputs and results held (MODEL_MEMORY_BUDGET)."""
        return (limits or self.limits).max_rows(self.row_cost, len(self._features))

    has = supports  # older name, kept for callers

    def _call(self, method: str, X: Any) -> np.ndarray:
        if method not in self._methods:
            offers = ", ".join(self._methods) or "no method"
            raise MethodNotSupported(f"model {self.name or self.type_name!r} has no {method}; "
                                     f"it offers {offers}")
        # Fast paths, same matrix as to_matrix: numeric list rows, or a float64 C-ordered array passed
        # through uncopied to an estimator that only reads it. One list row: the estimator's row path.
        if type(X) is list and len(X) == 1 and type(X[0]) is list and len(X[0]) == self._width:
            path = self._row_paths.get(method)
            if path is not None:
                out = path(X[0])
                if out is not None:
                    return out
        fn = self._blocked(getattr(self.estimator, method))
        if type(X) is list:
            if self._numeric and X and type(X[0]) is list:
                M = number_rows(X, len(self._features))
                if M is not None:
                    return fn(M)
        elif (self._pass_arrays and type(X) is np.ndarray and X.dtype == F8 and X.ndim == 2
              and X.shape[1] == len(self._features) and X.flags.c_contiguous):
            return fn(X)
        return fn(to_matrix(X, self._features))

    def _blocked(self, fn: Any) -> Any:
        """``fn`` over row blocks of at most ``_block`` rows, results concatenated (one call when the
        rows fit in one block, so small requests take exactly the one-shot path)."""
        block = self._block

        def run(M: np.ndarray) -> Any:
            n = M.shape[0]
            if n <= block:
                return fn(M)
            return _concat([fn(M[start:start + block]) for start in range(0, n, block)])

        return run

    def predict(self, X: Any) -> np.ndarray:
        return self._call("predict", X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._call("predict_proba", X)

    def decision_function(self, X: Any) -> np.ndarray:
        return self._call("decision_function", X)

    def transform(self, X: Any) -> np.ndarray:
        return self._call("transform", X)

    def __repr__(self) -> str:
        return f"<scorer.Model {self.name!r} {self.estimator.type_name} features={len(self._features)}>"


def _concat(parts: list[Any]) -> Any:
    """Results of consecutive row blocks joined (a multi-output classifier returns a list of arrays)."""
    if isinstance(parts[0], list):
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
    return np.concatenate(parts)


def _build(doc: dict[str, Any], full: bool,
           limits: Limits = DEFAULT_LIMITS) -> tuple[Model | None, list[Problem], bool]:
    """Load what can be loaded; return the model (None if it cannot be built), problems, unsupported?"""
    problems = envelope_problems(doc, full=full)
    unsupported = False
    features, feature_problems = feature_list(doc)
    problems.extend(feature_problems)
    estimator: Estimator | None = None
    if "estimator" not in doc:
        problems.append(("/estimator", "required field is missing"))
    else:
        try:
            estimator = load_estimator(doc["estimator"], LoadContext("/estimator", limits=limits))
        except InvalidModel as exc:
            unsupported = isinstance(exc, UnsupportedModel)
            problems.extend(exc.problems)
    if features is None or estimator is None:
        return None, problems, unsupported
    problems.extend(_consistency_problems(doc, features, estimator))
    return Model(doc, estimator, features, limits), problems, unsupported


def _consistency_problems(doc: Mapping[str, Any], features: list[Feature], est: Estimator) -> list[Problem]:
    """The envelope must describe the estimator it carries."""
    problems: list[Problem] = []
    if est.n_features_in and est.n_features_in != len(features):
        problems.append(("/input/features", f"the estimator expects {est.n_features_in} features, "
                         f"input declares {len(features)}"))
    output = doc.get("output")
    if not isinstance(output, dict):
        return problems
    methods = output.get("methods")
    if isinstance(methods, list):
        for i, m in enumerate(methods):
            if isinstance(m, str) and m in METHODS and not est.supports(m):
                problems.append((f"/output/methods/{i}", f"{est.type_name} has no {m}"))
    classes = output.get("classes")
    if isinstance(classes, list) and classes:
        if est.classes is None:
            problems.append(("/output/classes", f"{est.type_name} has no classes"))
        elif not labels_equal(np.asarray(est.classes, dtype=object).tolist(), classes):
            problems.append(("/output/classes", f"does not match the estimator's classes "
                             f"{_short(np.asarray(est.classes, dtype=object).tolist(), 120)}"))
    elif output.get("task") == "classification" and est.classes is None:
        problems.append(("/estimator",
                         f"{est.type_name} is not a classifier but output.task is classification"))
    return problems


def load_model(source: Any, *, verify_sha256: bool = False, limits: Limits | None = None) -> Model:
    """Load a model document (dict, path, bytes or JSON text) for scoring. Raises :class:`InvalidModel`.

    Checks everything scoring depends on (format version, input schema, estimator, the shape of the
    envelope fields that are present) but neither re-scores the test vectors nor, unless
    ``verify_sha256``, recomputes the sha256: that is :func:`validate_model`'s job, done once when a
    model is published. ``limits`` as for :func:`validate_model`; they also size the row blocks.
    """
    doc = parse_document(source)
    check_format_version(doc)
    model, problems, unsupported = _build(doc, full=False, limits=limits or DEFAULT_LIMITS)
    if verify_sha256:
        problems.extend(sha256_problems(doc) if "sha256" in doc
                        else [("/sha256", "required field is missing")])
    if problems or model is None:
        raise (UnsupportedModel if unsupported else InvalidModel)(problems)
    return model


def validate_model(source: Any, *, limits: Limits | None = None) -> Model:
    """Fully check a document: structure, semantics, limits, sha256 and the test vectors re-scored.

    Returns the loaded model; raises :class:`InvalidModel` whose ``problems`` lists every
    (JSON pointer, message) pair found. A document that cannot even be parsed, or whose major
    format version is unknown, stops at that first problem. ``limits``: what the document may cost
    (scorer._limits; the module defaults when None), checked before anything large is built.
    """
    doc = parse_document(source)
    check_format_version(doc)
    model, problems, unsupported = _build(doc, full=True, limits=limits or DEFAULT_LIMITS)
    problems.extend(sha256_problems(doc))
    if model is not None:
        problems.extend(check_test_vectors(model))
    if problems or model is None:
        raise (UnsupportedModel if unsupported else InvalidModel)(problems)
    return model
