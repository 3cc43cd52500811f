"""docs/openapi.yaml, the Score function's Api events in template.yaml and the resolver's routes agree."""

from __future__ import annotations

import pathlib
import re

import yaml

from modelsync import template as tpl
from modelsync.service.api import ERROR_STATUS, build_resolver
from modelsync.service.errors import ServiceError

ROOT = pathlib.Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _openapi_routes() -> set[tuple[str, str]]:
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m in METHODS}


def _template_routes() -> set[tuple[str, str]]:
    routes = tpl.load(ROOT / "template.yaml").api_routes("ScoreFunction")
    assert len(routes) == len(set(routes)), "duplicate Api events"
    return set(routes)


def _resolver_routes() -> set[tuple[str, str]]:
    app = build_resolver(lambda: None)  # type: ignore[arg-type,return-value]
    schema = app.get_openapi_schema()
    out = set()
    for path, item in (schema.paths or {}).items():
        for method in METHODS:
            if getattr(item, method, None) is not None:
                out.add((method.upper(), path))
    return out


def test_openapi_equals_template_events():
    assert _openapi_routes() == _template_routes()


def test_resolver_routes_equal_template_events():
    assert _resolver_routes() == _template_routes()


def test_paths_use_the_same_parameter_names():
    for _method, path in _template_routes():
        assert re.fullmatch(r"(/[a-z0-9]+(-[a-z0-9]+)*|/\{(name|version|alias)\})+", path), path


def test_every_domain_error_has_a_status():
    def subclasses(cls: type) -> set[type]:
        return set(cls.__subclasses__()).union(*(subclasses(c) for c in cls.__subclasses__()))

    import modelsync.service.batch  # noqa: F401  (its InputUnusable is not an API error)

    api_errors = {c for c in subclasses(ServiceError) if c.__module__ == "modelsync.service.errors"}
    assert api_errors <= set(ERROR_STATUS), api_errors - set(ERROR_STATUS)
