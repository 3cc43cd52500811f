"""Records of a CSV or JSON Lines table, streamed from any binary stream (numpy-free, standard library).

Only ``src.read(n) -> bytes`` is assumed, so a file opened ``"rb"``, ``sys.stdin.buffer`` and the
``StreamingBody`` of an S3 GetObject are read the same way. Bytes are split into physical lines at
``\\n`` (safe in UTF-8: no multi-byte sequence contains that byte) and each line is decoded on its own,
so a bad byte costs one record, not the file, and memory stays bounded by the longest line.

CSV follows RFC 4180 (``csv`` module, strict mode): quoted fields may hold commas, doubled quotes and
line breaks; CRLF and LF both end a record; a UTF-8 BOM at the start of the stream is dropped. Every
record carries the physical line it starts on and its byte offset, which is where the Step Functions
path cuts an input into chunks. Parsing the cells (numbers, missing values) is :mod:`scorer.tabular`'s.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, Protocol

from ._base import InvalidInput
from ._json import loads_strict

READ_BYTES = 1 << 20  # bytes asked of the stream per read()
MAX_FIELD_CHARS = 1 << 20  # one CSV cell; an unclosed quote ends as a bad record, not a memory blow-up
MAX_LINE_BYTES = 64 << 20  # one physical line
#: What a "plain" CSV line is made of: digits, signs, points, exponents, commas. Such a line has no quotes,
#: so it is one record whose cells are the text between its commas (:meth:`Lines.plain`).
PLAIN_BYTES = b"0123456789.eE+-,"
PLAIN_BLOCK_BYTES = 16 << 20  # a block of plain lines stops after about this much text, whatever its rows


class Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


class Record:
    """One table record: where it starts, its cells (CSV) or object (JSONL), or why it is unreadable."""

    __slots__ = ("line", "offset", "problem", "row", "values")

    def __init__(self, line: int, offset: int, row: int, values: Any, problem: str | None = None) -> None:
        self.line, self.offset, self.row, self.values, self.problem = line, offset, row, values, problem

    def __repr__(self) -> str:
        return f"Record(line={self.line}, row={self.row}, values={self.values!r}, problem={self.problem!r})"


class Lines:
    """The physical lines of a stream as text (line ends kept), counting lines and bytes as it goes.

    ``line`` is the number of the last line handed out, ``line_offset`` its byte offset and
    ``next_offset`` the byte offset of the next one, so a reader that pulls lines one at a time knows
    where each record starts. ``first_line`` and ``offset`` say where ``src`` begins in the whole input
    (a ranged read); ``end_byte`` stops reading there. Lines that are not UTF-8 are decoded with
    replacement characters and listed in ``bad``. :meth:`plain` hands out a run of lines as raw bytes
    instead (the bulk CSV path), from the same buffer, so both ways can take turns.
    """

    def __init__(self, src: Readable, first_line: int = 1, offset: int = 0, end_byte: int | None = None,
                 read_bytes: int = READ_BYTES) -> None:
        self.src = src
        self.line = first_line - 1
        self.line_offset = offset
        self.next_offset = offset
        self.end_byte = end_byte
        self.bad: dict[int, str] = {}
        self._strip_bom = first_line == 1 and offset == 0
        self._read_bytes = read_bytes
        self._read_offset = offset
        self._buf = b""  # complete lines read but not handed out yet, from ``_at``
        self._at = 0
        self._parts: list[bytes] = []  # the start of a line whose end is not read yet
        self._held = 0
        self._eof = False

    def _read(self) -> bytes:
        n = self._read_bytes
        if self.end_byte is not None:
            n = min(n, self.end_byte - self._read_offset)
            if n <= 0:
                return b""
        block = self.src.read(n)
        self._read_offset += len(block)
        return block

    def _fill(self) -> bool:
        """Read until the buffer holds at least one complete line; False at the end of the stream."""
        while not self._eof:
            block = self._read()
            if not block:
                self._eof = True
                break
            cut = block.rfind(b"\n")
            if cut < 0:
                self._parts.append(block)
                self._held += len(block)
                if self._held > MAX_LINE_BYTES:
                    raise InvalidInput(f"line {self.line + 1} is longer than {MAX_LINE_BYTES} bytes")
                continue
            head = block[:cut + 1]
            if self._parts:
                self._parts.append(head)
                head = b"".join(self._parts)
            tail = block[cut + 1:]
            self._parts, self._held = ([tail], len(tail)) if tail else ([], 0)
            self._buf = self._buf[self._at:] + head if self._at < len(self._buf) else head
            self._at = 0
            return True
        return False

    def __iter__(self) -> Iterator[str]:
        while True:
            if self._at < len(self._buf):
                end = self._buf.index(b"\n", self._at) + 1
                raw = self._buf[self._at:end]
                self._at = end
                yield self._text(raw)
            elif not self._fill():
                break
        if self._parts:
            raw = b"".join(self._parts)
            self._parts, self._held = [], 0
            yield self._text(raw)

    def _text(self, raw: bytes) -> str:
        self.line += 1
        self.line_offset = self.next_offset
        self.next_offset += len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.bad[self.line] = f"line {self.line} is not UTF-8 ({exc.reason} at byte {exc.start})"
            text = raw.decode("utf-8", errors="replace")
        if self._strip_bom:
            self._strip_bom = False
            if text.startswith("\ufeff"):
                text = text[1:]
        return text

    def plain(self, max_lines: int, end_line: int | None = None,
              max_bytes: int = PLAIN_BLOCK_BYTES) -> list[bytes]:
        """Up to ``max_lines`` next complete lines (without their ``\\n``) made only of :data:`PLAIN_BYTES`
        and not blank, stopping before the first other one, before line ``end_line`` and after about
        ``max_bytes``; [] when the next line is not such a line. These are CSV records whose cells are the
        text between commas."""
        out: list[bytes] = []
        taken = 0
        if end_line is not None:
            max_lines = min(max_lines, end_line - self.line - 1)
        if max_lines <= 0 or (self._at >= len(self._buf) and not self._fill()):
            return out
        end = self._buf.index(b"\n", self._at)  # a cheap look at the next line first
        if end == self._at or self._buf[self._at:end].translate(None, PLAIN_BYTES):
            return out
        while len(out) < max_lines:
            if self._at >= len(self._buf) and not self._fill():
                break
            buf, at = self._buf, self._at
            want, end = max_lines - len(out), len(buf)
            if buf.count(b"\n", at) > want:
                end = at
                for _ in range(want):
                    end = buf.index(b"\n", end) + 1
            lines = (buf[at:end] if at or end < len(buf) else buf).split(b"\n")
            lines.pop()  # the slice ends with a line end: the last piece is empty
            if b"".join(lines).translate(None, PLAIN_BYTES) or b"" in lines:
                take = 0
                for raw in lines:
                    if not raw or raw.translate(None, PLAIN_BYTES):
                        break
                    take += 1
                del lines[take:]
            if not lines:
                break
            size = sum(map(len, lines)) + len(lines)
            self._at = at + size
            self.line += len(lines)
            self.line_offset = self.next_offset + size - len(lines[-1]) - 1
            self.next_offset += size
            out.extend(lines)
            taken += size
            if self._at < len(self._buf) or taken >= max_bytes:  # a line that is not plain, or enough
                break
        return out


class Block:
    """A run of plain CSV records (:meth:`Lines.plain`): their raw lines, where the first one starts."""

    __slots__ = ("line", "lines", "offset", "row")

    def __init__(self, line: int, offset: int, row: int, lines: list[bytes]) -> None:
        self.line, self.offset, self.row, self.lines = line, offset, row, lines

    def __len__(self) -> int:
        return len(self.lines)

    def records(self) -> list[Record]:
        """The same rows as records, as the CSV reader would give them (cells are split at commas)."""
        out = []
        offset = self.offset
        for i, raw in enumerate(self.lines):
            out.append(Record(self.line + i, offset, self.row + i, raw.decode("ascii").split(",")))
            offset += len(raw) + 1
        return out


class RecordReader:
    """Records of one table in order; blank lines are skipped. ``row`` counts records from ``first_row``."""

    def __init__(self, src: Readable, fmt: str, *, first_line: int = 1, offset: int = 0,
                 end_byte: int | None = None, first_row: int = 0, read_bytes: int = READ_BYTES) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown table format {fmt!r}: expected 'csv' or 'jsonl'")
        self.fmt = fmt
        self.lines = Lines(src, first_line, offset, end_byte, read_bytes)
        self.row = first_row
        self._line_iter = iter(self.lines)
        if fmt == "csv":
            csv.field_size_limit(MAX_FIELD_CHARS)
            self._csv = csv.reader(self._line_iter, strict=True)

    def __iter__(self) -> Iterator[Record]:
        return self._csv_records() if self.fmt == "csv" else self._jsonl_records()

    def _record(self, line: int, offset: int, values: Any, problem: str | None) -> Record:
        bad = self.lines.bad
        if bad:
            found = [bad.pop(n) for n in sorted(bad) if n <= self.lines.line]
            if found and problem is None:
                problem = found[0]
        rec = Record(line, offset, self.row, values, problem)
        self.row += 1
        return rec

    def _csv_records(self) -> Iterator[Record]:
        lines, reader = self.lines, self._csv
        while True:
            line, offset = lines.line + 1, lines.next_offset
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield self._record(line, offset, None, f"not valid CSV: {exc}")
                continue
            if cells:  # [] is a blank line
                yield self._record(line, offset, cells, None)

    def _jsonl_records(self) -> Iterator[Record]:
        lines = self.lines
        for text in self._line_iter:
            line, offset = lines.line, lines.line_offset
            if not text.strip():
                continue
            problem = None
            obj: Any = None
            if line not in lines.bad:
                try:
                    obj = loads_strict(text)
                except (ValueError, RecursionError, OverflowError) as exc:
                    problem = f"not valid JSON: {_short_error(exc)}"
                else:
                    if not isinstance(obj, dict):
                        problem = "expected a JSON object keyed by column name"
            yield self._record(line, offset, obj, problem)

    def plain_block(self, max_rows: int, end_line: int | None = None) -> Block | None:
        """The next records as a :class:`Block` when they are plain CSV lines, else None (see
        :meth:`Lines.plain`); taken between two records of :meth:`csv_records`, whose reader holds no
        line ahead."""
        if self.fmt != "csv":
            return None
        lines = self.lines
        line, offset = lines.line + 1, lines.next_offset
        raw = lines.plain(max_rows, end_line)
        if not raw:
            return None
        block = Block(line, offset, self.row, raw)
        self.row += len(raw)
        return block

    def csv_records(self) -> Iterator[Record]:
        """The CSV records one by one; may be interleaved with :meth:`plain_block`."""
        return self._csv_records()

    def boundaries(self) -> Iterator[tuple[int, int]]:
        """(line, byte offset) where each record starts, without converting anything (chunk planning)."""
        if self.fmt == "csv":
            for rec in self._csv_records():
                yield rec.line, rec.offset
            return
        lines = self.lines
        for text in self._line_iter:
            if text.strip():
                yield lines.line, lines.line_offset

    def header(self) -> list[str]:
        """The first record of a CSV as column names (stripped, unique, non-empty) or InvalidInput."""
        rec = next(self._csv_records(), None)
        if rec is None:
            raise InvalidInput("the CSV is empty: expected a header line naming the columns")
        self.row -= 1  # the header is not a data row
        if rec.problem is not None:
            raise InvalidInput(f"the CSV header (line {rec.line}) cannot be read: {rec.problem}")
        names = [h.strip() for h in rec.values]
        if not any(names):
            raise InvalidInput("the CSV header is empty: expected column names")
        seen: set[str] = set()
        for h in names:
            if h in seen:
                raise InvalidInput(f"the CSV header names column {h!r} twice", feature=h)
            seen.add(h)
        return names


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:200]
