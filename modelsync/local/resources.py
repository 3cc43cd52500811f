"""Physical names for the template's resources, creating them in the embedded AWS, function specs.

The one provisioner: ``modelsync local`` and the integration tests (inside moto's ``mock_aws``) both
create the stack with :class:`Provisioner`. Everything comes from ``template.yaml`` through
:mod:`modelsync.template`: the resources to create, their properties (key schema, stream, versioning,
...), the functions' environment and events. Local names follow
:func:`modelsync.template.declared_name` (an explicit name property, else ``modelsync-<kebab>``), so
``modelsync local``, ``modelsync invoke`` and the sample events agree. Only the resource types and
properties template.yaml declares are created.
"""

from __future__ import annotations

import json
import logging
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelsync import template as tpl

from .runtime import ACCOUNT_ID, FunctionSpec

log = logging.getLogger("modelsync.local")

ClientFactory = Callable[[str], Any]

BUCKET = "AWS::S3::Bucket"
TABLE = "AWS::DynamoDB::Table"
TOPIC = "AWS::SNS::Topic"
QUEUE = "AWS::SQS::Queue"
FUNCTION = "AWS::Serverless::Function"
API = "AWS::Serverless::Api"
KMS_KEY = "AWS::KMS::Key"  # created with an alias ``alias/{name}``, which is its local !Ref
STATE_MACHINE = "AWS::Serverless::StateMachine"  # executed by moto's ASL interpreter (see stepfunctions.py)

_ARN_SERVICE = {
    "AWS::Serverless::LayerVersion": ("lambda", "layer:"),
    "AWS::Logs::LogGroup": ("logs", "log-group:"),
    STATE_MACHINE: ("states", "stateMachine:"),
    "AWS::Cognito::UserPool": ("cognito-idp", "userpool/"),
}


def primary_bucket(template: tpl.Template) -> str | None:
    """The bucket the functions' S3 events watch (else the first bucket): the one ``--bucket`` names."""
    buckets = template.of_type(BUCKET)
    for lid in template.functions():
        for event in template.function_events(lid, "S3").values():
            ref = (event.get("Properties") or {}).get("Bucket")
            if isinstance(ref, dict) and ref.get("Ref") in buckets:
                return str(ref["Ref"])
    return next(iter(buckets), None)


def bucket_parameters(template: tpl.Template, bucket: str | None) -> tuple[dict[str, Any], str | None]:
    """How to give the primary bucket the name ``bucket``: a parameter override when its BucketName is a
    ``!Ref Parameter`` (so every ``!Ref`` of that parameter agrees), else a direct name."""
    lid = primary_bucket(template)
    if bucket is None or lid is None:
        return {}, None
    name_prop = (template.resource(lid).get("Properties") or {}).get("BucketName")
    if isinstance(name_prop, dict) and name_prop.get("Ref") in template.parameters:
        return {str(name_prop["Ref"]): bucket}, None
    return {}, bucket


@dataclass
class StackNames:
    """Ref and GetAtt values for every logical id, for one deployment (local, or a CloudFormation stack).

    ``refs`` holds what ``!Ref`` gives; ``actual`` holds attributes learnt from the service (a table's
    StreamArn); anything else is derived from the name by the usual ARN rules.
    """

    template: tpl.Template
    region: str = "us-east-1"
    stack_name: str = "modelsync"
    account_id: str = ACCOUNT_ID
    parameters: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    actual: dict[tuple[str, str], Any] = field(default_factory=dict)
    clients: ClientFactory | None = None
    queue_endpoint: str | None = None
    disabled: set[str] = field(default_factory=set)  # resources whose Condition is false

    @classmethod
    def local(
        cls,
        template: tpl.Template,
        *,
        region: str,
        endpoint: str | None,
        stack_name: str = "modelsync",
        parameters: Mapping[str, Any] | None = None,
        bucket: str | None = None,
        clients: ClientFactory | None = None,
    ) -> StackNames:
        """The names ``modelsync local`` uses (computable without the stack, for ``modelsync invoke``)."""
        params, direct_bucket = bucket_parameters(template, bucket)
        self = cls(
            template,
            region=region,
            stack_name=stack_name,
            parameters={**(parameters or {}), **params},
            clients=clients,
            queue_endpoint=endpoint,
        )
        probe = self.resolver()
        for lid, res in template.resources.items():
            try:
                if not probe.resource_enabled(lid):
                    self.disabled.add(lid)
                    continue
            except tpl.TemplateError:
                pass
            name = tpl.declared_name(template, lid, self.parameters, stack_name, region, self.account_id)
            rtype = res.get("Type", "")
            if rtype == BUCKET and lid == primary_bucket(template) and direct_bucket:
                name = direct_bucket
            elif rtype == BUCKET:
                name = name.lower()
            if rtype == API:
                name = lid.lower()[:10]
            self.names[lid] = name
            self.refs[lid] = self._ref_value(rtype, name)
        return self

    @classmethod
    def from_cloudformation(
        cls, template: tpl.Template, stack: str, *, region: str, clients: ClientFactory
    ) -> StackNames:
        """Names of a deployed stack: physical ids from DescribeStackResources, parameter values."""
        cfn = clients("cloudformation")
        desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        params = {
            p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue"))
            for p in desc.get("Parameters", [])
        }
        account = desc["StackId"].split(":")[4] if desc.get("StackId") else ACCOUNT_ID
        self = cls(
            template, region=region, stack_name=stack, account_id=account, parameters=params, clients=clients
        )
        paginator = cfn.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=stack):
            for r in page.get("StackResourceSummaries", []):
                lid, physical = r["LogicalResourceId"], r.get("PhysicalResourceId", "")
                rtype = template.resources.get(lid, {}).get("Type", r.get("ResourceType", ""))
                if rtype == QUEUE and physical.startswith("http"):
                    self.names[lid] = physical.rstrip("/").rsplit("/", 1)[-1]
                    self.refs[lid] = physical
                elif rtype == TOPIC and physical.startswith("arn:"):
                    self.names[lid] = physical.rsplit(":", 1)[-1]
                    self.refs[lid] = physical
                else:
                    self.names[lid] = physical.rsplit(":", 1)[-1] if physical.startswith("arn:") else physical
                    self.refs[lid] = physical
        return self

    def _ref_value(self, rtype: str, name: str) -> Any:
        if rtype == KMS_KEY:  # an alias KMS accepts as KeyId, known before the key exists (modelsync invoke)
            return f"alias/{name}"
        if rtype == TOPIC:
            return f"arn:aws:sns:{self.region}:{self.account_id}:{name}"
        if rtype == QUEUE:
            base = (self.queue_endpoint or f"https://sqs.{self.region}.amazonaws.com").rstrip("/")
            return f"{base}/{self.account_id}/{name}"
        if rtype in _ARN_SERVICE:
            service, kind = _ARN_SERVICE[rtype]
            return f"arn:aws:{service}:{self.region}:{self.account_id}:{kind}{name}"
        return name

    def resolver(self) -> tpl.Resolver:
        return tpl.Resolver(
            self.template,
            refs=self.refs,
            attrs=self.attr,
            parameters=self.parameters,
            region=self.region,
            account_id=self.account_id,
            stack_name=self.stack_name,
        )

    def attr(self, lid: str, attribute: str) -> Any:
        """``!GetAtt lid.attribute`` for the attributes template.yaml reads."""
        if (lid, attribute) in self.actual:
            return self.actual[(lid, attribute)]
        if lid not in self.names:
            return None
        rtype = self.template.resources.get(lid, {}).get("Type", "")
        name, r, a = self.names[lid], self.region, self.account_id
        value: Any = None
        if rtype == BUCKET:
            value = f"arn:aws:s3:::{name}" if attribute == "Arn" else None
        elif rtype == TABLE:
            if attribute == "Arn":
                value = f"arn:aws:dynamodb:{r}:{a}:table/{name}"
            elif attribute == "StreamArn" and self.clients is not None:
                value = (
                    self.clients("dynamodb").describe_table(TableName=name)["Table"].get("LatestStreamArn")
                )
                if value:
                    self.actual[(lid, attribute)] = value
        elif rtype == TOPIC:
            value = {"TopicArn": self.refs[lid], "TopicName": name}.get(attribute)
        elif rtype == QUEUE:
            value = {"Arn": f"arn:aws:sqs:{r}:{a}:{name}", "QueueName": name, "QueueUrl": self.refs[lid]}.get(
                attribute
            )
        elif rtype == FUNCTION:
            value = f"arn:aws:lambda:{r}:{a}:function:{name}" if attribute == "Arn" else None
        elif attribute in ("Arn", "Name"):
            ref = self.refs[lid]
            value = ref if attribute == "Arn" and str(ref).startswith("arn:") else name
        return value

    # helpers for the wiring
    def logical_id_of_arn(self, arn: str) -> str | None:
        for lid in self.names:
            for attribute in ("Arn", "TopicArn", "StreamArn"):
                if (lid, attribute) in self.actual and self.actual[(lid, attribute)] == arn:
                    return lid
            rtype = self.template.resources.get(lid, {}).get("Type", "")
            if rtype in (QUEUE, BUCKET, TABLE, FUNCTION) and self.attr(lid, "Arn") == arn:
                return lid
            if rtype == TOPIC and self.refs.get(lid) == arn:
                return lid
        return None


class Provisioner:
    """Creates the template's key, queue, tables, bucket, topic and state machine in the embedded AWS."""

    ORDER = (KMS_KEY, QUEUE, TABLE, BUCKET, TOPIC, STATE_MACHINE)  # the state machine names the functions

    def __init__(self, names: StackNames, clients: ClientFactory) -> None:
        self.names = names
        self.clients = clients
        self.resolver = names.resolver()
        self.created: dict[str, str] = {}  # logical id -> type, for the summary

    def _props(self, lid: str) -> dict[str, Any]:
        return self.resolver.resolve(self.names.template.properties(lid)) or {}

    def provision(self) -> None:
        create = {KMS_KEY: self._create_key, QUEUE: self._create_queue, TABLE: self._create_table,
                  BUCKET: self._create_bucket, TOPIC: self._create_topic,
                  STATE_MACHINE: self._create_state_machine}
        for rtype in self.ORDER:
            for lid in self.names.template.of_type(rtype):
                if lid in self.names.names:  # else its Condition is false
                    create[rtype](lid)
                    self.created[lid] = rtype

    def _create_queue(self, lid: str) -> None:
        p = self._props(lid)
        retention = p.get("MessageRetentionPeriod")
        attrs = {"MessageRetentionPeriod": str(retention)} if retention is not None else {}
        url = self.clients("sqs").create_queue(QueueName=self.names.names[lid], Attributes=attrs)["QueueUrl"]
        self.names.refs[lid] = url

    def _create_table(self, lid: str) -> None:
        p = self._props(lid)
        name = self.names.names[lid]
        ddb = self.clients("dynamodb")
        kwargs: dict[str, Any] = {"TableName": name, "KeySchema": p["KeySchema"],
                                  "AttributeDefinitions": p["AttributeDefinitions"],
                                  "BillingMode": p.get("BillingMode", "PROVISIONED")}
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = p.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
        if p.get("StreamSpecification"):
            kwargs["StreamSpecification"] = {"StreamEnabled": True,
                                             "StreamViewType": p["StreamSpecification"]["StreamViewType"]}
        desc = ddb.create_table(**kwargs)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": ttl["AttributeName"]})
        if desc.get("LatestStreamArn"):
            self.names.actual[(lid, "StreamArn")] = desc["LatestStreamArn"]

    def _create_bucket(self, lid: str) -> None:
        p = self._props(lid)
        name = self.names.names[lid]
        s3 = self.clients("s3")
        if self.names.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.names.region})
        status = (p.get("VersioningConfiguration") or {}).get("Status")
        if status:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})

    def _create_topic(self, lid: str) -> None:
        self.names.refs[lid] = self.clients("sns").create_topic(Name=self.names.names[lid])["TopicArn"]

    def _create_key(self, lid: str) -> None:
        """Spec and usage, and the alias that is its local ``!Ref``; the key policy names IAM roles that
        only exist in a deployed stack, so it is not applied."""
        p = self.names.template.properties(lid)
        kwargs = {k: self.resolver.resolve(p[k]) for k in ("KeySpec", "KeyUsage", "Description") if k in p}
        kms = self.clients("kms")
        meta = kms.create_key(**kwargs)["KeyMetadata"]
        alias = f"alias/{self.names.names[lid]}"
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        self.names.refs[lid] = alias
        self.names.actual[(lid, "Arn")], self.names.actual[(lid, "KeyId")] = meta["Arn"], meta["KeyId"]

    def _create_state_machine(self, lid: str) -> None:
        props = self.names.template.properties(lid)
        definition = state_machine_definition(self.resolver, props)
        self.clients("stepfunctions").create_state_machine(
            name=self.names.names[lid], definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{self.names.account_id}:role/{self.names.stack_name}-{lid}",
            type=str(props.get("Type", "STANDARD")))


def state_machine_definition(resolver: tpl.Resolver, props: Mapping[str, Any]) -> dict[str, Any]:
    """A SAM state machine's inline ``Definition`` with its ``DefinitionSubstitutions`` applied."""
    subs = resolver.resolve(props.get("DefinitionSubstitutions") or {}) or {}
    text = json.dumps(props["Definition"])
    for key, value in subs.items():
        text = text.replace("${" + key + "}", str(value))
    result = json.loads(text)
    assert isinstance(result, dict)
    return result


def function_specs(names: StackNames, base_dir: pathlib.Path) -> dict[str, FunctionSpec]:
    """Every function of the template with handler, code directory, environment and resolved events."""
    t = names.template
    resolver = names.resolver()
    specs: dict[str, FunctionSpec] = {}
    for lid, props in t.functions().items():
        if lid in names.disabled:
            continue
        code_uri = resolver.resolve(props.get("CodeUri", "."))
        if not isinstance(code_uri, str):
            log.warning("%s: CodeUri %r is not a local folder: skipped", lid, code_uri)
            continue
        events: dict[str, dict[str, Any]] = {}
        for ev_name, ev in (props.get("Events") or {}).items():
            try:
                events[ev_name] = {
                    "Type": ev.get("Type"),
                    "Properties": resolver.resolve(ev.get("Properties") or {}),
                }
            except tpl.TemplateError as exc:
                log.warning("%s: event %s not wired: %s", lid, ev_name, exc)
        specs[lid] = FunctionSpec(
            logical_id=lid,
            code_dir=(base_dir / code_uri).resolve(),
            handler=str(resolver.resolve(props.get("Handler", "app.lambda_handler"))),
            environment=resolver.function_environment(lid),
            # a function the deployed stack does not have still runs locally under the local name
            physical_name=names.names.get(lid) or tpl.physical_name(lid, names.stack_name),
            region=names.region,
            timeout=float(resolver.resolve(props.get("Timeout", 3))),
            memory_mb=int(resolver.resolve(props.get("MemorySize", 128))),
            events=events,
        )
    return specs


def find_function(specs: Mapping[str, FunctionSpec], name: str) -> FunctionSpec:
    """A function by logical id (``PublishFunction``), functions/ folder (``publish``) or physical name."""
    for spec in specs.values():
        if (
            name in (spec.logical_id, spec.physical_name, spec.code_dir.name)
            or name.lower() == spec.logical_id.lower()
        ):
            return spec
    raise KeyError(f"no function {name!r} in the template (functions: {', '.join(sorted(specs))})")
