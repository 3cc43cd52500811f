"""A device's vendored copy run in an interpreter that has only numpy (shared by unit and e2e tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import modelsync_device
import modelsync_protocol
import scorer


def numpy_only(tmp_path: Path) -> str:
    """A folder holding numpy alone (symlinks), so an isolated interpreter can import nothing else."""
    deps = tmp_path / "deps"
    deps.mkdir()
    site = os.path.dirname(os.path.dirname(np.__file__))
    for name in ("numpy", "numpy.libs"):
        if os.path.exists(os.path.join(site, name)):
            os.symlink(os.path.join(site, name), deps / name)
    return str(deps)


def run_isolated(path: list[str], code: str, cwd: Any) -> Any:
    """``python -I -S``: no PYTHONPATH, user or site packages, no cwd on sys.path: only ``path``."""
    prologue = f"import sys; sys.path[:0] = {path!r}\n"
    return subprocess.run([sys.executable, "-I", "-S", "-c", prologue + code], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def vendored_app(tmp_path: Path) -> Path:
    """``tmp_path/app`` holding exactly the three folders a device copies."""
    app = tmp_path / "app"
    for pkg in (scorer, modelsync_protocol, modelsync_device):
        src = os.path.dirname(pkg.__file__ or "")
        shutil.copytree(src, app / os.path.basename(src), ignore=shutil.ignore_patterns("__pycache__"))
    assert sorted(os.listdir(app)) == ["modelsync_device", "modelsync_protocol", "scorer"]
    return app


# ``python -m modelsync_device ARGS`` inside the isolated interpreter, returning its exit code
CLI_PRELUDE = ("import runpy\n"
               "def cli(*argv):\n"
               "    sys.argv = ['modelsync_device', *argv]\n"
               "    try:\n        runpy.run_module('modelsync_device', run_name='__main__', alter_sys=True)\n"
               "    except SystemExit as e:\n        return e.code\n")
