"""The ``modelsync`` command. Each sub-command lives in its own module exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# module that registers it -> sub-commands it provides (imported lazily so `modelsync validate` stays fast)
COMMAND_MODULES = (
    "modelsync.commands.model",    # export, validate, predict
    "modelsync.local.commands",    # local, invoke
    "modelsync.demo",              # demo
    "modelsync.device",            # device sync / device predict
    "modelsync.commands.operator", # models, publish, alias, approve (the registry API, authenticated)
    "modelsync.report.command",    # report (an HTML page of a model, from the API)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelsync", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from modelsync_device.cli import run  # the one logging setup + dispatch, shared with the device CLI

    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
