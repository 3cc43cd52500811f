"""Every third-party package a part of modelsync imports is declared in the extra that installs that part
(pyproject.toml), directly or through a declared requirement (e.g. botocore through boto3)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import pathlib
import re
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIRST_PARTY = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} | {"app"}  # app: handlers
# the extra that installs each part (folders and files relative to the repository root)
PARTS: dict[str, list[str]] = {
    "aws": ["functions", "modelsync/service"],
    "local": ["modelsync/local", "modelsync/template.py", "modelsync/service/openapi.py"],
    "export": ["modelsync/export"],
    "demo": ["modelsync/demo.py"],
    "xgboost": ["modelsync/export/xgboost.py"],
    "lightgbm": ["modelsync/export/lightgbm.py"],
}
OPTIONAL = {"modelsync/export/xgboost.py", "modelsync/export/lightgbm.py"}  # own extras, not `export`
SAME_MODULE = {"xgboost-cpu": "xgboost"}  # another wheel of the same package (dev installs the CPU one)
DEV_TOOLS = {"modelsync/service/openapi.py"}  # in modelsync/service, but run by `make openapi`, not Lambda
# base dependencies only the CLI imports (modelsync/progress.py): not in the Lambda layer, and never
# imported by Lambda code, the scorer or the device client
CLI_ONLY = {"tqdm"}


def _norm(name: str) -> str:
    key = re.sub(r"[-_.]+", "-", name).lower()
    return SAME_MODULE.get(key, key)


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for r in project["optional-dependencies"][name]:
        req = Requirement(r)
        if _norm(req.name) == "modelsync":
            for e in req.extras:
                reqs.extend(_extra(e))
        else:
            reqs.append(req)
    return reqs


def _closure(reqs: list[Requirement]) -> set[str]:
    """Distributions the requirements install: the declared ones and (installed metadata) theirs."""
    seen: set[str] = set()
    todo = [(r.name, frozenset(r.extras)) for r in reqs]
    while todo:
        name, extras = todo.pop()
        key = _norm(name)
        if key in seen and not extras:
            continue
        seen.add(key)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for raw in requires:
            req = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def _imports(paths: list[str], skip: set[str]) -> dict[str, str]:
    """Top-level third-party modules imported anywhere (lazily too) -> one file importing it."""
    found: dict[str, str] = {}
    for rel in paths:
        base = ROOT / rel
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for f in files:
            if str(f.relative_to(ROOT)) in skip:
                continue
            for node in ast.walk(ast.parse(f.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for n in names:
                    top = n.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                        found.setdefault(top, str(f.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("extra", sorted(PARTS))
def test_imports_are_declared(extra: str):
    installed = _closure(_extra(extra))
    dists = md.packages_distributions()
    skip = DEV_TOOLS if extra == "aws" else OPTIONAL if extra == "export" else set()
    missing = {mod: where for mod, where in _imports(PARTS[extra], skip).items()
               if not {_norm(d) for d in dists.get(mod, [mod])} & installed}
    assert not missing, f"imported but not declared in the {extra!r} extra: {missing}"


def test_the_layer_installs_what_the_aws_extra_declares():
    """layers/scorer/requirements.txt (what Lambda gets) names every aws requirement but boto3 (the
    runtime's)."""
    lines = (ROOT / "layers" / "scorer" / "requirements.txt").read_text().splitlines()
    layer = {_norm(Requirement(x).name) for x in lines if x.strip() and not x.startswith("#")}
    declared = {_norm(r.name) for r in _extra("aws")} - CLI_ONLY
    assert declared - {"boto3"} <= layer, declared - layer


@pytest.mark.parametrize("part", ["scorer", "modelsync_device", "modelsync_protocol", "functions",
                                  "modelsync/service"])
def test_cli_only_packages_stay_out_of_lambda_and_device_code(part: str):
    assert not set(_imports([part], set())) & CLI_ONLY
