"""``modelsync report NAME [--api URL --auth ...] [--since 7d] [--version N] [--json] -o report.html``.

Reads the API with the operator commands' client and auth (:mod:`modelsync.commands.operator`), writes
one self-contained HTML file (:func:`modelsync.report.build.page`). Without ``--api`` (nor
``$MODELSYNC_API``) it tries the local stack at 127.0.0.1:3000, then the answers ``modelsync demo``
saved (``$XDG_CACHE_HOME/modelsync/demo/NAME.json``), and says on stderr which one it used.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import pathlib
import re
import sys
from typing import Any

from modelsync.commands.operator import (
    DEFAULT_API,
    EXIT_CONFIG,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    CommandFailed,
    RegistryClient,
)

from . import build

log = logging.getLogger("modelsync")

DEFAULT_SINCE = "24h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since_iso(text: str, now: _dt.datetime | None = None) -> str:
    """``7d``, ``24h``, ``30m``, ``2w`` back from now, or a UTC date/time, as the API's ``since``."""
    now = now or _dt.datetime.now(_dt.UTC)
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        return build.iso(now - _dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)]))
    try:
        value = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandFailed(f"--since must be like 7d, 24h, 30m or a UTC date/time, got {text!r}",
                            EXIT_CONFIG) from None
    return build.iso(value if value.tzinfo else value.replace(tzinfo=_dt.UTC))


def saved_path(name: str) -> pathlib.Path:
    """Where ``modelsync demo`` saves the API's answers for ``name``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(root) / "modelsync" / "demo" / f"{name}.json"


def fetch(api: str, args: argparse.Namespace, since: str) -> dict[str, Any]:
    """The report's data from the API at ``api``, authenticated as the operator commands are."""
    from modelsync_device.auth import AuthOpener, auth_from_args

    client = RegistryClient(api, AuthOpener(api, auth_from_args(args, api)))
    return build.collect(lambda path, query: client.request("GET", path, query=query), args.name, since,
                         args.version, source=api)


def _data(args: argparse.Namespace, since: str) -> dict[str, Any]:
    if args.api:
        return fetch(args.api, args, since)
    try:
        data = fetch(DEFAULT_API, args, since)
        sys.stderr.write(f"report: data from the local stack at {DEFAULT_API}\n")
        return data
    except CommandFailed as exc:
        if exc.code not in (EXIT_UNREACHABLE, EXIT_REFUSED):
            raise
        why = exc
    path = saved_path(args.name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CommandFailed(f"{why}; and no saved data at {path} (run `make demo`, or pass --api)",
                            EXIT_UNREACHABLE) from None
    if not isinstance(data, dict) or data.get("schema") != build.SCHEMA or data.get("name") != args.name:
        raise CommandFailed(f"{why}; and {path} is not a saved report of {args.name}", EXIT_CONFIG)
    where = (f"no local stack at {DEFAULT_API}" if why.code == EXIT_UNREACHABLE
             else f"the local stack at {DEFAULT_API} cannot show {args.name}")
    sys.stderr.write(f"report: {where} ({why}); using the demo's saved data from {path} "
                     f"(collected {data.get('generated_at')})\n")
    return data


def run(args: argparse.Namespace) -> int:
    from modelsync_device.auth import AuthError

    try:
        data = _data(args, since_iso(args.since))
    except AuthError as exc:
        log.error("modelsync report: %s", exc)
        return EXIT_CONFIG
    except CommandFailed as exc:
        log.error("modelsync report: %s", exc)
        return exc.code
    out = pathlib.Path(args.output or f"{args.name}.html")
    html = build.page(data)
    out.write_text(html, encoding="utf-8")
    sys.stderr.write(f"report: wrote {out} ({html.count(' data-figure=')} figures, {len(html):,} bytes)\n")
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


def register(subparsers: Any) -> None:
    from modelsync_device.auth import add_auth_arguments

    p = subparsers.add_parser("report", help="write a self-contained HTML report of a model: versions, "
                              "aliases, per-version metrics, drift, devices (API)")
    p.add_argument("name", help="the model")
    p.add_argument("--api", default=os.environ.get("MODELSYNC_API"),
                   help="the API URL (default $MODELSYNC_API; else the local stack at "
                        f"{DEFAULT_API}, else the data `modelsync demo` saved)")
    p.add_argument("--since", default=DEFAULT_SINCE, help="the window: 7d, 24h, 30m or a UTC date/time "
                   f"(default {DEFAULT_SINCE})")
    p.add_argument("--version", type=int, help="the version whose drift is shown (default: latest's)")
    p.add_argument("--json", action="store_true", help="also print the API answers the report shows (JSON)")
    p.add_argument("-o", "--output", metavar="FILE", help="the HTML file (default NAME.html)")
    add_auth_arguments(p)
    p.set_defaults(func=run)
