"""docs/openapi.yaml, the Score function's Api events in template.yaml and the resolver's routes agree;
the committed document is exactly what the generator writes from the resolver."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import yaml

from modelsync import template as tpl
from modelsync.service import openapi
from modelsync.service.errors import ServiceError
from modelsync.service.http import ERROR_STATUS, build_resolver
from modelsync.service.http.spec import SECURITY_SCHEMES, SIGV4

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
    schema = app.get_openapi_schema(security_schemes=SECURITY_SCHEMES)  # type: ignore[arg-type]
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


def test_committed_openapi_is_the_generated_one():
    committed = (ROOT / "docs" / "openapi.yaml").read_text()
    assert committed == openapi.render(), "docs/openapi.yaml is stale: run `make openapi`"
    assert openapi.main(["--check", str(ROOT / "docs" / "openapi.yaml")]) == 0


def test_generated_openapi_is_valid_and_documents_every_route(tmp_path: pathlib.Path):
    from openapi_spec_validator import validate

    doc = openapi.build_schema()
    validate(json.loads(json.dumps(doc)))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and op.get("operationId"), where
            errors = [s for s in op["responses"] if s.startswith(("4", "5"))]
            assert "422" not in op["responses"], where  # validation errors are 400 here
            for status in errors:
                if (op["operationId"], status) == ("healthReady", "503"):
                    continue  # {"ready": false}
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                # V2 routes: the protocol's {"error": message}; the others {"error": {"code", "message"}}
                shape = "V2Error" if path.startswith("/v2") else "Error"
                assert schema == {"$ref": f"#/components/schemas/{shape}"}, where
            if "{name}" in path:
                assert "404" in errors, where
            if method in ("post", "put") and op.get("requestBody"):
                assert "400" in errors, where
    stale = tmp_path / "openapi.yaml"
    stale.write_text("openapi: 3.1.0\n")
    assert openapi.main(["--check", str(stale)]) == 1


def _authorizers(value: Any) -> set[str]:
    """Every ``Authorizer`` named in an event's Auth (both branches of an Fn::If)."""
    if isinstance(value, dict):
        found = {str(value["Authorizer"])} if "Authorizer" in value else set()
        return found.union(*(_authorizers(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_authorizers(v) for v in value))
    return set()


def test_security_is_what_the_template_declares():
    doc = openapi.build_schema()
    assert doc["security"] == [{SIGV4: []}] and SIGV4 in doc["components"]["securitySchemes"]
    events = tpl.load(ROOT / "template.yaml").function_events("ScoreFunction", "Api")
    seen = 0
    for event in events.values():
        props = event["Properties"]
        op = doc["paths"][props["Path"]][props["Method"].lower()]
        authorizers = _authorizers(props.get("Auth"))
        if authorizers == {"NONE"}:
            assert op["security"] == [], props  # open
        elif authorizers == {"AWS_IAM"}:
            assert op["security"] == [{SIGV4: []}], props  # IAM whatever AuthMode says
        else:
            assert not authorizers and "security" not in op, props  # the API's default authorizer
        seen += 1
    assert seen == len(_template_routes())


def test_paths_use_the_same_parameter_names():
    for _method, path in _template_routes():
        assert re.fullmatch(r"(/[a-z0-9]+(-[a-z0-9]+)*|/\{(name|version|alias)\})+", path), path


def test_every_domain_error_has_a_status():
    def subclasses(cls: type) -> set[type]:
        return set(cls.__subclasses__()).union(*(subclasses(c) for c in cls.__subclasses__()))

    import modelsync.service.batch  # noqa: F401  (its InputUnusable is not an API error)

    api_errors = {c for c in subclasses(ServiceError) if c.__module__ == "modelsync.service.errors"}
    assert api_errors <= set(ERROR_STATUS), api_errors - set(ERROR_STATUS)
