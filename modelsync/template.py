"""Read ``template.yaml`` (SAM / CloudFormation) without AWS: the local stack and the tests build from it.

* :func:`load` parses the template with cfn-lint's decoder (the one ``cfn-lint template.yaml`` uses), so
  short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If`` ...) arrive in their long form
  (``{"Ref": ..}``, ``{"Fn::GetAtt": [..]}``), as CloudFormation sees them.
* :class:`Template` lists resources by type, merges ``Globals`` into functions, and gives a function's
  ``Events`` and ``Environment``.
* :class:`Resolver` evaluates the intrinsics template.yaml uses (``Ref``, ``Fn::Sub``, ``Fn::GetAtt``,
  ``Fn::If``, ``Fn::Equals`` in conditions), given the physical names/ARNs the caller chose for each
  logical id (``refs`` / ``attrs``) and parameter values (defaults unless overridden). ``AWS::NoValue``
  removes the key. ``AWS::LanguageExtensions`` needs nothing more here: its job in AWS is to resolve the
  ``Fn::If`` around the API's ``Auth`` before SAM sees it, which the resolver does anyway.
* :func:`declared_name` is the naming rule the local stack and the tests share, so the sample events in
  ``events/`` (bucket ``modelsync-models``) fit them.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEMPLATE = pathlib.Path(__file__).resolve().parent.parent / "template.yaml"

_NO_VALUE = object()  # what ``!Ref AWS::NoValue`` resolves to before it is dropped


class TemplateError(ValueError):
    """The template is malformed, or an intrinsic cannot be resolved from what the caller gave."""


# -- reading ----------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """cfn-lint's node classes (str/dict/list subclasses carrying marks) -> plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _decoded(doc: Any, matches: list[Any], source: str) -> dict[str, Any]:
    if matches or not isinstance(doc, dict):
        detail = "; ".join(str(m) for m in matches) or "not a mapping"
        raise TemplateError(f"{source}: not a CloudFormation template: {detail}")
    plain = _plain(doc)
    assert isinstance(plain, dict)
    return plain


def loads(text: str) -> dict[str, Any]:
    """A template (YAML or JSON) -> its document, short-form tags in long form (cfn-lint's decoder)."""
    from cfnlint.decode import decode_str

    doc, matches = decode_str(text)
    return _decoded(doc, matches, "template")


def load(path: str | pathlib.Path = DEFAULT_TEMPLATE) -> Template:
    from cfnlint.decode import decode

    p = pathlib.Path(path)
    doc, matches = decode(str(p))
    return Template(_decoded(doc, matches, str(p)), p)


# -- the template -----------------------------------------------------------------------------------

# Global sections SAM merges into each resource of the type (dicts merge, lists append, scalars replace).
_GLOBAL_SECTIONS = {"AWS::Serverless::Function": "Function"}


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's rule: maps merge key by key (local wins), lists concatenate (globals first), scalars: local."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        out = dict(global_value)
        for k, v in local_value.items():
            out[k] = _merge_globals(global_value[k], v) if k in global_value else v
        return out
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


@dataclass
class Template:
    """A parsed template (long-form intrinsics) with SAM-aware accessors."""

    doc: dict[str, Any]
    path: pathlib.Path | None = None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("Resources") or {})

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("Parameters") or {})

    @property
    def conditions(self) -> dict[str, Any]:
        return dict(self.doc.get("Conditions") or {})

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.doc.get("Outputs") or {})

    @property
    def globals(self) -> dict[str, Any]:
        return dict(self.doc.get("Globals") or {})

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: p["Default"] for name, p in self.parameters.items() if "Default" in p}

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id!r} in the template") from None

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources of the given type(s), in template order: logical id -> resource."""
        return {lid: r for lid, r in self.resources.items() if r.get("Type") in types}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties with the matching ``Globals`` section merged in (SAM resources)."""
        res = self.resource(logical_id)
        props = dict(res.get("Properties") or {})
        section = _GLOBAL_SECTIONS.get(res.get("Type", ""))
        if section and section in self.globals:
            merged = _merge_globals(dict(self.globals[section]), props)
            assert isinstance(merged, dict)
            return merged
        return props

    def functions(self) -> dict[str, dict[str, Any]]:
        """Every ``AWS::Serverless::Function``: logical id -> Properties with Globals merged."""
        return {lid: self.properties(lid) for lid in self.of_type("AWS::Serverless::Function")}

    def function_events(self, logical_id: str, event_type: str | None = None) -> dict[str, dict[str, Any]]:
        """The function's ``Events`` (name -> {Type, Properties}), optionally only one ``Type``."""
        events = dict(self.properties(logical_id).get("Events") or {})
        if event_type is not None:
            events = {k: v for k, v in events.items() if v.get("Type") == event_type}
        return events

    def function_environment(self, logical_id: str) -> dict[str, Any]:
        """Environment variables (Globals merged; values may still hold intrinsics)."""
        env = self.properties(logical_id).get("Environment") or {}
        return dict(env.get("Variables") or {})

    def api_routes(self, logical_id: str) -> list[tuple[str, str]]:
        """(METHOD, path) of a function's Api events, path as written (``/models/{name}``)."""
        out = []
        for ev in self.function_events(logical_id, "Api").values():
            props = ev.get("Properties") or {}
            out.append((str(props["Method"]).upper(), str(props["Path"])))
        return out


# -- resolving intrinsics ---------------------------------------------------------------------------

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsics with caller-chosen physical values.

    ``refs``: logical id -> what ``!Ref`` gives (a bucket or table name, a topic ARN, a queue URL).
    ``attrs``: (logical id, attribute) -> value, e.g. ``("Queue", "Arn")``; a callable may compute it.
    ``parameters``: overrides of the template's parameter defaults.
    """

    template: Template
    refs: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[tuple[str, str], Any] | Callable[[str, str], Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "modelsync"
    partition: str = "aws"

    def __post_init__(self) -> None:
        self._params = {**self.template.parameter_defaults(), **self.parameters}
        self._condition_cache: dict[str, bool] = {}

    def ref(self, name: str) -> Any:
        """``!Ref``: a pseudo parameter, a parameter's value, or the physical value given for a resource."""
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self._params:
            return self._params[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"cannot resolve !Ref {name}: not a parameter and no physical value given")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if callable(self.attrs):
            value = self.attrs(logical_id, attribute)
            if value is None:
                raise TemplateError(f"cannot resolve !GetAtt {logical_id}.{attribute}")
            return value
        try:
            return self.attrs[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"cannot resolve !GetAtt {logical_id}.{attribute}: no value given") from None

    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            if name not in self.template.conditions:
                raise TemplateError(f"unknown condition {name!r}")
            value = self.resolve(self.template.conditions[name])
            if not isinstance(value, bool):
                raise TemplateError(f"condition {name!r} does not evaluate to a boolean")
            self._condition_cache[name] = value
        return self._condition_cache[name]

    def resource_enabled(self, logical_id: str) -> bool:
        """False when the resource carries a ``Condition`` that evaluates to false."""
        cond = self.template.resource(logical_id).get("Condition")
        return True if cond is None else self.condition(str(cond))

    # the evaluator
    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic inside ``value``; ``AWS::NoValue`` entries are dropped."""
        out = self._resolve(value)
        return None if out is _NO_VALUE else out

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(str(parts[0]), str(parts[1]))
        if name == "Sub":
            return self._sub(arg)
        if name == "If":
            cond, yes, no = arg
            return self._resolve(yes if self.condition(str(cond)) else no)
        if name == "Equals":
            a, b = (self._resolve(v) for v in arg)
            return str(a) == str(b)
        raise TemplateError(f"Fn::{name} cannot be resolved locally (template.yaml does not use it)")

    def _sub(self, text: Any) -> str:
        def replace(m: re.Match[str]) -> str:
            name = m.group(1).strip()
            if "." in name and not name.startswith("AWS::"):
                lid, attribute = name.split(".", 1)
                return str(self.get_att(lid, attribute))
            return str(self.ref(name))

        # ``${!Literal}`` is CloudFormation's escape for a literal ``${Literal}``.
        return _SUB_VAR.sub(replace, str(text)).replace("${!", "${")

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment with intrinsics resolved, every value a string (as Lambda gives it)."""
        env = self.resolve(self.template.function_environment(logical_id)) or {}
        return {k: _env_str(v) for k, v in env.items()}


def _env_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- naming ----------------------------------------------------------------

_TYPE_SUFFIXES = ("Bucket", "Table", "Topic", "Queue", "StateMachine", "Function", "Api")


def physical_name(logical_id: str, stack_name: str = "modelsync") -> str:
    """The local naming rule: ``ModelsBucket`` -> ``modelsync-models``, ``RegistryTable`` ->
    ``modelsync-registry``.

    CloudFormation generates names in AWS; locally one rule shared by the tests, the local stack and the
    sample events keeps them in agreement. An explicit name property in the template wins over this.
    """
    base = logical_id
    for suffix in _TYPE_SUFFIXES:
        if base.endswith(suffix) and base != suffix:
            base = base[: -len(suffix)]
            break
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", base).lower()
    return f"{stack_name}-{kebab}"


_NAME_PROPERTY = {  # the explicit name properties template.yaml sets
    "AWS::S3::Bucket": "BucketName",
    "AWS::Serverless::StateMachine": "Name",
}


def declared_name(template: Template, logical_id: str, parameters: Mapping[str, Any] | None = None,
                  stack_name: str = "modelsync", region: str = "us-east-1",
                  account_id: str = "123456789012") -> str:
    """The explicit name property when it resolves from parameters alone, else :func:`physical_name`."""
    res = template.resource(logical_id)
    prop = _NAME_PROPERTY.get(res.get("Type", ""))
    value = (res.get("Properties") or {}).get(prop) if prop else None
    if value is not None:
        try:
            resolved = Resolver(template, parameters=parameters or {}, stack_name=stack_name, region=region,
                                account_id=account_id).resolve(value)
        except TemplateError:
            resolved = None
        if isinstance(resolved, str) and resolved:
            return resolved
    return physical_name(logical_id, stack_name)
