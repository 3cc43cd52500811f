"""The batch's read-ahead (modelsync.service.batch.read_ahead): one worker thread parses the next chunk while
the scorer scores this one. It must change nothing but the time: the same items in the same order, an
error of the reader raised at its place, memory bounded by the queue, no worker left behind, and through
scorer.tabular.score_table the same output bytes, bad rows (lines, reasons) and progress calls as without
it. Inputs are generated here."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator
from typing import Any

import _scorer_testkit as kit
import pytest

import scorer
from modelsync.service import batch
from scorer import tabular


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "batch-read-ahead"]


class Source:
    """An iterator that counts the items it has handed out and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.produced = 0
        self.closed = False

    def __iter__(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ValueError(f"item {i} is unreadable")
                self.produced += 1
                yield i
        finally:
            self.closed = True


@pytest.mark.parametrize("depth", [1, 2])
def test_items_come_in_order_and_the_worker_stays_within_the_queue(depth: int) -> None:
    src = Source(50)
    got = []
    for item in batch.read_ahead(iter(src), depth):
        # handed out so far: the ones consumed, the queue's, and the one the worker holds
        assert src.produced <= len(got) + 1 + depth + 1
        got.append(item)
    assert got == list(range(50))
    assert src.closed and not _workers()


@pytest.mark.parametrize("weight, extra", [(10, 1), (100, 0)])
def test_the_worker_waits_while_the_items_handed_over_weigh_more_than_the_budget(weight: int,
                                                                                  extra: int) -> None:
    # budget 15: with items of 10, one more than the consumer holds; with items of 100, none
    src = Source(40)
    got = []
    for item in batch.read_ahead(iter(src), depth=5, size=lambda _: weight, max_ahead=15):
        assert src.produced <= len(got) + 1 + extra  # this item, and `extra` parsed ahead at most
        got.append(item)
    assert got == list(range(40)) and not _workers()


def test_an_error_of_the_source_is_raised_after_the_items_before_it() -> None:
    got: list[int] = []
    with pytest.raises(ValueError, match="item 7 is unreadable"):
        for item in batch.read_ahead(iter(Source(20, fail_at=7))):
            got.append(item)
    assert got == list(range(7))
    assert not _workers()


def test_closing_early_stops_the_worker_and_closes_the_source() -> None:
    src = Source(1000)
    items = batch.read_ahead(iter(src))
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert not _workers() and src.closed and src.produced <= 3 + 2


@pytest.fixture
def model() -> Iterator[scorer.Model]:
    """Three numeric features f0, f1, f2 and three classes (prediction + proba_<class> columns)."""
    kit.install()
    try:
        yield scorer.load_model(kit.make_doc(coef=(1.0, -2.0, 0.5), classes=["a", "b", "c"],
                                             rows=[[1.0, 2.0, 3.0]]))
    finally:
        kit.uninstall()


def _cell(rng: random.Random) -> str:
    return rng.choice([repr(rng.gauss(0, 100)), f"{rng.uniform(-1e6, 1e6):.3e}", str(rng.randint(-99, 99)),
                       "-0.0", "NA", "", '"1.5"'])


def _table(rng: random.Random, n: int, fmt: str) -> bytes:
    """Mostly plain numeric rows, with bad ones (a word, a short row, broken JSON) here and there."""
    lines = ["f0,f1,f2"] if fmt == "csv" else []
    for _ in range(n):
        cells = [_cell(rng) for _ in range(3)]
        odd = rng.random()
        if odd < 0.01:
            cells[1] = "five"
        elif odd < 0.02:
            cells = cells[:2]
        if fmt == "csv":
            lines.append(",".join(cells))
        elif odd < 0.03:
            lines.append('{"f0": 1, "f1":')
        else:
            values = [c.strip('"') for c in cells]
            lines.append("{" + ", ".join(f'"f{j}": ' + (v if v not in ("", "NA") else "null")
                                         for j, v in enumerate(values)) + "}")
    return ("\n".join(lines) + "\n").encode()


def _score(model: scorer.Model, data: bytes, fmt: str, **kw: Any) -> tuple[bytes, list[Any], list[Any]]:
    out, bad, seen = io.BytesIO(), [], []
    counts = tabular.score_table(model, tabular.TableReader(io.BytesIO(data), fmt, read_bytes=4096), out,
                                 proba=None, on_error=bad.append, chunk_rows=97,
                                 progress=lambda c, offset: seen.append((c.rows, c.scored, c.errors, offset)),
                                 **kw)
    return out.getvalue(), [(b.line, b.row, b.reason) for b in bad], [*seen, counts]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("seed", range(3))
def test_score_table_with_read_ahead_writes_the_same_bytes_errors_and_progress(model: scorer.Model,
                                                                                fmt: str, seed: int) -> None:
    data = _table(random.Random(seed), 3000, fmt)
    want = _score(model, data, fmt)
    sizes: list[int] = []

    def weighed(items: Iterator[tabular.Parsed]) -> Iterator[tabular.Parsed]:
        return batch.read_ahead(items, size=lambda p: sizes.append(p.size) or p.size, max_ahead=3000)

    got = _score(model, data, fmt, read_ahead=weighed)
    assert got == want
    header = data.index(b"\n") + 1 if fmt == "csv" else 0
    assert sum(sizes) == len(data) - header and len(sizes) > 10  # every chunk weighed by its bytes
    assert want[1]  # the input did have bad rows
    assert not _workers()


def test_the_first_bad_row_raises_and_no_worker_is_left(model: scorer.Model) -> None:
    data = b"f0,f1,f2\n" + b"".join(b"%d,1,2\n" % i for i in range(5000)) + b"x,1,2\n" + b"1,2,3\n" * 5000
    with pytest.raises(scorer.InvalidInput, match=r"row 5000 \(line 5002\)"):
        tabular.score_table(model, tabular.TableReader(io.BytesIO(data)), io.BytesIO(), chunk_rows=100,
                            read_ahead=batch.read_ahead)
    assert not _workers()


def test_the_batch_scores_through_the_read_ahead(model: scorer.Model,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[bool] = []
    real = batch.read_ahead

    def spy(items: Iterator[Any], **kw: Any) -> Iterator[Any]:
        used.append(kw.get("size") is not None)
        return real(items, **kw)

    monkeypatch.setattr(batch, "read_ahead", spy)
    writes: list[bytes] = []

    class S3:
        def put_object(self, Body: bytes, **_: Any) -> dict[str, Any]:
            writes.append(Body)
            return {}

    ctx = batch.BatchContext(s3=S3(), registry=None,  # type: ignore[arg-type]
                             settings=batch.Settings(models_bucket="b", registry_table=""),
                             load_model=lambda record: model)
    data = _table(random.Random(9), 500, "csv")
    counts = batch._score_to_s3(ctx, model, lambda: tabular.TableReader(io.BytesIO(data), "csv"), "csv", "b",
                                "out.csv", "errors.jsonl", with_header=True)
    want, bad, _ = _score(model, data, "csv")
    assert used and (counts.rows, counts.errors) == (500, len(bad)) and bad
    assert writes == [want, b"".join(batch._error_line(tabular.BadRow(line, row, reason))
                                     for line, row, reason in bad)]
