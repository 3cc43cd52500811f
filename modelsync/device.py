"""``modelsync device``: the device client's CLI (:mod:`modelsync_device.cli`) under ``modelsync``.

One implementation: the same actions, flags, outputs and exit codes as ``python -m modelsync_device``,
which is what a device runs from its vendored copy (docs/devices.md); only ``predict``'s progress bar
(modelsync.progress, tqdm) is added here, the device package staying numpy + standard library.
"""

from __future__ import annotations

from typing import Any

from modelsync.progress import rows_bar
from modelsync_device.cli import DESCRIPTION, add_commands, predict_csv

__all__ = ["predict_csv", "register"]


def register(subparsers: Any) -> None:
    device = subparsers.add_parser("device", help="keep a device's model in sync and score offline",
                                   description=DESCRIPTION)
    add_commands(device, progress=lambda desc, size, quiet: rows_bar(desc, size, quiet=quiet))
