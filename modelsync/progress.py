"""Progress bars for the CLI's long work (tqdm): rows done, rows/s and an ETA, on a terminal only.

The scorer stays free of any of this: :func:`scorer.tabular.score_table` and ``read_columns`` take a plain
``progress(counts_or_rows, bytes_read)`` callback, and the batch function logs ``batch progress`` lines;
this module turns either into a bar. A bar shows only when stderr is a terminal, and only once the work
has lasted :data:`DELAY` seconds (short commands print nothing); ``--quiet`` turns it off and
``MODELSYNC_PROGRESS=1`` forces it on at once (tests), ``MODELSYNC_PROGRESS=0`` off. Never used by Lambda
code or by ``python -m modelsync_device`` (numpy and the standard library only there).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

ENV = "MODELSYNC_PROGRESS"
BATCH_LOGGER = "modelsync.service.batch"  # where the batch function logs "batch progress"
DELAY = 0.5  # seconds before a bar appears

#: What a progress bar is told: rows (or ``Counts``) done, input bytes read so far.
Callback = Callable[[Any, int], None]


def enabled(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether to show a bar: not with ``--quiet``; ``MODELSYNC_PROGRESS`` 1/0 decides; else on a terminal."""
    if quiet:
        return False
    forced = os.environ.get(ENV, "").strip()
    if forced:
        return forced not in ("0", "false", "no")
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


class RowsBar:
    """A bar counting rows; the total (for the ETA) is estimated from the bytes read out of
    ``total_bytes`` when the input's size is known, else the bar shows rows and rows/s only."""

    def __init__(self, desc: str, total_bytes: int | None = None, *, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stderr
        show = enabled(quiet, stream)
        forced = bool(os.environ.get(ENV, "").strip())
        self.total_bytes = total_bytes if total_bytes and total_bytes > 0 else None
        self.bar = tqdm(desc=desc, unit=" rows", unit_scale=True, dynamic_ncols=True, file=stream,
                        disable=not show, delay=0.0 if forced else DELAY, leave=False,
                        mininterval=0.0 if forced else 0.1)
        self.rows = 0

    def update(self, done: Any, bytes_read: int = 0) -> None:
        """``done``: rows so far, or an object with a ``rows`` attribute (``scorer.tabular.Counts``)."""
        rows = int(getattr(done, "rows", done))
        if self.total_bytes and bytes_read > 0:
            estimate = int(rows * self.total_bytes / bytes_read)
            self.bar.total = max(estimate, rows)
        self.bar.update(rows - self.rows)
        self.rows = rows

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def rows_bar(desc: str, total_bytes: int | None = None, *, quiet: bool = False,
             stream: TextIO | None = None) -> Iterator[Callback]:
    """A :class:`RowsBar` as the ``progress`` callback of a block, closed (and erased) at its end."""
    bar = RowsBar(desc, total_bytes, quiet=quiet, stream=stream)
    try:
        yield bar.update
    finally:
        bar.close()


def file_size(path: Any) -> int | None:
    """The size of an input file (for the ETA), None for stdin or what cannot be stat'ed."""
    if path is None or str(path) == "-":
        return None
    try:
        return os.path.getsize(path)
    except OSError:
        return None


class BatchLogBar(logging.Filter):
    """Drives a bar from the batch function's ``batch progress`` log records (``modelsync invoke``):
    attached to the batch module's logger, it updates the bar and, while a bar is shown, drops those
    records so the bar is not broken by the same news as JSON lines."""

    MESSAGE = "batch progress"

    def __init__(self, desc: str, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.show = enabled(quiet, self.stream)
        self.bar: RowsBar | None = None
        self.desc = desc
        self.quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != self.MESSAGE or not self.show:
            return True
        rows = getattr(record, "rows", None)
        if not isinstance(rows, int):
            return True
        if self.bar is None or rows < self.bar.rows:  # the next input starts its own count
            self.close()
            key = getattr(record, "key", None)
            self.bar = RowsBar(f"{self.desc} {key}" if key else self.desc,
                               getattr(record, "bytes_total", None), quiet=self.quiet, stream=self.stream)
        self.bar.update(rows, int(getattr(record, "bytes_read", 0) or 0))
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def batch_log_bar(desc: str, *, quiet: bool = False, stream: TextIO | None = None,
                  logger_name: str = BATCH_LOGGER) -> Iterator[BatchLogBar]:
    """:class:`BatchLogBar` on the batch code's logger for the duration of a block."""
    bar = BatchLogBar(desc, quiet=quiet, stream=stream)
    logger = logging.getLogger(logger_name)
    logger.addFilter(bar)
    try:
        yield bar
    finally:
        logger.removeFilter(bar)
        bar.close()
