"""JSON Lines in scorer.tabular, the faster ways: numeric features of a chunk's objects read into one matrix,
and rows written by a C encoder built once. Both must give what the column-by-column reading and
json.dumps(ensure_ascii=False, allow_nan=False) give, bad values and their reasons included. Inputs are
generated here."""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Iterator
from typing import Any

import _scorer_testkit as kit
import pytest

import scorer
from scorer import tabular


def _value(rng: random.Random) -> Any:
    return rng.choice([rng.gauss(0, 1e3), rng.random() * 10 ** rng.randint(-320, 308), -0.0, 0.0, 5e-324,
                       1e16, 123456789012345678.0, rng.randint(-10**6, 10**6), 2**64 + rng.randint(0, 9),
                       -(2**53) - 1, None, 1.7976931348623157e308])


def _odd(rng: random.Random) -> Any:
    return rng.choice([True, False, "1.5", "x", [1.0], {"a": 1}, 10**400, "", "é\n\"\\\u2028\x01"])


def _objects(rng: random.Random, n: int, odd: float) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        obj: dict[str, Any] = {"id": rng.randint(0, 99), "note": rng.choice(["", "ü", 'q"', "a\tb"])}
        for j in range(3):
            obj[f"f{j}"] = _odd(rng) if rng.random() < odd else _value(rng)
        if rng.random() < odd / 2:
            del obj[f"f{rng.randrange(3)}"]
        out.append(obj)
    return out


@pytest.fixture
def model() -> Iterator[scorer.Model]:
    kit.install()
    try:
        yield scorer.load_model(kit.make_doc(coef=(1.0, -2.0, 0.5), classes=["a", "b"],
                                             rows=[[1.0, 2.0, 3.0]]))
    finally:
        kit.uninstall()


def _score(model: scorer.Model, data: bytes) -> tuple[bytes, list[tuple[int, str]]]:
    out, bad = io.BytesIO(), []
    tabular.score_table(model, tabular.TableReader(io.BytesIO(data), "jsonl"), out, proba=None,
                        on_error=bad.append, chunk_rows=50)
    return out.getvalue(), [(b.line, b.reason) for b in bad]


@pytest.mark.parametrize("seed, odd", [(0, 0.0), (1, 0.02), (2, 0.2)])
def test_features_read_at_once_equal_the_column_by_column_reading(model: scorer.Model,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  seed: int, odd: float) -> None:
    objects = _objects(random.Random(seed), 400, odd)
    data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()
    calls: list[bool] = []
    real = tabular._json_numbers
    monkeypatch.setattr(tabular, "_json_numbers", lambda *a: calls.append(True) or real(*a))
    got = _score(model, data)
    assert calls
    with monkeypatch.context() as m:
        m.setattr(tabular, "_json_numbers", lambda *a: None)
        want = _score(model, data)
    assert got == want
    if odd:
        assert got[1]  # some values were bad, and named as the column-by-column reading names them


@pytest.mark.parametrize("seed", range(4))
def test_rows_are_encoded_as_json_dumps_encodes_them(seed: int) -> None:
    rng = random.Random(seed)
    for obj in _objects(rng, 300, 0.3):
        obj["nested"] = [_value(rng), {"k": _odd(rng), "é": None}]
        obj.pop("f2", None)
        if any(isinstance(v, float) and not math.isfinite(v) for v in obj.values()):
            continue
        assert tabular._encode_json(obj) == json.dumps(obj, ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_value_json_cannot_hold_is_refused_as_json_dumps_refuses_it(bad: float) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        tabular._encode_json({"a": 1, "b": [bad]})
