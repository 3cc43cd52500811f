"""EventBridge schedule expressions: ``rate(N unit)`` and a minimal ``cron(min hour dom month dow year)``."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.I)
_CRON = re.compile(r"^cron\((.*)\)$", re.I)
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}


@dataclass(frozen=True)
class Schedule:
    """When a schedule fires next (UTC), from a rate or a cron expression."""

    expression: str
    every: float | None = None  # seconds, for rate() and for --schedule-every
    fields: tuple[frozenset[int] | None, ...] = ()  # cron: minute, hour, dom, month, dow (None = any)

    def next_after(self, now: _dt.datetime) -> _dt.datetime:
        if self.every is not None:
            return now + _dt.timedelta(seconds=self.every)
        t = now.replace(second=0, microsecond=0) + _dt.timedelta(minutes=1)
        minute, hour, dom, month, dow = self.fields
        for _ in range(366 * 24 * 60):
            weekday = (t.isoweekday() % 7) + 1  # EventBridge: SUN=1 .. SAT=7
            if (
                (month is None or t.month in month)
                and (dom is None or t.day in dom)
                and (dow is None or weekday in dow)
                and (hour is None or t.hour in hour)
                and (minute is None or t.minute in minute)
            ):
                return t
            t += _dt.timedelta(minutes=1)
        raise ValueError(f"{self.expression}: never fires within a year")


def parse_schedule(expression: str) -> Schedule:
    expr = expression.strip()
    m = _RATE.match(expr)
    if m:
        n = int(m.group(1))
        if n <= 0:
            raise ValueError(f"{expression}: rate must be positive")
        unit = m.group(2).lower().rstrip("s")
        return Schedule(expr, every=float(n * _UNIT[unit]))
    m = _CRON.match(expr)
    if m:
        parts = m.group(1).split()
        if len(parts) not in (5, 6):
            raise ValueError(
                f"{expression}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)"
            )
        limits = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (1, 7, _DAYS)]
        fields = tuple(
            _cron_field(p, lo, hi, names, expression)
            for p, (lo, hi, names) in zip(parts[:5], limits, strict=True)
        )
        return Schedule(expr, fields=fields)
    raise ValueError(f"unsupported schedule expression {expression!r} (rate(N minutes) or cron(...))")


def _cron_field(text: str, lo: int, hi: int, names: dict[str, int], expression: str) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _cron_value(a, names), _cron_value(b, names)
        else:
            start = _cron_value(part, names)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi):
            raise ValueError(f"{expression}: {text!r} out of range {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _cron_value(text: str, names: dict[str, int]) -> int:
    text = text.strip().upper()
    if text in names:
        return names[text]
    if text.endswith(("L", "W")) or "#" in text:
        raise ValueError(f"cron value {text!r} (L, W, #) is not supported locally")
    return int(text)
