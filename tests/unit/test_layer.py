"""The Lambda layer ships the scorer, modelsync_protocol and modelsync/service - never the device client.

Runs the copy part of layers/scorer/Makefile (``layer-sources``, what ``sam build`` runs after installing
the requirements) into a temp dir, then imports every service module from that copy alone.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = tmp_path_factory.mktemp("layer")
    proc = subprocess.run(["make", "-s", "-C", str(ROOT / "layers" / "scorer"), "layer-sources",
                           f"ARTIFACTS_DIR={out}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out / "python"


def test_layer_holds_scorer_protocol_and_service_only(layer: pathlib.Path) -> None:
    assert sorted(p.name for p in layer.iterdir()) == ["modelsync", "modelsync_protocol", "scorer"]
    assert sorted(p.name for p in (layer / "modelsync").iterdir()) == ["__init__.py", "service"]
    for pkg in ("scorer", "modelsync_protocol", "modelsync/service"):
        want = sorted(p.relative_to(ROOT / pkg).as_posix() for p in (ROOT / pkg).rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts)
        got = sorted(p.relative_to(layer / pkg).as_posix() for p in (layer / pkg).rglob("*") if p.is_file())
        assert got == want, pkg
    assert not list(layer.rglob("modelsync_device")) and not list(layer.rglob("__pycache__"))


def test_service_imports_from_the_layer_alone(layer: pathlib.Path) -> None:
    """Every service module imports with the layer's copy first and none of the repository on the path
    (``-I -S``: no editable install): a package the layer forgot, or a service import of
    modelsync_device, fails here."""
    site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    code = (
        "import importlib, pkgutil, sys\n"
        f"sys.path[:0] = [{str(layer)!r}, *{site!r}]\n"
        "import modelsync.service as svc\n"
        "for m in pkgutil.iter_modules(svc.__path__):\n"
        "    importlib.import_module('modelsync.service.' + m.name)\n"
        "ours = {n: getattr(sys.modules[n], '__file__', None) or '' for n in sys.modules\n"
        "        if n.split('.')[0] in ('scorer', 'modelsync', 'modelsync_protocol', 'modelsync_device')}\n"
        f"outside = sorted(n for n, f in ours.items() if not f.startswith({str(layer)!r}))\n"
        "assert not outside, outside\n"
        "assert 'modelsync_protocol' in ours and 'modelsync.service.signing' in ours\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=layer, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
