"""The one parity harness: how a scorer model is compared with the scikit-learn estimator it came from.

``assert_parity(est, X, model, tol=...)``: the model offers exactly the methods scikit-learn has; every
method's output has scikit-learn's shape; labels (and every non-float output) are identical; float
outputs are within ``tol`` absolute (``tol=0.0``: bit for bit); the first rows scored one at a time (the
single-row paths) agree too. ``TOL`` is the parity promised by docs/format/*.md unless a page promises
bit-exactness. ``forest_layouts`` loads a tree document once per layout of the forest engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import sklearn

import scorer
from scorer.models import _forest
from scorer.models._forest import bitvector, traversal

TOL = 1e-9
EXACT = 0.0  # where a format page promises bit-for-bit parity (trees, boosting probabilities included)
LAYOUTS = ("auto", "bitvector", "heap", "explicit", "walk")  # walk: single rows walked in Python
SKLEARN = tuple(int(p) for p in sklearn.__version__.split(".")[:2])


def needs_sklearn(version: tuple[int, int], feature: str) -> pytest.MarkDecorator:
    """Skip where the installed scikit-learn (``make test-compat``: the oldest supported) lacks a feature
    the test fits with; the exporter reads every supported release's fitted attributes."""
    return pytest.mark.skipif(version > SKLEARN, reason=f"{feature} needs scikit-learn >= "
                              f"{'.'.join(map(str, version))}")


def sk_methods(est: Any) -> list[str]:
    """The methods of ``scorer.METHODS`` the fitted scikit-learn estimator offers (``hasattr``)."""
    return [m for m in scorer.METHODS if hasattr(est, m)]


def assert_parity(est: Any, X: Any, model: Any, tol: float | Mapping[str, float] = TOL, *,
                  methods: tuple[str, ...] | None = None, rows: int = 6) -> None:
    """Compare ``model`` (a :class:`scorer.Model`, or a bare estimator for ``methods``) with ``est`` on ``X``.

    ``tol``: one tolerance for every float output, or one per method (absent methods: ``TOL``).
    ``methods``: compare only these (default: every method scikit-learn has, which the model must offer
    exactly). ``rows``: how many leading rows are also scored one at a time.
    """
    if methods is None:
        methods = tuple(sk_methods(est))
        assert [m for m in scorer.METHODS if model.supports(m)] == list(methods), (model.methods, methods)
    for m in methods:
        t = tol.get(m, TOL) if isinstance(tol, Mapping) else tol
        want = getattr(est, m)(X)
        _same(m, want, getattr(model, m)(X), t)
        list_rows = isinstance(model, scorer.Model) and isinstance(X, np.ndarray) and X.dtype.kind == "f"
        for i in range(min(rows, len(X))):
            row = X.iloc[i : i + 1] if hasattr(X, "iloc") else X[i : i + 1]
            _same(f"{m} of row {i}", _row(want, i), getattr(model, m)(row), t)
            if list_rows:  # a list row: the estimator's own single-row path (Estimator.row_path)
                _same(f"{m} of list row {i}", _row(want, i), getattr(model, m)([X[i].tolist()]), t)


def _row(want: Any, i: int) -> Any:
    return [w[i : i + 1] for w in want] if isinstance(want, list) else want[i : i + 1]


def _same(what: str, want: Any, got: Any, tol: float) -> None:
    if isinstance(want, list):  # multi-output predict_proba: one array per output
        assert isinstance(got, list) and len(got) == len(want), what
        for k, (w, g) in enumerate(zip(want, got, strict=True)):
            _same(f"{what}[{k}]", w, g, tol)
        return
    want = np.asarray(want.toarray() if hasattr(want, "toarray") else want)  # scikit-learn's sparse outputs
    got = np.asarray(got)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    if want.dtype.kind == "O" or got.dtype.kind == "O":  # numbers held as objects compare as numbers
        try:
            want, got = want.astype(np.float64), got.astype(np.float64)
        except (TypeError, ValueError):  # labels or strings: identical
            assert got.tolist() == want.tolist(), what
            return
    if tol == 0.0 or want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=what)


@pytest.fixture
def forest_layouts(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``for model in forest_layouts(text): ...``: the document loaded once per layout of the forest engine
    (scorer/models/_forest), with chunks of a few rows so that batches cross chunk boundaries."""
    monkeypatch.setattr(traversal, "TRAVERSAL_LANES", 64)
    monkeypatch.setattr(bitvector, "QS_CHUNK_BYTES", 512)
    monkeypatch.setattr(bitvector, "QS_RANK_ROWS", 40)  # blocks of a few sub-chunks (the last one partial)

    def load_all(text: str) -> Iterator[scorer.Model]:
        for layout in LAYOUTS:
            monkeypatch.setattr(_forest, "FORCE_ENGINE", None if layout in ("auto", "walk") else layout)
            # the numpy layouts score single rows themselves; "walk" walks them in Python
            monkeypatch.setattr(_forest, "FORCE_WALK", None if layout == "auto" else layout == "walk")
            model = scorer.load_model(text)
            forest = model.estimator.forest  # type: ignore[attr-defined]
            if layout == "explicit":  # ("heap" is refused for forests too deep to pad: explicit again)
                assert isinstance(forest, traversal.TraversalForest) and not forest.heap
            yield model
        monkeypatch.setattr(_forest, "FORCE_ENGINE", None)
        monkeypatch.setattr(_forest, "FORCE_WALK", None)

    return load_all
