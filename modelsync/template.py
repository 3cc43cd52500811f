"""Read ``template.yaml`` (SAM / CloudFormation) without AWS: the tests and the local stack build from it.

* :func:`load` parses YAML with CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``
  ...) turned into their long form (``{"Ref": ..}``, ``{"Fn::GetAtt": [..]}``), as CloudFormation does.
* :class:`Template` lists resources by type, merges ``Globals`` into functions, and gives a function's
  ``Events`` and ``Environment``.
* :class:`Resolver` evaluates the intrinsics that can be known before deployment, given the physical
  names/ARNs the caller chose for each logical id (``refs`` / ``attrs``) and parameter values (defaults
  from the template unless overridden). Conditions are evaluated, ``AWS::NoValue`` removes the key.
* :func:`physical_name` is the naming rule local stacks and the tests share, so the sample events in
  ``events/`` (bucket ``modelsync-models``) fit them; :func:`table_create_kwargs` and friends turn resource
  properties into boto3 create calls.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_TEMPLATE = pathlib.Path(__file__).resolve().parent.parent / "template.yaml"

_NO_VALUE = object()  # what ``!Ref AWS::NoValue`` resolves to before it is dropped


class TemplateError(ValueError):
    """The template is malformed, or an intrinsic cannot be resolved from what the caller gave."""


# -- YAML with CloudFormation tags ------------------------------------------------------------------

_SCALAR_TAGS = {  # tag -> long form; value taken as written (scalar, list or map)
    "Ref": "Ref",
    "Condition": "Condition",
}
_FN_TAGS = ("Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub",
            "Transform", "And", "Equals", "If", "Not", "Or", "ToJsonString", "Length", "ForEach")


class _Loader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short-form intrinsic tags."""


def _node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _make_constructor(long_name: str) -> Callable[[yaml.SafeLoader, yaml.Node], Any]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        return {long_name: _node_value(loader, node)}

    return construct


def _construct_getatt(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    value = _node_value(loader, node)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


for _tag, _long in _SCALAR_TAGS.items():
    _Loader.add_constructor(f"!{_tag}", _make_constructor(_long))
for _tag in _FN_TAGS:
    _Loader.add_constructor(f"!{_tag}", _make_constructor(f"Fn::{_tag}"))
_Loader.add_constructor("!GetAtt", _construct_getatt)


def loads(text: str) -> dict[str, Any]:
    doc = yaml.load(text, Loader=_Loader)
    if not isinstance(doc, dict):
        raise TemplateError("a template must be a mapping")
    return doc


def load(path: str | pathlib.Path = DEFAULT_TEMPLATE) -> Template:
    p = pathlib.Path(path)
    return Template(loads(p.read_text(encoding="utf-8")), p)


# -- the template -----------------------------------------------------------------------------------

# Global sections SAM merges into each resource of the type (dicts merge, lists append, scalars replace).
_GLOBAL_SECTIONS = {
    "AWS::Serverless::Function": "Function",
    "AWS::Serverless::Api": "Api",
    "AWS::Serverless::HttpApi": "HttpApi",
    "AWS::Serverless::SimpleTable": "SimpleTable",
    "AWS::Serverless::StateMachine": "StateMachine",
    "AWS::Serverless::LayerVersion": "LayerVersion",
}


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

    # pseudo parameters and refs
    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/"
                            f"{self.stack_name}/00000000-0000-0000-0000-000000000000",
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self._params:
            value = self._params[name]
            ptype = str(self.template.parameters.get(name, {}).get("Type", "String"))
            if ptype == "CommaDelimitedList" and isinstance(value, str):
                return [v.strip() for v in value.split(",")]
            return value
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
            self._condition_cache[name] = bool(self._eval_condition(self.template.conditions[name]))
        return self._condition_cache[name]

    def _eval_condition(self, node: Any) -> bool:
        value = self.resolve(node)
        if not isinstance(value, bool):
            raise TemplateError(f"condition does not evaluate to a boolean: {node!r}")
        return value

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
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            parts = [self._resolve(p) for p in parts]
            return self.get_att(str(parts[0]), str(parts[1]))
        if name == "Sub":
            return self._sub(arg)
        if name == "Join":
            sep, items = self._resolve(arg[0]), self._resolve(arg[1])
            return str(sep).join(str(i) for i in items)
        if name == "Select":
            index, items = self._resolve(arg[0]), self._resolve(arg[1])
            return items[int(index)]
        if name == "Split":
            sep, text = self._resolve(arg[0]), self._resolve(arg[1])
            return str(text).split(str(sep))
        if name == "If":
            cond, yes, no = arg
            return self._resolve(yes if self.condition(str(cond)) else no)
        if name == "Equals":
            a, b = (self._resolve(v) for v in arg)
            return str(a) == str(b) if not (isinstance(a, bool) or isinstance(b, bool)) else a == b
        if name == "And":
            return all(self._eval_condition(v) for v in arg)
        if name == "Or":
            return any(self._eval_condition(v) for v in arg)
        if name == "Not":
            return not self._eval_condition(arg[0])
        if name == "FindInMap":
            mapping, top, second = (self._resolve(v) for v in arg[:3])
            try:
                return self.template.doc["Mappings"][mapping][top][second]
            except KeyError:
                if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                    return self._resolve(arg[3]["DefaultValue"])
                raise TemplateError(f"!FindInMap {mapping}/{top}/{second} not found") from None
        if name == "Base64":
            import base64

            return base64.b64encode(str(self._resolve(arg)).encode()).decode()
        if name == "ToJsonString":
            return json.dumps(self._resolve(arg), separators=(",", ":"))
        if name == "Length":
            return len(self._resolve(arg))
        if name == "GetAZs":
            return [f"{self.region}{s}" for s in "abc"]
        raise TemplateError(f"Fn::{name} cannot be resolved locally")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            extra = arg[1] if len(arg) > 1 else {}
            text, variables = arg[0], {k: self._resolve(v) for k, v in extra.items()}
        else:
            text, variables = arg, {}

        def replace(m: re.Match[str]) -> str:
            name = m.group(1).strip()
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, attribute = name.split(".", 1)
                return str(self.get_att(lid, attribute))
            value = self.ref(name)
            return ",".join(map(str, value)) if isinstance(value, list) else str(value)

        # ``${!Literal}`` is CloudFormation's escape for a literal ``${Literal}``.
        out = _SUB_VAR.sub(replace, str(text))
        return out.replace("${!", "${")

    # convenience
    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment with intrinsics resolved, every value a string (as Lambda gives it)."""
        env = self.resolve(self.template.function_environment(logical_id)) or {}
        return {k: _env_str(v) for k, v in env.items()}


def _env_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- naming and provisioning helpers ----------------------------------------------------------------

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


_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Serverless::Function": "FunctionName",
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


def table_create_kwargs(props: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """``AWS::DynamoDB::Table`` properties (resolved) -> ``create_table`` keyword arguments."""
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": list(props["KeySchema"]),
        "AttributeDefinitions": list(props["AttributeDefinitions"]),
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            kwargs[key] = list(props[key])
    return kwargs


def ttl_attribute(props: Mapping[str, Any]) -> str | None:
    spec = props.get("TimeToLiveSpecification") or {}
    return str(spec["AttributeName"]) if spec.get("Enabled") and spec.get("AttributeName") else None


def s3_event_rules(event: Mapping[str, Any]) -> dict[str, str]:
    """A SAM S3 event's key filter as {"prefix": .., "suffix": ..} (missing ones omitted)."""
    rules = ((event.get("Properties") or {}).get("Filter") or {}).get("S3Key", {}).get("Rules", [])
    return {str(r["Name"]).lower(): str(r["Value"]) for r in rules}


def iter_intrinsic_refs(value: Any) -> Iterable[str]:
    """Logical ids / parameters a value refers to (``Ref``, ``GetAtt``, ``${..}`` in ``Sub``)."""
    if isinstance(value, list):
        for v in value:
            yield from iter_intrinsic_refs(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                yield v
            elif k == "Fn::GetAtt":
                yield (v[0] if isinstance(v, list) else str(v).split(".")[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                for m in _SUB_VAR.finditer(str(text)):
                    yield m.group(1).split(".")[0]
                if isinstance(v, list) and len(v) > 1:
                    yield from iter_intrinsic_refs(v[1])
            else:
                yield from iter_intrinsic_refs(v)


# -- provisioning (moto, or any endpoint) -----------------------------------------------------------

@dataclass
class Stack:
    """What :func:`provision` created: physical values per logical id and a :class:`Resolver` over them."""

    template: Template
    refs: dict[str, Any]
    attrs: dict[tuple[str, str], Any]
    resolver: Resolver
    skipped: list[str] = field(default_factory=list)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return self.resolver.function_environment(logical_id)

    def function_code(self, logical_id: str, root: pathlib.Path | None = None) -> tuple[pathlib.Path, str]:
        """(path of the handler's file, handler function name) from CodeUri + Handler."""
        props = self.template.properties(logical_id)
        base = root or (self.template.path.parent if self.template.path else pathlib.Path.cwd())
        module, _, attr = str(props["Handler"]).rpartition(".")
        code_dir = base / str(props["CodeUri"])
        return code_dir.joinpath(*module.split(".")).with_suffix(".py"), attr


def _arn(service: str, region: str, account: str, resource: str, partition: str = "aws") -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def provision(template: Template, clients: Callable[[str], Any], parameters: Mapping[str, Any] | None = None,
              stack_name: str = "modelsync", region: str = "us-east-1", account_id: str = "123456789012",
              bucket_policies: bool = False) -> Stack:
    """Create the template's buckets, tables, topics, queues and state machines with boto3.

    ``clients(service)`` returns a boto3 client (pointed at moto or a local endpoint). Functions, layers,
    APIs and IAM are not created; their refs/ARNs are still computed so intrinsics resolve. Resources
    whose Condition is false are skipped. KMS keys are created with their KeySpec and KeyUsage (not
    their key policy, which names IAM roles that do not exist here) plus an alias ``alias/{name}``,
    which is what ``!Ref`` gives: stable across re-provisioning, and accepted wherever KMS takes a
    key id. The state machine is created last (its definition refers to
    functions). ``bucket_policies`` applies bucket policies too (off by default: emulators may enforce them
    without the TLS context a real client has).
    """
    params = dict(parameters or {})
    refs: dict[str, Any] = {}
    attrs: dict[tuple[str, str], Any] = {}
    resolver = Resolver(template, refs, attrs, params, region=region, account_id=account_id,
                        stack_name=stack_name)
    skipped: list[str] = []

    def name_of(lid: str) -> str:
        return declared_name(template, lid, params, stack_name, region, account_id)

    # names and ARNs that need nothing created first
    for lid, res in template.resources.items():
        rtype = res.get("Type", "")
        if not resolver.resource_enabled(lid):
            skipped.append(lid)
            continue
        name = name_of(lid)
        if rtype == "AWS::Serverless::Function":
            arn = _arn("lambda", region, account_id, f"function:{name}")
            refs[lid] = name
            attrs[(lid, "Arn")] = arn
        elif rtype == "AWS::Serverless::LayerVersion":
            refs[lid] = _arn("lambda", region, account_id, f"layer:{name}:1")
        elif rtype in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
            refs[lid] = f"{name}-api"
            attrs[(lid, "RootResourceId")] = "root"
        elif rtype == "AWS::Logs::LogGroup":
            refs[lid] = f"/modelsync/{name}"
            attrs[(lid, "Arn")] = _arn("logs", region, account_id, f"log-group:/modelsync/{name}:*")
        elif rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            arn = _arn("states", region, account_id, f"stateMachine:{name}")
            refs[lid], attrs[(lid, "Arn")], attrs[(lid, "Name")] = arn, arn, name
        elif rtype == "AWS::Cognito::UserPool":
            refs[lid] = f"{region}_local"
            attrs[(lid, "Arn")] = _arn("cognito-idp", region, account_id, f"userpool/{region}_local")

    for lid, res in template.resources.items():
        if lid in skipped:
            continue
        rtype = res.get("Type", "")
        name = name_of(lid)
        if rtype == "AWS::KMS::Key":
            refs[lid], attrs[(lid, "Arn")], attrs[(lid, "KeyId")] = create_kms_key(
                clients("kms"), resolver, res.get("Properties") or {}, name)
            continue
        props = resolver.resolve(res.get("Properties") or {}) or {}
        if rtype == "AWS::S3::Bucket":
            s3 = clients("s3")
            kwargs: dict[str, Any] = {"Bucket": name}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(**kwargs)
            if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            if props.get("BucketEncryption"):
                boto_key = {"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"}
                rules = [{boto_key.get(k, k): v for k, v in rule.items()}
                         for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            if props.get("PublicAccessBlockConfiguration"):
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
            refs[lid] = name
            attrs[(lid, "Arn")] = f"arn:aws:s3:::{name}"
            attrs[(lid, "DomainName")] = f"{name}.s3.amazonaws.com"
        elif rtype == "AWS::DynamoDB::Table":
            ddb = clients("dynamodb")
            desc = ddb.create_table(**table_create_kwargs(props, name))["TableDescription"]
            ttl = ttl_attribute(props)
            if ttl:
                ddb.update_time_to_live(TableName=name,
                                        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
            refs[lid] = name
            attrs[(lid, "Arn")] = desc["TableArn"]
            if desc.get("LatestStreamArn"):
                attrs[(lid, "StreamArn")] = desc["LatestStreamArn"]
        elif rtype == "AWS::SNS::Topic":
            arn = clients("sns").create_topic(Name=name)["TopicArn"]
            refs[lid], attrs[(lid, "TopicArn")], attrs[(lid, "TopicName")] = arn, arn, name
        elif rtype == "AWS::SQS::Queue":
            sqs = clients("sqs")
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            queue_attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
            arn = queue_attrs["QueueArn"]
            refs[lid], attrs[(lid, "Arn")], attrs[(lid, "QueueName")] = url, arn, name
            attrs[(lid, "QueueUrl")] = url
    if bucket_policies:
        for lid, res in template.of_type("AWS::S3::BucketPolicy").items():
            if lid in skipped:
                continue
            props = resolver.resolve(res.get("Properties") or {}) or {}
            clients("s3").put_bucket_policy(Bucket=props["Bucket"],
                                            Policy=json.dumps(props["PolicyDocument"]))
    for lid in template.of_type("AWS::Serverless::StateMachine"):
        if lid in skipped:
            continue
        props = template.properties(lid)
        definition = state_machine_definition(resolver, props)
        clients("stepfunctions").create_state_machine(
            name=attrs[(lid, "Name")], definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{account_id}:role/{stack_name}-{lid}",
            type=str(props.get("Type", "STANDARD")))
    return Stack(template, refs, attrs, resolver, skipped)


KMS_KEY_PROPERTIES = ("KeySpec", "KeyUsage", "Description", "MultiRegion")


def create_kms_key(kms: Any, resolver: Resolver, properties: Mapping[str, Any], name: str
                   ) -> tuple[str, str, str]:
    """Create an ``AWS::KMS::Key`` (spec, usage, description) and the alias ``alias/{name}`` on it.

    Returns (the alias name, the key ARN, the key id). The key policy is not applied: it names roles
    that only exist in a deployed stack."""
    kwargs = {k: resolver.resolve(properties[k]) for k in KMS_KEY_PROPERTIES if k in properties}
    meta = kms.create_key(**kwargs)["KeyMetadata"]
    alias = f"alias/{name}"
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return alias, str(meta["Arn"]), str(meta["KeyId"])


def state_machine_definition(resolver: Resolver, props: Mapping[str, Any]) -> dict[str, Any]:
    """A SAM state machine's inline ``Definition`` with ``DefinitionSubstitutions`` applied."""
    resolved = resolver.resolve(props.get("DefinitionSubstitutions") or {}) or {}
    subs = {k: str(v) for k, v in resolved.items()}
    text = json.dumps(props["Definition"])
    for key, value in subs.items():
        text = text.replace("${" + key + "}", value)
    result = json.loads(text)
    assert isinstance(result, dict)
    return result
