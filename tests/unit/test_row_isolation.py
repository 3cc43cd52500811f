"""Rows the model refuses at scoring time are isolated by bisection in ``scorer.tabular.score_table`` (the
one table path of the CLI, batch and devices), issue 9: about refused x log2(block) model calls on
shrinking parts, never a re-score of the block per refused row; the good rows are scored in one final
call, so their outputs are those of scoring them alone, and the bad rows are reported in line order.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import scorer
from scorer import tabular

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
GOOD = "5.1,3.5,1.4,0.2"
REFUSED = "5.1,3.5,,0.2"  # logistic regression cannot handle a missing value: refused when scored


@pytest.fixture(scope="module")
def model() -> scorer.Model:
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelsync.export import export_model

    data = load_iris()
    X = pd.DataFrame(data.data, columns=FEATURES)
    est = LogisticRegression(max_iter=500).fit(X, data.target_names[data.target])
    return scorer.load_model(export_model(est, X.iloc[::10], name="iris"))


def _csv(cells: list[str]) -> bytes:
    return ("id," + ",".join(FEATURES) + "\n" + "".join(f"r{i},{c}\n" for i, c in enumerate(cells))).encode()


class _Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, columns, methods):
        self.calls += 1
        return self.inner(columns, methods)


def _score(model, body: bytes, chunk_rows: int, predict=None):
    out, errors = io.BytesIO(), []
    counts = tabular.score_table(model, tabular.TableReader(io.BytesIO(body), "csv"), out, proba=None,
                                 on_error=errors.append, chunk_rows=chunk_rows, predict=predict)
    return counts, out.getvalue(), errors


def _good_only(model, body: bytes, refused: set[int]) -> bytes:
    """What the good rows alone score to (the input without the refused lines)."""
    lines = body.split(b"\n")
    kept = [lines[0]] + [ln for i, ln in enumerate(lines[1:]) if i not in refused]
    return _score(model, b"\n".join(kept), 10_000)[1]


@pytest.mark.parametrize("pattern", ["scattered", "runs", "all", "none", "first_and_last"])
def test_refused_rows_are_set_aside_and_the_rest_scored_as_alone(model, pattern):
    rng = np.random.default_rng(7)
    n = 997
    refused = {"scattered": set(rng.choice(n, 60, replace=False).tolist()),
               "runs": set(range(100, 180)) | set(range(500, 503)),
               "all": set(range(n)), "none": set(), "first_and_last": {0, n - 1}}[pattern]
    body = _csv([REFUSED if i in refused else GOOD.replace("5.1", f"{4 + (i % 30) / 10}") for i in range(n)])
    counts, out, errors = _score(model, body, 10_000)
    assert (counts.scored, counts.errors) == (n - len(refused), len(refused))
    assert out == _good_only(model, body, refused)
    assert [e.line for e in errors] == sorted(i + 2 for i in refused)  # line order, header on line 1
    assert all("missing" in e.reason.lower() or "nan" in e.reason.lower() for e in errors), errors[:1]


def test_isolation_needs_few_model_calls(model):
    n = 5000
    body = _csv([REFUSED if i % 1000 == 7 else GOOD for i in range(n)])
    counting = _Counting(tabular.model_predictor(model))
    counts, _, errors = _score(model, body, n, counting)
    assert (counts.scored, counts.errors) == (n - 5, 5) and [e.line for e in errors][:1] == [9]
    assert counting.calls <= 5 * 2 * 13 + 2  # ~2 log2(5000) per refused row at most, not 5 x 5000


def test_20000_refused_rows_take_linear_model_calls(model):
    # 20,000 rows the model refuses, in blocks of the batch default (5,000 rows); the old code re-scored
    # the block per refused row (its speed is bench/'s business, not a test's)
    body = _csv([REFUSED] * 20_000)
    counting = _Counting(tabular.model_predictor(model))
    counts, _, errors = _score(model, body, 5000, counting)
    assert (counts.scored, counts.errors) == (0, 20_000)
    assert [e.line for e in errors] == list(range(2, 20_002))
    # linear: each model call pins one refused row (a re-score per refused row would be 20,000 x 5,000)
    assert counting.calls <= 20_000 + 4 * 2
